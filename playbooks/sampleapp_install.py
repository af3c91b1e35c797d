"""Provision hosts and install the sample app under supervisord (no systemd needed).

Build a release, then run (version and build can be overridden with -e)::

    scripts/build-sample-app 1.0.0 --out dist/
    cdlib run playbooks/sampleapp_install.py -i /var/tmp/cdlib-fleet/inventory.yml -e version=1.0.0

on the test fleet (``python -m tests.fleet up 5`` writes that inventory; its hosts share this
machine's /etc/passwd, so create the account once first: ``useradd --system sampleapp``).

Play 1 provisions: system user, app root, a supervisord of its own with the app's program.
Play 2 installs release ``version`` from ``build`` (config from a template and a per-host
environment file) and starts the app. The restart is a handler: it runs only when the release
or its config changed, so a re-run changes nothing. On each host the app binds ``app_bind``
(default: the host's address) on ``app_port``.
"""

from cdlib import Play, tasks
from cdlib.install.account import system_account

VARS = {
    "app": "sampleapp",
    "app_user": "sampleapp",
    "root": "/srv/sampleapp",
    "version": "1.0.0",
    "app_port": 8080,
    "app_color": "blue",
}

provision = Play("Provision sampleapp hosts", hosts="all", vars=VARS)
if hasattr(tasks, "user"):  # the general user task (branch hosttasks)
    provision.task(
        tasks.user("{{ app_user }}", system=True, shell="/usr/sbin/nologin", create_home=False)
    )
else:
    provision.task(system_account("{{ app_user }}"))
provision.task(tasks.directory("{{ root }}", mode="0755"))
provision.task(tasks.directory("{{ root }}/shared", mode="0755", owner="{{ app_user }}"))
provision.task(
    tasks.service(
        "{{ app }}",
        backend="supervisord",
        command="{{ root }}/current/bin/start",
        directory="{{ root }}/current",
        user="{{ app_user }}",
        environment={"APP_ENV_FILE": "{{ root }}/current/.env"},
        # Started by the install play once a release exists.
        enabled=False,
    )
)

install = Play("Install sampleapp", hosts="all", vars=VARS)
install.task(
    tasks.install(
        "{{ app }}",
        "{{ version }}",
        # -e build=/path/to.tar.gz, or the tarball scripts/build-sample-app writes to dist/.
        "{{ build | default(playbook_dir ~ '/../dist/sampleapp-' ~ version ~ '.tar.gz') }}",
        root="{{ root }}",
        shared_dirs=["logs"],
        templates={"sampleapp.flags.json.j2": "flags.json"},
        env={
            "APP_BIND": "{{ app_bind | default(ansible_host) | default('127.0.0.1') }}",
            "APP_PORT": "{{ app_port }}",
            "APP_COLOR": "{{ app_color }}",
            "APP_FLAGS_FILE": "{{ root }}/current/flags.json",
        },
        owner="{{ app_user }}",
        keep=5,
        notify="restart sampleapp",
    )
)
install.task(tasks.service("{{ app }}", backend="supervisord", state="started"))
install.handler(
    "restart sampleapp", tasks.service("{{ app }}", backend="supervisord", state="restarted")
)
