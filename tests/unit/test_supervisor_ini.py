"""supervisord's INI writer: what it writes reads back exactly; what it cannot hold is refused.

The round trip uses supervisord's own parser (the Debian package's Python) when present.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cdlib import Secret
from cdlib.engine.errors import PlaybookError
from cdlib.engine.templating import Templar
from cdlib.services import supervisor_ini as ini
from cdlib.services import supervisord
from cdlib.tasks import service

SYSTEM_PY = Path("/usr/bin/python3")

# Reads program sections with supervisord's own option parser and prints what it understood.
_ORACLE = """
import json, os, sys, tempfile
from supervisor.options import ServerOptions
d = tempfile.mkdtemp()
p = os.path.join(d, "s.conf")
with open(p, "w") as fh:
    fh.write("[supervisord]\\nlogfile=%s/l\\npidfile=%s/p\\n" % (d, d) + sys.stdin.read())
o = ServerOptions()
o.realize(args=["-c", p])
print(json.dumps({pc.name: {"command": pc.command, "environment": pc.environment,
                            "directory": pc.directory}
                  for g in o.process_group_configs for pc in g.process_configs}))
"""


def _supervisord_reads(text: str) -> dict[str, Any]:
    ok = subprocess.run(
        [str(SYSTEM_PY), "-c", "import supervisor"], capture_output=True, check=False
    )
    if not SYSTEM_PY.exists() or ok.returncode != 0:
        pytest.skip("supervisor's Python package is not installed")
    res = subprocess.run(
        [str(SYSTEM_PY), "-c", _ORACLE], input=text, capture_output=True, text=True, check=True
    )
    return json.loads(res.stdout)  # type: ignore[no-any-return]


HARD_VALUES = {
    "PCT": "100% %(here)s",
    "BACKSLASH": "a\\nb\\\\",
    "DQ": 'say "hi" now',
    "SQ": "it's",
    "COMMA": "a,b=c",
    "SEMI": "a;b#c",
    "SPACES": "  inner  spaces  ",
    "EMPTY": "",
    "UNICODE": "é€ü",
}


def test_hard_values_read_back_exactly_by_supervisord(tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()
    prog = supervisord.Program(
        "app-1.x_y",
        "/bin/sh -c 'exec echo 50%;true'",
        directory="/srv/a b",
        environment=HARD_VALUES,
    )
    got = _supervisord_reads(supervisord.program_config(prog, str(tmp_path)))
    assert got["app-1.x_y"]["environment"] == HARD_VALUES
    assert got["app-1.x_y"]["command"] == "/bin/sh -c 'exec echo 50%;true'"
    assert got["app-1.x_y"]["directory"] == "/srv/a b"


PEM = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("field", "kw", "problem"),
    [
        ("option 'environment' K", {"environment": {"K": "x\nCDLIB_EOF_7f3a\nrm /p"}}, "newline"),
        ("option 'environment' K", {"environment": {"K": "x\n[program:evil]"}}, "newline"),
        ("option 'environment' K", {"environment": {"K": PEM}}, "newline"),
        ("option 'environment' K", {"environment": {"K": "a ;b"}}, "comment"),
        ("option 'environment' K", {"environment": {"K": "a\"b'c"}}, "both"),
        ("option 'environment' K", {"environment": {"K": '"quoted"'}}, "quote character"),
        ("option 'environment' key 'A B'", {"environment": {"A B": "1"}}, "variable name"),
        ("option 'environment' key 'A=B'", {"environment": {"A=B": "1"}}, "variable name"),
        ("option 'command'", {"command": "run\n[program:evil]\ncommand=touch /p"}, "newline"),
        ("option 'command'", {"command": "run --x ; touch /p"}, "comment"),
        ("option 'command'", {"command": "run\r"}, "newline"),
        ("option 'command'", {"command": " run"}, "whitespace"),
        ("option 'directory'", {"directory": "/srv\n[program:evil]"}, "newline"),
        ("option 'user'", {"user": "app\x00"}, "control character"),
        ("option 'name'", {"name": "a:b"}, "letters"),
        ("option 'name'", {"name": "../../etc/cron.d/x"}, "letters"),
        ("option 'name'", {"name": "x]\n[program:evil"}, "letters"),
        ("option 'name'", {"name": "a b"}, "letters"),
        ("option 'stop_signal'", {"stop_signal": "TERM\nuser=root"}, "signal"),
    ],
)
def test_values_supervisord_cannot_hold_are_refused_by_field(
    field: str, kw: dict[str, Any], problem: str
) -> None:
    args: dict[str, Any] = {"name": "app", "command": "run", **kw}
    with pytest.raises(ini.IniValueError) as exc:
        supervisord.program_config(supervisord.Program(**args), "/var/r")
    assert exc.value.field == field
    assert problem in exc.value.problem
    for v in (kw.get("environment") or {}).values():
        assert v not in str(exc.value)  # never the value: it may be a secret


def test_paths_inside_the_configs_are_refused_when_not_one_plain_word() -> None:
    for conf, run, field in [
        ("/etc/c d/s.conf", "/r", "supervisor_conf"),
        ("/etc/c/s.conf", "/r\n[program:x]", "supervisor_run"),
        ("/etc/c/s.conf", "/r%(here)s", "supervisor_run"),
    ]:
        with pytest.raises(ini.IniValueError, match=field):
            supervisord.main_config(conf, run)


def test_service_task_refuses_literal_values_at_definition() -> None:
    with pytest.raises(PlaybookError, match="option 'environment' K holds a newline"):
        service("app", backend="supervisord", command="run", environment={"K": "a\nb"})


def test_service_task_refuses_rendered_values_before_any_host(tmp_path: Path) -> None:
    secret = Secret("s3cr3t\nCDLIB_EOF_7f3a\ntouch /srv/pwned")
    task = service(
        "app",
        backend="supervisord",
        command="run",
        environment={"K": "{{ k }}", "PW": secret},
    )
    with pytest.raises(PlaybookError) as exc:
        task.prepare({"k": "ok"}, Templar([tmp_path]))
    assert "option 'environment' PW holds a newline" in str(exc.value)
    assert "s3cr3t" not in str(exc.value)
    for task in (
        service("{{ n }}", backend="supervisord", command="run"),
        service("{{ n }}", backend="supervisord", state="started"),  # an existing program
    ):
        # The shared service-name rule refuses it first (the INI writer would too).
        with pytest.raises(
            PlaybookError, match=re.escape("service name '../../x' has character '/'")
        ):
            task.prepare({"n": "../../x"}, Templar([tmp_path]))


def _want(**kw: Any) -> supervisord.SupervisorWant:
    base: dict[str, Any] = {
        "name": "app",
        "state": "started",
        "conf": "/etc/c/supervisord.conf",
        "run_dir": "/var/r",
        "main_changed": True,
        "program_changed": True,
        "program_managed": True,
    }
    return supervisord.SupervisorWant(**{**base, **kw})


def test_config_contents_travel_on_stdin_not_in_the_script() -> None:
    prog = supervisord.Program("app", "run", environment={"PW": "s3cr3t"})
    main = supervisord.main_config("/etc/c/supervisord.conf", "/var/r")
    text = supervisord.program_config(prog, "/var/r")
    steps = ["write-main", "start-daemon", "write-program", "update", "start"]
    script, data = supervisord.script(_want(), steps, main, text)
    assert "s3cr3t" not in script and "[program:" not in script and "<<" not in script
    assert data == main.encode() + text.encode()
    # The program file (it holds the environment) is made private; the main one is not.
    prog_path = supervisord.program_path(_want().conf, "app")
    assert f'chmod 0600 -- "$t" && mv -f -- "$t" {prog_path}' in script
    assert 'chmod 0644 -- "$t" && mv -f -- "$t" /etc/c/supervisord.conf' in script
