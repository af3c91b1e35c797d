"""The load-balancer API throttles or fails during a release (moto server + botocore hooks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cdlib.release import BlueGreen, History
from cdlib.traffic.elbv2 import ElbV2Router
from tests.integration.traffic.traffic_helpers import Aws, instance_blue_green


def _setup(aws: Aws, tmp_path: Path) -> tuple[ElbV2Router, Path]:
    handles, _ids, path = instance_blue_green(aws, tmp_path, "flt")
    router = ElbV2Router(
        aws.elbv2, target_groups=handles.target_groups, listener_arn=handles.listener_arn
    )
    return router, path


@pytest.fixture
def throttle(aws: Aws) -> Iterator[Callable[[str, int], list[int]]]:
    """Make ELBv2 ``operation`` throttle its first ``times`` calls (hooks removed after)."""
    hooks: list[tuple[str, Any]] = []

    def make(operation: str, times: int) -> list[int]:
        calls, hook = _throttle_hook(operation, times)
        event = f"before-call.elastic-load-balancing-v2.{operation}"
        aws.elbv2.meta.events.register(event, hook, unique_id=f"cdlib-test-{id(hook)}")
        hooks.append((event, hook))
        return calls

    yield make
    for event, hook in hooks:
        aws.elbv2.meta.events.unregister(event, hook, unique_id=f"cdlib-test-{id(hook)}")


def _throttle_hook(operation: str, times: int) -> tuple[list[int], Any]:
    calls = [0]

    def hook(**_: Any) -> None:
        calls[0] += 1
        if calls[0] <= times:
            raise ClientError(
                {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, operation
            )

    return calls, hook


def test_throttled_switch_succeeds_after_backoff(
    aws: Aws, tmp_path: Path, throttle: Callable[[str, int], list[int]]
) -> None:
    router, inv = _setup(aws, tmp_path)
    calls = throttle("ModifyListener", 3)
    res = BlueGreen(
        app="web",
        version="2.0.0",
        router=router,
        port=8080,
        target_var="instance_id",
        state_dir=str(tmp_path / "s"),
        health_timeout=10,
    ).run(str(inv))
    assert res.ok, [r.msg for r in res.results if r.status.value == "failed"]
    assert calls[0] == 4  # three throttled, then through
    assert router.state().live == "green"


def test_api_failing_for_good_stops_with_traffic_unchanged(
    aws: Aws, tmp_path: Path, throttle: Callable[[str, int], list[int]]
) -> None:
    router, inv = _setup(aws, tmp_path)
    throttle("ModifyListener", 10_000)
    res = BlueGreen(
        app="web",
        version="2.0.0",
        router=router,
        port=8080,
        target_var="instance_id",
        state_dir=str(tmp_path / "s"),
        health_timeout=10,
    ).run(str(inv))
    assert not res.ok and res.exit_code == 2
    failed = [r for r in res.results if r.status.value == "failed"]
    assert failed and "Throttling" in failed[0].msg and failed[0].task.startswith("switch")
    assert router.state().live == "blue"
    rec = History("web", state_dir=str(tmp_path / "s")).latest()
    assert rec is not None and rec.outcome == "failed" and "Throttling" in rec.reason
