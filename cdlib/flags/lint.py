"""Stale-flag lint: flags past their expiry date or without an owner.

Both live in flag metadata, which flagd passes through untouched: ``owner`` (a
person or team) and ``expires`` (an ISO date, ``YYYY-MM-DD``). Validation
problems are reported too, so ``lint`` is the one command to run in CI.
"""

from __future__ import annotations

from datetime import date

from cdlib.flags.document import FlagDocument
from cdlib.flags.errors import Problem
from cdlib.flags.validate import validate_document

__all__ = ["EXPIRES_KEY", "OWNER_KEY", "lint_document"]

OWNER_KEY = "owner"
EXPIRES_KEY = "expires"


def lint_document(doc: FlagDocument, today: date | None = None) -> list[Problem]:
    """Validation problems plus stale-flag findings (warnings), errors first."""
    today = today or date.today()
    problems = validate_document(doc)
    if doc.source.lower().endswith(".yml"):
        problems.append(
            Problem(
                "warning",
                "openfeature-provider-flagd reads YAML only from files named *.yaml "
                "(it parses this one as JSON): rename it",
                doc.source,
            )
        )
    for key, flag in doc.flags.items():
        if not isinstance(flag, dict):
            continue
        meta = flag.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        path = ("flags", key, "metadata")
        owner = meta.get(OWNER_KEY)
        if not isinstance(owner, str) or not owner.strip():
            problems.append(
                Problem(
                    "warning",
                    f"no owner: set metadata.{OWNER_KEY} to the person or team who removes it",
                    doc.where(*path),
                    key,
                    f"metadata.{OWNER_KEY}",
                )
            )
        if EXPIRES_KEY not in meta:
            continue
        raw = meta[EXPIRES_KEY]
        where = doc.where(*path, EXPIRES_KEY)
        try:
            expires = date.fromisoformat(str(raw))
        except ValueError:
            problems.append(
                Problem(
                    "warning",
                    f"expiry {raw!r} is not a date (YYYY-MM-DD)",
                    where,
                    key,
                    f"metadata.{EXPIRES_KEY}",
                )
            )
            continue
        if expires < today:
            days = (today - expires).days
            problems.append(
                Problem(
                    "warning",
                    f"expired on {expires.isoformat()} ({days} day(s) ago): remove the flag "
                    "and the code paths behind it",
                    where,
                    key,
                    f"metadata.{EXPIRES_KEY}",
                )
            )
    return sorted(problems, key=lambda p: p.severity != "error")
