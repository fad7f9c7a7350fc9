"""MOTChallenge text formats: detection, ground-truth and result files, ``seqinfo.ini``.

This is the only place where boxes change format: files hold ``x, y, w, h`` (top-left corner,
width, height, in pixels; or corners, when a header line names them); everything inside
emtrack uses ``boxes_xyxy`` ``[x1, y1, x2, y2]``.

Row formats accepted by :func:`read_mot` without a header line (fields separated by commas,
spaces around fields allowed, or by spaces or tabs when the first line has no comma):

* 6 columns ``frame,id,x,y,w,h`` (score 1), when every row has 6 columns;
* 7 columns ``frame,id,x,y,w,h,conf`` (a common short result/detection format);
* 8 columns ``frame,id,x,y,w,h,conf,X``: read like 10 columns with the world coordinates cut off;
* 9 columns ``frame,id,x,y,w,h,conf,class,visibility`` (MOT16/17/20 ground truth);
* 10 columns ``frame,id,x,y,w,h,conf,X,Y,Z`` (MOT15 detections and ground truth, results);
  the world coordinates ``X, Y, Z`` are checked to be numbers and then dropped;
* more than 10 columns: the columns after the 10th are ignored (not even parsed).

Rows with 7 or more columns may be mixed; each row is read by its own count. ``class`` and
``visibility`` are only known for 9-column rows and are -1 for all others. A header line (a
first line without a number) names the columns instead, in any order, and then every row has
as many columns as it (see :mod:`emtrack.io.dialect`). ``docs/inputs.md`` has the table of
every accepted form and of what each bad input gets.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from emtrack.errors import EmtrackInputError, EmtrackInputWarning
from emtrack.io.atomic import atomic_write
from emtrack.io.dialect import header_layout, is_header, split_fields
from emtrack.io.rows import parse_rows
from emtrack.io.text import read_ascii_text, read_text

__all__ = [
    "MotTable",
    "SeqInfo",
    "SequencePaths",
    "find_sequences",
    "read_mot",
    "read_seqinfo",
    "write_mot",
]

# Largest magnitude at which every integer is exactly representable in float64.
_MAX_EXACT_INTEGER = float(2**53)


# --------------------------------------------------------------------------------------------
# MotTable
# --------------------------------------------------------------------------------------------


def _as_1d(
    name: str, value: Any, dtype: type[np.generic], length: int | None, path: str | None
) -> np.ndarray:
    """Return ``value`` as a 1-D array of ``dtype``; integer fields must hold whole numbers."""
    array = np.asarray(value)
    if array.ndim != 1:
        raise EmtrackInputError(
            f"MotTable.{name} must have shape (N,), got shape {array.shape}", path
        )
    if length is not None and array.shape[0] != length:
        raise EmtrackInputError(
            f"MotTable.{name} must have shape ({length},) like frames, got shape {array.shape}",
            path,
        )
    if np.issubdtype(dtype, np.integer):
        if array.dtype.kind == "f":
            if not np.all(np.isfinite(array) & (array == np.round(array))):
                raise EmtrackInputError(f"MotTable.{name} must hold whole numbers", path)
        elif array.dtype.kind not in "iub" and array.size:
            raise EmtrackInputError(
                f"MotTable.{name} must be integers, got dtype {array.dtype}", path
            )
    elif array.dtype.kind not in "fiub" and array.size:
        raise EmtrackInputError(f"MotTable.{name} must be numbers, got dtype {array.dtype}", path)
    return np.ascontiguousarray(array, dtype=dtype)


@dataclass(frozen=True)
class MotTable:
    """Rows of a MOTChallenge file, as aligned arrays sorted by frame.

    Attributes:
        frames: ``(N,)`` int64, frame numbers (1-based, >= 1), sorted ascending; rows of the same
            frame keep their file order.
        ids: ``(N,)`` int64, the id column (-1 in detection files).
        boxes_xyxy: ``(N, 4)`` float64, ``[x1, y1, x2, y2]`` in pixels.
        scores: ``(N,)`` float64, the ``conf`` column (7th); in ground truth 0 marks ignored rows.
        classes: ``(N,)`` int64, the class column of 9-column MOT16/17/20 ground truth, else -1.
        visibility: ``(N,)`` float64, the visibility column of 9-column ground truth, else -1.
        path: The file the rows came from, if any (used in error messages).

    ``__post_init__`` checks the shapes, converts to the dtypes above and checks that ``frames``
    are >= 1 and sorted; use :meth:`from_arrays` to build a table from unsorted rows.
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes_xyxy: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    visibility: np.ndarray
    path: str | None = None

    def __post_init__(self) -> None:
        path = self.path
        frames = _as_1d("frames", self.frames, np.int64, None, path)
        n = frames.shape[0]
        boxes = np.asarray(self.boxes_xyxy)
        if boxes.shape != (n, 4):
            raise EmtrackInputError(
                f"MotTable.boxes_xyxy must have shape ({n}, 4), got shape {boxes.shape}", path
            )
        if boxes.dtype.kind not in "fiub" and boxes.size:
            raise EmtrackInputError(
                f"MotTable.boxes_xyxy must be numbers, got dtype {boxes.dtype}", path
            )
        values = {
            "frames": frames,
            "ids": _as_1d("ids", self.ids, np.int64, n, path),
            "boxes_xyxy": np.ascontiguousarray(boxes, dtype=np.float64),
            "scores": _as_1d("scores", self.scores, np.float64, n, path),
            "classes": _as_1d("classes", self.classes, np.int64, n, path),
            "visibility": _as_1d("visibility", self.visibility, np.float64, n, path),
        }
        if n:
            if np.any(frames < 1):
                raise EmtrackInputError(
                    f"MotTable.frames must be >= 1, got {int(frames.min())}", path
                )
            if np.any(frames[1:] < frames[:-1]):
                raise EmtrackInputError(
                    "MotTable.frames must be sorted ascending (use MotTable.from_arrays to sort)",
                    path,
                )
        if self.path is not None and not isinstance(self.path, str):
            values["path"] = str(self.path)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        """Number of rows ``N``."""
        return int(self.frames.shape[0])

    @property
    def num_frames(self) -> int:
        """The largest frame number, 0 for an empty table."""
        return int(self.frames[-1]) if len(self) else 0

    def frame_index(self, num_frames: int | None = None) -> list[np.ndarray]:
        """Row indices of each frame.

        Args:
            num_frames: Number of frames ``F`` of the sequence (e.g. ``SeqInfo.seq_length``);
                defaults to :attr:`num_frames`. Frames without rows get empty arrays.

        Returns:
            List of length ``F``; entry ``f - 1`` is an int64 ``(n_f,)`` array of the rows of
            frame ``f``, in table order.

        Raises:
            EmtrackInputError: ``num_frames`` is negative or smaller than the largest frame.
        """
        if num_frames is None:
            num_frames = self.num_frames
        num_frames = int(num_frames)
        if num_frames < 0:
            raise EmtrackInputError(f"num_frames must be >= 0, got {num_frames}", self.path)
        if self.num_frames > num_frames:
            raise EmtrackInputError(
                f"rows in frame {self.num_frames} are beyond num_frames={num_frames} "
                "(e.g. the sequence length in seqinfo.ini)",
                self.path,
            )
        bounds = np.searchsorted(self.frames, np.arange(1, num_frames + 2), side="left")
        return [np.arange(bounds[f], bounds[f + 1], dtype=np.int64) for f in range(num_frames)]

    def select(self, rows: np.ndarray | Sequence[int] | Sequence[bool]) -> MotTable:
        """A new table with some rows.

        Args:
            rows: ``(N,)`` bool mask, or integer row indices (any order; repeats allowed).

        Returns:
            The selected rows, sorted by frame again (stable, so rows of the same frame keep
            the order given by ``rows``). ``path`` is kept.

        Raises:
            EmtrackInputError: A mask of the wrong length or indices out of range.
        """
        index = np.asarray(rows)
        if index.dtype == np.bool_:
            if index.shape != (len(self),):
                raise EmtrackInputError(
                    f"select: bool mask must have shape ({len(self)},), got {index.shape}",
                    self.path,
                )
            index = np.flatnonzero(index)
        elif index.size == 0:
            index = np.zeros(0, dtype=np.int64)
        elif index.ndim != 1 or index.dtype.kind not in "iu":
            raise EmtrackInputError(
                f"select: rows must be a 1-D bool mask or integer indices, got dtype "
                f"{index.dtype} and shape {index.shape}",
                self.path,
            )
        elif index.min() < -len(self) or index.max() >= len(self):
            raise EmtrackInputError(
                f"select: row index out of range for a table of {len(self)} rows", self.path
            )
        return MotTable.from_arrays(
            frames=self.frames[index],
            boxes_xyxy=self.boxes_xyxy[index],
            scores=self.scores[index],
            ids=self.ids[index],
            classes=self.classes[index],
            visibility=self.visibility[index],
            path=self.path,
        )

    def to_dataframe(self) -> Any:
        """The rows as a pandas ``DataFrame`` (pandas is optional: ``pip install pandas``).

        Returns:
            One row per table row, columns ``frame``, ``id`` (int64), ``x1``, ``y1``, ``x2``,
            ``y2``, ``score`` (float64), ``class`` (int64), ``visibility`` (float64), in the
            table's order (sorted by frame).
        """
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("MotTable.to_dataframe needs pandas: pip install pandas") from exc
        x1, y1, x2, y2 = self.boxes_xyxy.T
        return pd.DataFrame(
            {
                "frame": self.frames,
                "id": self.ids,
                "x1": x1,
                "y1": y1,
                "x2": x2,
                "y2": y2,
                "score": self.scores,
                "class": self.classes,
                "visibility": self.visibility,
            }
        )

    @classmethod
    def from_arrays(
        cls,
        frames: Any,
        boxes_xyxy: Any,
        scores: Any = None,
        ids: Any = None,
        classes: Any = None,
        visibility: Any = None,
        path: str | PathLike[str] | None = None,
    ) -> MotTable:
        """Build a table from unsorted arrays, sorting rows by frame (stable).

        Args:
            frames: ``(N,)`` whole numbers >= 1.
            boxes_xyxy: ``(N, 4)`` ``[x1, y1, x2, y2]`` in pixels.
            scores: ``(N,)``; default 1.
            ids: ``(N,)`` whole numbers; default -1.
            classes: ``(N,)`` whole numbers; default -1.
            visibility: ``(N,)``; default -1.
            path: Source file, for error messages.

        Returns:
            The table, rows sorted by frame; rows of one frame keep their given order.

        Raises:
            EmtrackInputError: Inconsistent shapes, non-integer frames/ids/classes, frames < 1.
        """
        path_str = None if path is None else str(path)
        frames_arr = _as_1d("frames", frames, np.int64, None, path_str)
        n = frames_arr.shape[0]
        boxes = np.asarray(boxes_xyxy, dtype=np.float64)
        if n == 0 and boxes.size == 0:
            boxes = boxes.reshape(0, 4)

        def column(name: str, value: Any, fill: float, dtype: type[np.generic]) -> np.ndarray:
            if value is None:
                return np.full(n, fill, dtype=dtype)
            return _as_1d(name, value, dtype, n, path_str)

        columns = {
            "ids": column("ids", ids, -1, np.int64),
            "scores": column("scores", scores, 1.0, np.float64),
            "classes": column("classes", classes, -1, np.int64),
            "visibility": column("visibility", visibility, -1.0, np.float64),
        }
        if boxes.shape != (n, 4):
            raise EmtrackInputError(
                f"MotTable.boxes_xyxy must have shape ({n}, 4), got shape {boxes.shape}", path_str
            )
        order = np.argsort(frames_arr, kind="stable")
        if n and np.all(order == np.arange(n)):
            order = slice(None)
        return cls(
            frames=frames_arr[order],
            boxes_xyxy=boxes[order],
            path=path_str,
            **{name: value[order] for name, value in columns.items()},
        )


