"""The :class:`Secret` value: shown as ``********`` everywhere, revealed only to hosts.

A secret comes from code (``Secret("...")``), the environment, an Ansible Vault value in
an inventory or vars file, AWS SSM Parameter Store or AWS Secrets Manager. This module
sits at the bottom of cdlib (inventories create secrets too); redaction of whole texts is
:mod:`cdlib.engine.secrets`.
"""

from __future__ import annotations

import os

MASK = "********"


class Secret:
    """A value that must never be shown. ``Secret("s3cret")`` or ``Secret.from_env("DB_PW")``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret value must be a string")
        self._value = value

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

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))
