"""argparse with suggestions for typos and cdlib's exit code for bad usage."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from cdlib.engine.results import EXIT_USAGE


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors suggest the closest subcommand or option."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse as argparse does, keeping the words to suggest fixes for typos in them."""
        # Subcommand parsers get their own words here too (argparse calls this on them).
        self._words = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        """Print usage, the error and a suggestion; exit with :data:`EXIT_USAGE`."""
        hint = self._suggest(message)
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}{hint}\n")
        sys.exit(EXIT_USAGE)

    def _suggest(self, message: str) -> str:
        m = re.search(r"invalid choice: '([^']+)' \(choose from (.+)\)", message)
        if m:
            choices = re.findall(r"'([^']+)'", m.group(2)) or [
                c.strip() for c in m.group(2).split(",")
            ]
            best = difflib.get_close_matches(m.group(1), choices, n=1, cutoff=0.5)
            return f"\n  did you mean {best[0]!r}?" if best else ""
        m = re.search(r"unrecognized arguments: (.+)", message)
        if m:
            opts = [s for a in self._actions for s in a.option_strings]
            hints = []
            for bad in m.group(1).split():
                if bad.startswith("-"):
                    best = difflib.get_close_matches(bad.split("=")[0], opts, n=1, cutoff=0.6)
                    if best:
                        hints.append(f"{bad} -> {best[0]}")
            return ("\n  did you mean: " + ", ".join(hints)) if hints else ""
        if "required" in message:
            # A misspelt option can hide behind "X is required" (argparse checks required
            # arguments before it reports unknown ones): point at the misspelling.
            return self._unknown_option_hint()
        return ""

    def _unknown_option_hint(self) -> str:
        opts = [s for a in self._actions for s in a.option_strings]
        hints = []
        for word in getattr(self, "_words", []):
            bad = word.split("=")[0]
            if bad.startswith("-") and bad not in opts:
                best = difflib.get_close_matches(bad, opts, n=1, cutoff=0.6)
                if best:
                    hints.append(f"{bad} -> {best[0]}")
        return ("\n  did you mean: " + ", ".join(hints)) if hints else ""
