"""Per-host fact cache: batched reads, invalidated when a task changes a thing."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable
from typing import Any

from cdlib.connections.base import Connection
from cdlib.facts.base import Fact, batch_script, split_batch

#: Facts read in one remote command at most; keeps a batch's output bounded.
MAX_BATCH = 256


class FactCache:
    """Caches facts of one host for a run.

    On a miss it reads the missing fact together with every *upcoming* fact (those the
    remaining tasks declared), so a no-change run costs one round trip for all facts.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._values: dict[Hashable, Any] = {}
        self._paths: dict[Hashable, str | None] = {}
        self._upcoming: list[Fact] = []
        self._lock = threading.Lock()

    def predict(self, fact: Fact, value: Any) -> None:
        """Check mode: record the state a planned change would leave, so later tasks
        are judged as a real run would judge them."""
        with self._lock:
            self._values[fact.key] = value
            self._paths[fact.key] = fact.path

    def set_upcoming(self, facts: Iterable[Fact]) -> None:
        """Facts likely needed soon; read along with the next miss."""
        self._upcoming = list(facts)

    def get(self, fact: Fact) -> Any:
        """The fact's value, reading it (and upcoming ones) from the host when missing."""
        with self._lock:
            if fact.key in self._values:
                return self._values[fact.key]
            wanted: dict[Hashable, Fact] = {fact.key: fact}
            for f in self._upcoming:
                if len(wanted) >= MAX_BATCH:
                    break
                if f.key not in self._values:
                    wanted.setdefault(f.key, f)
            self._gather(list(wanted.values()))
            return self._values[fact.key]

    def _gather(self, facts: list[Fact]) -> None:
        script, marker = batch_script(facts)
        res = self._conn.run(script)
        for f, (out, rc) in zip(facts, split_batch(res.stdout, marker, len(facts)), strict=True):
            self._values[f.key] = f.parse(out, rc)
            self._paths[f.key] = f.path

    def invalidate(self, paths: Iterable[str] | None = None) -> None:
        """Forget facts about ``paths`` and everything under them; all facts when None."""
        with self._lock:
            if paths is None:
                self._values.clear()
                return
            prefixes = [p.rstrip("/") for p in paths]
            for key, path in list(self._paths.items()):
                if path is None:
                    continue
                for pre in prefixes:
                    if path == pre or path.startswith(pre + "/"):
                        self._values.pop(key, None)
                        break