# --------------------------------------------------------------------------------------------
# read_mot
# --------------------------------------------------------------------------------------------


def _empty_table(path: str) -> MotTable:
    return MotTable(
        frames=np.zeros(0, dtype=np.int64),
        ids=np.zeros(0, dtype=np.int64),
        boxes_xyxy=np.zeros((0, 4), dtype=np.float64),
        scores=np.zeros(0, dtype=np.float64),
        classes=np.zeros(0, dtype=np.int64),
        visibility=np.zeros(0, dtype=np.float64),
        path=path,
    )


def read_mot(
    path: str | PathLike[str],
    *,
    strict: bool = False,
    image_size: tuple[int, int] | None = None,
) -> MotTable:
    """Read a MOTChallenge detection, ground-truth or result file, in any of its dialects.

    Fields are separated by commas (the MOTChallenge standard; spaces around fields allowed)
    or, when the first line has no comma, by runs of spaces or tabs. A first line with no
    number in it is a header naming the columns (see :func:`~emtrack.io.dialect.header_layout`);
    without one, the columns follow from their number (see the module docstring). CRLF line
    endings, a UTF-8 BOM and blank lines are fine; rows may come in any order (they are sorted
    by frame, stably) and frames may have no rows.

    Degenerate rows, boxes of zero width or height (e.g. clipped at the image border) or, when
    ``image_size`` is given, entirely outside the image, are skipped with one
    :class:`~emtrack.errors.EmtrackInputWarning` per file that counts them and names the first
    line (``strict``: an error).

    Args:
        path: The text file.
        strict: Degenerate rows are an error instead of being skipped.
        image_size: ``(width, height)`` of the images in pixels (``seqinfo.ini``'s
            ``imWidth``, ``imHeight``), if known.

    Returns:
        The rows, sorted by frame; boxes converted to ``[x1, y1, x2, y2]``. An empty file (or
        one with a header only) gives an empty table.

    Raises:
        EmtrackInputError: The file is missing, unreadable, binary, not UTF-8 or not ASCII
            (a UTF-8 BOM is allowed), a first line that is neither numbers nor a header, or a
            row is invalid: too few columns (or not as many as the header names), a field
            that is empty or not a number (the column and its text are named), NaN or Inf,
            frame not a whole number >= 1, id or class not a whole number, negative width or
            height (``x2 < x1`` with corners). The message names the file and 1-based line.
    """
    file_path = Path(path)
    text = read_ascii_text(file_path)
    lines: list[str] = []
    line_numbers: list[int] = []
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if stripped:
            lines.append(stripped)
            line_numbers.append(number)
    if not lines:
        return _empty_table(str(file_path))

    comma = "," in lines[0]
    header = None
    underscores = "_" in text
    first_fields = split_fields(lines[0], comma)
    if is_header(first_fields):
        header = header_layout(first_fields, file_path, line_numbers[0])
        lines, line_numbers = lines[1:], line_numbers[1:]
        underscores = underscores and any("_" in line for line in lines)
        if not lines:
            return _empty_table(str(file_path))
    rows = parse_rows(
        lines, line_numbers, file_path, comma, header, strict, image_size, underscores
    )
    table = MotTable.from_arrays(
        frames=rows.frames.astype(np.int64),
        boxes_xyxy=rows.boxes_xyxy,
        scores=rows.scores,
        ids=rows.ids.astype(np.int64),
        classes=rows.classes.astype(np.int64),
        visibility=rows.visibility,
        path=str(file_path),
    )
    if not np.any(rows.degenerate):
        return table
    _warn_degenerate(file_path, rows.degenerate, line_numbers, image_size)
    keep = ~rows.degenerate[np.argsort(rows.frames, kind="stable")]
    return table.select(keep)


