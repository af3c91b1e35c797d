"""The S3 state store: ``s3://bucket/prefix``, shared by every machine that releases.

Each key is one object under the prefix. Conditional writes are S3's: ``If-None-Match:
*`` to create, ``If-Match`` with the ETag to replace or delete (S3 answers 412, or 409
when two conditional writes race; both are :class:`PreconditionFailed`). Locks hold a
lease (``$CDLIB_STATE_LEASE`` seconds, default 60) their holder renews.

Permissions needed on the prefix: ``s3:GetObject``, ``s3:PutObject``,
``s3:DeleteObject`` and ``s3:ListBucket`` (with the prefix as condition). Credentials,
region and endpoint come from boto3's usual sources (environment, profile, instance
role; ``AWS_ENDPOINT_URL_S3`` for an S3-compatible server).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cdlib.state.lease import Held, LeaseLock
from cdlib.state.store import Blob, PreconditionFailed, StateError, Store, check_key

#: Default lease of a lock, in seconds.
DEFAULT_LEASE = 60.0
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def parse_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket[/prefix]``; :class:`StateError` when bad."""
    rest = url[len("s3://") :] if url.startswith("s3://") else None
    if rest is None:
        raise StateError(f"state location {url!r}: expected s3://BUCKET/PREFIX")
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET_RE.match(bucket):
        raise StateError(f"state location {url!r}: {bucket!r} is not a valid S3 bucket name")
    if prefix:
        try:
            check_key(prefix)
        except StateError:
            raise StateError(
                f"state location {url!r}: prefix {prefix!r} must be '/'-separated names "
                "of letters, digits, '.', '_', ':', '-'"
            ) from None
    return bucket, prefix


def lease_seconds() -> float:
    """``$CDLIB_STATE_LEASE`` (seconds, at least 1), else :data:`DEFAULT_LEASE`."""
    raw = os.environ.get("CDLIB_STATE_LEASE")
    if not raw:
        return DEFAULT_LEASE
    try:
        value = float(raw)
    except ValueError:
        raise StateError(f"CDLIB_STATE_LEASE={raw!r}: expected seconds") from None
    if not value >= 1:
        raise StateError(f"CDLIB_STATE_LEASE={raw!r}: must be at least 1 second")
    return value


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {}).get("Code", "")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return str(err or status or "")
    return ""


class S3Store(Store):
    """State under ``s3://bucket/prefix``."""

    def __init__(self, url: str, *, client: Any = None, lease: float | None = None) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.lease = lease_seconds() if lease is None else lease
        self._client = client

    @property
    def location(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def client(self) -> Any:
        """The boto3 S3 client (built on first use: boto3 is imported only then)."""
        if self._client is None:
            import boto3

            self._client = boto3.session.Session().client("s3")
        return self._client

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, what: str, key: str, exc: BaseException) -> StateError:
        return StateError(f"{self.where(key)}: cannot {what}: {type(exc).__name__}: {exc}")

    def get(self, key: str) -> Blob | None:
        """GetObject; ``None`` on NoSuchKey."""
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            data = resp["Body"].read()
        except Exception as exc:
            if _code(exc) in _MISSING_CODES:
                return None
            raise self._fail("read", key, exc) from None
        return Blob(data, str(resp["ETag"]))

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        private: bool = True,
    ) -> str:
        """PutObject with ``If-None-Match: *`` or ``If-Match`` (objects are never public:
        the bucket's policy decides who reads them)."""
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "Body": data,
            "ContentType": "application/json",
        }
        if if_none_match:
            args["IfNoneMatch"] = "*"
        if if_match is not None:
            args["IfMatch"] = if_match
        try:
            resp = self.client.put_object(**args)
        except Exception as exc:
            code = _code(exc)
            if code in _CONFLICT_CODES or (if_match is not None and code in _MISSING_CODES):
                raise PreconditionFailed(f"{self.where(key)}: {code}") from None
            raise self._fail("write", key, exc) from None
        return str(resp["ETag"])

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """DeleteObject, with ``If-Match`` when given."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if if_match is not None:
            args["IfMatch"] = if_match
        try:
            self.client.delete_object(**args)
        except Exception as exc:
            code = _code(exc)
            if code in _CONFLICT_CODES or (if_match is not None and code in _MISSING_CODES):
                raise PreconditionFailed(f"{self.where(key)}: {code}") from None
            raise self._fail("delete", key, exc) from None

    def _listing(self, prefix: str) -> tuple[list[str], list[str]]:
        base = self._key(prefix) + "/" if prefix else (self.prefix + "/" if self.prefix else "")
        names: list[str] = []
        dirs: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base, Delimiter="/"
            )
            for page in pages:
                names += [o["Key"][len(base) :] for o in page.get("Contents", [])]
                dirs += [
                    p["Prefix"][len(base) :].rstrip("/") for p in page.get("CommonPrefixes", [])
                ]
        except Exception as exc:
            raise self._fail("list", prefix or ".", exc) from None
        return sorted(n for n in names if n), sorted(d for d in dirs if d)

    def names(self, prefix: str) -> list[str]:
        """ListObjectsV2 of ``prefix/`` with ``/`` as delimiter: the objects."""
        return self._listing(prefix)[0]

    def children(self, prefix: str) -> list[str]:
        """ListObjectsV2 of ``prefix/`` with ``/`` as delimiter: the common prefixes."""
        return self._listing(prefix)[1]

    @contextmanager
    def mutex(self, key: str, *, timeout: float) -> Iterator[None]:
        """A lock object at ``key`` (a :class:`~cdlib.state.lease.LeaseLock`): waits while
        another holds it, breaks it once its lease expired."""
        lock = LeaseLock(self, key, f"mutex-{os.getpid()}-{time.monotonic_ns()}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                lock.acquire(break_stale=True)
                break
            except Held as held:
                if time.monotonic() >= deadline:
                    who = held.holder.describe() if held.holder else "another process"
                    raise StateError(
                        f"{self.where(key)} still held by {who} after {timeout:g}s: a router "
                        "call of the running release does not end"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            lock.release()
