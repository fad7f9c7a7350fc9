"""Output helpers of the command line: text tables, JSON files, stderr logging."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Any

_CLI_LOGGER = "emtrack.cli"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.1f}%"


def score_table(rows: Sequence[tuple[str, Any, float]]) -> str:
    """Rows of (label, TrackingScores, frames/s) as an aligned text table."""
    headers = ["tracker", "HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "frames/s"]
    body = [
        [
            label,
            f"{s.hota:.2f}",
            f"{s.deta:.2f}",
            f"{s.assa:.2f}",
            f"{s.mota:.2f}",
            f"{s.idf1:.2f}",
            f"{s.idsw:d}",
            f"{fps:.0f}",
        ]
        for label, s, fps in rows
    ]
    widths = [max(len(row[i]) for row in [headers, *body]) for i in range(len(headers))]
    lines = [
        "  ".join(
            [
                row[0].ljust(widths[0]),
                *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)),
            ]
        )
        for row in [headers, *body]
    ]
    return "\n".join(lines)


class _StderrFormatter(logging.Formatter):
    """The CLI's own notes as plain lines; library messages with their level and logger."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        if record.levelno >= logging.WARNING:
            return f"emtrack: {record.levelname.lower()}: {message}"
        if record.name.startswith(_CLI_LOGGER):
            return message
        return f"[{record.name}] {message}"


@contextlib.contextmanager
def stderr_logging(verbosity: int) -> Iterator[None]:
    """Route ``emtrack.*`` log records to stderr for the duration of one command.

    Default: the CLI's info notes plus the library's warnings; ``-q`` (``verbosity < 0``):
    warnings and errors only; ``-v`` (``> 0``): everything down to debug. Levels and handlers
    are restored afterwards, so ``main`` can be called repeatedly in one process.
    """
    package, cli = logging.getLogger("emtrack"), logging.getLogger(_CLI_LOGGER)
    saved = (package.level, package.propagate, cli.level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StderrFormatter())
    package.addHandler(handler)
    package.propagate = False
    if verbosity > 0:
        package.setLevel(logging.DEBUG)
        cli.setLevel(logging.DEBUG)
    else:
        package.setLevel(logging.WARNING)
        cli.setLevel(logging.WARNING if verbosity < 0 else logging.INFO)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(saved[0])
        package.propagate = saved[1]
        cli.setLevel(saved[2])


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Print a library warning as one line, without the source location of the warn call."""
    print(f"emtrack: warning: {one_line(str(message))}", file=sys.stderr)


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def is_quiet(args: argparse.Namespace) -> bool:
    return getattr(args, "verbosity", 0) < 0
