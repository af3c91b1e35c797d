"""The HTTP check: what to request, what to expect, and the pure verdict on a response."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from cdlib.checks import jsonpath, redact
from cdlib.checks.base import Check, Where, as_tuple, is_template
from cdlib.checks.report import Failure, FailureKind, Outcome, excerpt
from cdlib.engine.secrets import Secret


@dataclass(frozen=True)
class HttpResponse:
    """An observed HTTP response, from the control machine or from a host."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: Seconds from sending the request to reading the whole body.
    elapsed: float
    reason: str = ""

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive); repeated headers joined by ``, ``."""
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(found) if found else None

    @property
    def text(self) -> str:
        """The body decoded as UTF-8, undecodable bytes replaced."""
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class HttpCheck(Check):
    """Request ``url`` and compare the response with the expectations.

    ``status`` is one code or a tuple of accepted codes. ``body_contains`` substrings and
    ``body_regex`` (``re.search``) apply to the body text. ``json_equals`` and
    ``json_contains`` map a JSON path (``$.a.b[0]``, see :mod:`cdlib.checks.jsonpath`) to
    the expected value. ``header_equals`` / ``header_matches`` compare response headers
    exactly / by regex. ``headers`` values may be :class:`~cdlib.engine.secrets.Secret`;
    credential headers are masked in reports. ``latency_budget`` (seconds) fails a
    response that took longer.
    Redirects are not followed: a 301 is what the check sees.
    """

    url: str
    method: str = "GET"
    headers: Mapping[str, str | Secret] = field(default_factory=dict)
    body: str | bytes | None = None
    status: int | tuple[int, ...] = 200
    body_contains: str | tuple[str, ...] = ()
    body_regex: str | None = None
    json_equals: Mapping[str, Any] = field(default_factory=dict)
    json_contains: Mapping[str, Any] = field(default_factory=dict)
    header_equals: Mapping[str, str] = field(default_factory=dict)
    header_matches: Mapping[str, str] = field(default_factory=dict)
    verify_tls: bool = True
    ca_bundle: str | None = None
    latency_budget: float | None = None

    default_on: ClassVar[Where] = "control"

    def __post_init__(self) -> None:
        super().__post_init__()
        parts = urlsplit(self.url)
        if is_template(self.url):
            pass  # checked again once a suite renders it for a host
        elif parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"HTTP check URL must be http(s)://host[:port]/..., got {self.url!r}")
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "body_contains", as_tuple(self.body_contains, "body_contains"))
        for path in (*self.json_equals, *self.json_contains):
            jsonpath.parse(path)  # fail at definition, not at the first response
        for rx in (self.body_regex, *self.header_matches.values()):
            if rx is not None:
                re.compile(rx)
        if self.latency_budget is not None and self.latency_budget <= 0:
            raise ValueError(f"latency_budget must be > 0 seconds, got {self.latency_budget}")

    @property
    def statuses(self) -> tuple[int, ...]:
        """The accepted status codes."""
        return (self.status,) if isinstance(self.status, int) else tuple(self.status)

    @property
    def body_bytes(self) -> bytes | None:
        """The request body encoded, or ``None``."""
        return self.body.encode() if isinstance(self.body, str) else self.body

    def describe(self) -> str:
        """``METHOD url`` with any URL password masked."""
        return f"{self.method} {redact.url(self.url)}"

    def request_headers(self) -> dict[str, str]:
        """The headers to send, :class:`~cdlib.engine.secrets.Secret` values revealed.

        ``user:password@`` in the URL becomes basic authentication unless an
        ``Authorization`` header is given.
        """
        out = {k: v.reveal() if isinstance(v, Secret) else v for k, v in self.headers.items()}
        parts = urlsplit(self.url)
        if parts.username is not None and not any(k.lower() == "authorization" for k in out):
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            out["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return out

    def secrets(self) -> list[str]:
        """Values that must never appear in a report: credential headers and Secrets."""
        out = [
            v.reveal() if isinstance(v, Secret) else v
            for k, v in self.headers.items()
            if isinstance(v, Secret) or redact.sensitive_header(k)
        ]
        password = urlsplit(self.url).password
        return [*out, unquote(password)] if password else out

    def evaluate(self, resp: HttpResponse) -> Outcome:
        """The verdict on ``resp``; pure, so it can be tested on canned responses."""
        failures: list[Failure] = []
        if resp.status not in self.statuses:
            want = " or ".join(str(s) for s in self.statuses)
            failures.append(Failure(FailureKind.STATUS, f"status {resp.status}, expected {want}"))
        failures += self._headers(resp)
        text = resp.text
        for sub in self.body_contains:
            if sub not in text:
                failures.append(Failure(FailureKind.BODY, f"body does not contain {sub!r}"))
        if self.body_regex is not None and not re.search(self.body_regex, text):
            failures.append(Failure(FailureKind.BODY, f"body does not match /{self.body_regex}/"))
        if self.json_equals or self.json_contains:
            failures += self._json(text)
        if self.latency_budget is not None and resp.elapsed > self.latency_budget:
            failures.append(
                Failure(
                    FailureKind.LATENCY,
                    f"took {resp.elapsed:.3f}s, over the {self.latency_budget:.3f}s budget",
                )
            )
        observed = f"HTTP {resp.status} in {resp.elapsed:.3f}s; body: {excerpt(text)}"
        return Outcome(tuple(failures), redact.values(observed, self.secrets()), resp.elapsed)

    def _headers(self, resp: HttpResponse) -> list[Failure]:
        out: list[Failure] = []
        for name, want in self.header_equals.items():
            got = resp.header(name)
            if got != want:
                shown = (redact.MASK, redact.MASK) if redact.sensitive_header(name) else (want, got)
                out.append(
                    Failure(
                        FailureKind.HEADER,
                        f"header {name}: expected {shown[0]!r}, got {shown[1]!r}",
                    )
                )
        for name, rx in self.header_matches.items():
            got = resp.header(name)
            if got is None or not re.search(rx, got):
                shown_got = redact.MASK if redact.sensitive_header(name) and got else got
                out.append(
                    Failure(
                        FailureKind.HEADER, f"header {name}: {shown_got!r} does not match /{rx}/"
                    )
                )
        return out

    def _json(self, text: str) -> list[Failure]:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            return [Failure(FailureKind.JSON, f"body is not JSON: {exc}")]
        out: list[Failure] = []
        for path, want in self.json_equals.items():
            try:
                got = jsonpath.resolve(doc, path)
            except jsonpath.PathNotFound as exc:
                out.append(
                    Failure(FailureKind.JSON, f"{path}: expected {want!r}, not found: {exc}")
                )
                continue
            if got != want or (type(got) is not type(want) and not _both_numbers(got, want)):
                out.append(Failure(FailureKind.JSON, f"{path}: expected {want!r}, got {got!r}"))
        for path, item in self.json_contains.items():
            try:
                got = jsonpath.resolve(doc, path)
            except jsonpath.PathNotFound as exc:
                out.append(
                    Failure(
                        FailureKind.JSON, f"{path}: expected to contain {item!r}, not found: {exc}"
                    )
                )
                continue
            if not jsonpath.contains(got, item):
                out.append(Failure(FailureKind.JSON, f"{path}: {got!r} does not contain {item!r}"))
        return out


def _both_numbers(a: Any, b: Any) -> bool:
    # 1 == 1.0 is a match, but True == 1 is not: JSON booleans are not numbers.
    def num(x: Any) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool)

    return num(a) and num(b)


__all__ = ["HttpCheck", "HttpResponse"]