def _warn_degenerate(
    path: Path,
    degenerate: np.ndarray,
    line_numbers: list[int],
    image_size: tuple[int, int] | None,
) -> None:
    """The one warning of a file with degenerate rows: their count and the first line."""
    count = int(np.count_nonzero(degenerate))
    first = line_numbers[int(np.argmax(degenerate))]
    what = "zero width or height"
    if image_size is not None:
        what += f", or entirely outside the {image_size[0]}x{image_size[1]} image"
    warnings.warn(
        EmtrackInputWarning(
            f"{path}:{first}: skipped {count} degenerate row{'s' if count > 1 else ''} ({what}); "
            f"the first is line {first} (strict / --strict makes them an error)"
        ),
        stacklevel=3,
    )


# --------------------------------------------------------------------------------------------
# write_mot
# --------------------------------------------------------------------------------------------

_COORDINATE_DECIMALS = 3


def write_mot(path: str | PathLike[str], table: MotTable) -> None:
    """Write a MOTChallenge result file atomically: ``frame,id,x,y,w,h,score,-1,-1,-1`` rows.

    Coordinates are written with 3 decimals (``%.3f``), scores with 6 significant digits
    (``%.6g``, so detection scores round-trip exactly), frame and id as integers. A table with
    classes (any ``classes`` other than -1) is written as 9-column rows
    ``frame,id,x,y,w,h,score,class,-1`` instead: the class in column 8, as in MOT16/17/20 files,
    so that ``read_mot`` reads it back. ``visibility`` is not written. The parent folder is
    created if missing. The file is replaced atomically (see :func:`atomic_write`): on error
    the old file, if any, is untouched.

    Args:
        path: Output file.
        table: Rows to write; ``read_mot(path)`` gives them back up to the rounding above.

    Raises:
        EmtrackInputError: A box or score is not finite, or a width or height would be written
            as ``0.000`` or less (such a file could not be read back); nothing is written.
    """
    out_path = Path(path)
    n = len(table)
    xywh = np.empty((n, 4), dtype=np.float64)
    xywh[:, :2] = table.boxes_xyxy[:, :2]
    xywh[:, 2:] = table.boxes_xyxy[:, 2:] - table.boxes_xyxy[:, :2]
    finite = np.isfinite(xywh).all(axis=1) & np.isfinite(table.scores)
    min_size = 0.5 * 10.0**-_COORDINATE_DECIMALS
    with np.errstate(invalid="ignore"):
        positive = (xywh[:, 2] >= min_size) & (xywh[:, 3] >= min_size)
    bad = np.flatnonzero(~(finite & positive))
    if bad.size:
        row = int(bad[0])
        problem = "is not finite" if not finite[row] else "has width or height <= 0"
        x1, y1, x2, y2 = table.boxes_xyxy[row].tolist()
        raise EmtrackInputError(
            f"cannot write row {row} (frame {int(table.frames[row])}, id {int(table.ids[row])}): "
            f"box [{x1}, {y1}, {x2}, {y2}] with score {float(table.scores[row])} {problem}",
            out_path,
        )
    d = _COORDINATE_DECIMALS
    fields = [table.frames.tolist(), table.ids.tolist(), *xywh.T.tolist(), table.scores.tolist()]
    if np.any(table.classes != -1):
        row_format = f"%d,%d,%.{d}f,%.{d}f,%.{d}f,%.{d}f,%.6g,%d,-1\n"
        fields.append(table.classes.tolist())
    else:
        row_format = f"%d,%d,%.{d}f,%.{d}f,%.{d}f,%.{d}f,%.6g,-1,-1,-1\n"
    columns = zip(*fields, strict=True)
    text = "".join([row_format % row for row in columns])
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_path, "w") as handle:
        handle.write(text)


