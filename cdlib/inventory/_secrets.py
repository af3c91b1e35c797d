"""Which variables hold secrets, so that no output or error message shows them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SECRET_NAME = re.compile(r"(pass(word|wd|phrase)?|secret|token|private_key)$", re.IGNORECASE)
REDACTED = "********"


def is_secret_name(name: str) -> bool:
    """Whether a variable called ``name`` holds a secret (``ansible_password``, ``*_token``)."""
    return bool(_SECRET_NAME.search(name))


def redact(variables: Mapping[str, Any]) -> dict[str, Any]:
    """``variables`` with secret values replaced by ``********`` (top level, by name)."""
    return {k: REDACTED if is_secret_name(k) else v for k, v in variables.items()}


def unquoted_value_hint(previous: str | None, token: str) -> str:
    """How to name a stray ``token`` in an error without echoing part of a secret."""
    key = (previous or "").partition("=")[0]
    if key and is_secret_name(key):
        return f"a word after {key}= (quote values that contain spaces)"
    return repr(token)
