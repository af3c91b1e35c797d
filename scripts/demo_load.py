"""Steady HTTP load on the demo's load balancer while a release runs (bounded, loopback).

    python scripts/demo_load.py 127.0.0.1:8480 --seconds 60 --stop-file /tmp/stop

Counts the answers per version and the failures; prints a summary when the stop file
appears, the time runs out or the request limit is reached.
"""

from __future__ import annotations

import argparse
import http.client
import os
import time
from collections import Counter


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("lb", help="host:port of the load balancer (loopback only)")
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--max-requests", type=int, default=200_000)
    ap.add_argument("--stop-file", default="")
    args = ap.parse_args()
    host, _, port = args.lb.rpartition(":")
    if not host.startswith("127.") and host != "localhost":
        ap.error("the demo load only targets loopback addresses")
    seen: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    order: list[str] = []
    deadline = time.monotonic() + args.seconds
    conn: http.client.HTTPConnection | None = None
    n = 0
    while time.monotonic() < deadline and n < args.max_requests:
        if args.stop_file and os.path.exists(args.stop_file):
            break
        n += 1
        try:
            conn = conn or http.client.HTTPConnection(host, int(port), timeout=5)
            conn.request("GET", "/version")
            resp = conn.getresponse()
            body = resp.read().decode().strip()
            if resp.status == 200:
                seen[body] += 1
                if not order or order[-1] != body:
                    order.append(body)
            else:
                failures[f"HTTP {resp.status}"] += 1
        except (OSError, http.client.HTTPException) as exc:
            failures[type(exc).__name__] += 1
            if conn is not None:
                conn.close()
            conn = None
        time.sleep(0.005)
    total = sum(seen.values()) + sum(failures.values())
    print(f"\nload through {args.lb}: {total} requests, {sum(failures.values())} failed")
    for version, count in seen.items():
        print(f"  answered by {version}: {count}")
    for why, count in failures.items():
        print(f"  failed ({why}): {count}")
    print("  versions in the order users saw them: " + " -> ".join(order))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
