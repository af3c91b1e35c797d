"""Ansible host patterns, for ``--limit`` and for a play's ``hosts``.

A pattern is a list of terms separated by ``,`` (or ``:`` when there is no comma):
``web``, ``web:db``, ``web:&prod`` (and), ``web:!canary`` (not), ``web*`` (glob on group
and host names), ``~web\\d+`` (regex), ``web[0]``, ``web[0:2]``, ``web[-1]`` (subscripts),
``all``. As in Ansible, the plain terms are applied first, in the order written, then the
``&`` terms, then the ``!`` terms; the hosts come out in the order the plain terms produced
them (each group in its inventory order), not re-sorted.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from cdlib.inventory._address import LOCALHOST_NAMES, split_host_pattern
from cdlib.inventory.errors import PatternError


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_H = TypeVar("_H", bound=_Named)
_H_co = TypeVar("_H_co", bound=_Named, covariant=True)


class Hosts(Protocol[_H_co]):
    """What patterns read of an inventory (:class:`cdlib.inventory.model.Inventory`).

    A protocol: the inventory calls :func:`select`, so this module does not import it.
    """

    @property
    def hosts(self) -> Mapping[str, _H_co]:
        """Host name -> host, in inventory order."""
        ...

    @property
    def groups(self) -> Mapping[str, object]:
        """Group name -> group."""
        ...

    def group_hosts(self, group: str) -> list[str]:
        """The names of the hosts in ``group`` and its children."""
        ...

    def implicit_localhost(self, name: str) -> _H_co:
        """The host a localhost name gives when it is not in the inventory."""
        ...


_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]{1,18})|([0-9]{1,18})[:-]([0-9]{0,18}))\]$")
_GLOB_CHARS = (".", "?", "*", "[")


def _terms(pattern: str | Sequence[str]) -> list[str]:
    items = [pattern] if isinstance(pattern, str) else list(pattern)
    terms = [t for item in items for t in split_host_pattern(item)]
    if not terms:
        raise PatternError(f"host pattern {pattern!r} is empty")
    return terms


def _ordered(terms: list[str]) -> list[str]:
    plain = [t for t in terms if t[0] not in "&!"]
    both = [t for t in terms if t[0] == "&"]
    neither = [t for t in terms if t[0] == "!"]
    return (plain or ["all"]) + both + neither


def _compile(term: str) -> re.Pattern[str]:
    try:
        return re.compile(term[1:] if term.startswith("~") else fnmatch.translate(term))
    except (re.error, RecursionError, OverflowError) as exc:
        raise PatternError(f"invalid host pattern {term!r}: {exc}") from None


def _enumerate(inv: Hosts[_H], term: str) -> list[_H]:
    regex = _compile(term)
    groups = [g for g in inv.groups if regex.match(g)]
    found = [inv.hosts[h] for g in groups for h in inv.group_hosts(g)]
    if not groups or term.startswith("~") or any(c in term for c in _GLOB_CHARS):
        found += [h for name, h in inv.hosts.items() if regex.match(name)]
    if not found and term in LOCALHOST_NAMES:
        found = [inv.implicit_localhost(term)]
    return found


def _match_one(inv: Hosts[_H], term: str) -> list[_H]:
    if term.startswith(("&", "!")):
        term = term[1:]
    if not term:
        raise PatternError("a host pattern term is empty after '&' or '!'")
    m = None if term.startswith("~") else _SUBSCRIPT.match(term)
    if m is None:
        return _enumerate(inv, term)
    base, index, start, end = m.groups()
    hosts = _enumerate(inv, base)
    if not hosts:
        return hosts
    if index is not None:
        try:
            return [hosts[int(index)]]
        except IndexError:
            raise PatternError(
                f"host pattern {term!r}: index {index} is out of range "
                f"({len(hosts)} hosts match {base!r})"
            ) from None
    first, last = int(start), int(end) if end else -1
    if last == 0:  # Ansible reads [n:0] as the single host n
        try:
            return [hosts[first]]
        except IndexError:
            raise PatternError(f"host pattern {term!r}: index {first} is out of range") from None
    if last == -1:
        last = len(hosts) - 1
    return hosts[first : last + 1]


def _evaluate(inv: Hosts[_H], terms: list[str]) -> list[_H]:
    chosen: list[_H] = []
    for term in _ordered(terms):
        if term in inv.hosts:
            chosen.append(inv.hosts[term])
            continue
        matched = _match_one(inv, term)
        if term[0] == "!":
            drop = {h.name for h in matched}
            chosen = [h for h in chosen if h.name not in drop]
        elif term[0] == "&":
            keep = {h.name for h in matched}
            chosen = [h for h in chosen if h.name in keep]
        else:
            present = {h.name for h in chosen}
            chosen.extend(h for h in matched if h.name not in present)
    return chosen


def _limit_terms(limit: str | Sequence[str]) -> list[str]:
    terms: list[str] = []
    for term in _terms(limit):
        if term.startswith("@"):
            path = Path(term[1:])
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise PatternError(f"limit file {path}: cannot read: {exc}") from None
            terms.extend(line.strip() for line in lines if line.strip())
        else:
            terms.append(term)
    return terms


def select(
    inv: Hosts[_H], pattern: str | Sequence[str], limit: str | Sequence[str] | None = None
) -> list[_H]:
    """Hosts matching ``pattern`` (restricted by ``limit``), in Ansible's order."""
    hosts = _evaluate(inv, _terms(pattern))
    if limit:
        allowed = {h.name for h in _evaluate(inv, _limit_terms(limit))}
        hosts = [h for h in hosts if h.name in allowed]
    seen: set[str] = set()
    unique: list[_H] = []
    for h in hosts:
        if h.name not in seen:
            seen.add(h.name)
            unique.append(h)
    return unique
