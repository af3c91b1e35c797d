"""Where the demo runs, and how it is stopped (used by scripts/demo).

    python scripts/demo_ctl.py inventory   # writes $CDLIB_DEMO_ROOT/inventory.yml, prints it
    python scripts/demo_ctl.py stop        # stops the demo's HAProxy and sample-app processes

The demo's inventory is ``inventories/bluegreen-local.yml`` moved by the environment, so
a second user (or the test suite) can run the demo beside another one without editing files:

- ``CDLIB_DEMO_ROOT`` (default ``/var/tmp/cdlib-demo``): every ``app_dir`` under the
  shipped inventory's root moves under it, as do HAProxy's work dir and the release state;
- ``CDLIB_DEMO_PORT_OFFSET`` (default 0): added to every ``app_port``;
- ``CDLIB_DEMO_LB`` (default ``127.0.0.1:8480``): HAProxy's address for user traffic.

``stop`` stops HAProxy (the one in ``$CDLIB_DEMO_ROOT/haproxy``) and each sample-app
process recorded in an ``app_dir`` of the moved inventory (only a process that still runs
the sample app), then checks that none of the demo's ports is still listening.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "inventories" / "bluegreen-local.yml"
SHIPPED_ROOT = Path("/var/tmp/cdlib-demo")


def settings() -> tuple[Path, int, str]:
    """(root, port offset, load balancer address) from the environment."""
    root = Path(os.environ.get("CDLIB_DEMO_ROOT") or SHIPPED_ROOT).absolute()
    offset = int(os.environ.get("CDLIB_DEMO_PORT_OFFSET") or 0)
    lb = os.environ.get("CDLIB_DEMO_LB") or "127.0.0.1:8480"
    return root, offset, lb


def moved_inventory(root: Path, offset: int) -> dict[str, Any]:
    """The shipped inventory with its app dirs under ``root`` and its ports moved by ``offset``."""
    inv: dict[str, Any] = yaml.safe_load(SHIPPED.read_text())
    for group in inv["all"]["children"].values():
        for hv in group["hosts"].values():
            hv["app_port"] = int(hv["app_port"]) + offset
            if not 1024 <= hv["app_port"] <= 65535:
                raise SystemExit(f"CDLIB_DEMO_PORT_OFFSET={offset}: port {hv['app_port']} invalid")
            hv["app_dir"] = str(root / Path(hv["app_dir"]).relative_to(SHIPPED_ROOT))
    return inv


def write_inventory(root: Path, offset: int) -> Path:
    """Write the moved inventory to ``root/inventory.yml`` (atomically) and return its path."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "inventory.yml"
    tmp = path.with_name(".inventory.yml.tmp")
    tmp.write_text(
        "# Written by scripts/demo from inventories/bluegreen-local.yml; edit that one.\n"
        + yaml.safe_dump(moved_inventory(root, offset), sort_keys=False)
    )
    os.replace(tmp, path)
    return path


def _is_sample_app(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"app.py" in cmdline


def _stop_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not _is_sample_app(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _listening(addr: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((addr, port)) == 0


def stop(root: Path, offset: int, lb: str) -> list[str]:
    """Stop the demo; returns the ``address:port`` still listening afterwards (none is good)."""
    workdir = root / "haproxy"
    if workdir.exists():
        from cdlib.traffic.local import LocalHAProxy

        LocalHAProxy(workdir, bind=lb).stop()
    ports: list[tuple[str, int]] = [(lb.rpartition(":")[0], int(lb.rpartition(":")[2]))]
    for group in moved_inventory(root, offset)["all"]["children"].values():
        for hv in group["hosts"].values():
            ports.append(("127.0.0.1", int(hv["app_port"])))
            pidfile = Path(hv["app_dir"]) / "pid"
            with contextlib.suppress(OSError, ValueError):
                pid = int(pidfile.read_text())
                if _is_sample_app(pid):
                    _stop_pid(pid)
                pidfile.unlink()
    return [f"{a}:{p}" for a, p in ports if _listening(a, p)]


def main(argv: list[str] | None = None) -> int:
    """``inventory`` or ``stop``; see the module docstring."""
    ap = argparse.ArgumentParser(prog="scripts/demo_ctl.py", description=__doc__)
    ap.add_argument("command", choices=["inventory", "stop"])
    args = ap.parse_args(argv)
    root, offset, lb = settings()
    if args.command == "inventory":
        print(write_inventory(root, offset))
        return 0
    busy = stop(root, offset, lb)
    if busy:
        print(f"demo stopped, but still listening: {', '.join(busy)}", file=sys.stderr)
        return 1
    print(f"demo stopped: nothing listens on {lb} or the sample-app ports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
