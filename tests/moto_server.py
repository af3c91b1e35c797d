"""moto in server mode on a free loopback port, for the tests that talk to "AWS"."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.sample_app import free_port


@contextmanager
def moto_endpoint() -> Iterator[str]:
    """Run a moto server (over HTTP, loopback only) and yield its endpoint URL."""
    moto_server = pytest.importorskip("moto.server")
    # The server logs every request at INFO; keep test output readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
