"""Secrets from AWS: SSM Parameter Store and Secrets Manager, fetched once and cached.

Values are fetched when a playbook or inventory asks for them (``Secret.from_ssm``, the
``!ssm`` / ``!secretsmanager`` inventory tags), that is while the run is being prepared,
so a missing secret or a denied access stops the run before any host is touched. The
error names the parameter or secret and the AWS error code, never a value. Credentials,
region and endpoint come from boto3's usual sources (``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL``, ...).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from cdlib.errors import EXIT_BAD_INPUT, CdlibError

_CACHE: dict[tuple[str, str, str | None, str | None], str] = {}
_LOCK = threading.Lock()


class SecretLookupError(CdlibError, KeyError):
    """A secret could not be fetched (missing, access denied, not JSON, no such key, an
    unset environment variable): bad input, found before any host is touched. Still a
    ``KeyError`` for code written before it was a :class:`~cdlib.errors.CdlibError`."""

    exit_code = EXIT_BAD_INPUT

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "secret lookup failed"


def _client(service: str, region: str | None) -> Any:
    import boto3

    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


def _aws_reason(exc: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "error"))
    return type(exc).__name__


def ssm_parameter(name: str, *, region: str | None = None) -> str:
    """The value of SSM parameter ``name``, decrypted (SecureString); cached per process."""
    key = ("ssm", name, None, region)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    try:
        reply = _client("ssm", region).get_parameter(Name=name, WithDecryption=True)
        value = str(reply["Parameter"]["Value"])
    except Exception as exc:
        raise SecretLookupError(
            f"SSM parameter {name!r}: cannot read it ({_aws_reason(exc)})"
        ) from None
    with _LOCK:
        _CACHE[key] = value
    return value


def secrets_manager_value(
    secret_id: str, key: str | None = None, *, region: str | None = None
) -> str:
    """The string value of Secrets Manager secret ``secret_id``, or field ``key`` of its
    JSON object; cached per process."""
    cache_key = ("secretsmanager", secret_id, key, region)
    with _LOCK:
        if cache_key in _CACHE:
            return _CACHE[cache_key]
    what = f"Secrets Manager secret {secret_id!r}"
    try:
        reply = _client("secretsmanager", region).get_secret_value(SecretId=secret_id)
    except Exception as exc:
        raise SecretLookupError(f"{what}: cannot read it ({_aws_reason(exc)})") from None
    text = reply.get("SecretString")
    if text is None:
        raise SecretLookupError(f"{what}: a binary secret; only text secrets are supported")
    value = str(text)
    if key is not None:
        try:
            document = json.loads(value)
        except ValueError:
            raise SecretLookupError(f"{what}: not JSON, so it has no key {key!r}") from None
        if not isinstance(document, dict) or key not in document:
            raise SecretLookupError(f"{what}: no key {key!r} in its JSON value")
        field = document[key]
        value = field if isinstance(field, str) else json.dumps(field)
    with _LOCK:
        _CACHE[cache_key] = value
    return value


def clear_cache() -> None:
    """Forget fetched values (for long-lived programs that run several times)."""
    with _LOCK:
        _CACHE.clear()
