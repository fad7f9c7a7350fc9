"""Benchmark charts: HOTA and IDF1, and frames/s, per tracker for every ROOT of a benchmark."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from emtrack.errors import EmtrackInputError
from emtrack.viz._common import new_figure, plot_style, require, save_figure

__all__ = ["check_plot_target", "load_bench_rows", "plot_bench"]

#: Bars drawn in the score panel when the rows have them (key, label).
_SCORES = (("hota", "HOTA"), ("idf1", "IDF1"))


def load_bench_rows(source: str | Path | Mapping[str, Any] | Any) -> list[dict[str, Any]]:
    """The rows of a benchmark: a JSON file written by ``emtrack bench ... --json``, its
    parsed dict, or a report object with ``to_dict()`` (e.g. a ``BenchReport``).

    Every row needs ``root`` and ``tracker``; ``hota``, ``idf1`` and ``fps`` are drawn when
    present (any benchmark whose rows have them can be plotted).

    Raises:
        EmtrackInputError: Not found, not JSON, or no usable rows.
    """
    path = None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise EmtrackInputError("benchmark JSON not found", path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EmtrackInputError(
                f"not valid JSON ({exc})", path, getattr(exc, "lineno", None)
            ) from exc
    elif isinstance(source, Mapping):
        data = source
    else:
        data = source.to_dict()
    rows = data.get("rows") if isinstance(data, Mapping) else None
    if not isinstance(rows, list) or not rows:
        raise EmtrackInputError("no benchmark rows (expected a 'rows' list)", path)
    for k, row in enumerate(rows):
        if not isinstance(row, Mapping) or "root" not in row or "tracker" not in row:
            raise EmtrackInputError(f"row {k} has no 'root' and 'tracker'", path)
    return [dict(row) for row in rows]


def check_plot_target(out: str | Path) -> None:
    """Check before a long benchmark that its chart can be drawn: a ``.png`` path, matplotlib.

    Raises:
        EmtrackInputError: ``out`` is not a ``.png`` file name.
        MissingExtraError: matplotlib is not installed.
    """
    path = Path(out)
    if path.suffix.lower() != ".png" or path.is_dir():
        raise EmtrackInputError("--plot must be a .png file name", path)
    require("matplotlib", "plotting benchmark results")


def _number(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def plot_bench(
    source: str | Path | Mapping[str, Any] | Any, out: str | Path, title: str | None = None
) -> Path:
    """One row of panels per ROOT: HOTA and IDF1 bars, and frames/s bars, per tracker.

    Args:
        source: See :func:`load_bench_rows`.
        out: The ``.png`` to write (atomically).
        title: Figure title (default: none).
    """
    matplotlib = require("matplotlib", "plotting benchmark results")
    rows = load_bench_rows(source)
    roots: list[str] = list(dict.fromkeys(str(row["root"]) for row in rows))
    score_keys = [
        (k, label) for k, label in _SCORES if any(_number(r, k) is not None for r in rows)
    ]
    has_fps = any(_number(row, "fps") is not None for row in rows)
    columns = int(bool(score_keys)) + int(has_fps)
    if columns == 0:
        raise EmtrackInputError("the benchmark rows have neither scores (hota/idf1) nor fps")
    trackers = list(dict.fromkeys(str(row["tracker"]) for row in rows))
    colours = {name: f"C{k % 10}" for k, name in enumerate(trackers)}
    with matplotlib.rc_context(plot_style()):
        figure = new_figure(4.2 * columns + 0.6, 0.6 + 2.3 * len(roots))
        axes = figure.subplots(len(roots), columns, squeeze=False)
        for r, root in enumerate(roots):
            root_rows = [row for row in rows if str(row["root"]) == root]
            names = [str(row["tracker"]) for row in root_rows]
            name = Path(root).name or root
            column = 0
            if score_keys:
                _score_bars(axes[r][column], root_rows, names, score_keys, colours)
                axes[r][column].set_title(f"{name}: " + " / ".join(lb for _, lb in score_keys))
                column += 1
            if has_fps:
                _fps_bars(axes[r][column], root_rows, names, colours)
                axes[r][column].set_title(f"{name}: frames/s (update calls)")
        if score_keys:
            from matplotlib.patches import Patch

            handles = [
                Patch(
                    facecolor="0.45",
                    alpha=1.0 if k == 0 else 0.55,
                    hatch=None if k == 0 else "//",
                    edgecolor="white",
                    label=label,
                )
                for k, (_, label) in enumerate(score_keys)
            ]
            figure.legend(handles=handles, loc="outside upper left", ncols=len(handles))
        if title:
            figure.suptitle(title)
        return save_figure(figure, out, dpi=100)


def _score_bars(
    ax: Any,
    rows: Sequence[Mapping[str, Any]],
    names: list[str],
    keys: list[tuple[str, str]],
    colours: dict[str, str],
) -> None:
    """Grouped horizontal bars: one group per tracker, one bar per score (hatched = 2nd)."""
    height = 0.8 / len(keys)
    for k, (key, label) in enumerate(keys):
        positions = [i + (k - (len(keys) - 1) / 2) * height for i in range(len(names))]
        values = [_number(row, key) or 0.0 for row in rows]
        bars = ax.barh(
            positions,
            values,
            height=height * 0.95,
            color=[colours[n] for n in names],
            alpha=1.0 if k == 0 else 0.55,
            hatch=None if k == 0 else "//",
            edgecolor="white",
            label=label,
        )
        ax.bar_label(bars, fmt="%.1f", fontsize=6.5, padding=2)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    best = max((_number(row, key) or 0.0) for row in rows for key, _ in keys)
    ax.set_xlim(0, max(10.0, best * 1.18))
    ax.grid(axis="y", visible=False)


def _fps_bars(
    ax: Any, rows: Sequence[Mapping[str, Any]], names: list[str], colours: dict[str, str]
) -> None:
    values = [_number(row, "fps") or 0.0 for row in rows]
    bars = ax.barh(range(len(names)), values, color=[colours[n] for n in names], height=0.7)
    ax.bar_label(bars, fmt="%.0f", fontsize=6.5, padding=2)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, max(values, default=1.0) * 1.18 or 1.0)
    ax.grid(axis="y", visible=False)
