"""The import graph of cdlib/: no import cycle (between packages or between modules), and
no import from a lower layer.

Every ``import`` counts wherever it stands: at module level, inside a function (a lazy
import is still a dependency) and under ``if TYPE_CHECKING:`` (a type names the module
it comes from; an upward type-only import is as much a design error as a runtime one).
A module that calls ``importlib.import_module`` also depends on every cdlib module it
names in a string literal (``cdlib.tasks`` loads some tasks lazily that way).
The ``cdlib`` package facade (``cdlib/__init__.py``, ``__main__.py``) is the top.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import cdlib

ROOT = Path(cdlib.__file__).parent

#: Layers from the bottom up; a unit may import its own layer (without a cycle) or lower.
LAYERS: list[tuple[str, ...]] = [
    (
        "errors",
        "_version",
        "_yaml",
        "jinja_sandbox",
        "jinja_filters",
        "jinja_taint",
        "secret",
        "secret_stores",
        "vault",
        "atomicfile",
        "lockowner",
        "_lazy",
    ),
    ("inventory", "connections", "facts", "services", "state"),
    ("engine",),
    ("tasks", "checks", "traffic", "flags", "install", "release_install", "aws"),
    ("release",),
    ("cli", "report", "dashboard"),
    ("cdlib", "api"),
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    """The unit (package, or top-level module) a cdlib module belongs to."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return "cdlib"
    return parts[1]


def module_imports() -> dict[str, set[tuple[str, int]]]:
    """cdlib module -> the cdlib modules it imports, with the line of each import."""
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    out: dict[str, set[tuple[str, int]]] = {}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        is_pkg = path.name == "__init__.py"
        found: set[tuple[str, int]] = set()
        lazy = "import_module" in path.read_text()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {(a.name, node.lineno) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join([*pkg, base] if base else pkg)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    found.add((sub if sub in files else base, node.lineno))
            elif (
                lazy
                and isinstance(node, ast.Constant)
                and node.value in files
                and "." in node.value
            ):
                found.add((node.value, node.lineno))
        out[mod] = {(m, line) for m, line in found if m == "cdlib" or m.startswith("cdlib.")}
    return out


def unit_graph(imports: dict[str, set[tuple[str, int]]]) -> dict[str, dict[str, str]]:
    """unit -> unit it imports -> one place that does (``module:line``)."""
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    for mod, targets in sorted(imports.items()):
        src = unit_of(mod)
        for target, line in sorted(targets):
            dst = unit_of(target)
            if dst != src:
                graph[src].setdefault(dst, f"{mod}:{line} imports {target}")
    return graph


def module_graph(imports: dict[str, set[tuple[str, int]]]) -> dict[str, dict[str, str]]:
    """module -> cdlib module it imports -> where (``module:line``)."""
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    for mod, targets in sorted(imports.items()):
        for target, line in sorted(targets):
            if target != mod and target in imports:
                graph[mod].setdefault(target, f"{mod}:{line}")
    return graph


def upward(graph: dict[str, dict[str, str]]) -> list[str]:
    """Imports from a unit to a unit of a higher layer (or to an unlisted unit)."""
    bad = []
    for src, dsts in sorted(graph.items()):
        for dst, where in sorted(dsts.items()):
            if src not in LAYER or dst not in LAYER:
                bad.append(f"{where}: unit {src if src not in LAYER else dst!r} has no layer")
            elif LAYER[dst] > LAYER[src]:
                bad.append(f"{where}: {src} (layer {LAYER[src]}) -> {dst} (layer {LAYER[dst]})")
    return bad


def cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """Strongly connected groups of more than one unit (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_points_up_a_layer() -> None:
    assert upward(unit_graph(module_imports())) == []


def test_no_cycle_between_packages() -> None:
    graph = unit_graph(module_imports())
    found = cycles(graph)
    detail = [f"{a} -> {b}: {graph[a][b]}" for c in found for a in c for b in c if b in graph[a]]
    assert found == [], detail


def test_no_cycle_between_modules() -> None:
    # Inside a package too: two modules that need each other are one module split in
    # the wrong place (move the shared names down, or name the other side by a protocol).
    graph = module_graph(module_imports())
    found = cycles(graph)
    detail = [f"{a} -> {b} ({graph[a][b]})" for c in found for a in c for b in c if b in graph[a]]
    assert found == [], detail


def test_every_package_has_a_layer() -> None:
    units = {unit_of(m) for m in module_imports()}
    assert units <= set(LAYER), units - set(LAYER)


def test_the_engine_does_not_know_about_releases() -> None:
    graph = unit_graph(module_imports())
    assert "release" not in graph["engine"]


def test_the_checks_catch_what_they_must() -> None:
    # The walker sees imports inside functions and under TYPE_CHECKING ...
    imports = module_imports()
    seen = {m for m, _ in imports["cdlib.engine.play"]}
    assert "cdlib.engine.contract" in seen  # only imported under TYPE_CHECKING there
    assert "cdlib.tasks.install" in {m for m, _ in imports["cdlib.release.strategy"]}  # lazy
    assert "cdlib.tasks.aws_compute" in {m for m, _ in imports["cdlib.tasks"]}  # lazy, by name
    # ... and the rules reject an upward import and a cycle.
    graph = {"engine": {"release": "x:1"}, "release": {"engine": "y:2"}}
    assert upward(graph) == ["x:1: engine (layer 2) -> release (layer 4)"]
    assert cycles(graph) == [["engine", "release"]]
    modules = {"cdlib.a": {("cdlib.b", 3)}, "cdlib.b": {("cdlib.a", 5)}, "cdlib.c": set()}
    assert cycles(module_graph(modules)) == [["cdlib.a", "cdlib.b"]]
