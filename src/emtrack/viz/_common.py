"""Helpers shared by the viz modules: optional imports, atomic image writes, frame ranges."""

from __future__ import annotations

import importlib
import io
from pathlib import Path
from types import ModuleType
from typing import Any

from emtrack.errors import EmtrackInputError
from emtrack.io.atomic import atomic_write

#: Largest PNG the contact sheet and the README pictures may be (bytes).
MAX_PNG_BYTES = 300_000


class MissingExtraError(ImportError):
    """An optional package of ``emtrack[viz]`` (or supervision/pandas) is not installed."""


def require(module: str, purpose: str, install: str = "emtrack[viz]") -> ModuleType:
    """Import an optional package, or raise :class:`MissingExtraError` saying how to get it.

    Args:
        module: Import name, e.g. ``"matplotlib"`` or ``"av"``.
        purpose: What needs it, for the message (e.g. ``"writing MP4 videos"``).
        install: The pip requirement that provides it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs the optional package '{module}': pip install '{install}'"
        ) from exc


def new_figure(width_in: float, height_in: float, dpi: int = 100) -> Any:
    """A matplotlib ``Figure`` with an Agg canvas, without pyplot (no global backend state)."""
    require("matplotlib", "plotting")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_style() -> dict[str, Any]:
    """``rc_context`` settings of every emtrack plot (applied locally, never globally)."""
    return {
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "legend.fontsize": 8,
        "legend.frameon": False,
    }


def save_figure(figure: Any, path: str | Path, dpi: int | None = None) -> Path:
    """Render a figure to PNG in memory, then write it atomically (``.png`` only)."""
    path = Path(path)
    _check_png_path(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    write_bytes_atomic(path, buffer.getvalue())
    return path


def save_png(image: Any, path: str | Path, max_bytes: int | None = None) -> Path:
    """Write a PIL image as an optimised PNG, atomically.

    With ``max_bytes``, the image is quantised to 256 colours if needed, then shrunk by 15 %
    steps until the file fits.
    """
    from PIL import Image

    path = Path(path)
    _check_png_path(path)
    data = _png_bytes(image)
    if max_bytes is not None:
        candidate = image
        while len(data) > max_bytes:
            data = _png_bytes(candidate.quantize(256, method=Image.Quantize.MEDIANCUT))
            if len(data) <= max_bytes:
                break
            width, height = candidate.size
            if width < 64 or height < 64:
                raise ValueError(f"cannot fit {path} into {max_bytes} bytes")
            candidate = candidate.resize(
                (int(width * 0.85), int(height * 0.85)), Image.Resampling.LANCZOS
            )
            data = _png_bytes(candidate)
    write_bytes_atomic(path, data)
    return path


def _png_bytes(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _check_png_path(path: Path) -> None:
    if path.suffix.lower() != ".png":
        raise EmtrackInputError("the picture must be a .png file", path)
    if path.is_dir():
        raise EmtrackInputError("is a folder; give the picture's file name", path)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def parse_frame_range(text: str | None, num_frames: int) -> range:
    """Frames ``A:B`` (1-based, both inclusive, either may be left out) within ``1..num_frames``.

    ``None`` gives every frame; ``"50"`` is frame 50 alone.

    Raises:
        EmtrackInputError: Not of that form, empty, or outside the sequence.
    """
    if text is None:
        return range(1, num_frames + 1)
    start_text, sep, end_text = text.partition(":")
    try:
        start = int(start_text) if start_text.strip() else 1
        end = int(end_text) if end_text.strip() else num_frames
        if not sep:
            end = start
    except ValueError:
        raise EmtrackInputError(
            f"--frames must look like A:B (frame numbers), got {text!r}"
        ) from None
    if not 1 <= start <= end <= num_frames:
        raise EmtrackInputError(
            f"--frames {text} is empty or outside the sequence's frames 1..{num_frames}"
        )
    return range(start, end + 1)
