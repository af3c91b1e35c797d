"""Host addresses with optional ports, ``[x:y:z]`` host ranges and pattern splitting.

These follow Ansible's inventory grammar: a host may carry a ``:port`` suffix, an IPv6
address takes a port only inside brackets (``[::1]:2222``), and ``web[01:03]`` or
``db-[a:c]`` expand to several names.
"""

from __future__ import annotations

import ipaddress
import re
import string

from cdlib.inventory.errors import InventoryError

#: Names that mean "this machine" and give an implicit local host when not in inventory.
LOCALHOST_NAMES = ("localhost", "127.0.0.1", "::1")

_NUM_RANGE = r"\[[0-9]+:[0-9]+(?::[0-9]+)?\]"
_HEX_RANGE = r"\[[0-9a-f]+:[0-9a-f]+(?::[0-9]+)?\]"
_ALNUM_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"

_IPV4_PART = rf"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]{{1,2}}|{_NUM_RANGE})"
_IPV4 = re.compile(rf"^(?:{_IPV4_PART}\.){{3}}{_IPV4_PART}$")
# A label starts with a word character or a range and may not end in '-' or '_'.
_LABEL = rf"(?:\w|{_ALNUM_RANGE})(?:[\w-]|{_ALNUM_RANGE})*(?<![_-])"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.IGNORECASE)
_BRACKETED_PORT = re.compile(r"^\[(.+)\]:([0-9]+)$")
_HOST_PORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")
_HEX_RANGE_RE = re.compile(_HEX_RANGE, re.IGNORECASE)
_PATTERN_PART = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")


def _is_ipv6(text: str) -> bool:
    if text.count(":") < 2 or "%" in text:
        return False
    try:
        ipaddress.IPv6Address(_HEX_RANGE_RE.sub("0", text))
    except ValueError:
        return False
    return True


def parse_address(text: str) -> tuple[str, int | None] | None:
    """Split ``host[:port]``; ``None`` when ``text`` is not a host identifier.

    Ranges such as ``web[1:3]`` are allowed in the host part.
    """
    port: int | None = None
    for pattern in (_BRACKETED_PORT, _HOST_PORT):
        m = pattern.match(text)
        if m:
            if len(m.group(2)) > 9:
                return None  # not a port any system has
            text, port = m.group(1), int(m.group(2))
    if _IPV4.match(text) or _is_ipv6(text) or _HOSTNAME.match(text):
        return text, port
    return None


def expand_host_pattern(pattern: str) -> tuple[list[str], int | None]:
    """Expand a host definition (``web[01:03].example.com:2222``) into names and a port."""
    parsed = parse_address(pattern)
    name, port = parsed if parsed else (pattern, None)
    if pattern.strip().endswith(":") and port is None:
        raise InventoryError(
            f"invalid host pattern {pattern!r}: a trailing ':' must be followed by a port"
        )
    names = expand_ranges(name) if "[" in name else [name]
    for n in names:
        if n.strip() == "---":
            raise InventoryError(f"invalid host pattern {pattern!r}: '---' looks like YAML")
    return names, port


#: Most names one host definition may expand to; a typo such as [1:100000000] is an error.
MAX_EXPANSION = 100_000


def expand_ranges(name: str) -> list[str]:
    """Expand every ``[begin:end]`` or ``[begin:end:step]`` range in ``name``, left first."""
    out: list[str] = []
    pending = [name]
    while pending:
        current = pending.pop()
        if "[" not in current:
            out.append(current)
            if len(out) > MAX_EXPANSION:
                raise InventoryError(
                    f"host range in {name!r} expands to more than {MAX_EXPANSION} hosts"
                )
            continue
        head, values, tail = _first_range(current, name)
        # Reversed so that popping from the end keeps the natural order.
        pending.extend(head + v + tail for v in reversed(values))
    return out


def _first_range(text: str, name: str) -> tuple[str, list[str], str]:
    start = text.find("[")
    stop = text.find("]", start)
    if stop < 0:
        raise InventoryError(f"host range in {name!r} is not closed with ']'")
    head, spec, tail = text[:start], text[start + 1 : stop], text[stop + 1 :]
    bounds = spec.split(":")
    if len(bounds) not in (2, 3):
        raise InventoryError(f"host range [{spec}] in {name!r} must be begin:end or begin:end:step")
    begin, end = bounds[0] or "0", bounds[1]
    if not end:
        raise InventoryError(f"host range [{spec}] in {name!r} has no end value")
    try:
        step = int(bounds[2]) if len(bounds) == 3 else 1
    except ValueError:
        raise InventoryError(f"host range [{spec}] in {name!r}: step must be a number") from None
    if step == 0:
        raise InventoryError(f"host range [{spec}] in {name!r}: step must not be zero")
    width = 0
    if begin.startswith("0") and len(begin) > 1:
        # A leading zero asks for zero-padded names of the same width as the bounds.
        if len(begin) != len(end):
            raise InventoryError(
                f"host range [{spec}] in {name!r}: zero-padded begin and end need equal length"
            )
        width = len(begin)
    letters = string.ascii_letters
    if len(begin) == 1 and len(end) == 1 and begin in letters and end in letters:
        i, j = letters.index(begin), letters.index(end)
        if i > j:
            raise InventoryError(f"host range [{spec}] in {name!r}: begin is after end")
        return head, list(letters[i : j + 1 : step]), tail
    if not (begin.isdigit() and end.isdigit() and len(begin) < 12 and len(end) < 12):
        raise InventoryError(
            f"host range [{spec}] in {name!r}: bounds must be numbers or single letters"
        )
    numbers = range(int(begin), int(end) + 1, step)
    if len(numbers) > MAX_EXPANSION:
        raise InventoryError(
            f"host range [{spec}] in {name!r} expands to more than {MAX_EXPANSION} hosts"
        )
    return head, [str(n).zfill(width) for n in numbers], tail


def split_host_pattern(pattern: str) -> list[str]:
    """Split a host pattern into terms the way Ansible does.

    Commas always separate. Without commas a whole host identifier (an IPv6 address or
    ``web[0:2]``) stays one term; otherwise ``:`` separates, except inside brackets.
    """
    if "," in pattern:
        parts = pattern.split(",")
    elif parse_address(pattern) is not None:
        parts = [pattern]
    else:
        parts = _PATTERN_PART.findall(pattern)
    return [p.strip() for p in parts if p.strip()]
