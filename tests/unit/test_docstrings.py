"""Every public name has a docstring, appears in the reference, and task examples run."""

from __future__ import annotations

import importlib
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"

PACKAGES = (
    "cdlib",
    "cdlib.tasks",
    "cdlib.checks",
    "cdlib.traffic",
    "cdlib.release",
    "cdlib.flags",
    "cdlib.inventory",
)


def _public_objects() -> list[tuple[str, str, Any]]:
    out = []
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        for name in mod.__all__:
            # getattr, not the module dict: cdlib and cdlib.tasks load some names lazily.
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                out.append((pkg, name, obj))
    return out


def _documented_modules() -> set[str]:
    found: set[str] = set()
    for page in REFERENCE.glob("*.md"):
        found.update(re.findall(r"^:::\s+([\w.]+)\s*$", page.read_text(), re.M))
    return found


PUBLIC = _public_objects()


def test_public_names_found() -> None:
    # Guards the parametrised tests below against silently testing nothing.
    assert len(PUBLIC) > 100


@pytest.mark.parametrize(("pkg", "name", "obj"), PUBLIC, ids=[f"{p}.{n}" for p, n, _ in PUBLIC])
def test_public_name_has_docstring(pkg: str, name: str, obj: Any) -> None:
    doc = obj.__doc__ or ""
    # A dataclass without a docstring gets a generated "Name(field: type, ...)" one.
    generated = inspect.isclass(obj) and doc.startswith(f"{obj.__name__}(")
    assert doc.strip() and not generated, f"{pkg}.{name} ({obj.__module__}) has no docstring"


def test_every_listed_package_is_in_the_reference() -> None:
    missing = set(PACKAGES) - _documented_modules()
    assert not missing, f"no '::: module' directive in docs/reference for {sorted(missing)}"


@pytest.mark.parametrize(("pkg", "name", "obj"), PUBLIC, ids=[f"{p}.{n}" for p, n, _ in PUBLIC])
def test_public_name_appears_in_the_reference(pkg: str, name: str, obj: Any) -> None:
    # The reference renders whole modules: the module defining the object must be there,
    # or the object itself (for names defined in private modules).
    documented = _documented_modules()
    assert obj.__module__ in documented or f"{pkg}.{name}" in documented, (
        f"{pkg}.{name} is defined in {obj.__module__}, which no '::: {obj.__module__}' "
        "directive in docs/reference renders"
    )


TASK_CLASSES = sorted(
    {obj for pkg, name, obj in PUBLIC if pkg == "cdlib.tasks" and inspect.isclass(obj)},
    key=lambda c: c.__name__,
)


@pytest.mark.parametrize("cls", TASK_CLASSES, ids=[c.__name__ for c in TASK_CLASSES])
def test_task_docstring_has_check_mode_and_a_working_example(cls: type) -> None:
    from cdlib import Play, tasks
    from cdlib.checks import HttpCheck
    from cdlib.traffic import HAProxySite, LoadBalancerSpec, ServerEntry, Target, TargetGroupSpec

    doc = inspect.getdoc(cls) or ""
    assert "check mode" in doc.lower(), f"{cls.__name__}: docstring does not say what --check does"
    m = re.search(r"Example:\n\s*```python\n(.*?)```", doc, re.S)
    assert m, f"{cls.__name__}: docstring has no 'Example:' with a python block"
    play = Play("docstring example", hosts="all")
    scope = {
        "play": play,
        "tasks": tasks,
        "HttpCheck": HttpCheck,
        "HAProxySite": HAProxySite,
        "LoadBalancerSpec": LoadBalancerSpec,
        "ServerEntry": ServerEntry,
        "Target": Target,
        "TargetGroupSpec": TargetGroupSpec,
    }
    exec(textwrap.dedent(m.group(1)), scope)
    assert play.tasks and isinstance(play.tasks[-1], cls)


def _public_modules() -> list[str]:
    import pkgutil

    import cdlib

    return [
        m.name
        for m in pkgutil.walk_packages(cdlib.__path__, "cdlib.")
        if not any(part.startswith("_") for part in m.name.split(".")[1:])
    ]


def test_every_public_definition_in_public_modules_has_a_docstring() -> None:
    missing = []
    modules = _public_modules()
    assert len(modules) > 50
    for name in modules:
        mod = importlib.import_module(name)
        if not (mod.__doc__ or "").strip():
            missing.append(f"{name} (module)")
        for attr, obj in vars(mod).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != name:
                continue
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            doc = obj.__doc__ or ""
            if not doc.strip() or (inspect.isclass(obj) and doc.startswith(f"{obj.__name__}(")):
                missing.append(f"{name}.{attr}")
            if inspect.isclass(obj):
                for meth, member in vars(obj).items():
                    func = member.fget if isinstance(member, property) else member
                    if meth.startswith("_") or not inspect.isfunction(func):
                        continue
                    if not (func.__doc__ or "").strip():
                        missing.append(f"{name}.{attr}.{meth}")
    assert not missing, "no docstring: " + ", ".join(missing)
