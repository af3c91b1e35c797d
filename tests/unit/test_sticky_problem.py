"""A sticky canary asks its router before deploying whether it can hold the split."""

from __future__ import annotations

from pathlib import Path

from cdlib.traffic import StickySpec
from cdlib.traffic.nginx import NginxSpec


def test_nginx_names_a_cookie_it_cannot_read(tmp_path: Path) -> None:
    router = NginxSpec(workdir=str(tmp_path)).build()
    assert router.sticky_problem(StickySpec(cookie="uid")) is None
    assert router.sticky_problem(StickySpec(header="X-User")) is None
    problem = router.sticky_problem(StickySpec(cookie="session-id"))
    assert problem is not None and "'session-id' cannot be read by nginx" in problem
    # Asking changes nothing: no config was written.
    assert list(tmp_path.iterdir()) == []
