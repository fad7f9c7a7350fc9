"""The data rows of a det file: fields parsed in bulk, checked, and the first problem named.

The bulk path splits and parses every row of one column count at once; only when it fails is
the file read again line by line (:func:`row_problem`) to name the first bad line, with the
same checks (:func:`value_checks`), so both paths agree on what is valid.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from emtrack.errors import EmtrackInputError
from emtrack.io.dialect import MIN_COLUMNS, Layout, is_number, positional_layout, split_fields

__all__ = ["ParsedRows", "parse_rows", "row_problem", "value_checks"]

# Largest magnitude at which every integer is exactly representable in float64.
MAX_EXACT_INTEGER = float(2**53)

_DEGENERATE_NOTE = (
    " (a degenerate row: an error with strict / --strict, otherwise skipped with a warning)"
)
_CORNERS_HINT = (
    "; x2 < x1 or y2 < y1 means the columns are not the corners the header names: are they "
    "swapped, or are they w, h (name them w, h then)?"
)
_NEGATIVE_HINT = (
    "; a negative size means the columns are not x, y, w, h: corners x2, y2 given for w, h, or "
    "a column missing or extra? A header line can name the columns, e.g. "
    "frame,id,x1,y1,x2,y2,score (see docs/inputs.md)"
)


@dataclass(frozen=True)
class ParsedRows:
    """Columns of a det file's data rows, in file order (``N`` rows).

    Attributes:
        frames: ``(N,)`` float64 whole numbers >= 1.
        ids: ``(N,)`` float64 whole numbers (-1 where the layout has no id column).
        boxes_xyxy: ``(N, 4)`` float64 ``[x1, y1, x2, y2]``.
        scores: ``(N,)`` float64 (1 where the layout has no score column).
        classes: ``(N,)`` float64 whole numbers (-1 where the layout has no class column).
        visibility: ``(N,)`` float64 (-1 where the layout has no visibility column).
        degenerate: ``(N,)`` bool, rows of zero width or height, or entirely outside the
            image (always False with ``strict``, which makes them errors).
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes_xyxy: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    visibility: np.ndarray
    degenerate: np.ndarray


def _integral(values: np.ndarray) -> np.ndarray:
    """Elementwise: finite whole number of magnitude <= 2**53."""
    with np.errstate(invalid="ignore"):
        return (np.floor(values) == values) & (np.abs(values) <= MAX_EXACT_INTEGER)


def _boxes(values: np.ndarray, layout: Layout) -> np.ndarray:
    """``(M, 4)`` xyxy boxes of parsed rows ``values`` ``(M, K)``."""
    left, top = values[:, layout.index("left")], values[:, layout.index("top")]
    width, height = layout.index("width"), layout.index("height")
    right = left + values[:, width] if width is not None else values[:, layout.index("right")]
    bottom = top + values[:, height] if height is not None else values[:, layout.index("bottom")]
    return np.stack([left, top, right, bottom], axis=1)


def value_checks(
    values: np.ndarray, layout: Layout, image_size: tuple[int, int] | None
) -> list[tuple[np.ndarray, int, str, bool]]:
    """The checks on parsed rows, shared by the bulk and the per-line path.

    Args:
        values: ``(M, K)`` float64, the ``K`` parsed fields (``layout.columns``) of M rows.
        layout: What each field holds.
        image_size: ``(width, height)`` in pixels; boxes entirely outside are degenerate.

    Returns:
        ``(ok, position, message, degenerate)`` tuples, in the order the per-line path reports
        them: ``ok`` is an ``(M,)`` bool array, ``position`` the parsed field the message is
        about, ``message`` a template with ``{text}`` for that field's text and ``{box}`` for
        the row's box, and ``degenerate`` whether a failure makes the row degenerate (skipped
        with a warning) rather than invalid.
    """
    finite = np.isfinite(values)
    checks = [
        (finite[:, j], j, f"{layout.field(j)} must be finite, got {{text}}", False)
        for j in range(values.shape[1])
    ]
    label = layout.label
    with np.errstate(invalid="ignore"):
        frame = layout.index("frame")
        assert frame is not None
        checks += [
            (_integral(values[:, frame]), frame, f"{label(frame)} must be a whole number, got "
             "{text}", False),
            (values[:, frame] >= 1, frame, f"{label(frame)} must be >= 1, got {{text}}", False),
        ]  # fmt: skip
        track = layout.index("id")
        if track is not None:
            checks.append(
                (_integral(values[:, track]), track, f"{label(track)} must be a whole number, "
                 "got {text}", False)
            )  # fmt: skip
        for size, start, end in (("width", "left", "right"), ("height", "top", "bottom")):
            j = layout.index(size)
            if j is not None:
                checks += [
                    (values[:, j] >= 0, j, f"{label(j)} must be > 0, got {{text}}"
                     + _NEGATIVE_HINT, False),
                    (values[:, j] != 0, j, f"{label(j)} must be > 0, got {{text}}"
                     + _DEGENERATE_NOTE, True),
                ]  # fmt: skip
                continue
            j, first = layout.index(end), layout.index(start)
            assert j is not None and first is not None
            checks += [
                (values[:, j] >= values[:, first], j, f"{layout.field(j)} must be > "
                 f"{layout.field(first)}, got {{text}} for the box {{box}}" + _CORNERS_HINT,
                 False),
                (values[:, j] != values[:, first], j, f"{layout.field(j)} must be > "
                 f"{layout.field(first)}, got {{text}} for the box {{box}}" + _DEGENERATE_NOTE,
                 True),
            ]  # fmt: skip
        klass = layout.index("class")
        if klass is not None:
            checks.append(
                (_integral(values[:, klass]), klass, f"{label(klass)} must be a whole number, "
                 "got {text}", False)
            )  # fmt: skip
        if image_size is not None:
            width, height = image_size
            boxes = _boxes(values, layout)
            inside = (
                (boxes[:, 2] > 0)
                & (boxes[:, 3] > 0)
                & (boxes[:, 0] < width)
                & (boxes[:, 1] < height)
            )
            message = f"the box {{box}} lies entirely outside the {width}x{height} image"
            checks.append((inside, layout.index("left"), message + _DEGENERATE_NOTE, True))
    return checks


