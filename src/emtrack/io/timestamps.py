"""Frame timestamps files: the time of each frame a detector saw, for variable frame rates and
dropped frames.

Format (``emtrack track --timestamps FILE``): one line per frame, ``frame,seconds`` — the
1-based frame number of the det file and the frame's time in seconds (any origin: only
differences matter) — separated by a comma or by spaces or tabs, in any order. A first line
without a number (e.g. ``frame,seconds``) is a header and skipped; blank lines, CRLF line ends
and a UTF-8 BOM are fine. Frames that are not listed are **dropped frames**: the detector never
saw them, so they are not frames without detections (the tracker predicts across them, and no
track is lost for missing them). Times must increase with the frame number.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from emtrack.errors import EmtrackInputError
from emtrack.io.dialect import is_header, is_number
from emtrack.io.text import read_ascii_text

__all__ = ["Timestamps", "read_timestamps"]

_MAX_EXACT_INTEGER = float(2**53)


@dataclass(frozen=True)
class Timestamps:
    """The frames a detector saw and their times.

    Attributes:
        frames: ``(K,)`` int64 frame numbers >= 1, increasing.
        seconds: ``(K,)`` float64 times, increasing.
        lines: ``(K,)`` int64 1-based lines of the file they came from (0: not from a file).
        path: The file, if any (for messages).
    """

    frames: np.ndarray
    seconds: np.ndarray
    lines: np.ndarray
    path: str | None = None

    def __post_init__(self) -> None:
        frames = np.asarray(self.frames)
        seconds = np.asarray(self.seconds, dtype=np.float64)
        if frames.ndim != 1 or seconds.shape != frames.shape:
            raise EmtrackInputError(
                f"Timestamps.frames and seconds must have one shape (K,), got {frames.shape} "
                f"and {seconds.shape}",
                self.path,
            )
        if frames.size and (frames.dtype.kind not in "iu" or frames.min() < 1):
            raise EmtrackInputError("Timestamps.frames must be whole numbers >= 1", self.path)
        if np.any(np.diff(frames) <= 0) or np.any(~np.isfinite(seconds)):
            raise EmtrackInputError(
                "Timestamps.frames must increase and seconds be finite", self.path
            )
        if np.any(np.diff(seconds) <= 0):
            raise EmtrackInputError("Timestamps.seconds must increase with the frame", self.path)
        lines = np.zeros(frames.shape, np.int64) if self.lines is None else self.lines
        object.__setattr__(self, "frames", frames.astype(np.int64))
        object.__setattr__(self, "seconds", seconds)
        object.__setattr__(self, "lines", np.asarray(lines, dtype=np.int64))

    @classmethod
    def from_arrays(cls, frames: object, seconds: object) -> Timestamps:
        """Timestamps from ``(K,)`` frames and seconds in any (common) order."""
        frames_arr = np.asarray(frames, dtype=np.int64).reshape(-1)
        seconds_arr = np.asarray(seconds, dtype=np.float64).reshape(-1)
        if frames_arr.shape != seconds_arr.shape:
            raise EmtrackInputError(
                f"frames and seconds must have the same length, got {frames_arr.shape} and "
                f"{seconds_arr.shape}"
            )
        order = np.argsort(frames_arr, kind="stable")
        return cls(frames_arr[order], seconds_arr[order], np.zeros(len(order), np.int64))


def read_timestamps(path: str | PathLike[str]) -> Timestamps:
    """Read a timestamps file (format: see the module docstring).

    Args:
        path: The text file.

    Returns:
        The listed frames, sorted, with their times.

    Raises:
        EmtrackInputError: A missing or unreadable file, a line that is not ``frame,seconds``
            (two fields), a frame that is not a whole number >= 1 or listed twice, a time
            that is not a finite number, or times that do not increase with the frame. The
            message names the file and line.
    """
    file_path = Path(path)
    text = read_ascii_text(file_path)
    frames: list[int] = []
    seconds: list[float] = []
    lines: list[int] = []
    first = True
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        fields = [field.strip() for field in (line.split(",") if "," in line else line.split())]
        if first and is_header(fields):
            first = False
            continue  # a header line
        first = False
        if len(fields) != 2:
            raise EmtrackInputError(
                f"expected 2 fields frame,seconds, got {len(fields)}: {line!r}", file_path, number
            )
        frame_text, time_text = fields
        if not is_number(frame_text):
            raise EmtrackInputError(f"frame is not a number: {frame_text!r}", file_path, number)
        frame = float(frame_text)
        if not (frame == np.floor(frame) and 1 <= frame <= _MAX_EXACT_INTEGER):
            raise EmtrackInputError(
                f"frame must be a whole number >= 1, got {frame_text!r}", file_path, number
            )
        if not is_number(time_text) or not np.isfinite(float(time_text)):
            raise EmtrackInputError(
                f"seconds must be a finite number, got {time_text!r}", file_path, number
            )
        frames.append(int(frame))
        seconds.append(float(time_text))
        lines.append(number)
    frames_arr = np.array(frames, dtype=np.int64)
    seconds_arr = np.array(seconds, dtype=np.float64)
    lines_arr = np.array(lines, dtype=np.int64)
    order = np.argsort(frames_arr, kind="stable")
    frames_arr, seconds_arr, lines_arr = frames_arr[order], seconds_arr[order], lines_arr[order]
    twice = np.flatnonzero(np.diff(frames_arr) == 0)
    if len(twice):
        a, b = sorted(lines_arr[twice[0] : twice[0] + 2].tolist())
        raise EmtrackInputError(
            f"frame {int(frames_arr[twice[0]])} is listed twice (also on line {a})", file_path, b
        )
    back = np.flatnonzero(np.diff(seconds_arr) <= 0)
    if len(back):
        k = int(back[0])
        raise EmtrackInputError(
            f"frame {int(frames_arr[k + 1])} at {float(seconds_arr[k + 1])!r} s is not after "
            f"frame {int(frames_arr[k])} at {float(seconds_arr[k])!r} s (line "
            f"{int(lines_arr[k])}): times must increase with the frame number",
            file_path,
            int(lines_arr[k + 1]),
        )
    return Timestamps(frames_arr, seconds_arr, lines_arr, str(file_path))
