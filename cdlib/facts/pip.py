"""Packages installed in a Python virtualenv."""

from __future__ import annotations

import re
import shlex
from collections.abc import Hashable
from dataclasses import dataclass, field

from cdlib.facts.base import Fact


def canonical_name(name: str) -> str:
    """PEP 503 normalized project name (``Foo_Bar`` -> ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class VenvState:
    """Whether ``venv`` exists (has ``bin/python``) and what is installed: name -> version."""

    exists: bool
    packages: dict[str, str] = field(default_factory=dict)


class VenvFact(Fact[VenvState]):
    """:class:`VenvState` of a virtualenv, from its ``*.dist-info`` directories.

    Listing site-packages gives what ``pip freeze`` reports (pip reads the same
    directories) without starting Python and importing pip, which costs a second or
    more per host on every run.
    """

    def __init__(self, venv: str) -> None:
        self.path: str = venv

    @property
    def key(self) -> Hashable:
        """Cache identity."""
        return ("venv", self.path)

    def command(self) -> str:
        """List the venv's ``.dist-info`` / ``.egg-info`` directory names."""
        v = shlex.quote(self.path.rstrip("/"))
        return (
            f"[ -x {v}/bin/python ] || exit 3; "
            f"for d in {v}/lib/python*/site-packages/*.dist-info "
            f'{v}/lib/python*/site-packages/*.egg-info; do [ -e "$d" ] && echo "${{d##*/}}"; '
            "done; true"
        )

    def parse(self, output: str, exit_code: int) -> VenvState:
        """Exit 3: no venv."""
        if exit_code == 3:
            return VenvState(False)
        return VenvState(True, parse_dist_info(output))


def parse_dist_info(output: str) -> dict[str, str]:
    """Pure parser of metadata directory names: ``Foo_Bar-1.2.dist-info`` -> foo-bar: 1.2.

    Legacy ``name-version-py3.11.egg-info`` names count too.
    """
    out = {}
    for line in output.splitlines():
        line = line.strip()
        if line.endswith(".dist-info"):
            stem = line[: -len(".dist-info")]
        elif line.endswith(".egg-info"):
            stem = re.sub(r"-py\d+(\.\d+)*$", "", line[: -len(".egg-info")])
        else:
            continue
        name, sep, version = stem.rpartition("-")
        if sep and name:
            out[canonical_name(name)] = version
    return out


def parse_freeze(output: str) -> dict[str, str]:
    """Pure parser of ``pip freeze`` / ``pip list --format=freeze`` output.

    ``name==version`` lines give a version; ``name @ url`` lines (direct references)
    give an empty version; comments and editable (``-e``) lines are skipped.
    """
    out = {}
    for line in output.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        if "==" in line:
            name, _, version = line.partition("==")
            out[canonical_name(name.strip())] = version.strip()
        elif " @ " in line:
            out[canonical_name(line.split(" @ ", 1)[0].strip())] = ""
    return out
