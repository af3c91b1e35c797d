"""Every user-supplied template renders in the one sandboxed environment (issue 19, item 12).

Each rendering path gets known escape payloads; the sandbox must refuse them with a clear
error, and the command in the payload must not run (its marker file stays absent).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cdlib
from cdlib import Host, Inventory, Play, PlaybookError, PlaybookErrors, tasks
from cdlib.checks import HttpCheck, Suite, SuiteError, SuiteHost, run_suite
from cdlib.engine.templating import Templar, TemplateError
from cdlib.inventory import InventoryError
from cdlib.inventory._data import InventoryData
from cdlib.inventory.aws_ec2 import _Constructed

ROOT = Path(__file__).resolve().parents[2]


def payloads(marker: Path) -> list[str]:
    """Escapes that run a command (or reach every class) in a plain Jinja2 environment."""
    return [
        f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}",
        f"{{{{ joiner.__init__.__globals__.os.system('touch {marker}') }}}}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    ]


def _inv(tmp_path: Path) -> Inventory:
    return Inventory([Host("h1", {"ansible_connection": "local", "dir": str(tmp_path)})])


def _refused(message: str) -> None:
    assert "refused by the template sandbox" in message, message
    assert "unsafe" in message, message


def test_smoke_yaml_suite_refuses_an_escape_in_a_url(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for i, payload in enumerate(payloads(marker)):
        suite = tmp_path / f"suite{i}.yml"
        url = "http://127.0.0.1:9/" + payload.replace("'", "''")
        suite.write_text(f"suite: evil\nchecks:\n  - http: '{url}'\n")
        play = Play("smoke", hosts="all")
        play.task(tasks.smoke(suite=str(suite)))
        with pytest.raises((PlaybookError, PlaybookErrors)) as info:
            cdlib.run(play, _inv(tmp_path))
        _refused(str(info.value))
    assert not marker.exists()


def test_run_suite_refuses_an_escape(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for payload in payloads(marker):
        suite = Suite("evil", (HttpCheck(url="http://127.0.0.1:9/" + payload),))
        with pytest.raises(SuiteError) as info:
            run_suite(suite, [SuiteHost("h1")])
        _refused(str(info.value))
    assert not marker.exists()


def test_task_options_and_when_refuse_an_escape(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for payload in payloads(marker):
        for task in (
            tasks.file(str(tmp_path / "out"), content=payload),
            tasks.command("true", when=payload.strip("{} ")),
            tasks.command("true", name=payload),
        ):
            play = Play("options", hosts="all")
            play.task(task)
            with pytest.raises((PlaybookError, PlaybookErrors)) as info:
                cdlib.run(play, _inv(tmp_path))
            _refused(str(info.value))
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_flag_task_options_refuse_an_escape(tmp_path: Path) -> None:
    from cdlib.tasks.flags import flag_kill

    marker = tmp_path / "pwned"
    for payload in payloads(marker):
        play = Play("flags", hosts="all")
        play.task(flag_kill(path=str(tmp_path / "flags.json"), flag=payload))
        with pytest.raises((PlaybookError, PlaybookErrors)) as info:
            cdlib.run(play, _inv(tmp_path))
        _refused(str(info.value))
    assert not marker.exists()


def test_template_files_refuse_an_escape(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for i, payload in enumerate(payloads(marker)):
        (tmp_path / f"t{i}.j2").write_text(f"line one\n{payload}\n")
        with pytest.raises(TemplateError) as info:
            Templar([tmp_path]).render_file(f"t{i}.j2", {})
        _refused(str(info.value))
        assert info.value.template == str(tmp_path / f"t{i}.j2")
        book = tmp_path / f"book{i}.py"
        book.write_text(
            "from cdlib import Play, tasks\n"
            "play = Play('template', hosts='all')\n"
            f"play.task(tasks.template('t{i}.j2', {str(tmp_path / f'out{i}')!r}))\n"
        )
        with pytest.raises((PlaybookError, PlaybookErrors)) as run_info:
            cdlib.run(str(book), _inv(tmp_path))
        _refused(str(run_info.value))
    assert not marker.exists()


def test_templar_refuses_mutating_shared_variables() -> None:
    shared = {"items": [1, 2]}
    with pytest.raises(TemplateError) as info:
        Templar().render_string("{{ items.append(3) }}", shared, what="option 'x'")
    _refused(str(info.value))
    assert shared == {"items": [1, 2]}


def test_inventory_compose_refuses_an_escape(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for payload in payloads(marker):
        expression = payload.strip("{} ")
        data = InventoryData()
        data.add_host("h", "t")
        with pytest.raises(InventoryError) as info:
            _Constructed({"strict": True, "compose": {"x": expression}}, "t").apply(data, "h", {})
        assert "unsafe" in str(info.value)
    assert not marker.exists()


#: Jinja2 names that build an environment (a Template builds its own, unsandboxed).
_FACTORIES = {
    "Environment",
    "SandboxedEnvironment",
    "ImmutableSandboxedEnvironment",
    "NativeEnvironment",
    "Template",
    "NativeTemplate",
}
_FACTORY_MODULE = ROOT / "cdlib" / "jinja_sandbox.py"


def _jinja_constructions(path: Path) -> list[str]:
    """Calls of (or classes derived from) a Jinja2 environment or template class."""
    tree = ast.parse(path.read_text(), str(path))
    imported = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jinja2")
        for alias in node.names
        if alias.name in _FACTORIES
    }

    def builds(expr: ast.expr) -> bool:
        if isinstance(expr, ast.Name):
            return expr.id in imported
        if isinstance(expr, ast.Attribute) and expr.attr in _FACTORIES:
            base = expr.value
            while isinstance(base, ast.Attribute):
                base = base.value
            return isinstance(base, ast.Name) and base.id == "jinja2"
        return False

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and builds(node.func):
            found.append(f"{path}:{node.lineno}: builds {ast.unparse(node.func)}")
        elif isinstance(node, ast.ClassDef) and any(builds(b) for b in node.bases):
            found.append(f"{path}:{node.lineno}: subclasses a jinja2 environment")
    return found


def test_only_the_factory_builds_a_jinja2_environment() -> None:
    modules = sorted((ROOT / "cdlib").rglob("*.py"))
    assert len(modules) > 50 and _FACTORY_MODULE in modules
    offenders = [hit for m in modules if m != _FACTORY_MODULE for hit in _jinja_constructions(m)]
    assert not offenders, "build environments with cdlib.jinja_sandbox:\n" + "\n".join(offenders)
    # the walker does see a construction where there is one
    assert _jinja_constructions(_FACTORY_MODULE)
