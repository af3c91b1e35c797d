"""Pure parsers for HAProxy runtime API output, and the server naming scheme.

Kept apart from the socket I/O so they are unit-tested from canned text.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from cdlib.traffic.base import Target, TrafficError, check_group_name

#: Separates group and target in a server name: ``blue_127.0.0.1:8001``.
#: Group names cannot contain ``_``, so the first one splits unambiguously.
_SEP = "_"


class RuntimeParseError(TrafficError):
    """HAProxy answered with text cdlib cannot read."""


def server_name(group: str, target: Target) -> str:
    """The HAProxy server name cdlib uses for ``target`` in ``group``."""
    return f"{check_group_name(group)}{_SEP}{target.host}:{target.port}"


def split_server_name(name: str) -> tuple[str, Target] | None:
    """Invert :func:`server_name`; ``None`` for servers cdlib did not name."""
    group, sep, rest = name.partition(_SEP)
    if not sep:
        return None
    try:
        return check_group_name(group), Target.parse(rest)
    except TrafficError:
        return None


@dataclass(frozen=True)
class ServerStat:
    """One row of ``show stat`` for a server (the columns cdlib uses)."""

    backend: str
    name: str
    status: str
    weight: int
    uweight: int | None
    scur: int
    stot: int
    hrsp_5xx: int
    responses: int
    rtime_ms: int | None
    check_status: str
    check_running: bool
    check_code: str
    check_desc: str
    last_chk: str
    addr: str

    @property
    def up(self) -> bool:
        """HAProxy routes to the server: UP, or UP and going down."""
        return self.status.startswith("UP")

    @property
    def check_reason(self) -> str:
        """Why the last check ended as it did: status, code and HAProxy's words."""
        parts = [self.check_status + (f" {self.check_code}" if self.check_code else "")]
        parts += [p for p in (self.check_desc, self.last_chk) if p and p not in parts[0]]
        return ": ".join(dict.fromkeys(parts))

    @property
    def check_passed(self) -> bool:
        """The last health check passed (not merely the optimistic initial state)."""
        return self.check_status in {"L4OK", "L6OK", "L7OK"}


_RESPONSE_COLUMNS = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")


def _code(value: str) -> str:
    # HAProxy shows 0 while no HTTP status is known.
    return "" if value in ("", "0") else value


def _int(value: str) -> int:
    return int(value) if value else 0


def _opt_int(value: str) -> int | None:
    return int(value) if value else None


def parse_stat_csv(text: str) -> list[dict[str, str]]:
    """Parse ``show stat`` CSV into one dict per row, keyed by column name."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not lines[0].startswith("# "):
        raise RuntimeParseError(f"show stat: no '# ' header line in {text[:80]!r}")
    header = lines[0][2:].rstrip(",").split(",")
    rows: list[dict[str, str]] = []
    for line_no, row in enumerate(csv.reader(io.StringIO("\n".join(lines[1:]))), start=2):
        if len(row) < len(header):
            raise RuntimeParseError(
                f"show stat line {line_no}: {len(row)} fields, header has {len(header)}"
            )
        rows.append(dict(zip(header, row, strict=False)))
    return rows


def server_stats(text: str, backend: str) -> list[ServerStat]:
    """The server rows of ``backend`` from ``show stat`` output."""
    out: list[ServerStat] = []
    for row in parse_stat_csv(text):
        if row.get("pxname") != backend or row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        try:
            out.append(
                ServerStat(
                    backend=row["pxname"],
                    name=row["svname"],
                    status=row["status"],
                    weight=_int(row["weight"]),
                    uweight=_opt_int(row.get("uweight", "")),
                    scur=_int(row["scur"]),
                    stot=_int(row["stot"]),
                    hrsp_5xx=_int(row["hrsp_5xx"]),
                    responses=sum(_int(row.get(c, "")) for c in _RESPONSE_COLUMNS),
                    rtime_ms=_opt_int(row["rtime"]),
                    # "* " marks a check in progress; the last result follows it.
                    check_status=row["check_status"].removeprefix("* "),
                    check_running=row["check_status"].startswith("* "),
                    check_code=_code(row.get("check_code", "")),
                    check_desc=row.get("check_desc", ""),
                    last_chk=row.get("last_chk", ""),
                    addr=row.get("addr", ""),
                )
            )
        except (KeyError, ValueError) as exc:
            raise RuntimeParseError(
                f"show stat: server {row.get('svname')!r}: bad or missing column: {exc}"
            ) from exc
    return out


@dataclass(frozen=True)
class ServerState:
    """One row of ``show servers state`` (the columns cdlib uses).

    ``admin_state`` is a bit field: 0x01 forced, 0x02 inherited, 0x04 configured,
    0x20 DNS and 0x40 hostname maintenance; 0x08 forced and 0x10 inherited drain.
    ``op_state``: 0 stopped, 1 starting, 2 running, 3 stopping.
    """

    backend: str
    name: str
    addr: str
    port: int
    op_state: int
    admin_state: int
    uweight: int
    iweight: int

    @property
    def in_maint(self) -> bool:
        """Put in maintenance by an operator (or by cdlib before removal)."""
        return bool(self.admin_state & 0x67)

    @property
    def draining(self) -> bool:
        """Forced into drain mode: keeps sessions, gets no new ones."""
        return bool(self.admin_state & 0x18)


def parse_servers_state(text: str) -> list[ServerState]:
    """Parse ``show servers state`` output (format version 1)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise RuntimeParseError("show servers state: empty answer")
    if lines[0].strip() != "1":
        raise RuntimeParseError(f"show servers state: unknown format version {lines[0]!r}")
    if len(lines) < 2 or not lines[1].startswith("# "):
        raise RuntimeParseError("show servers state: header line missing")
    header = lines[1][2:].split()
    out: list[ServerState] = []
    for line_no, line in enumerate(lines[2:], start=3):
        fields = dict(zip(header, line.split(), strict=False))
        try:
            out.append(
                ServerState(
                    backend=fields["be_name"],
                    name=fields["srv_name"],
                    addr=fields["srv_addr"],
                    port=int(fields["srv_port"]),
                    op_state=int(fields["srv_op_state"]),
                    admin_state=int(fields["srv_admin_state"]),
                    uweight=int(fields["srv_uweight"]),
                    iweight=int(fields["srv_iweight"]),
                )
            )
        except (KeyError, ValueError) as exc:
            raise RuntimeParseError(
                f"show servers state line {line_no}: bad or missing field {exc}: {line!r}"
            ) from exc
    return out


__all__ = [
    "RuntimeParseError",
    "ServerStat",
    "ServerState",
    "parse_servers_state",
    "parse_stat_csv",
    "server_name",
    "server_stats",
    "split_server_name",
]
