"""Pure evaluation of HTTP responses against an HttpCheck's expectations."""

from __future__ import annotations

import json

import pytest

from cdlib.checks import FailureKind, HttpCheck, HttpResponse
from cdlib.engine.secrets import Secret


def resp(
    status: int = 200, body: object = None, elapsed: float = 0.01, **headers: str
) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body or {"version": "1.0"}).encode()
    return HttpResponse(status, tuple(headers.items()), raw, elapsed)


URL = "http://app.example:8080/health"


def test_healthy_response_passes() -> None:
    out = HttpCheck(URL, json_equals={"$.version": "1.0"}).evaluate(resp())
    assert out.ok and out.reason == "ok"


def test_wrong_version_names_expected_and_received() -> None:
    out = HttpCheck(URL, json_equals={"$.version": "2.0"}).evaluate(resp())
    assert out.kinds == {FailureKind.JSON}
    assert "$.version: expected '2.0', got '1.0'" in out.reason
    assert '"version": "1.0"' in out.observed  # the body received


def test_status_set() -> None:
    check = HttpCheck(URL, status=(200, 204))
    assert check.evaluate(resp(204)).ok
    out = check.evaluate(resp(503))
    assert out.kinds == {FailureKind.STATUS}
    assert "status 503, expected 200 or 204" in out.reason


def test_latency_budget_reports_measured_time() -> None:
    out = HttpCheck(URL, latency_budget=0.2).evaluate(resp(elapsed=0.734))
    assert out.kinds == {FailureKind.LATENCY}
    assert "took 0.734s, over the 0.200s budget" in out.reason


def test_body_substring_and_regex() -> None:
    check = HttpCheck(URL, body_contains=("ok", "ready"), body_regex=r"v\d+")
    out = check.evaluate(resp(body=b"ok v12"))
    assert [f.message for f in out.failures] == ["body does not contain 'ready'"]
    assert check.evaluate(resp(body=b"ok ready v3")).ok


def test_all_failures_are_listed() -> None:
    check = HttpCheck(URL, status=200, body_contains="x", latency_budget=0.1)
    out = check.evaluate(resp(500, body=b"no", elapsed=1.0))
    assert out.kinds == {FailureKind.STATUS, FailureKind.BODY, FailureKind.LATENCY}


def test_json_contains_and_missing_path() -> None:
    body = {"features": ["a", "b"], "name": "web-1"}
    check = HttpCheck(URL, json_contains={"$.features": "b", "$.name": "web"})
    assert check.evaluate(resp(body=body)).ok
    out = HttpCheck(URL, json_equals={"$.deep.x": 1}).evaluate(resp(body=body))
    assert "not found: $ has no key 'deep'" in out.reason


def test_json_types_matter_but_numbers_compare_by_value() -> None:
    assert HttpCheck(URL, json_equals={"$.n": 1}).evaluate(resp(body={"n": 1.0})).ok
    assert not HttpCheck(URL, json_equals={"$.n": 1}).evaluate(resp(body={"n": True})).ok
    assert not HttpCheck(URL, json_equals={"$.n": "1"}).evaluate(resp(body={"n": 1})).ok


def test_body_not_json() -> None:
    out = HttpCheck(URL, json_equals={"$.a": 1}).evaluate(resp(body=b"<html>"))
    assert out.kinds == {FailureKind.JSON} and "body is not JSON" in out.reason


def test_headers_case_insensitive_equals_and_regex() -> None:
    check = HttpCheck(
        URL, header_equals={"content-type": "application/json"}, header_matches={"X-Ver": r"^1\."}
    )
    r = resp(**{"Content-Type": "application/json", "X-Ver": "1.4"})
    assert check.evaluate(r).ok
    out = check.evaluate(resp(**{"Content-Type": "text/html"}))
    assert "header content-type: expected 'application/json', got 'text/html'" in out.reason
    assert "header X-Ver: None does not match" in out.reason


def test_secret_headers_are_masked_in_reports() -> None:
    check = HttpCheck(URL, headers={"Authorization": "Bearer tok-123456"}, body_contains="zzz")
    out = check.evaluate(resp(body=b"echo: Bearer tok-123456"))
    assert "tok-123456" not in out.observed and "***" in out.observed
    check2 = HttpCheck(URL, headers={"X-Plain": Secret("hunter2hunter2")}, body_contains="zzz")
    out2 = check2.evaluate(resp(body=b"you sent hunter2hunter2"))
    assert "hunter2" not in out2.observed
    assert check2.request_headers() == {"X-Plain": "hunter2hunter2"}
    assert "hunter2" not in repr(check2)


def test_sensitive_response_header_mismatch_is_masked() -> None:
    out = HttpCheck(URL, header_equals={"Set-Cookie": "a=1"}).evaluate(
        resp(**{"Set-Cookie": "sid=s3cr3t"})
    )
    assert "s3cr3t" not in out.reason


def test_url_password_masked_in_label() -> None:
    assert HttpCheck("http://u:pw123@h/x").label == "GET http://u:***@h/x"


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"url": "ftp://x/"}, "http"),
        ({"url": "http:///nohost"}, "http"),
        ({"url": URL, "json_equals": {"a": 1}}, "must start with"),
        ({"url": URL, "latency_budget": 0}, "latency_budget"),
        ({"url": URL, "timeout": -1}, "timeout"),
        ({"url": URL, "on": "elsewhere"}, "'on'"),
    ],
)
def test_bad_definitions_fail_at_construction(kwargs: dict[str, object], msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        HttpCheck(**kwargs)  # type: ignore[arg-type]


def test_bad_regex_fails_at_construction() -> None:
    with pytest.raises(Exception, match=r"unterminated|missing"):
        HttpCheck(URL, body_regex="(")


def test_defaults() -> None:
    c = HttpCheck(URL, method="post", body="x")
    assert c.method == "POST" and c.body_bytes == b"x" and c.where == "control"
    assert HttpCheck(URL, on="host").where == "host"


def test_url_credentials_become_basic_auth_and_stay_secret() -> None:
    c = HttpCheck("http://deploy:p%40ss@h/x")
    assert c.request_headers() == {"Authorization": "Basic ZGVwbG95OnBAc3M="}
    assert "p@ss" in c.secrets()
    assert HttpCheck("http://u:p@h/", headers={"authorization": "X"}).request_headers() == {
        "authorization": "X"
    }
