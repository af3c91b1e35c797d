"""Where flag documents live: a local file, a file on a host, an SSM parameter.

Every store validates a document before writing it and writes it whole: a local
or host file through a temporary file in the same directory and a rename, so a
reader (``openfeature-provider-flagd`` polling the file) never sees half a file;
an SSM parameter with one ``PutParameter`` call.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cdlib.atomicfile import write_atomic
from cdlib.connections.shell import atomic_write_command, q
from cdlib.flags.document import FlagDocument, Format, format_for, load_document, parse_document
from cdlib.flags.errors import FlagsError, FlagSourceError
from cdlib.flags.validate import check_document

if TYPE_CHECKING:
    from cdlib.connections.base import Connection

__all__ = ["FlagStore", "HostFileStore", "LocalFileStore", "SSMParameterStore"]


@runtime_checkable
class FlagStore(Protocol):
    """A place that holds one flag document."""

    @property
    def name(self) -> str:
        """Where the document lives, for messages and the audit log."""
        ...

    def read(self) -> FlagDocument:
        """The current document; raises :class:`FlagFileError` if missing or unparsable."""
        ...

    def write(self, doc: FlagDocument) -> None:
        """Validate ``doc`` and replace the stored document with it, atomically."""
        ...


class LocalFileStore:
    """A flag file on this machine."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def name(self) -> str:
        """The file's path."""
        return str(self.path)

    def read(self) -> FlagDocument:
        """Read and parse the file."""
        return load_document(self.path)

    def write(self, doc: FlagDocument) -> None:
        """Validate, then write atomically (the file keeps its mode; a new one is 0644)."""
        check_document(doc)
        text = doc.dumps(format_for(self.path.name))
        write_atomic(self.path, text)


class HostFileStore:
    """A flag file on a host, reached through a :class:`~cdlib.connections.base.Connection`."""

    def __init__(self, connection: Connection, path: str, *, sudo: bool | None = None) -> None:
        self.connection = connection
        self.path = path
        self.sudo = sudo

    @property
    def name(self) -> str:
        """``host:path``."""
        return f"{self.connection.host}:{self.path}"

    def read(self) -> FlagDocument:
        """Fetch and parse the file (one round trip)."""
        result = self.connection.run(f"cat -- {q(self.path)}", sudo=self.sudo)
        if not result.ok:
            raise FlagSourceError(f"{self.name}: cannot read flag file: {result.stderr.strip()}")
        return parse_document(result.stdout, self.name, format_for(self.path))

    def write(self, doc: FlagDocument) -> None:
        """Validate here, then write on the host in one command: stdin to temp, rename."""
        check_document(doc)
        text = doc.dumps(format_for(self.path))
        result = self.connection.run(
            atomic_write_command(self.path, None, None, None),
            stdin=text.encode("utf-8"),
            sudo=self.sudo,
        )
        if not result.ok:
            raise FlagsError(f"{self.name}: writing the flag file failed: {result.stderr.strip()}")


class SSMParameterStore:
    """A flag document kept as an AWS SSM Parameter Store parameter (JSON text)."""

    def __init__(
        self,
        parameter: str,
        *,
        client: Any = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        fmt: Format = "json",
    ) -> None:
        self.parameter = parameter
        self.fmt: Format = fmt
        self._client = client
        self._endpoint_url = endpoint_url
        self._region_name = region_name

    @property
    def name(self) -> str:
        """``ssm:<parameter name>``."""
        return f"ssm:{self.parameter}"

    @property
    def client(self) -> Any:
        """The boto3 SSM client (created on first use; boto3 is imported lazily)."""
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "ssm", endpoint_url=self._endpoint_url, region_name=self._region_name
            )
        return self._client

    def read(self) -> FlagDocument:
        """Fetch and parse the parameter's value."""
        try:
            response = self.client.get_parameter(Name=self.parameter, WithDecryption=True)
        except Exception as exc:
            raise FlagSourceError(f"{self.name}: cannot read parameter: {_aws_error(exc)}") from exc
        return parse_document(response["Parameter"]["Value"], self.name, self.fmt)

    def write(self, doc: FlagDocument) -> None:
        """Validate, then replace the parameter's value in one call.

        An existing parameter keeps its type (a ``SecureString`` stays encrypted, with
        its KMS key) and its tier; a new one is a ``String``. The tier only grows: a
        document over 4 KB needs ``Advanced``.
        """
        check_document(doc)
        text = doc.dumps(self.fmt)
        current = self._describe()
        kind = current.get("Type", "String")
        tier = current.get("Tier", "Standard")
        # Standard parameters hold 4 KB; larger flag sets need the advanced tier.
        if tier == "Standard" and len(text.encode("utf-8")) > 4096:
            tier = "Advanced"
        extra: dict[str, str] = {}
        if kind == "SecureString" and current.get("KeyId"):
            # Without KeyId, PutParameter re-encrypts with the account's default key.
            extra["KeyId"] = current["KeyId"]
        try:
            self.client.put_parameter(
                Name=self.parameter, Value=text, Type=kind, Overwrite=True, Tier=tier, **extra
            )
        except Exception as exc:
            raise FlagsError(f"{self.name}: cannot write parameter: {_aws_error(exc)}") from exc

    def _describe(self) -> dict[str, Any]:
        """Type, tier and KMS key of the parameter (empty when it does not exist yet)."""
        try:
            response = self.client.describe_parameters(
                ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [self.parameter]}]
            )
        except Exception as exc:
            raise FlagsError(f"{self.name}: cannot describe parameter: {_aws_error(exc)}") from exc
        found = response.get("Parameters") or []
        return dict(found[0]) if found else {}


def _aws_error(exc: Exception) -> str:
    """The error code and message of a botocore error, without request details."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        return f"{err.get('Code', type(exc).__name__)}: {err.get('Message', '')}".strip()
    return str(exc) or type(exc).__name__
