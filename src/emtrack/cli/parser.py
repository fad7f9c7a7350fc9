"""The argument parser class of the command line: errors with the sub-command's own usage and
"did you mean" suggestions for misspelled options and sub-commands (:mod:`difflib`)."""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

__all__ = ["Parser", "closest"]

_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<given>[^']*)' \(choose from (?P<choices>.*)\)")


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``word`` (difflib ratio >= 0.6), or None."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors help to fix them.

    - An unknown option is reported by the sub-command that got it, with that sub-command's
      usage, and with the closest option it has: ``emtrack track: error: unrecognized
      arguments: --ofline (did you mean --offline?)``. (argparse itself reports unknown
      options of a sub-command with the top-level usage.)
    - A misspelled sub-command gets the closest one: ``invalid choice: 'trak' (choose from
      ...; did you mean 'track'?)``.

    Sub-command parsers are made with the same class (``add_subparsers`` uses the parent's).
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        # A sub-command (it has a handler) reports what it does not know, with its own usage.
        if extras and self.get_default("handler") is not None:
            self.error(self.unrecognized_message(extras))
        return parsed, extras

    def unrecognized_message(self, extras: Sequence[str]) -> str:
        """``unrecognized arguments: ...`` with a suggestion for each misspelled option."""
        options = [o for action in self._actions for o in action.option_strings]
        hints = []
        for extra in extras:
            if not extra.startswith("--"):
                continue
            suggestion = closest(extra.split("=", 1)[0], options)
            if suggestion is not None:
                hints.append(f"did you mean {suggestion}?")
        hint = f" ({'; '.join(hints)})" if hints else ""
        return f"unrecognized arguments: {' '.join(extras)}{hint}"

    def error(self, message: str) -> NoReturn:
        match = _INVALID_CHOICE.search(message)
        if match is not None:
            choices = re.findall(r"'([^']*)'", match.group("choices"))
            suggestion = closest(match.group("given"), choices)
            if suggestion is not None:
                message = f"{message[: match.end() - 1]}; did you mean '{suggestion}'?)"
        super().error(message)

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", type(self))
        return super().add_subparsers(**kwargs)
