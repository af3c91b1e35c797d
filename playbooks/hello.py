"""Example playbook: lay out an app directory, render its config, switch `current`.

Run it on this machine:   cdlib run playbooks/hello.py -i inventories/local.yml
On the test fleet:        cdlib run playbooks/hello.py -i /var/tmp/cdlib-fleet/inventory.yml
(the inventory ``python -m tests.fleet up 5`` writes; see docs/testing.md)
Twice in a row, the second run reports no change. With --check it predicts the first
run's changes and touches nothing; --diff shows content changes with secrets masked.
"""

import os

from cdlib import Play, Secret, tasks

ROOT = "/srv/hello"

play = Play(
    "Install hello",
    hosts="all",
    vars={
        "root": ROOT,
        "version": "1.0.0",
        "listen_port": 8080,
        # A secret from the environment (a default keeps the example runnable).
        "api_token": Secret(os.environ.get("HELLO_API_TOKEN", "example-token-not-for-prod")),
    },
)
play.task(tasks.directory("{{ root }}", mode="0755"))
play.task(tasks.directory("{{ root }}/releases/{{ version }}", mode="0755"))
play.task(tasks.directory("{{ root }}/shared", mode="0750"))
play.task(
    tasks.template(
        "hello.conf.j2", "{{ root }}/shared/hello.conf", mode="0640", notify="reload hello"
    )
)
play.task(tasks.file("{{ root }}/releases/{{ version }}/VERSION", content="{{ version }}\n"))
play.task(tasks.symlink("{{ root }}/current", "{{ root }}/releases/{{ version }}"))
play.task(
    tasks.command(
        "date -u +%FT%TZ > {{ root }}/shared/installed-at",
        creates="{{ root }}/shared/installed-at",
        name="record first install time",
    )
)
play.task(tasks.command("cat {{ root }}/current/VERSION", read_only=True, name="check version"))
play.handler(
    "reload hello",
    tasks.command("date -u +%FT%TZ > {{ root }}/shared/reloaded-at", name="reload hello"),
)
