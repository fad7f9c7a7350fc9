"""What every benchmark returns: a report that prints as plain text and records as JSON.

:class:`Report` is the protocol that the reports of ``emtrack bench track``, ``speed``,
``accuracy``, ``memory`` and ``train`` implement (:class:`~emtrack.bench.track_bench.BenchReport`,
:class:`~emtrack.bench.speed_bench.SpeedReport`,
:class:`~emtrack.bench.accuracy_bench.AccuracyReport`,
:class:`~emtrack.bench.memory.MemoryReport`, :class:`~emtrack.bench.train_bench.TrainBenchReport`);
the command line prints and writes any of them the same way.
"""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

from emtrack.io.atomic import write_json as io_write_json

__all__ = ["Report", "write_json"]


@runtime_checkable
class Report(Protocol):
    """A benchmark's result."""

    def format_table(self) -> str:
        """The figures as plain-text tables, for the terminal."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record: the figures, the settings and what the run ran on (versions,
        machine, git commit); no NaN or infinity."""
        ...


def write_json(report: Report, path: str | os.PathLike[str]) -> None:
    """Write ``report.to_dict()`` as JSON, atomically (the parent folder is created)."""
    io_write_json(path, report.to_dict())
