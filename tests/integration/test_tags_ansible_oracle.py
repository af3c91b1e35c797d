"""--tags / --skip-tags select the tasks ansible-playbook selects (ansible-core as oracle).

The same dozen tagged tasks are written as a cdlib playbook and an Ansible YAML playbook;
for each tag combination, the task names ``ansible-playbook --list-tasks`` lists must be
those ``cdlib.engine.runner.outline`` selects (in order), and ``cdlib run --list-tasks``
prints the same lines.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml

from cdlib.cli.main import main as cli_main
from cdlib.engine.runner import outline

ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

#: (play name, play tags, [(task name, task tags)])
PLAYS: list[tuple[str, list[str], list[tuple[str, list[str]]]]] = [
    (
        "base",
        [],
        [
            ("install packages", ["pkg", "setup"]),
            ("write config", ["config"]),
            ("untagged one", []),
            ("always runs", ["always"]),
            ("debug dump", ["never", "debug"]),
            ("only never", ["never"]),
            ("config and deploy", ["config", "deploy"]),
        ],
    ),
    (
        "web",
        ["web"],
        [
            ("web untagged", []),
            ("web deploy", ["deploy"]),
            ("web never", ["never"]),
            ("web always", ["always"]),
            ("web pkg", ["pkg"]),
        ],
    ),
]

CASES: list[tuple[list[str], list[str]]] = [
    ([], []),
    (["config"], []),
    (["tagged"], []),
    (["untagged"], []),
    (["never"], []),
    (["debug"], []),
    ([], ["always"]),
    ([], ["all"]),
    (["web"], ["deploy"]),
    (["deploy,always"], ["web"]),
    (["all"], ["pkg,tagged"]),
    (["all", "never"], ["untagged"]),
]


def _write(tmp: Path) -> tuple[Path, Path]:
    py = ["from cdlib import Play, tasks", ""]
    yml = []
    for name, ptags, items in PLAYS:
        py.append(f"p = Play({name!r}, hosts='all', tags={ptags!r})")
        for tname, ttags in items:
            py.append(f"p.task(tasks.command('true', name={tname!r}, tags={ttags!r}))")
        yml.append(
            {
                "name": name,
                "hosts": "all",
                "gather_facts": False,
                "tags": ptags,
                "tasks": [{"name": t, "command": "true", "tags": tt} for t, tt in items],
            }
        )
    (tmp / "pb.py").write_text("\n".join(py) + "\n")
    (tmp / "pb.yml").write_text(yaml.safe_dump(yml))
    return tmp / "pb.py", tmp / "pb.yml"


def _ansible(pb: Path, tags: list[str], skip: list[str]) -> list[str]:
    argv = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", str(pb), "--list-tasks"]
    for t in tags:
        argv += ["--tags", t]
    for t in skip:
        argv += ["--skip-tags", t]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
    return _task_lines(out)


def _task_lines(out: str) -> list[str]:
    lines = out.splitlines()
    return [ln.strip() for ln in lines if ln.startswith("      ") and "TAGS:" in ln]


@pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="ansible-core is not installed")
@pytest.mark.parametrize(("tags", "skip"), CASES, ids=[f"{t}-{s}" for t, s in CASES])
def test_selected_tasks_match_ansible(tmp_path: Path, tags: list[str], skip: list[str]) -> None:
    py, yml = _write(tmp_path)
    expected = _ansible(yml, tags, skip)
    split = [w for v in tags for w in v.split(",")] or ["all"]
    split_skip = [w for v in skip for w in v.split(",")]
    got = [t for item in outline(py, tags=split, skip_tags=split_skip) for t, _ in item.tasks]
    assert got == [line.split("\t")[0] for line in expected]
    argv = ["run", str(py), "--list-tasks"]
    argv += [a for t in tags for a in ("--tags", t)]
    argv += [a for t in skip for a in ("--skip-tags", t)]
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert cli_main(argv) == 0
    assert _task_lines(buf.getvalue()) == expected


def test_oracle_sees_the_tags(tmp_path: Path) -> None:
    # The comparison above only means something if Ansible filters at all here.
    _, yml = _write(tmp_path)
    assert len(_ansible(yml, ["config"], [])) < len(_ansible(yml, [], []))
    assert shutil.which("true")
