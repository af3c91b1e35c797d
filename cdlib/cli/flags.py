"""``cdlib flags``: evaluate, list, show, change and lint flag files.

A SOURCE is a flag file path or ``ssm:PARAMETER`` (AWS SSM Parameter Store; the
endpoint and region come from ``--endpoint-url``/``--region`` or boto3's usual
environment). Exit codes: 0 ok, 1 evaluation error or lint findings, 3 a kill or
rollback reached only some stores (the others are named), 4 bad input (nothing was
changed).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any

from cdlib.flags.audit import AuditLog
from cdlib.flags.document import FlagDocument
from cdlib.flags.errors import FlagsError, FlagSourceError, FlagValidationError, Problem
from cdlib.flags.evaluate import FLAG_TYPES, Evaluation, FlagEvaluator, FlagType, infer_type
from cdlib.flags.lint import EXPIRES_KEY, OWNER_KEY, lint_document
from cdlib.flags.manage import ChangeResult, PartialChangeError, kill, ramp, set_flag
from cdlib.flags.stores import FlagStore, LocalFileStore, SSMParameterStore
from cdlib.flags.validate import validate_document

__all__ = ["add_parser", "main", "store_for"]

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_PARTIAL = 3
EXIT_BAD_INPUT = 4

HELP = "feature flags in flagd's format: eval, list, show, set, lint"


def add_parser(sub: Any) -> None:
    """Register ``flags`` and its subcommands on the top-level subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "flags",
        help=HELP,
        description="Feature flags in flagd's format. A SOURCE is a flag file or "
        "ssm:PARAMETER (AWS SSM Parameter Store). Exit codes: 0 ok, 1 evaluation error "
        "or lint findings, 3 a kill or rollback reached only some sources, 4 bad input "
        "(nothing was changed).",
    )
    # Same parser class as the top level, so typos get suggestions there too.
    fsub = p.add_subparsers(
        dest="flags_command", metavar="SUBCOMMAND", required=True, parser_class=type(p)
    )

    def source(sp: argparse.ArgumentParser, many: bool = False) -> None:
        if many:
            sp.add_argument(
                "source", metavar="SOURCE", nargs="+", help="flag files, or ssm:PARAMETER"
            )
        else:
            sp.add_argument("source", metavar="SOURCE", help="flag file, or ssm:PARAMETER")
        sp.add_argument("--endpoint-url", help="AWS endpoint for ssm: sources (e.g. moto)")
        sp.add_argument("--region", help="AWS region for ssm: sources")

    ev = fsub.add_parser(
        "eval",
        help="evaluate a flag and print its evaluation details as JSON",
        description="Evaluate flag KEY from SOURCE for an evaluation context (--context, a JSON "
        "object) with flagd's reference evaluator; print value, variant and reason as JSON.",
    )
    source(ev)
    ev.add_argument("key", help="flag key")
    ev.add_argument("--context", default="{}", metavar="JSON", help="evaluation context object")
    ev.add_argument("--type", choices=FLAG_TYPES, help="flag type (default: from the variants)")
    ev.add_argument("--default", metavar="VALUE", help="code default (JSON for objects)")

    ls = fsub.add_parser(
        "list",
        help="list flags: state, type, default variant, owner, expiry",
        description="List the flags in SOURCE: state, type, default variant, owner and expiry.",
    )
    source(ls)
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sh = fsub.add_parser(
        "show",
        help="print one flag's definition",
        description="Print the definition of flag KEY in SOURCE as JSON.",
    )
    source(sh)
    sh.add_argument("key", help="flag key")

    st = fsub.add_parser(
        "set",
        help="change a flag: state, default variant, rollout percent or kill switch",
        description="Change flag KEY in each SOURCE: its state, default variant, rollout "
        "percent or kill switch. The new document is validated, then written atomically; "
        "invalid changes write nothing. A source that cannot be read stops a change before "
        "anything is written, except for --kill and --ramp 0 (a rollback): those write "
        "every source they can reach, then name the others and exit 3.",
    )
    source(st, many=True)
    st.add_argument("key", help="flag key")
    st.add_argument("--state", choices=("ENABLED", "DISABLED"), type=str.upper)
    st.add_argument("--default-variant", metavar="VARIANT")
    st.add_argument("--ramp", type=int, metavar="PERCENT", help="fractional rollout percent")
    st.add_argument("--variant", help="variant ramped to PERCENT, or served by --kill")
    st.add_argument("--baseline", help="variant that gets the rest of a ramp")
    st.add_argument("--kill", action="store_true", help="kill switch: serve --variant (or false)")
    st.add_argument("--audit-log", metavar="PATH", help="append the change to this JSONL log")
    st.add_argument("--who", help="actor for the audit log (default user@host)")
    st.add_argument("-C", "--check", action="store_true", help="show the change, write nothing")

    li = fsub.add_parser(
        "lint",
        help="validate, and report expired or ownerless flags",
        description="Validate SOURCE against flagd's rules and report flags that are expired "
        "or have no owner. Exit code 1 when there are findings.",
    )
    source(li)
    li.add_argument("--today", type=date.fromisoformat, help="date to compare expiry with")

    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the ``flags`` subcommand in ``args``; returns the exit code."""
    try:
        handler = _COMMANDS[args.flags_command]
        return handler(args)
    except FlagValidationError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print("error: the flag configuration is invalid; nothing was changed", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FlagsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def store_for(spec: str, endpoint_url: str | None = None, region: str | None = None) -> FlagStore:
    """The store a SOURCE names: ``ssm:NAME`` or a local file path."""
    if spec.startswith("ssm:"):
        return SSMParameterStore(spec[4:], endpoint_url=endpoint_url, region_name=region)
    return LocalFileStore(spec)


def _store(args: argparse.Namespace) -> FlagStore:
    return store_for(args.source, args.endpoint_url, args.region)


def _eval(args: argparse.Namespace) -> int:
    try:
        context = json.loads(args.context)
    except json.JSONDecodeError as exc:
        print(f"error: --context is not JSON: {exc.msg} (column {exc.colno})", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not isinstance(context, dict):
        print("error: --context must be a JSON object", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        doc = _store(args).read()
    except FlagsError as exc:
        # The source itself is broken: report it the way a provider would, as details.
        flag_type: FlagType = args.type or "string"
        try:
            default = _default(args.default, flag_type)
        except ValueError:
            default = None
        code = "GENERAL" if isinstance(exc, FlagSourceError) else "PARSE_ERROR"
        return _print_eval(Evaluation(args.key, default, "ERROR", None, code, str(exc)))
    flag_type = args.type or infer_type(doc, args.key)
    try:
        default = _default(args.default, flag_type)
    except ValueError as exc:
        print(f"error: --default: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    errors = [p for p in validate_document(doc) if p.severity == "error"]
    if errors:
        message = "; ".join(str(p) for p in errors)
        return _print_eval(Evaluation(args.key, default, "ERROR", None, "PARSE_ERROR", message))
    return _print_eval(FlagEvaluator(doc).evaluate(args.key, default, flag_type, context))


def _print_eval(result: Evaluation) -> int:
    print(json.dumps(result.to_dict(), indent=2))
    return EXIT_FINDINGS if result.error_code else EXIT_OK


def _default(text: str | None, flag_type: FlagType) -> Any:
    """The --default value as the flag's type (None: the type's zero value)."""
    if text is None:
        return None
    if flag_type == "boolean":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{text!r} is not true or false")
        return text.lower() == "true"
    if flag_type == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
    if flag_type == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if flag_type == "object":
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"{text!r} is not JSON") from None
        if not isinstance(value, dict | list):
            raise ValueError("an object default must be a JSON object or array")
        return value
    return text


def _rows(doc: FlagDocument) -> list[dict[str, Any]]:
    rows = []
    for key, flag in doc.flags.items():
        if not isinstance(flag, dict):
            continue
        meta = flag.get("metadata") if isinstance(flag.get("metadata"), dict) else {}
        assert isinstance(meta, dict)
        targeting = flag.get("targeting")
        rule = "fractional" if "fractional" in json.dumps(targeting or {}) else "rules"
        rows.append(
            {
                "key": key,
                "state": flag.get("state"),
                "type": infer_type(doc, key),
                "defaultVariant": flag.get("defaultVariant"),
                "targeting": rule if targeting else "-",
                "owner": meta.get(OWNER_KEY),
                "expires": meta.get(EXPIRES_KEY),
            }
        )
    return rows


def _list(args: argparse.Namespace) -> int:
    rows = _rows(_store(args).read())
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    cols = ["key", "state", "type", "defaultVariant", "targeting", "owner", "expires"]
    table = [cols] + [["-" if r[c] is None else str(r[c]) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    doc = _store(args).read()
    flag = doc.flag(args.key)
    print(f"# {doc.where('flags', args.key)}")
    print(json.dumps({args.key: flag}, indent=2, ensure_ascii=False))
    return EXIT_OK


def _set(args: argparse.Namespace) -> int:
    modes = [
        args.state is not None or args.default_variant is not None,
        args.ramp is not None,
        args.kill,
    ]
    if sum(modes) != 1:
        print(
            "error: give exactly one of --state/--default-variant, --ramp PERCENT, or --kill",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    stores = [store_for(spec, args.endpoint_url, args.region) for spec in args.source]
    audit = AuditLog(args.audit_log) if args.audit_log else None
    common: dict[str, Any] = {"audit": audit, "who": args.who, "dry_run": args.check}
    result: ChangeResult
    code = EXIT_OK
    try:
        if args.ramp is not None:
            result = ramp(
                stores, args.key, args.ramp, variant=args.variant, baseline=args.baseline, **common
            )
        elif args.kill:
            result = kill(stores, args.key, variant=args.variant, **common)
        else:
            result = set_flag(
                stores, args.key, state=args.state, default_variant=args.default_variant, **common
            )
    except PartialChangeError as exc:
        result, code = exc.result, EXIT_PARTIAL
    verb = "would change" if args.check else "changed"
    for store in stores:
        if store.name in result.failed:
            why = result.failed[store.name]
            print(f"error: {store.name}: {result.action} not done: {why}", file=sys.stderr)
            continue
        changes = result.changes.get(store.name, [])
        if not changes:
            print(f"{store.name}: {args.key}: ok (no change)")
        for change in changes:
            print(f"{store.name}: {verb} {change}")
    if code != EXIT_OK:
        print(
            f"error: {result.action} of {args.key} not done on {len(result.failed)} of "
            f"{len(stores)} source(s): {', '.join(result.failed)}",
            file=sys.stderr,
        )
    return code


def _lint(args: argparse.Namespace) -> int:
    doc = _store(args).read()
    problems: list[Problem] = lint_document(doc, args.today)
    for problem in problems:
        print(problem)
    if any(p.severity == "error" for p in problems):
        return EXIT_BAD_INPUT
    if problems:
        return EXIT_FINDINGS
    print(f"{doc.source}: {len(doc.flags)} flag(s), no problems")
    return EXIT_OK


_COMMANDS = {"eval": _eval, "list": _list, "show": _show, "set": _set, "lint": _lint}


def run(argv: list[str] | None = None) -> int:
    """Parse ``argv`` as ``cdlib flags ...`` without the rest of the CLI (for tests)."""
    parser = argparse.ArgumentParser(prog="cdlib")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return main(args)
