"""Parsing what host-side probes print, and the commands they send (no host needed)."""

from __future__ import annotations

import base64
import json

from cdlib.checks import FailureKind, HttpCheck
from cdlib.checks.http import HttpResponse
from cdlib.checks.probes import host_http_command, parse_host_http
from cdlib.checks.report import Attempt, CheckReport, Failure, Outcome
from cdlib.connections.base import CommandResult


def result(stdout: str, code: int = 0, stderr: str = "") -> CommandResult:
    return CommandResult("probe", code, stdout, stderr)


def test_python_result_line() -> None:
    line = "CDLIB-HTTP " + json.dumps(
        {
            "status": 200,
            "reason": "OK",
            "headers": [["X-A", "1"]],
            "body": base64.b64encode(b"hi").decode(),
            "elapsed": 0.25,
        }
    )
    r = parse_host_http(result("noise\n" + line + "\n"), 5)
    assert r == HttpResponse(200, (("X-A", "1"),), b"hi", 0.25, "OK")


def test_python_error_line_maps_kinds() -> None:
    line = "CDLIB-HTTP " + json.dumps({"error": "tls", "message": "CERTIFICATE_VERIFY_FAILED"})
    assert parse_host_http(result(line), 5) == Failure(FailureKind.TLS, "CERTIFICATE_VERIFY_FAILED")


def test_bash_raw_response_and_chunked_body() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-B: 2\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    out = parse_host_http(result(f"CDLIB-HTTP-RAW 1500000000 {base64.b64encode(raw).decode()}"), 5)
    assert isinstance(out, HttpResponse)
    assert (out.status, out.body, out.elapsed, out.header("x-b")) == (200, b"abcde", 1.5, "2")


def test_bash_failures() -> None:
    assert parse_host_http(result("", 124), 2).kind is FailureKind.TIMEOUT  # type: ignore[union-attr]
    refused = parse_host_http(result("", 1, "bash: connect: Connection refused"), 2)
    assert refused == Failure(FailureKind.CONNECT, "bash: connect: Connection refused")
    garbage = parse_host_http(result("CDLIB-HTTP-RAW 1 " + base64.b64encode(b"junk").decode()), 2)
    assert isinstance(garbage, Failure) and garbage.kind is FailureKind.ERROR
    missing = parse_host_http(result("CDLIB-ERROR neither python3 nor bash on the host"), 2)
    assert missing == Failure(FailureKind.ERROR, "neither python3 nor bash on the host")


def test_host_command_keeps_credentials_out_of_the_command_line() -> None:
    check = HttpCheck("http://10.0.0.5:8080/x?q=1", headers={"Authorization": "Bearer sekrit"})
    cmd, stdin = host_http_command(check, 3.0)
    assert "sekrit" not in cmd and b"sekrit" in stdin
    assert "python3" in cmd and "/dev/tcp" in cmd
    bash, stdin2 = host_http_command(check, 3.0, prefer="bash")
    raw = stdin2.split(b"\n", 2)[2]
    assert raw.startswith(b"GET /x?q=1 HTTP/1.0\r\nHost: 10.0.0.5:8080\r\n")
    assert f" 10.0.0.5 8080 {len(raw)}" in bash


def test_https_without_python_is_a_clear_error() -> None:
    cmd, _ = host_http_command(HttpCheck("https://h/"), 3.0, prefer="bash")
    assert "https from a host needs python3" in cmd


def test_report_render_and_dict() -> None:
    fail = Outcome.fail(
        FailureKind.JSON, "$.version: expected '2', got '1'", 'body: {"version": "1"}'
    )
    rep = CheckReport(
        "health",
        "web1",
        [Attempt(1, fail, 0.01), Attempt(2, fail, 0.02)],
        "gave up after 2 attempts",
    )
    assert not rep.ok
    assert rep.reason == "$.version: expected '2', got '1' (gave up after 2 attempts)"
    text = rep.render()
    assert text.splitlines()[0].startswith("FAIL health on web1:")
    assert "attempt 2: json in 0.020s" in text and 'observed: body: {"version": "1"}' in text
    d = rep.to_dict()
    assert [a["kinds"] for a in d["attempts"]] == [["json"], ["json"]]
    json.dumps(d)  # JSON-friendly
