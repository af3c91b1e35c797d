"""The public API: two facades (``cdlib`` for playbooks, ``cdlib.api`` for extenders),
each exporting one table of lazily loaded names; old names still resolve."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import cdlib
import cdlib.api
from cdlib import tasks

REPO = Path(__file__).resolve().parents[2]
FACADES = (cdlib, cdlib.api)


def _type_checking_names(module: ModuleType) -> dict[str, str]:
    """name -> module of the imports under ``if TYPE_CHECKING:`` in ``module``."""
    tree = ast.parse(Path(inspect.getfile(module)).read_text())
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module
                for a in imp.names:
                    assert a.asname == a.name, f"{a.name}: re-export it as itself"
                    out[a.name] = f"cdlib.{a.name}" if imp.module == "cdlib" else imp.module
    return out


@pytest.mark.parametrize("facade", FACADES, ids=lambda m: m.__name__)
def test_all_is_the_table_and_every_name_imports(facade: ModuleType) -> None:
    table: dict[str, str] = facade._EXPORTS
    assert facade.__all__ == list(table)
    for name in facade.__all__:
        value = getattr(facade, name)
        module = importlib.import_module(table[name])
        assert value is (module if table[name] == f"cdlib.{name}" else getattr(module, name))
    # What type checkers see is the same table.
    assert _type_checking_names(facade) == table
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        facade.__getattr__("nope")


def test_every_task_name_imports() -> None:
    assert set(tasks._LAZY) <= set(tasks.__all__)
    for name in tasks.__all__:
        assert getattr(tasks, name) is not None, name
    exec(f"from cdlib.tasks import {', '.join(tasks.__all__)}", {})


def test_the_two_layers_do_not_overlap() -> None:
    # A name has one home: playbook authors' names at the top, extenders' in cdlib.api.
    assert not set(cdlib.__all__) & set(cdlib.api.__all__)
    assert {"Play", "tasks", "run", "Secret", "BlueGreen", "Canary", "checks"} <= set(cdlib.__all__)
    assert {"Task", "Plan", "HostContext", "Connection", "Router", "Fact", "RunContext"} <= set(
        cdlib.api.__all__
    )


def test_names_moved_to_the_api_still_resolve_from_the_top() -> None:
    for name in cdlib._MOVED:
        assert name not in cdlib.__all__
        value = getattr(cdlib, name)
        if name in cdlib.api.__all__:
            assert value is getattr(cdlib.api, name)
    from cdlib import Task  # type: ignore[attr-defined]  # deprecated spelling

    assert Task is cdlib.api.Task


def test_deprecated_aliases_are_the_new_objects() -> None:
    from cdlib.release.steps import ReleaseRun, Run
    from cdlib.traffic import GroupMetrics, TargetGroupMetrics

    assert Run is ReleaseRun
    assert GroupMetrics is TargetGroupMetrics
    assert tasks.Group is tasks.UnixGroup and tasks.group is tasks.UnixGroup
    import cdlib.release_install.lock

    import cdlib.install.lock

    assert cdlib.release_install.lock is cdlib.install.lock
    assert "Deprecated" in (cdlib.api.Router.release.__doc__ or "")


def test_importing_cdlib_loads_nothing_heavy() -> None:
    probe = (
        "import sys, cdlib, cdlib.api\n"
        "print(sorted(m for m in sys.modules if m.startswith(('cdlib.engine', 'cdlib.traffic',"
        " 'cdlib.release', 'cdlib.tasks', 'jinja2', 'boto3'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
