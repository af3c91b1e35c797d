"""Shared pytest fixtures: the SSH test fleet.

``fleet`` is one fleet of 5 sshd hosts per test session (per xdist worker); ``fleet_inventory``
writes its inventory into the test's ``tmp_path`` after resetting the hosts to a clean state.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from tests.fleet import Fleet, fleet_available

FLEET_SIZE = 5


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """Treat SIGTERM (e.g. from ``timeout``) like Ctrl-C so fixtures, the fleet included, tear
    down instead of leaving sshd hosts behind."""
    is_main = threading.current_thread() is threading.main_thread()
    if is_main and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def fleet_subnet(worker: str | None = None, env: str | None = None) -> str:
    """The subnet for this test process's fleet, so that parallel runs never collide.

    Without xdist: ``CDLIB_FLEET_SUBNET`` or 127.0.0. Under xdist worker ``gwN``: 127.0.(10+N),
    or, when ``CDLIB_FLEET_SUBNET`` is 127.0.C, 127.0.(100 + 10*C + N).
    """
    worker = worker if worker is not None else os.environ.get("PYTEST_XDIST_WORKER")
    env = env if env is not None else os.environ.get("CDLIB_FLEET_SUBNET")
    if not worker or not worker.startswith("gw"):
        return env or "127.0.0"
    n = int(worker[2:])
    if env:
        a, b, c = env.split(".")
        third = 100 + 10 * int(c) + n
        if int(c) > 15 or n > 9:
            raise RuntimeError(f"cannot derive an xdist fleet subnet from {env!r} for {worker}")
        return f"{a}.{b}.{third}"
    if n > 89:
        raise RuntimeError(f"too many xdist workers for fleet subnets ({worker})")
    return f"127.0.{10 + n}"


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Five real sshd hosts (``host1``..``host5``) for the whole session; see tests/fleet.py.

    The hosts see this checkout and pytest's temporary directories at their own paths, even
    when those are under /tmp (each host's /tmp is otherwise private).
    """
    why = fleet_available()
    if why:
        pytest.skip(why)
    f = Fleet(FLEET_SIZE, subnet=fleet_subnet(), shared=[tmp_path_factory.getbasetemp()])
    try:
        yield f
    finally:
        f.stop()


@pytest.fixture
def fleet_inventory(fleet: Fleet, tmp_path: Path) -> Path:
    """Reset the fleet (all hosts up, empty per-host dirs) and write its inventory (group web)."""
    fleet.reset()
    return fleet.inventory_yaml(tmp_path / "inventory.yml")


@pytest.fixture(scope="session")
def sampleapp_account() -> None:
    """The ``sampleapp`` system account, made once before fleet tests that provision it.

    The fleet's hosts share this machine's /etc/passwd, so five "hosts" running ``useradd`` for
    the same name at once race for one file (the later ones fail with "already exists"), which
    separate machines never do. Tests that provision the account on every host start with it
    present; the ``user`` task's create path is tested on one host in test_host_tasks_fleet.py.
    """
    if subprocess.run(["getent", "passwd", "sampleapp"], capture_output=True).returncode != 0:
        shell = ["--shell", "/usr/sbin/nologin"]
        args = ["--system", *shell, "--no-create-home", "sampleapp"]
        subprocess.run(["useradd", *args], check=False)


#: Held shared by a test whose markers must survive from one run to the next, and
#: exclusively while markers are wiped (xdist workers wipe them at every test's start).
_MARKERS_LOCK = Path(tempfile.gettempdir()) / "cdlib-test-handler-markers.lock"


@contextlib.contextmanager
def _markers_locked(mode: int) -> Iterator[None]:
    with open(_MARKERS_LOCK, "a") as fh:
        fcntl.flock(fh, mode)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _no_pending_handler_markers() -> None:
    """Start each test without handler markers left on this machine by another test.

    Tests that run plays over the local connection as root share this machine's
    /var/lib/cdlib/handlers (fleet hosts each have their own): a test that fails a host on
    purpose after a notification would otherwise make a later test run that handler.
    """
    d = Path("/var/lib/cdlib/handlers")
    if d.is_dir():
        with _markers_locked(fcntl.LOCK_EX):
            for f in d.iterdir():
                f.unlink(missing_ok=True)


@pytest.fixture
def keep_handler_markers() -> Iterator[None]:
    """For a test that needs a marker to outlive a run: no other test's start (in
    another xdist worker) wipes the markers while it runs. Use a play name of its own."""
    with _markers_locked(fcntl.LOCK_SH):
        yield
