"""A minimal system-account task used by the release example until the ``user`` task lands.

Private to this package on purpose: the general ``user`` task (branch ``hosttasks``)
replaces it; this one only ensures a system user without login exists.
"""

from __future__ import annotations

import shlex
from collections.abc import Hashable
from dataclasses import dataclass, field

from cdlib.engine.task import HostContext, Plan, Task, option
from cdlib.facts.base import Fact


class _PasswdFact(Fact[bool]):
    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def key(self) -> Hashable:
        return ("passwd", self.name)

    def command(self) -> str:
        return f"getent passwd {shlex.quote(self.name)}"

    def parse(self, output: str, exit_code: int) -> bool:
        return exit_code == 0 and bool(output.strip())


@dataclass
class SystemAccount(Task[Plan]):
    """Ensure system user ``name`` exists (no home, no login shell)."""

    name: str = field(metadata=option(templated=True))

    kind = "system_account"

    def describe(self) -> str:
        """``system_account name``."""
        return f"system_account {self.name}"

    def facts(self) -> list[Fact[object]]:
        """getent passwd."""
        return [_PasswdFact(self.name)]

    def plan(self, ctx: HostContext) -> Plan:
        """Create when missing."""
        if ctx.fact(_PasswdFact(self.name)):
            return Plan(ok_msg="exists")
        return Plan(changes=[f"create system user {self.name}"])

    def apply(self, ctx: HostContext, plan: Plan) -> str | None:
        """useradd, retried while another process holds the passwd lock (exit 10);
        exit 9 (already exists, made meanwhile) is fine."""
        n = shlex.quote(self.name)
        ctx.run(
            "i=0; while :; do useradd --system --no-create-home --shell /usr/sbin/nologin "
            f"{n}; rc=$?; [ $rc -eq 0 ] || [ $rc -eq 9 ] && exit 0; i=$((i+1)); "
            '[ $i -lt 50 ] || exit "$rc"; sleep 0.1; done'
        )
        return None


system_account = SystemAccount
