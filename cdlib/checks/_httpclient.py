"""One HTTP request, described as a JSON-friendly dict. Standard library only.

This module has no cdlib imports on purpose: the control machine imports it, and its
source is also sent to hosts and run there by ``python3`` (see :mod:`cdlib.checks.probes`),
so the request is made the same way on both sides.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import sys
import time
from typing import Any
from urllib.parse import urlsplit

MAX_BODY = 1 << 20
MARK = "CDLIB-HTTP "


def _context(spec: dict[str, Any]) -> ssl.SSLContext:
    if spec.get("verify", True):
        return ssl.create_default_context(cafile=spec.get("ca_bundle"))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def request(spec: dict[str, Any]) -> dict[str, Any]:
    """Perform ``spec`` (method, url, headers, body as base64, timeout, verify, ca_bundle).

    Returns ``status``, ``reason``, ``headers``, ``body`` (base64) and ``elapsed``
    seconds, or ``error`` (``tls``, ``timeout``, ``connect``, ``error``) and ``message``.
    """
    url = urlsplit(spec["url"])
    timeout = float(spec["timeout"])
    host = url.hostname or ""
    conn: http.client.HTTPConnection
    try:
        if url.scheme == "https":
            conn = http.client.HTTPSConnection(
                host, url.port or 443, timeout=timeout, context=_context(spec)
            )
        else:
            conn = http.client.HTTPConnection(host, url.port or 80, timeout=timeout)
    except OSError as exc:  # unreadable CA bundle
        return {"error": "tls", "message": f"CA bundle {spec.get('ca_bundle')}: {exc}"}
    path = (url.path or "/") + ("?" + url.query if url.query else "")
    body = base64.b64decode(spec["body"]) if spec.get("body") is not None else None
    start = time.monotonic()
    try:
        conn.request(spec["method"], path, body=body, headers=spec.get("headers") or {})
        resp = conn.getresponse()
        data = resp.read(MAX_BODY)
        elapsed = time.monotonic() - start
        headers = [[k, v] for k, v in resp.getheaders()]
    except ssl.SSLError as exc:
        return {"error": "tls", "message": str(exc)}
    # socket.timeout is only an alias of TimeoutError from 3.10; hosts may run older.
    except (socket.timeout, TimeoutError):  # noqa: UP041
        return {"error": "timeout", "message": f"no answer within {timeout}s"}
    except OSError as exc:
        return {"error": "connect", "message": str(exc) or type(exc).__name__}
    except http.client.HTTPException as exc:
        return {"error": "error", "message": f"bad HTTP response: {type(exc).__name__} {exc}"}
    finally:
        conn.close()
    return {
        "status": resp.status,
        "reason": resp.reason,
        "headers": headers,
        "body": base64.b64encode(data).decode("ascii"),
        "elapsed": elapsed,
    }


def _main() -> None:
    spec = json.loads(sys.stdin.buffer.readline())
    sys.stdout.write(MARK + json.dumps(request(spec)) + "\n")


if __name__ == "__main__":
    _main()
