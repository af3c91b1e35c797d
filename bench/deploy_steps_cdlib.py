"""The many-small-steps benchmark deployment for cdlib (see bench/README.md).

Thirty small, idempotent steps of the kind a real deployment is made of: a directory
per component, a templated config in each, a few line edits, a version file, a symlink
and a check. Variables come from the inventory bench/run writes.
"""

from cdlib import Play, tasks

#: Components (a directory and a config each).
COMPONENTS = [f"c{k:02d}" for k in range(1, 11)]
#: Components whose env file gets a line edit.
EDITED = COMPONENTS[:6]

play = Play("Deploy many small steps", hosts="all")
for c in COMPONENTS:
    play.task(tasks.directory(f"{{{{ app_root }}}}/steps/{c}", mode="0755"))
for i, c in enumerate(COMPONENTS):
    play.task(
        tasks.template(
            "step.conf.j2",
            f"{{{{ app_root }}}}/steps/{c}/{c}.conf",
            mode="0644",
            vars={"component": c, "index": i},
        )
    )
for c in EDITED:
    play.task(
        tasks.line_in_file(
            f"{{{{ app_root }}}}/steps/{c}/env",
            "APP_VERSION={{ version }}",
            regexp="^APP_VERSION=",
            create=True,
            mode="0644",
        )
    )
play.task(tasks.file("{{ app_root }}/steps/VERSION", content="{{ version }}\n", mode="0644"))
play.task(tasks.symlink("{{ app_root }}/steps/current", "{{ app_root }}/steps/c01"))
play.task(
    tasks.command(
        "grep -qx 'version = {{ version }}' {{ app_root }}/steps/current/c01.conf",
        read_only=True,
        prefetch=True,
        name="check steps",
    )
)