def _too_few_columns(count: int, line: str, comma: bool) -> str:
    message = (
        f"too few columns: {count}, need at least {MIN_COLUMNS} (frame,id,x,y,w,h[,conf,...]) "
        "separated by commas, spaces or tabs"
    )
    for separator in ";|":
        if separator in line:
            return message + f"; fields separated by {separator!r}? use commas, spaces or tabs"
    if any(char.isalpha() for char in line):
        message += (
            "; a header line (the first line only) names the columns, e.g. frame,id,x,y,w,h,score,"
            " and holds no number"
        )
    return message


def row_problem(
    line: str,
    comma: bool,
    header: Layout | None,
    all_six: bool,
    strict: bool,
    image_size: tuple[int, int] | None,
) -> str | None:
    """What is wrong with one stripped data line, or None if it is valid (or only degenerate,
    unless ``strict``).

    Args:
        line: The line.
        comma: Fields are separated by commas (else by whitespace).
        header: The header's layout, None for positional rows.
        all_six: Every row of the file with 6 or more columns has exactly 6 (the 6-column
            form is allowed).
        strict: Degenerate rows are problems too.
        image_size: ``(width, height)``, if known.
    """
    tokens = split_fields(line, comma)
    n = len(tokens)
    if header is not None:
        if n != header.num_columns:
            return (
                f"{n} columns, but the header (line {header.header_line}) names "
                f"{header.num_columns}"
            )
        layout = header
    elif n < MIN_COLUMNS:
        return _too_few_columns(n, line, comma)
    elif n == MIN_COLUMNS and not all_six:
        return (
            f"too few columns: {n}, need at least 7 (frame,id,x,y,w,h,conf) like the file's other "
            "rows (the 6-column form frame,id,x,y,w,h is read only when every row has 6)"
        )
    else:
        layout = positional_layout(n)
    values = np.empty((1, len(layout.columns)), dtype=np.float64)
    for j, column in enumerate(layout.columns):
        text = tokens[column].strip()
        if not text:
            return f"{layout.field(j)} is empty"
        if not is_number(text):
            return f"{layout.field(j)} is not a number: {text!r}"
        values[0, j] = float(text)
    for ok, position, message, degenerate in value_checks(values, layout, image_size):
        if not ok[0] and (strict or not degenerate):
            box = np.round(_boxes(values, layout)[0], 3).tolist()
            text = tokens[layout.columns[position]].strip()
            return message.format(text=repr(text), box=box)
    return None


def _raise_first_problem(
    lines: list[str],
    line_numbers: list[int],
    path: Path,
    comma: bool,
    header: Layout | None,
    all_six: bool,
    strict: bool,
    image_size: tuple[int, int] | None,
) -> NoReturn:
    """Raise for the first invalid row in file order (the slow path, run only after a failure)."""
    for line, number in zip(lines, line_numbers, strict=True):
        problem = row_problem(line, comma, header, all_six, strict, image_size)
        if problem is not None:
            raise EmtrackInputError(problem, path, number)
    # The bulk and per-line checks agree by construction, so this is not reached.
    raise EmtrackInputError("invalid content (could not locate the bad line)", path)


