"""The nginx router on a real nginx (Debian's nginx-light), under steady bounded load.

nginx runs as its own master with its prefix and config in a temporary directory,
listening on a free 127.0.0.1 port and a unix admin socket; never the system's site.
"""

from __future__ import annotations

import http.client
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cdlib.connections.local import LocalConnection
from cdlib.traffic.base import ReadBackError, RouterInputError, RouterState, Target
from cdlib.traffic.nginx import NginxConfigError, NginxRouter
from cdlib.traffic.nginx_config import NginxSite, parse_dump
from tests.integration.traffic.traffic_helpers import App, Load, SampleApp, free_port

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="needs nginx")

MIN_REQUESTS = 1500
PER_STEP = 100


@dataclass
class NginxEnv:
    router: NginxRouter
    site: NginxSite
    port: int

    @property
    def conf(self) -> Path:
        return Path(self.site.file("nginx.conf"))


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[NginxEnv]:
    port = free_port()
    site = NginxSite(str(tmp_path / "nginx"), bind=f"127.0.0.1:{port}", worker_shutdown_timeout=5)
    router = NginxRouter(LocalConnection(), site)
    router.start()
    try:
        yield NginxEnv(router, site, port)
    finally:
        router.stop()


def _percent(weights: dict[str, int]) -> dict[str, int]:
    total = sum(weights.values())
    return {g: round(w * 100 / total) for g, w in weights.items()}


def test_switches_canary_steps_and_rollback_under_load_drop_nothing(
    nginx: NginxEnv, apps: dict[str, list[SampleApp]]
) -> None:
    router = nginx.router
    for group, members in apps.items():
        router.register(group, [a.target for a in members])
        assert router.wait_healthy(group, timeout=10).healthy
    router.switch("blue")
    steps: list[tuple[str, object]] = [
        ("switch", "green"),  # blue/green
        ("switch", "blue"),
        ("weights", {"blue": 90, "green": 10}),  # canary steps
        ("weights", {"blue": 50, "green": 50}),
        ("weights", {"blue": 100, "green": 0}),  # rollback
        ("weights", {"blue": 0, "green": 100}),
        ("deregister", apps["green"][1]),  # scale the live group in and out
        ("register", apps["green"][1]),
        ("switch", "blue"),
    ]
    load = Load(
        nginx.port, threads=4, max_requests=40_000, max_seconds=120, retry_stale=True
    ).start()
    generations = [parse_dump(nginx.conf.read_text()).generation]
    try:
        load.wait_for(PER_STEP)
        for kind, arg in steps:
            if kind == "switch":
                assert isinstance(arg, str)
                state = router.switch(arg)
                assert state.live == arg
            elif kind == "weights":
                assert isinstance(arg, dict)
                state = router.set_weights(arg)
                assert dict(state.weights) == _percent(arg)
            elif kind == "deregister":
                assert isinstance(arg, SampleApp)
                router.deregister("green", [arg.target], timeout=10)
                assert arg.target not in router.targets("green")
            else:
                assert isinstance(arg, SampleApp)
                router.register("green", [arg.target])
                assert arg.target in router.targets("green")
            # Read back after every change: a fresh read equals what the change returned,
            # and the running workers moved to a new generation.
            if kind in ("switch", "weights"):
                assert router.state() == state
            generations.append(parse_dump(nginx.conf.read_text()).generation)
            load.wait_for(load.total + PER_STEP)
        load.wait_for(MIN_REQUESTS, timeout=60)
    finally:
        result = load.stop()
    report = (
        f"{result.total} requests, {len(result.failures)} failed: {result.failures[:5]}, "
        f"{result.stale_retries} resent after a reload closed an idle keep-alive connection"
    )
    print(report)
    assert result.total >= MIN_REQUESTS, report
    assert result.failures == [], report
    assert result.ok["1.0.0"] > 0 and result.ok["2.0.0"] > 0, result.ok
    assert generations == sorted(set(generations)), generations  # one reload per change
    # The config before the last change is kept beside the running one.
    prev = parse_dump(Path(nginx.site.file("nginx.conf.prev")).read_text())
    assert prev.generation == generations[-1] - 1


