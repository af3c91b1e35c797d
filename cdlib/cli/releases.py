"""``cdlib status | history | promote | abort | rollback | unlock``: releases from outside."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from cdlib.engine.results import EXIT_OK


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _warner(command: str) -> Callable[[str], None]:
    """Prints a warning (a skipped history record ...) on stderr, naming the command."""

    def warn(msg: str) -> None:
        print(f"cdlib {command}: warning: {msg}", file=sys.stderr)

    return warn


def add_state_option(p: argparse.ArgumentParser) -> None:
    """``--state LOCATION`` (and its older name ``--state-dir``) of a release command."""
    p.add_argument(
        "--state",
        "--state-dir",
        dest="state_dir",
        metavar="LOCATION",
        help="where release state lives: a directory or s3://BUCKET/PREFIX (default "
        "$CDLIB_STATE, else $CDLIB_STATE_DIR or ~/.local/state/cdlib)",
    )


def add_parser(sub: Any) -> None:
    """Register the release subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("app", help="application name, as given to the release")
    add_state_option(common)
    p = sub.add_parser(
        "status",
        help="where traffic goes now, and the latest release (finished or not)",
        description="Show where traffic of APP goes now (groups, weights, versions) and its "
        "latest release, finished or still running. Without APP: every app in the state "
        "directory, with its live version and the state of its latest release.",
    )
    p.add_argument("app", nargs="?", help="application name (default: every app)")
    add_state_option(p)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser(
        "history",
        parents=[common],
        help="past releases: who, which version, when, outcome, step durations",
        description="List the last releases of APP (-n, default 20): who, which version, when, "
        "the outcome and how long each step took.",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("-n", "--last", type=int, default=20, help="how many (default 20)")
    p.add_argument("--env", help="only releases to this environment (production, staging ...)")
    p.set_defaults(func=cmd_history)
    p = sub.add_parser(
        "promote",
        parents=[common],
        help="approve the gate a running release waits at",
        description="Approve the gate a running release of APP waits at (a canary step's "
        "gate, or an inconclusive analysis), so it goes on.",
    )
    p.add_argument("--by", help="who approves, recorded with the release (default: user@machine)")
    p.set_defaults(func=lambda a: _signal(a, "promote"))
    p = sub.add_parser(
        "abort",
        parents=[common],
        help="stop a running release; it moves traffic back",
        description="Stop a running release of APP at its next wait; it moves traffic back "
        "to the stable group and is recorded as 'aborted' (its reason says traffic was "
        "rolled back).",
    )
    p.set_defaults(func=lambda a: _signal(a, "abort"))
    p = sub.add_parser(
        "rollback",
        parents=[common],
        help="switch all traffic back to the previous group in one step",
        description="Switch all traffic of APP back to the previous group (or --to GROUP) in "
        "one step, using the router recorded by the latest release. A release still running "
        "is interrupted: it stops without touching traffic again.",
    )
    p.add_argument("--to", dest="to_group", help="group to send traffic to (default: previous)")
    p.set_defaults(func=cmd_rollback)
    p = sub.add_parser(
        "unlock",
        parents=[common],
        help="break a release lock whose process is gone or that is corrupt (any: --force)",
        description="Break the release lock of APP when the process holding it is gone, or "
        "when the lock file is corrupt (unreadable). --force breaks a lock whose owner may "
        "still run: only when you are sure.",
    )
    p.add_argument("--force", action="store_true", help="break it even if its owner may run")
    p.set_defaults(func=cmd_unlock)


def cmd_status(args: argparse.Namespace) -> int:
    """Print the app's status (every app's, without one)."""
    from cdlib.release.ops import status

    if args.app is None:
        return _status_all(args)
    st = status(args.app, state_dir=args.state_dir, warn=_warner("status"))
    if args.format == "json":
        print(json.dumps(st.to_json(), indent=2, default=str))
        return EXIT_OK
    print(f"app: {st.app}")
    if st.router_error:
        print(f"router: cannot read it back: {st.router_error}")
    elif st.latest and st.latest.router:
        releases = ", ".join(f"{g}={v or '-'}" for g, v in st.releases.items())
        print(f"traffic: live={st.live or 'split'} weights={st.weights} ({releases})")
        for group, text in st.groups.items():
            print(f"group {group}: {text}")
    if st.latest is None:
        print("no release recorded")
    else:
        r = st.latest
        state = "UNFINISHED (its process is gone or still running)" if r.unfinished else r.outcome
        print(
            f"latest release: {r.id} {r.strategy} {r.version} by {r.user}@{r.machine} "
            f"at {_when(r.started)}: {state}"
        )
        if r.reason:
            print(f"  reason: {r.reason.splitlines()[0]}")
        for s in r.steps:
            dur = f"{s.duration:.2f}s" if s.duration is not None else "..."
            print(f"  {s.outcome:<10} {dur:>8}  {s.name}")
    if st.lock_corrupt:
        print(f"lock: CORRUPT: {st.lock_corrupt} ('cdlib unlock {st.app}' breaks it)")
    elif st.lock_owner:
        print(
            f"lock: held by {st.lock_owner}"
            + (
                f" (STALE: 'cdlib unlock {st.app}' or 'cdlib rollback {st.app}')"
                if st.lock_stale
                else ""
            )
        )
    return EXIT_OK


def _status_all(args: argparse.Namespace) -> int:
    from cdlib.release.ops import all_apps

    rows = all_apps(state_dir=args.state_dir, warn=_warner("status"))
    if args.format == "json":
        print(json.dumps([r.to_json() for r in rows], indent=2, default=str))
        return EXIT_OK
    if not rows:
        print("no app has a release recorded")
    for r in rows:
        latest = r.latest
        state = "-" if latest is None else ("UNFINISHED" if latest.unfinished else latest.outcome)
        what = f"{latest.version} {latest.id} at {_when(latest.started)}" if latest else ""
        env = f" [{r.environment}]" if r.environment else ""
        print(f"{r.app}{env}: live {r.live_version or '-'}; latest release: {state} {what}")
        if r.lock_owner:
            print(f"  lock: held by {r.lock_owner}")
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    """Print past releases."""
    from cdlib.release.history import History

    recs = History(args.app, state_dir=args.state_dir, warn=_warner("history")).all()
    if args.env is not None:
        recs = [r for r in recs if r.environment == args.env]
    recs = recs[-args.last :]
    if args.format == "json":
        print(json.dumps([r.to_json() for r in recs], indent=2, default=str))
        return EXIT_OK
    if not recs:
        print(f"no release of {args.app} recorded")
    for r in recs:
        total = (r.finished - r.started) if r.finished else None
        took = f"{total:.1f}s" if total is not None else "unfinished"
        steps = ", ".join(
            f"{s.name} {s.duration:.1f}s" if s.duration is not None else s.name for s in r.steps
        )
        print(
            f"{_when(r.started)}  {r.id}  {r.strategy:<10} {r.version:<12} "
            f"{r.user}@{r.machine}  {r.outcome:<11} {took}"
            + (f"  env={r.environment}" if r.environment else "")
        )
        if r.build_sha256:
            print(f"    build: {r.build} sha256:{r.build_sha256}")
        if r.metadata:
            print("    meta: " + ", ".join(f"{k}={v}" for k, v in sorted(r.metadata.items())))
        for a in r.approvals:
            by = f" by {a.get('by')}" if a.get("by") else ""
            print(f"    gate {a.get('gate')!r}: {a.get('how')}{by} at {_when(a.get('at'))}")
        if steps:
            print(f"    steps: {steps}")
    return EXIT_OK


def _signal(args: argparse.Namespace, what: str) -> int:
    from cdlib.release.ops import signal

    # An error (no running release) goes to cdlib.cli.main: one format, its exit code.
    rec = signal(args.app, what, state_dir=args.state_dir, by=getattr(args, "by", None))
    print(f"{what} sent to release {rec.id} ({rec.version})")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    """Switch traffic back."""
    from cdlib.release.ops import rollback

    rec = rollback(
        args.app, to_group=args.to_group, state_dir=args.state_dir, warn=_warner("rollback")
    )
    print(
        f"rolled back {args.app}: traffic -> {rec.new_group} "
        f"({rec.steps[-1].detail if rec.steps else ''})"
    )
    if rec.reason:
        print(f"  {rec.reason}: it stops at its next step without touching traffic")
    return EXIT_OK


def cmd_unlock(args: argparse.Namespace) -> int:
    """Break a stale (or, forced, any) lock."""
    from cdlib.release.lock import break_lock

    owner = break_lock(args.app, stale_only=not args.force, state_dir=args.state_dir)
    print(f"broke the release lock of {args.app} held by {owner.describe()}")
    return EXIT_OK
