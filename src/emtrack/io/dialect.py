"""Det-file dialects: how fields are separated and which column holds what.

A :class:`Layout` says which columns of a row :func:`~emtrack.io.read_mot` parses and what each
holds. Without a header line the layout follows from the number of columns (the MOTChallenge
forms, see :func:`positional_layout`); a header line (a first line with no number in it) names
the columns instead (see :func:`header_layout`), in any order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from emtrack.errors import EmtrackInputError

__all__ = [
    "HEADER_NAMES",
    "MIN_COLUMNS",
    "Layout",
    "header_layout",
    "is_header",
    "is_number",
    "positional_layout",
    "split_fields",
]

#: The fewest columns of a row without a header: ``frame,id,x,y,w,h`` (score 1).
MIN_COLUMNS = 6
#: Columns parsed from rows without a header; later ones are ignored (not even parsed).
MAX_POSITIONAL_COLUMNS = 10

#: Header names (lower case, ``_``, ``-``, spaces and ``<>`` brackets dropped) of each role.
#: Other names are allowed and their columns ignored (world coordinates, truncation, ...).
HEADER_NAMES: dict[str, tuple[str, ...]] = {
    "frame": ("frame", "frameid", "frameindex", "frameidx", "framenumber", "frameno"),
    "id": ("id", "trackid", "trackerid", "targetid", "objectid", "tid"),
    "left": ("x", "x1", "xmin", "left", "bbleft", "bboxleft"),
    "top": ("y", "y1", "ymin", "top", "bbtop", "bboxtop"),
    "width": ("w", "width", "bbwidth", "bboxwidth"),
    "height": ("h", "height", "bbheight", "bboxheight"),
    "right": ("x2", "xmax", "right", "bbright", "bboxright"),
    "bottom": ("y2", "ymax", "bottom", "bbbottom", "bboxbottom"),
    "conf": ("conf", "score", "confidence", "detscore", "prob", "probability"),
    "class": ("class", "classid", "cls", "category", "categoryid", "label", "objectcategory"),
    "visibility": ("visibility", "vis"),
}
_ROLE_OF_NAME = {name: role for role, names in HEADER_NAMES.items() for name in names}
#: How messages call each role.
_ROLE_LABELS = {"left": "x (x1)", "top": "y (y1)", "width": "w", "height": "h", "right": "x2",
                "bottom": "y2", "conf": "score"}  # fmt: skip


@dataclass(frozen=True)
class Layout:
    """Which columns of a row are parsed, and the role of each.

    Attributes:
        columns: 0-based file columns parsed, increasing.
        names: Their names in messages (``x``, ``w``, or the header's own names).
        roles: Their roles (keys of :data:`HEADER_NAMES`), or None for a column that is only
            checked to be a number (the world coordinates ``X, Y, Z``).
        num_columns: The number of columns of the rows it reads (the header's length), or
            None for positional layouts (each row is read by its own count).
        header_line: The header's 1-based line, if any.
    """

    columns: tuple[int, ...]
    names: tuple[str, ...]
    roles: tuple[str | None, ...]
    num_columns: int | None = None
    header_line: int | None = None

    def index(self, role: str) -> int | None:
        """Position in :attr:`columns` of ``role``'s column, None if absent."""
        return self.roles.index(role) if role in self.roles else None

    def label(self, position: int) -> str:
        """``'frame (column 1)'`` style name of parsed column ``position`` for messages."""
        name, column = self.names[position], self.columns[position] + 1
        role = self.roles[position]
        prefix = {"width": "width ", "height": "height "}.get(role or "", "")
        return f"{prefix}{name} (column {column})"

    def field(self, position: int) -> str:
        """``'column 3 (x)'`` style name of parsed column ``position`` for messages."""
        return f"column {self.columns[position] + 1} ({self.names[position]})"


_POSITIONAL_NAMES = ("frame", "id", "x", "y", "w", "h", "conf")
_POSITIONAL_ROLES = ("frame", "id", "left", "top", "width", "height", "conf")


def positional_layout(num_columns: int) -> Layout:
    """The MOTChallenge layout of a row with ``num_columns >= 6`` fields and no header.

    * 6: ``frame,id,x,y,w,h`` (score 1; only in files whose rows all have 6 columns);
    * 7: ``frame,id,x,y,w,h,conf``;
    * 8: ``frame,id,x,y,w,h,conf,X`` (read like 10 columns with the world coordinates cut off);
    * 9: ``frame,id,x,y,w,h,conf,class,visibility`` (MOT16/17/20 ground truth);
    * 10: ``frame,id,x,y,w,h,conf,X,Y,Z`` (MOT15; ``X, Y, Z`` are checked to be numbers);
    * more: the first 10 as above, the rest ignored.
    """
    if num_columns == 9:
        names = (*_POSITIONAL_NAMES, "class", "visibility")
        roles: tuple[str | None, ...] = (*_POSITIONAL_ROLES, "class", "visibility")
    else:
        k = min(num_columns, MAX_POSITIONAL_COLUMNS)
        names = (*_POSITIONAL_NAMES, "X", "Y", "Z")[:k]
        roles = (*_POSITIONAL_ROLES, None, None, None)[:k]
    return Layout(tuple(range(len(names))), names, roles)


def split_fields(line: str, comma: bool) -> list[str]:
    """The fields of a stripped line: split at commas (``comma``) or at runs of whitespace."""
    return line.split(",") if comma else line.split()


def is_number(text: str) -> bool:
    """Whether ``text`` reads as a number (as :func:`float` does, without ``_`` separators)."""
    if "_" in text:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_header(fields: list[str]) -> bool:
    """Whether a first line's ``fields`` are a header: no number, and some letter."""
    return not any(is_number(field.strip()) for field in fields) and any(
        char.isalpha() for field in fields for char in field
    )


def _normalise(name: str) -> str:
    return "".join(char for char in name.lower() if char not in "_- <>\"'")


def header_layout(fields: list[str], path: Path, line: int) -> Layout:
    """The layout named by a header line's ``fields`` (see :func:`is_header`).

    The header must name a frame column, the box (``x, y, w, h`` or ``x1, y1, x2, y2``, see
    :data:`HEADER_NAMES` for the other names accepted) and may name id, score, class and
    visibility columns; other columns are ignored (also ``X``, ``Y`` in upper case next to
    ``x``, ``y``: MOT's world coordinates). Rows must then have as many columns as the header.
    A leading ``#`` is allowed.

    Raises:
        EmtrackInputError: No column is named as :data:`HEADER_NAMES` knows (the line is
            neither a header nor a row of numbers), a role named twice, or a required column
            missing. The message names ``path`` and ``line``.
    """
    cleaned = [field.strip() for field in fields]
    if cleaned and cleaned[0] == "#":  # "# frame id ...": the "#" is no column
        cleaned = cleaned[1:]
    elif cleaned and cleaned[0].startswith("#"):
        cleaned[0] = cleaned[0][1:].strip()
    roles = [_ROLE_OF_NAME.get(_normalise(name)) for name in cleaned]
    if not any(roles):
        _header_error(
            f"not a row of numbers, and not a header line naming the columns (e.g. "
            f"frame,id,x,y,w,h,score): {', '.join(repr(name) for name in cleaned[:4])}"
            f"{', ...' if len(cleaned) > 4 else ''}",
            path,
            line,
        )
    seen: dict[str, int] = {}
    for column, role in enumerate(roles):
        if role is None:
            continue
        if role in seen and "X" <= cleaned[column] <= "Y" and len(cleaned[column]) == 1:
            roles[column] = None  # MOT's world coordinates X, Y after x, y: ignored
            continue
        if role in seen and cleaned[seen[role]] in ("X", "Y"):
            roles[seen[role]] = None  # the same, before x, y
        elif role in seen:
            _header_error(
                f"header names the {_ROLE_LABELS.get(role, role)} column twice: "
                f"{cleaned[seen[role]]!r} (column {seen[role] + 1}) and {cleaned[column]!r} "
                f"(column {column + 1})",
                path,
                line,
            )
        seen[role] = column
    missing = [
        need
        for need, options in (
            ("frame", ("frame",)),
            ("x or x1", ("left",)),
            ("y or y1", ("top",)),
            ("w or x2", ("width", "right")),
            ("h or y2", ("height", "bottom")),
        )
        if not any(option in seen for option in options)
    ]
    if ("width" in seen and "right" in seen) or ("height" in seen and "bottom" in seen):
        _header_error("header names both a width and an x2 (or a height and a y2)", path, line)
    if missing:
        _header_error(
            f"header names no {', no '.join(missing)} column (known names: "
            "frame, id, x, y, w, h, x1, y1, x2, y2, score, class, visibility; see "
            "docs/inputs.md)",
            path,
            line,
        )
    parsed = sorted(seen.values())
    return Layout(
        columns=tuple(parsed),
        names=tuple(cleaned[column] for column in parsed),
        roles=tuple(roles[column] for column in parsed),
        num_columns=len(cleaned),
        header_line=line,
    )


def _header_error(message: str, path: Path, line: int) -> NoReturn:
    raise EmtrackInputError(message, path, line)