def test_config_refused_by_nginx_t_leaves_traffic_unchanged_and_names_the_error(
    nginx: NginxEnv, apps: dict[str, list[SampleApp]]
) -> None:
    router = nginx.router
    router.register("blue", [a.target for a in apps["blue"]])
    router.switch("blue")
    before = nginx.conf.read_text()
    load = Load(nginx.port, threads=2, max_requests=3000, max_seconds=60, retry_stale=True).start()
    try:
        load.wait_for(100)
        # Passes cdlib's writer (a plain host name) but nginx cannot resolve it.
        with pytest.raises(NginxConfigError) as err:
            router.register("green", [Target("no-such-host.invalid", 8080)])
        n = load.total
        load.wait_for(n + 100)
    finally:
        result = load.stop()
    assert "nginx -t refused" in str(err.value)
    assert "host not found" in str(err.value), err.value
    assert nginx.conf.read_text() == before
    assert not Path(nginx.site.file("nginx.conf.candidate")).exists()
    assert router.state() == RouterState.from_weights({"blue": 100, "green": 0})
    assert result.failures == [] and set(result.ok) == {"1.0.0"}


def test_writer_refuses_what_nginx_cannot_hold_before_touching_anything(
    nginx: NginxEnv,
) -> None:
    before = nginx.conf.read_text()
    for bad in ("evil;host", "a{b}", "$host", "x y"):
        with pytest.raises(RouterInputError):
            nginx.router.register("blue", [Target(bad.replace(" ", "_"), 80)])
    with pytest.raises(RouterInputError):
        NginxSite("/tmp/x;y")
    with pytest.raises(RouterInputError):
        NginxSite("/tmp/ok", bind="127.0.0.1:80; include /etc/passwd")
    assert nginx.conf.read_text() == before


def test_read_back_comes_from_the_running_nginx_not_the_file(nginx: NginxEnv) -> None:
    # A file changed behind nginx's back (not reloaded): its generation differs from
    # what the workers answer, so reading it is refused rather than believed.
    text = nginx.conf.read_text()
    gen = parse_dump(text).generation
    marker = f"# cdlib-generation {gen}"
    nginx.conf.write_text(text.replace(marker, f"# cdlib-generation {gen + 7}"))
    with pytest.raises(ReadBackError, match="running workers answer"):
        nginx.router.state()
    nginx.conf.write_text(text)
    assert nginx.router.state().weights == {"blue": 0, "green": 0}


def test_metrics_are_a_window_of_the_access_log(
    nginx: NginxEnv, apps: dict[str, list[SampleApp]]
) -> None:
    router = nginx.router
    for group, members in apps.items():
        router.register(group, [a.target for a in members])
    router.set_weights({"blue": 50, "green": 50})
    source = router.metrics_source()
    assert source.semantics == "windowed" and not source.cumulative
    load = Load(nginx.port, threads=2, max_requests=400, max_seconds=30).start()
    load.wait_for(400)
    load.stop()
    time.sleep(0.3)
    m = source.read(30.0)
    assert m["blue"].requests + m["green"].requests == load.total >= 400
    assert m["blue"].requests > 50 and m["green"].requests > 50
    assert m["blue"].errors_5xx == 0 and m["blue"].response_time_ms is not None
    time.sleep(1.2)
    assert source.read(1.0)["blue"].requests == 0  # older lines are outside the window


def test_worker_shutdown_timeout_bounds_how_long_an_old_worker_lives(
    tmp_path: Path, thread_app: App
) -> None:
    port = free_port()
    site = NginxSite(str(tmp_path / "n"), bind=f"127.0.0.1:{port}", worker_shutdown_timeout=1)
    router = NginxRouter(LocalConnection(), site)
    router.start()
    try:
        router.register("blue", [thread_app.target])
        router.switch("blue")
        outcome: list[str] = []

        def slow() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            try:
                conn.request("GET", "/slow/8")
                outcome.append(str(conn.getresponse().status))
            except (OSError, http.client.HTTPException) as exc:
                outcome.append(type(exc).__name__)

        holder = threading.Thread(target=slow)
        holder.start()
        time.sleep(0.5)  # the request is in the old worker now
        t0 = time.monotonic()
        router.set_weights({"blue": 100})  # a reload: that worker becomes an old one
        router.drain("blue", [], timeout=5)  # returns once no old worker is left
        took = time.monotonic() - t0
        holder.join(15)
    finally:
        router.stop()
    # The 8 s request did not keep the old worker: it was cut after about 1 s.
    assert took < 4, took
    assert outcome and outcome[0] != "200", outcome


def test_registering_what_is_registered_changes_nothing(nginx: NginxEnv, thread_app: App) -> None:
    nginx.router.register("blue", [thread_app.target])
    gen = parse_dump(nginx.conf.read_text()).generation
    nginx.router.register("blue", [thread_app.target])
    nginx.router.deregister("green", [thread_app.target])  # not in green: no error
    assert parse_dump(nginx.conf.read_text()).generation == gen  # no reload
    with pytest.raises(RouterInputError, match="already in group blue"):
        nginx.router.register("green", [thread_app.target])
