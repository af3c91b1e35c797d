"""The benchmark deployment for cdlib (see bench/README.md for the steps).

Variables come from the inventory bench/run writes (``version``, ``app_root``,
``tarball`` and per-host ``host_name``, ``app_port``, ...).
"""

from cdlib import Play, tasks

play = Play("Deploy the benchmark app", hosts="all")
play.task(tasks.directory("{{ app_root }}/releases", mode="0755"))
play.task(tasks.directory("{{ app_root }}/shared", mode="0755"))
play.task(
    tasks.copy("{{ tarball }}", "{{ app_root }}/shared/app-{{ version }}.tar.gz", mode="0644")
)
play.task(
    tasks.unarchive(
        "{{ app_root }}/shared/app-{{ version }}.tar.gz",
        "{{ app_root }}/releases/{{ version }}",
        remote_src=True,
        mode="0755",
    )
)
play.task(tasks.template("app.conf.j2", "{{ app_root }}/shared/app.conf", mode="0644"))
play.task(tasks.symlink("{{ app_root }}/current", "{{ app_root }}/releases/{{ version }}"))
play.task(tasks.file("{{ app_root }}/shared/VERSION", content="{{ version }}\n", mode="0644"))
play.task(
    tasks.command(
        'test "$({{ app_root }}/current/bin/check)" = {{ version }} && '
        "grep -qx 'version = {{ version }}' {{ app_root }}/shared/app.conf",
        read_only=True,
        prefetch=True,
        name="check release",
    )
)
