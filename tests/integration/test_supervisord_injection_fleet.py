"""Values never reach a host's shell or supervisord's config as code (issue 19, items 1, 3).

On the SSH fleet: a hostile value is refused before any host is touched, nothing runs,
no program section appears and the configs stay as they were; a config that gets past
the writer still lands as data; a secret in a program's environment is never in a
command line on the host and only in a file readable by root alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cdlib
from cdlib import Play, Secret, tasks
from cdlib.connections.ssh import SSHConnection
from cdlib.engine.errors import PlaybookError
from cdlib.services import supervisord
from tests.fleet import Fleet

pytestmark = pytest.mark.fleet

CONF = "/etc/cdlib-host/supervisord.conf"
MARKER = "/srv/pwned"
EOF_LINE = "CDLIB_EOF_7f3a"  # the here-document marker cdlib used to write configs with


def _play(env: dict[str, Any], command: str = "sleep 600") -> Play:
    play = Play("svc", hosts="all")
    play.task(
        tasks.service(
            "inj", state="started", backend="supervisord", command=command, environment=env
        )
    )
    return play


def _snapshot(fleet: Fleet) -> dict[str, bytes]:
    root = fleet.path(1, "/etc/cdlib-host")
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _record_commands(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every command line cdlib sends (what `/bin/sh -c` gets as its argument)."""
    seen: list[str] = []
    real = SSHConnection._run

    def spy(self: SSHConnection, command: str, **kw: Any) -> cdlib.api.CommandResult:
        seen.append(command)
        return real(self, command, **kw)

    monkeypatch.setattr(SSHConnection, "_run", spy)
    return seen


@pytest.mark.parametrize(
    "evil",
    [
        f"x\n{EOF_LINE}\ntouch {MARKER}\ncat <<'{EOF_LINE}'",
        f"x\n[program:evil]\ncommand=touch {MARKER}\nautostart=true",
    ],
    ids=["here-document-end", "program-section"],
)
def test_hostile_values_are_refused_and_nothing_runs(
    fleet: Fleet, tmp_path: Path, evil: str
) -> None:
    fleet.reset()
    inv = fleet.inventory_yaml(tmp_path / "one.yml", hosts=[1])
    assert cdlib.run(_play({"MODE": "good"}), inv).ok
    before = _snapshot(fleet)
    for env, command in [
        ({"MODE": "{{ evil }}"}, "sleep 600"),
        ({"MODE": "good"}, "sleep 600 {{ evil }}"),
    ]:
        with pytest.raises(PlaybookError, match="newline, which supervisord's config cannot"):
            cdlib.run(_play(env, command), inv, extra_vars={"evil": evil})
    assert not fleet.path(1, MARKER).exists()
    assert _snapshot(fleet) == before
    assert not any(b"[program:evil]" in text for text in before.values())
    status = fleet.ssh(1, f"supervisorctl -c {CONF} status").stdout
    assert "inj" in status and "evil" not in status


def test_config_past_the_writer_still_lands_as_data(fleet: Fleet, tmp_path: Path) -> None:
    """Even a program text the writer would refuse is written byte for byte, never run."""
    fleet.reset()
    inv = cdlib.load_inventory([fleet.inventory_yaml(tmp_path / "one.yml", hosts=[1])])
    host = inv.hosts[fleet.host(1).name]
    conn = cdlib.api.connection_for(host)
    text = f"; x\n{EOF_LINE}\ntouch {MARKER}\n$(touch {MARKER})\n`touch {MARKER}`\n"
    want = supervisord.SupervisorWant(
        "inj", None, CONF, "/var/lib/cdlib/supervisor", False, True, True
    )
    script, data = supervisord.script(want, ["write-program"], "", text)
    try:
        res = conn.run(script, stdin=data)
    finally:
        conn.close()
    assert res.ok, res.stderr
    assert not fleet.path(1, MARKER).exists()
    written = fleet.path(1, supervisord.program_path(CONF, "inj"))
    assert written.read_text() == text


def test_secret_in_environment_is_not_in_argv_and_file_is_private(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet.reset()
    inv = fleet.inventory_yaml(tmp_path / "one.yml", hosts=[1])
    old = fleet.path(1, supervisord.program_path(CONF, "inj"))
    commands = _record_commands(monkeypatch)
    res = cdlib.run(_play({"DB_PASSWORD": Secret("hunter2-s3cr3t"), "MODE": "good"}), inv)
    assert res.ok, [(r.task, r.msg) for r in res.results]
    assert commands and not any("hunter2-s3cr3t" in c for c in commands)
    assert old.stat().st_mode & 0o777 == 0o600
    assert 'DB_PASSWORD="hunter2-s3cr3t"' in old.read_text()
    # The running program got the value.
    pid = fleet.ssh(1, f"supervisorctl -c {CONF} pid inj").stdout.strip()
    env = fleet.ssh(1, f"tr '\\0' '\\n' < /proc/{pid}/environ").stdout
    assert "DB_PASSWORD=hunter2-s3cr3t" in env.splitlines()

    # A program file left 0644 by an older cdlib is made private, content unchanged.
    old.chmod(0o644)
    again = cdlib.run(_play({"DB_PASSWORD": Secret("hunter2-s3cr3t"), "MODE": "good"}), inv)
    assert again.ok and old.stat().st_mode & 0o777 == 0o600
