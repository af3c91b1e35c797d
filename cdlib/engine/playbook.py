"""Load a playbook: a plain Python file whose top level creates :class:`Play` objects
(and other :class:`~cdlib.engine.contract.Runnable` items, such as release strategies)."""

from __future__ import annotations

import contextlib
import os
import runpy
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from cdlib.engine.contract import Runnable
from cdlib.engine.errors import CdlibError, Origin, PlaybookError, PlaybookErrors
from cdlib.engine.play import collect_plays
from cdlib.engine.prepare import raise_errors, search_path
from cdlib.engine.task import collect_task_errors


@dataclass
class Playbook:
    """The items of one playbook file (plays, strategies; ``path`` absolute), and where its
    templates are."""

    path: Path
    plays: list[Runnable]
    #: Tasks refused while the file loaded (``load_playbook(..., defer_errors=True)``);
    #: a run reports them with every other error of the playbook and runs nothing.
    errors: list[PlaybookError] = field(default_factory=list)

    @property
    def search_path(self) -> list[Path]:
        """Template search path: the playbook's directory and its ``templates/``."""
        return search_path(self.path)


def load_playbook(path: str | os.PathLike[str], *, defer_errors: bool = False) -> Playbook:
    """Execute the playbook file and collect its plays.

    Any exception raised while it runs (a misspelt option, a wrong type, a Python
    error) becomes a :class:`PlaybookError` naming the file and line. Every task whose
    options are refused is reported, not only the first: loading goes on past it.
    With ``defer_errors`` those task errors are kept in :attr:`Playbook.errors` instead
    of raised, so a run reports them together with the errors found when rendering.
    """
    p = Path(path)
    if not p.is_file():
        raise PlaybookError(f"playbook {p} not found")
    if p.suffix != ".py":
        raise PlaybookError(
            f"playbook {p}: cdlib playbooks are Python files (.py); "
            "YAML playbooks are not supported"
        )
    parent = str(p.parent.resolve())
    sys.path.insert(0, parent)
    bad: list[PlaybookError] = []
    try:
        with collect_task_errors() as bad, collect_plays() as plays:
            runpy.run_path(str(p), run_name="__cdlib_playbook__")
    except PlaybookError as exc:
        raise_errors([*bad, exc])
    except PlaybookErrors as exc:
        raise_errors([*bad, *exc.errors])
    except SyntaxError as exc:
        raise PlaybookError(
            f"syntax error: {exc.msg}", origin=Origin(_rel(exc.filename or str(p)), exc.lineno or 0)
        ) from None
    except SystemExit as exc:
        raise_errors([*bad, PlaybookError(f"playbook {p} called exit({exc.code})")])
    except Exception as exc:
        # cdlib's own errors (a missing secret, a bad router argument) speak for
        # themselves; a Python error keeps its type, which is what tells it apart.
        what = str(exc) if isinstance(exc, CdlibError) else f"{type(exc).__name__}: {exc}"
        err = PlaybookError(what, origin=_user_frame(exc, p))
        err.__cause__ = exc
        raise_errors([*bad, err])
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(parent)
    if not plays:
        raise_errors(
            [*bad, PlaybookError(f"playbook {p} defines no plays (create cdlib.Play objects)")]
        )
    if bad and not defer_errors:
        raise_errors(bad)
    # Absolute, as Ansible's playbook_dir: paths built from it must not depend on the cwd.
    return Playbook(p.absolute(), plays, bad)


def _rel(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _user_frame(exc: BaseException, playbook: Path) -> Origin:
    """The deepest traceback frame in the playbook file (else the deepest outside cdlib)."""
    frames = traceback.extract_tb(exc.__traceback__)
    target = str(playbook.resolve())
    best = None
    for fr in frames:
        if os.path.abspath(fr.filename) == target:
            best = fr
    if best is None and frames:
        best = frames[-1]
    if best is None:
        return Origin(_rel(str(playbook)), 0)
    return Origin(_rel(best.filename), best.lineno or 0)
