"""The one exception type users see for bad input."""

from __future__ import annotations

from os import PathLike


class EmtrackInputError(ValueError):
    """Bad user input: a file, a line in it, or an argument, and what is wrong.

    Printed as ``path:line: message`` (or ``path: message`` / ``message`` when the
    location is unknown), so editors and terminals can jump to the spot.
    """

    def __init__(
        self, message: str, path: str | PathLike[str] | None = None, line: int | None = None
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"


class EmtrackInputWarning(UserWarning):
    """Input that is plausible but partly unusable, e.g. degenerate rows that were skipped.

    Turn it into an error with ``warnings.simplefilter("error", EmtrackInputWarning)``, or use
    the ``strict`` options (``read_mot(strict=True)``, ``Tracker(strict=True)``,
    ``emtrack track --strict``), which raise :class:`EmtrackInputError` instead.
    """
