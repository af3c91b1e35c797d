"""Transports to hosts behind one interface: ``local`` and ``ssh``."""

from cdlib.connections.base import (
    Become,
    CommandResult,
    Connection,
    ConnectionSettingsError,
    ConnectionStats,
    TransportError,
    UnreachableError,
)
from cdlib.connections.local import LocalConnection

__all__ = [
    "Become",
    "CommandResult",
    "Connection",
    "ConnectionSettingsError",
    "ConnectionStats",
    "LocalConnection",
    "TransportError",
    "UnreachableError",
]