# --------------------------------------------------------------------------------------------
# seqinfo.ini
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeqInfo:
    """The ``[Sequence]`` section of a MOTChallenge ``seqinfo.ini``.

    Attributes:
        name: Sequence name (``name`` key).
        frame_rate: Frames per second (``frameRate``), > 0.
        seq_length: Number of frames (``seqLength``), >= 1; frames are numbered ``1..seq_length``.
        im_width: Image width in pixels (``imWidth``), if given.
        im_height: Image height in pixels (``imHeight``), if given.
        path: The file it was read from, if any.
    """

    name: str
    frame_rate: float
    seq_length: int
    im_width: int | None = None
    im_height: int | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.frame_rate) and self.frame_rate > 0):
            raise EmtrackInputError(f"frame_rate must be > 0, got {self.frame_rate}", self.path)
        if int(self.seq_length) != self.seq_length or self.seq_length < 1:
            raise EmtrackInputError(
                f"seq_length must be a whole number >= 1, got {self.seq_length}", self.path
            )
        for name in ("im_width", "im_height"):
            value = getattr(self, name)
            if value is not None and (int(value) != value or value < 1):
                raise EmtrackInputError(
                    f"{name} must be a whole number >= 1, got {value}", self.path
                )


def _seqinfo_error(message: str, path: Path, line: int | None = None) -> NoReturn:
    raise EmtrackInputError(message, path, line)


