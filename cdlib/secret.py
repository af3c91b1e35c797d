"""The :class:`Secret` value: shown as ``********`` everywhere, revealed only to hosts.

A secret comes from code (``Secret("...")``), the environment, an Ansible Vault value in
an inventory or vars file, AWS SSM Parameter Store or AWS Secrets Manager. This module
sits at the bottom of cdlib (inventories create secrets too); redaction of whole texts is
:mod:`cdlib.engine.secrets`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import SupportsIndex

MASK = "********"

# Guards every secret's derived values; the generation tells a Redactor to rebuild.
_derived_lock = threading.Lock()
_generation = 0


def derived_generation() -> int:
    """A counter that grows whenever any :class:`Secret` learns a derived value."""
    return _generation


class Secret:
    """A value that must never be shown. ``Secret("s3cret")`` or ``Secret.from_env("DB_PW")``."""

    __slots__ = ("_derived", "_value")

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret value must be a string")
        self._value = value
        self._derived: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, name: str) -> Secret:
        """A secret read from environment variable ``name``; if it is unset,
        :class:`~cdlib.secret_stores.SecretLookupError` (a ``KeyError``) names it."""
        try:
            return cls(os.environ[name])
        except KeyError:
            from cdlib.secret_stores import SecretLookupError

            raise SecretLookupError(f"secret environment variable {name} is not set") from None

    @classmethod
    def from_ssm(cls, name: str, *, region: str | None = None) -> Secret:
        """The decrypted value of SSM parameter ``name`` (a SecureString, or any type).

        Fetched once per process and cached. A missing parameter or a denied access
        raises :class:`~cdlib.secret_stores.SecretLookupError` naming the parameter
        (never a value), so a playbook that uses it stops before any host is touched.
        """
        from cdlib.secret_stores import ssm_parameter

        return cls(ssm_parameter(name, region=region))

    @classmethod
    def from_secrets_manager(
        cls, secret_id: str, key: str | None = None, *, region: str | None = None
    ) -> Secret:
        """The value of AWS Secrets Manager secret ``secret_id``, or field ``key`` of its
        JSON value. Cached and failing like :meth:`from_ssm`."""
        from cdlib.secret_stores import secrets_manager_value

        return cls(secrets_manager_value(secret_id, key, region=region))

    def reveal(self) -> str:
        """The real value, for the few places that must send it to a host."""
        return self._value

    def learn(self, values: Iterable[str]) -> None:
        """Remember text computed from this secret (a template's output, a filter's
        result), so every :class:`~cdlib.engine.secrets.Redactor` that knows this secret
        masks that text too: anything computed from a secret is a secret."""
        global _generation
        new = {v for v in values if v and v != self._value} - self._derived
        if new:
            with _derived_lock:
                self._derived = self._derived | new
                _generation += 1

    def derived(self) -> frozenset[str]:
        """The texts computed from this secret so far (see :meth:`learn`)."""
        return self._derived

    def __copy__(self) -> Secret:
        # Immutable, and the derived values must stay shared with every copy of the vars.
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


class SecretText(str):
    """Text computed from one or more :class:`Secret` values: the real text, as a ``str``.

    Templates rendered for hosts compute with secrets' real values; a result that any
    secret contributed to is a ``SecretText`` naming those ``sources``, and every
    :class:`~cdlib.engine.secrets.Redactor` that knows a source masks the text. It is
    sent to hosts as it is (it *is* the ``str``, ``repr`` included), so only its use in
    output is masked, by the Redactor.
    """

    sources: tuple[Secret, ...]

    def __new__(cls, value: str, sources: Iterable[Secret]) -> SecretText:
        """``value`` computed from ``sources`` (kept in order, each once)."""
        obj = super().__new__(cls, value)
        seen: dict[int, Secret] = {}
        for s in sources:
            seen.setdefault(id(s), s)
        obj.sources = tuple(seen.values())
        return obj

    def __getitem__(self, key: SupportsIndex | slice) -> SecretText:
        """A character or slice of secret text is secret (``{{ pw[:4] }}``)."""
        return SecretText(str.__getitem__(self, key), self.sources)
