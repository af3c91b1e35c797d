"""What every check has in common: a name, where it runs, its retry policy and timeout."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import ClassVar, Literal

from cdlib.checks.retry import ONCE, Retry
from cdlib.engine.templating import is_template

#: Where a check probes from: the control machine, or the host through its connection.
Where = Literal["control", "host"]


@dataclass(frozen=True)
class Check:
    """Base of all checks. Subclasses add what to probe and what to expect.

    ``timeout`` bounds one attempt (seconds); ``retry`` says how often to try.
    ``on`` is where a suite runs the check: ``"control"`` or ``"host"``.
    """

    _: KW_ONLY
    name: str = ""
    retry: Retry = field(default=ONCE)
    timeout: float = 10.0
    on: Where | None = None

    #: Where the check runs when ``on`` is not given.
    default_on: ClassVar[Where] = "host"

    def __post_init__(self) -> None:
        if self.on not in (None, "control", "host"):
            raise ValueError(f"check 'on' must be 'control' or 'host', got {self.on!r}")
        if self.timeout <= 0:
            raise ValueError(f"check timeout must be > 0 seconds, got {self.timeout}")

    def describe(self) -> str:
        """A short, secret-free description used when ``name`` is empty."""
        return type(self).__name__

    @property
    def label(self) -> str:
        """``name`` if given, else :meth:`describe`."""
        return self.name or self.describe()

    @property
    def where(self) -> Where:
        """Where a suite runs the check: ``on`` or the class default."""
        return self.on or self.default_on


def as_tuple(value: object, what: str) -> tuple[str, ...]:
    """A string or a sequence of strings as a tuple; ``TypeError`` names ``what``."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TypeError(f"{what} must be a string or a list of strings, got {value!r}")


__all__ = ["Check", "Where", "as_tuple", "is_template"]