def read_seqinfo(path: str | PathLike[str]) -> SeqInfo:
    """Read the ``[Sequence]`` section of a MOTChallenge ``seqinfo.ini``.

    Section and key names are case-insensitive; ``key=value`` (or ``key: value``) lines, ``;``
    and ``#`` comment lines, blank lines and other sections (ignored) are allowed.

    Args:
        path: The ``seqinfo.ini`` file.

    Returns:
        The sequence info. ``name`` defaults to the name of the file's folder when absent.

    Raises:
        EmtrackInputError: Missing/unreadable/binary file; no ``[Sequence]`` section; a line
            that is not ``key=value``; a key given twice; ``seqLength`` or ``frameRate`` missing;
            ``frameRate`` not a number > 0; ``seqLength``, ``imWidth`` or ``imHeight`` not a
            whole number >= 1. The message names the file, the key and (where known) the line.
    """
    file_path = Path(path)
    text = read_text(file_path)
    section: str | None = None
    seen_section = False
    entries: dict[str, tuple[str, int]] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                _seqinfo_error(f"malformed section header {line!r}", file_path, number)
            section = line[1:-1].strip().lower()
            seen_section = seen_section or section == "sequence"
            continue
        separator = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if separator <= 0:
            _seqinfo_error(f"expected 'key=value', got {line!r}", file_path, number)
        if section != "sequence":
            continue
        key = line[:separator].strip().lower()
        if key in entries:
            _seqinfo_error(
                f"key {key!r} given twice (first on line {entries[key][1]})", file_path, number
            )
        entries[key] = (line[separator + 1 :].strip(), number)
    if not seen_section:
        _seqinfo_error("no [Sequence] section", file_path)

    def read_number(key: str, display: str, *, whole: bool, required: bool) -> float | None:
        if key not in entries:
            if required:
                _seqinfo_error(f"missing key {display} in [Sequence]", file_path)
            return None
        value_text, line = entries[key]
        try:
            if "_" in value_text:
                raise ValueError(value_text)
            value = float(value_text)
        except ValueError:
            _seqinfo_error(f"{display} is not a number: {value_text!r}", file_path, line)
        if not np.isfinite(value) or value <= 0:
            _seqinfo_error(f"{display} must be > 0, got {value_text!r}", file_path, line)
        if whole and not (value == int(value) and value <= _MAX_EXACT_INTEGER):
            _seqinfo_error(f"{display} must be a whole number, got {value_text!r}", file_path, line)
        return value

    frame_rate = read_number("framerate", "frameRate", whole=False, required=True)
    seq_length = read_number("seqlength", "seqLength", whole=True, required=True)
    im_width = read_number("imwidth", "imWidth", whole=True, required=False)
    im_height = read_number("imheight", "imHeight", whole=True, required=False)
    name = entries["name"][0] if "name" in entries and entries["name"][0] else None
    assert frame_rate is not None and seq_length is not None
    return SeqInfo(
        name=name if name is not None else file_path.resolve().parent.name,
        frame_rate=float(frame_rate),
        seq_length=int(seq_length),
        im_width=None if im_width is None else int(im_width),
        im_height=None if im_height is None else int(im_height),
        path=str(file_path),
    )