def parse_rows(
    lines: list[str],
    line_numbers: list[int],
    path: Path,
    comma: bool,
    header: Layout | None,
    strict: bool = False,
    image_size: tuple[int, int] | None = None,
    underscores: bool = True,
) -> ParsedRows:
    """Parse and check the data rows of a det file.

    Args:
        lines: The non-blank data lines (no header), stripped; at least one.
        line_numbers: Their 1-based line numbers in the file.
        path: The file, for messages.
        comma: Fields are separated by commas (else by runs of whitespace).
        header: The layout a header line named, or None: each row is read by its own column
            count (:func:`~emtrack.io.dialect.positional_layout`).
        strict: Degenerate rows are errors.
        image_size: ``(width, height)`` in pixels, if known: boxes entirely outside are
            degenerate.
        underscores: Whether a line may hold ``_`` (False when the caller knows it does not:
            the check is skipped).

    Returns:
        The rows' columns.

    Raises:
        EmtrackInputError: The first invalid row in file order, with its line.
    """
    num_rows = len(lines)
    split_lines: list[list[str]] | None = None
    if comma:
        counts = np.fromiter((line.count(",") for line in lines), np.int64, count=num_rows) + 1
    else:
        split_lines = [line.split() for line in lines]
        counts = np.fromiter(map(len, split_lines), np.int64, count=num_rows)
    # Rows that are too short are errors of their own; they do not make the 6-column rows wrong.
    all_six = bool(np.all(counts[counts >= MIN_COLUMNS] == MIN_COLUMNS))

    def fail() -> NoReturn:
        _raise_first_problem(lines, line_numbers, path, comma, header, all_six, strict, image_size)

    if header is not None:
        if np.any(counts != header.num_columns):
            fail()
    elif counts.min() < MIN_COLUMNS or (not all_six and counts.min() == MIN_COLUMNS):
        fail()
    if underscores and any("_" in line for line in lines):  # float() accepts "1_000"; we do not
        fail()

    frames = np.empty(num_rows, dtype=np.float64)
    ids = np.full(num_rows, -1.0, dtype=np.float64)
    boxes = np.empty((num_rows, 4), dtype=np.float64)
    scores = np.ones(num_rows, dtype=np.float64)
    classes = np.full(num_rows, -1.0, dtype=np.float64)
    visibility = np.full(num_rows, -1.0, dtype=np.float64)
    degenerate = np.zeros(num_rows, dtype=bool)
    unique_counts = np.unique(counts).tolist()
    for num_columns in unique_counts:
        layout = header if header is not None else positional_layout(num_columns)
        k = len(layout.columns)
        where: slice | np.ndarray
        if len(unique_counts) == 1:
            where = slice(None)
            indices: Iterable[int] = range(num_rows)
        else:
            where = np.flatnonzero(counts == num_columns)
            indices = where.tolist()
        group_size = num_rows if isinstance(where, slice) else len(where)
        prefix = layout.columns == tuple(range(k))
        tokens: Iterable[str]
        if comma and prefix and num_columns == k:  # one split of the whole group: fastest
            group = lines if isinstance(where, slice) else [lines[i] for i in indices]
            tokens = ",".join(group).split(",")
        elif comma:
            tokens = itertools.chain.from_iterable(
                _pick(lines[i].split(","), layout.columns, prefix) for i in indices
            )
        else:
            assert split_lines is not None
            tokens = itertools.chain.from_iterable(
                _pick(split_lines[i], layout.columns, prefix) for i in indices
            )
        try:
            values = np.fromiter(map(float, tokens), dtype=np.float64, count=group_size * k)
        except ValueError:
            fail()
        values = values.reshape(group_size, k)
        bad_row = np.zeros(group_size, dtype=bool)
        for ok, _, _, is_degenerate in value_checks(values, layout, image_size):
            if strict or not is_degenerate:
                if not ok.all():
                    fail()
            else:
                bad_row |= ~ok
        degenerate[where] = bad_row
        frames[where] = values[:, layout.index("frame")]
        boxes[where] = _boxes(values, layout)
        for target, role in ((ids, "id"), (scores, "conf"), (classes, "class")):
            j = layout.index(role)
            if j is not None:
                target[where] = values[:, j]
        j = layout.index("visibility")
        if j is not None:
            visibility[where] = values[:, j]
    return ParsedRows(frames, ids, boxes, scores, classes, visibility, degenerate)


def _pick(fields: list[str], columns: tuple[int, ...], prefix: bool) -> list[str]:
    return fields[: len(columns)] if prefix else [fields[c] for c in columns]
