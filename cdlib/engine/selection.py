"""Which tasks a run runs: ``--tags``, ``--skip-tags``, ``--start-at-task`` and ``--step``.

The tag rules are Ansible's: a task's tags are its own and its play's; ``always`` runs
unless skipped by name (or by ``--skip-tags all`` together with ``always``), ``never``
runs only when one of its tags is asked for by name; ``tagged`` and ``untagged`` select
tasks with and without tags; ``all`` (the default of ``--tags``) is every task but
``never`` ones. ``--skip-tags`` is applied after ``--tags``.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

#: The answer to a ``--step`` question: ``y`` run it, ``n`` skip it, ``c`` run it and
#: stop asking.
StepPrompt = Callable[[str, str], str]


def tags_selected(
    tags: Iterable[str], only: Iterable[str] = ("all",), skip: Iterable[str] = ()
) -> bool:
    """Whether a task with ``tags`` runs under ``--tags only`` and ``--skip-tags skip``."""
    own = frozenset(tags) or frozenset({"untagged"})
    only_set = frozenset(only)
    skip_set = frozenset(skip)
    untagged = own == {"untagged"}
    run = True
    if only_set:
        run = (
            "always" in own
            or ("all" in only_set and "never" not in own)
            or not own.isdisjoint(only_set)
            or ("tagged" in only_set and not untagged and "never" not in own)
        )
    if run and skip_set:
        if "all" in skip_set:
            run = "always" in own and "always" not in skip_set
        elif not own.isdisjoint(skip_set) or ("tagged" in skip_set and not untagged):
            run = False
    return run


@dataclass
class Selection:
    """The run's task selection; it remembers whether ``--start-at-task`` was reached.

    Plays are prepared in playbook order, so the first task whose name matches
    ``start_at`` (exactly or as a shell pattern) and every task after it run; tasks
    before it, in that play and earlier ones, do not.
    """

    tags: tuple[str, ...] = ("all",)
    skip_tags: tuple[str, ...] = ()
    start_at: str | None = None
    started: bool = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.start_at is None

    def nested(self) -> Selection:
        """The selection for plays an item runs inside the run (same tags, no start)."""
        return Selection(self.tags, self.skip_tags)

    def keep(self, label: str, tags: Iterable[str]) -> bool:
        """Whether the task named ``label`` with (play and task) ``tags`` runs."""
        if not self.started:
            assert self.start_at is not None
            if label != self.start_at and not fnmatch.fnmatchcase(label, self.start_at):
                return False
            self.started = True
        return tags_selected(tags, self.tags, self.skip_tags)


class StepGate:
    """``--step``: ask once per task of a play (not once per host) whether to run it."""

    def __init__(self, prompt: StepPrompt) -> None:
        self._prompt = prompt
        self._lock = threading.Lock()
        self._answers: dict[tuple[int, int], bool] = {}
        self._continue = False

    def allow(self, play_key: int, index: int, play: str, task: str) -> bool:
        """Whether task ``index`` of a play runs; the first host to reach it asks."""
        with self._lock:
            key = (play_key, index)
            if key not in self._answers:
                if self._continue:
                    return True
                answer = self._prompt(play, task).strip().lower()[:1]
                if answer == "c":
                    self._continue = True
                self._answers[key] = answer in ("y", "c")
            return self._answers[key]