# --------------------------------------------------------------------------------------------
# find_sequences
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SequencePaths:
    """Files of one MOTChallenge sequence folder ``<seq>/``.

    Attributes:
        name: Sequence name (the folder name).
        det: ``<seq>/det/<det_name>``.
        seqinfo: ``<seq>/seqinfo.ini``, or None when absent.
        gt: ``<seq>/gt/gt.txt``, or None when absent.
    """

    name: str
    det: Path
    seqinfo: Path | None
    gt: Path | None


def _sequence_paths(folder: Path, det_name: str) -> SequencePaths | None:
    det = folder / "det" / det_name
    if not det.is_file():
        return None
    seqinfo = folder / "seqinfo.ini"
    gt = folder / "gt" / "gt.txt"
    return SequencePaths(
        name=folder.resolve().name if folder.name in ("", ".", "..") else folder.name,
        det=det,
        seqinfo=seqinfo if seqinfo.is_file() else None,
        gt=gt if gt.is_file() else None,
    )


def find_sequences(root: str | PathLike[str], det_name: str = "det.txt") -> list[SequencePaths]:
    """Find the sequences under a MOTChallenge-style folder.

    Args:
        root: Either a folder of sequences ``<root>/<seq>/det/<det_name>`` (with optional
            ``<seq>/seqinfo.ini`` and ``<seq>/gt/gt.txt``), or a single sequence folder that
            itself has ``det/<det_name>``. Sub-folders without ``det/<det_name>`` are skipped.
        det_name: File name of the detections inside each ``det/`` folder.

    Returns:
        One entry per sequence, sorted by name.

    Raises:
        EmtrackInputError: ``root`` is not a folder, or no sequence with ``det/<det_name>``
            is found.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        what = "not found" if not root_path.exists() else "is not a folder"
        raise EmtrackInputError(f"sequence folder {what}", root_path)
    single = _sequence_paths(root_path, det_name)
    if single is not None:
        return [single]
    found = [
        paths
        for child in root_path.iterdir()
        if child.is_dir() and (paths := _sequence_paths(child, det_name)) is not None
    ]
    if not found:
        hint = ""
        if (root_path / "det").is_dir():
            others = sorted(p.name for p in (root_path / "det").iterdir() if p.is_file())
            hint = f"; its det/ folder has {others} (choose one with det_name)"
        raise EmtrackInputError(
            f"no sequences found: expected <seq>/det/{det_name} or det/{det_name} here{hint}",
            root_path,
        )
    return sorted(found, key=lambda paths: paths.name)
