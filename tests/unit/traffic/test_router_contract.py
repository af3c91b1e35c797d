"""The router extension point: a router written from docs/routers.md alone runs a release,
specs register by kind, and canary analysis reads a router's metrics through the metrics
contract (cumulative or windowed), never through its class."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from cdlib import Play, tasks
from cdlib.release import BlueGreen, Canary, CanaryStep, DeployTarget, History, Thresholds
from cdlib.release import rollback as rollback_release
from cdlib.release.ops import status
from cdlib.traffic.base import RouterInputError, RouterMetrics, TargetGroupMetrics
from cdlib.traffic.spec import RouterSpec, router_kinds, spec_from_json
from tests.unit.test_release_state import _ROUTERS, MemoryRouter, MemorySpec

DOCS = Path(__file__).resolve().parents[3] / "docs" / "routers.md"


def _docs_router() -> dict[str, Any]:
    """Exec the code block of docs/routers.md's "Writing a router", as a reader would."""
    text = DOCS.read_text()
    section = text.split("\n## Writing a router\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None, "no python block under 'Writing a router'"
    code = block.group(1)
    assert len(code.splitlines()) <= 90, "the minimal router must fit on a page"
    # A module of its own, as a reader would save it (not this file's __future__ flags).
    module = types.ModuleType("docs_writing_a_router")
    sys.modules[module.__name__] = module
    exec(compile(code, f"{DOCS}:Writing a router", "exec", dont_inherit=True), module.__dict__)
    return module.__dict__


@pytest.fixture
def inventory(tmp_path: Path) -> str:
    def host(name: str) -> dict[str, Any]:
        return {"app_dir": str(tmp_path / "hosts" / name)}

    data = {
        "all": {
            "vars": {"ansible_connection": "local", "ansible_host": "127.0.0.1"},
            "children": {
                "blue": {"hosts": {"blue1": host("blue1")}},
                "green": {"hosts": {"green1": host("green1")}},
            },
        }
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _deploy(target: DeployTarget) -> Play:
    play = Play(f"deploy {target.version}", hosts=target.hosts)
    play.task(tasks.directory("{{ app_dir }}"))
    play.task(tasks.file("{{ app_dir }}/VERSION", content="{{ release_version }}\n"))
    return play


def test_router_from_the_docs_alone_runs_a_bluegreen_release_and_rollback(
    tmp_path: Path, inventory: str
) -> None:
    ns = _docs_router()
    path = tmp_path / "router.json"
    spec = ns["FileRouterSpec"](str(path))
    sd = str(tmp_path / "state")
    for version in ("1.0.0", "1.1.0"):
        bg = BlueGreen(
            app="app", version=version, router=spec, deploy=_deploy, port=8080, state_dir=sd
        )
        res = bg.run(inventory)
        assert res.ok, [r.msg for r in res.results if r.status.value == "failed"]
    router = spec.build()
    assert router.state().live == "green"
    assert router.tagged_release("green") == "1.1.0"
    assert [str(t) for t in router.targets("green")] == ["127.0.0.1:8080"]
    # cdlib rollback and status rebuild the router from its kind in the history record.
    assert History("app", state_dir=sd).latest().router["kind"] == "example-file"  # type: ignore[union-attr]
    rec = rollback_release("app", state_dir=sd)
    assert rec.new_group == "blue" and router.state().live == "blue"
    st = status("app", state_dir=sd)
    assert st.router_error is None and st.live == "blue" and st.releases["blue"] == "1.0.0"


def test_specs_register_by_kind_and_a_kind_is_taken_once() -> None:
    kinds = router_kinds()
    assert {"local-haproxy", "haproxy", "elbv2", "elbv2-asg", "nginx"} <= set(kinds)

    @dataclass
    class Other(RouterSpec):
        kind: ClassVar[str] = "nginx-contract-test"

    assert spec_from_json({"kind": "nginx-contract-test"}) == Other()
    with pytest.raises(TypeError, match="taken by"):

        @dataclass
        class Clash(RouterSpec):
            kind: ClassVar[str] = "nginx"


# -- canary analysis reads the metrics contract ------------------------------------------
class MeasuredRouter(MemoryRouter):
    """The in-memory router with metrics of a chosen semantics; the canary answers 5xx."""

    def __init__(self, semantics: str) -> None:
        super().__init__()
        self.semantics = semantics
        self.windows: list[float] = []
        self.reads = 0

    def metrics_source(self) -> RouterMetrics:
        return RouterMetrics(self.semantics, self._read, "test")  # type: ignore[arg-type]

    def _read(self, window: float) -> Mapping[str, TargetGroupMetrics]:
        self.windows.append(window)
        self.reads += 1
        # Cumulative: 100 requests / 50 errors more at every read. Windowed: each read is
        # already the window's traffic (100 requests, 50 errors).
        n = self.reads if self.semantics == "cumulative" else 1
        return {
            "blue": TargetGroupMetrics("blue", 1000 * n, 0),
            "green": TargetGroupMetrics("green", 100 * n, 50 * n, 3.0),
        }


def _analysed_canary(sd: str) -> Canary:
    return Canary(
        app="app",
        version="2.0.0",
        router=MemorySpec("r"),
        state_dir=sd,
        port=8080,
        deploy=_deploy,
        steps=[CanaryStep(10, pause=0.3), 100],
        thresholds=Thresholds(max_error_rate=0.05, min_requests=20),
        sample_interval=0.1,
        on_inconclusive="fail",
    )


@pytest.mark.parametrize("semantics", ["cumulative", "windowed"])
def test_canary_judges_metrics_by_their_declared_semantics(
    tmp_path: Path, inventory: str, semantics: str
) -> None:
    router = _ROUTERS["r"] = MeasuredRouter(semantics)
    router.tags["blue"] = "1.0.0"
    try:
        res = _analysed_canary(str(tmp_path / "state")).run(inventory)
    finally:
        _ROUTERS.clear()
    assert not res.ok
    rec = History("app", state_dir=str(tmp_path / "state")).latest()
    assert rec is not None and rec.outcome == "rolled_back", rec and rec.reason
    assert "5xx rate 50.00%" in rec.reason
    first = next(s for s in rec.samples if s["metric"] == "error_rate")
    # Cumulative: judged on the difference from the pause's first reading (100 requests);
    # windowed: each reading on its own, and the router is told the window.
    assert first["requests"] == 100
    if semantics == "windowed":
        assert router.windows[0] > 0
    assert router.weights == {"blue": 100, "green": 0}


def test_canary_without_metrics_fails_the_analysed_step_by_name(
    tmp_path: Path, inventory: str
) -> None:
    router = _ROUTERS["r"] = MemoryRouter()  # metrics_source() is None
    router.tags["blue"] = "1.0.0"
    try:
        res = _analysed_canary(str(tmp_path / "state")).run(inventory)
    finally:
        _ROUTERS.clear()
    assert not res.ok
    rec = History("app", state_dir=str(tmp_path / "state")).latest()
    assert rec is not None and "reports no metrics for analysis" in rec.reason


def test_metrics_semantics_are_checked() -> None:
    with pytest.raises(RouterInputError, match="neither 'cumulative' nor 'windowed'"):
        RouterMetrics("per-minute", lambda w: {})  # type: ignore[arg-type]


def test_a_wrong_router_option_names_every_registered_kind() -> None:
    from cdlib.engine.errors import PlaybookError

    with pytest.raises(PlaybookError, match=r"kinds: .*local-haproxy.*nginx"):
        BlueGreen(app="app", version="1", router="nginx")  # type: ignore[arg-type]
