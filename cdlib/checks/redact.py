"""Keep secrets out of check reports: credential headers and URL passwords."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MASK = "***"

_SENSITIVE_EXACT = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}
)
# Header names that carry credentials by convention (X-Auth-Token, X-Secret, ...).
_SENSITIVE_PART = re.compile(r"token|secret|password|passwd|api[-_]?key|session|auth", re.I)
_URL_PASSWORD = re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.\-]*://[^/@:\s]*:)[^/@\s]*@")


def sensitive_header(name: str) -> bool:
    """Whether a header's value must not be shown."""
    low = name.lower()
    return low in _SENSITIVE_EXACT or bool(_SENSITIVE_PART.search(low))


def headers(items: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """A copy of ``items`` with sensitive values replaced by ``***``."""
    pairs = items.items() if isinstance(items, Mapping) else items
    return {k: (MASK if sensitive_header(k) else v) for k, v in pairs}


def url(text: str) -> str:
    """``text`` with any ``scheme://user:password@`` password masked."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('pre')}{MASK}@", text)


def values(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each non-trivial secret value replaced by ``***``."""
    for s in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(s, MASK)
    return text


__all__ = ["MASK", "headers", "sensitive_header", "url", "values"]
