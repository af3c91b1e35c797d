"""YAML suites: parsing, and errors that name file, line and column before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdlib.checks import FailureKind, HttpCheck, TcpCheck
from cdlib.checks.suite import SuiteError
from cdlib.checks.system import CommandCheck, FileCheck, ProcessCheck, ServiceCheck
from cdlib.checks.yamlsuite import load_suite, parse_suite

GOOD = """\
suite: web-smoke
retry: {attempts: 5, timeout: 10, backoff: 0.1, retry_on: [connect, timeout]}
checks:
  - name: health
    http: "http://{{ address }}:8080/health"
    status: [200, 204]
    json_equals: {"$.version": "1.2.3"}
    headers: {Authorization: "Bearer x", X-Num: 5}
    latency_budget: 0.5
  - tcp: "{{ address }}:{{ app_port }}"
    retry: {attempts: 1}
  - command: "test -d /srv"
    exit_code: 0
  - process: 'app\\.py'
    min_count: 1
  - service: nginx
    running: false
  - file: /srv/app/VERSION
    contains: "1.2.3"
    on: host
"""


def test_good_suite_parses_into_typed_checks() -> None:
    s = parse_suite(GOOD, "smoke.yml")
    assert s.name == "web-smoke" and s.source == "smoke.yml"
    http, tcp, cmd, proc, svc, f = s.checks
    assert isinstance(http, HttpCheck) and http.statuses == (200, 204)
    assert http.headers == {"Authorization": "Bearer x", "X-Num": "5"}
    assert http.retry.attempts == 5 and http.retry.retry_on == {
        FailureKind.CONNECT,
        FailureKind.TIMEOUT,
    }
    assert isinstance(tcp, TcpCheck) and tcp.host == "{{ address }}"
    assert tcp.retry.attempts == 1 and tcp.retry.timeout == 10  # merged over the suite's
    assert isinstance(cmd, CommandCheck) and isinstance(proc, ProcessCheck)
    assert isinstance(svc, ServiceCheck) and svc.running is False
    assert isinstance(f, FileCheck) and f.contains == ("1.2.3",) and f.where == "host"


def errors_of(text: str) -> list[str]:
    with pytest.raises(SuiteError) as info:
        parse_suite(text, "s.yml")
    return str(info.value).splitlines()


def test_every_problem_is_reported_with_file_line_and_column() -> None:
    errs = errors_of(
        """\
suite: web
retry: {attempts: 0, retyr_on: [x]}
checks:
  - http: "http://x/"
    staus: 200
    latency_budget: -1
  - tcp: 8080
  - file: relative
  - http: ftp://x/
  - bogus: 1
  - command: ls
    command: ls
  - http: http://x/
    retry: {retry_on: [conect]}
"""
    )
    assert errs == [
        "s.yml:2:22: suite retry: unknown key 'retyr_on'; did you mean 'retry_on'?",
        "s.yml:2:8: suite retry: retry attempts must be >= 1, got 0",
        "s.yml:5:5: checks[0] (http): unknown key 'staus'; did you mean 'status'?",
        "s.yml:6:21: checks[0] (http).latency_budget: expected a number of seconds > 0, got -1",
        "s.yml:7:10: checks[1] (tcp): expected a non-empty string, got 8080",
        "s.yml:8:5: checks[2] (file): file check path must be absolute, got 'relative'",
        "s.yml:9:5: checks[3] (http): HTTP check URL must be http(s)://host[:port]/..., "
        "got 'ftp://x/'",
        "s.yml:10:5: checks[4]: needs exactly one of http, tcp, command, process, service, "
        "file (found none)",
        "s.yml:12:5: checks[5]: duplicate key 'command'",
        "s.yml:14:23: checks[6] (http) retry.retry_on: unknown failure kind 'conect'; valid: "
        "connect, timeout, tls, status, body, json, header, latency, exit_code, output, "
        "not_running, missing, content, error",
    ]


def test_two_type_keys_is_an_error() -> None:
    (err,) = errors_of("suite: s\nchecks:\n  - http: http://x/\n    tcp: x:1\n")
    assert (
        err == "s.yml:3:5: checks[0]: needs exactly one of http, tcp, command, process, "
        "service, file (found http, tcp)"
    )


def test_syntax_error_names_line() -> None:
    (err,) = errors_of("suite: x\nchecks:\n  - http: [unclosed\n")
    assert err.startswith("s.yml:4:1: invalid YAML:")


def test_tab_indentation_error_names_line() -> None:
    (err,) = errors_of("suite: x\nchecks:\n\t- http: http://x/\n")
    assert err.startswith("s.yml:3:1: invalid YAML")


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("", "s.yml:1:1: empty suite file"),
        ("- a\n", "s.yml:1:1: suite file must be a mapping"),
        ("checks: [{tcp: 'h:1'}]\n", "s.yml:1:1: suite file: missing 'suite'"),
        ("suite: s\n", "s.yml:1:1: suite file: missing 'checks'"),
        ("suite: s\nchecks: []\n", "s.yml:2:9: checks: must be a non-empty list"),
        ("suite: s\ncheck: []\n", "s.yml:2:1: suite file: unknown key 'check'; did you mean"),
        ("suite: s\nchecks:\n  - tcp: nohost\n", "s.yml:3:5: checks[0] (tcp): tcp needs"),
        ("suite: s\nchecks:\n  - process: '('\n", "s.yml:3:5: checks[0] (process): "),
        ("suite: s\nchecks:\n  - http: http://x/\n    status: abc\n", "expected an integer"),
        ("suite: s\nchecks:\n  - file: /x\n    kind: link\n", "expected one of file, directory"),
    ],
)
def test_structural_errors(text: str, msg: str) -> None:
    assert msg in "\n".join(errors_of(text))


def test_load_suite_reads_a_file_and_names_it(tmp_path: Path) -> None:
    p = tmp_path / "smoke.yml"
    p.write_text(GOOD)
    assert load_suite(p).source == str(p)
    p.write_text(GOOD.replace("min_count", "min_cuont"))
    with pytest.raises(SuiteError, match=rf"{p}:15:5: .*did you mean 'min_count'"):
        load_suite(p)
    with pytest.raises(SuiteError, match="cannot read suite"):
        load_suite(tmp_path / "missing.yml")
