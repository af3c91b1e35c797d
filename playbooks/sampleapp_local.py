"""Deploy plays for the sample app on local process slots (used by the release examples).

``deploy(target)`` returns the play that makes every host of ``target.hosts`` serve
``target.version``: a process per host on its ``app_port``, restarted only when the
version (or the fail mode, for demos of bad builds) changes.
"""

from __future__ import annotations

from pathlib import Path

from cdlib import Play, tasks
from cdlib.release import DeployTarget

SERVE = Path(__file__).resolve().parent.parent / "sampleapp" / "serve-local"


def deploy(target: DeployTarget, fail_mode: str = "") -> Play:
    """The play installing ``target.version`` on ``target.hosts``."""
    play = Play(f"deploy {target.app} {target.version} to {target.group}", hosts=target.hosts)
    play.task(tasks.directory("{{ app_dir }}", mode="0755"))
    play.task(
        tasks.file("{{ app_dir }}/REVISION", content="{{ release_version }}\n"),
    )
    play.task(
        tasks.command(
            f"{SERVE} {{{{ app_dir }}}} {{{{ app_port }}}} {{{{ release_version }}}} "
            f"{{{{ release_group }}}} {fail_mode}",
            name="serve {{ release_version }} on port {{ app_port }}",
            changed_when=lambda r: "restarted" in r.stdout,
        )
    )
    return play
