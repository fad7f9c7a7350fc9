"""Tracks drawn over the frames: MP4 or PNG frames, and a one-page contact sheet.

Each identity keeps one colour (a fixed palette indexed by the id modulo its size), its id is
written above its box, and a short trail joins the bottom centres of its last boxes. The
background is the sequence's own images (a MOTChallenge ``img1/`` folder) or, without images,
a blank canvas of the sequence's size. Given ground truth, errors are marked: false positives
(red), misses (yellow dashed gt boxes) and identity switches (magenta), found by
:func:`emtrack.eval.clear.compare_to_gt`.

Drawing uses Pillow and numpy (fast); MP4 files are written with PyAV (``pip install
'emtrack[viz]'``), which bundles its own ffmpeg.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from emtrack.errors import EmtrackInputError
from emtrack.eval.clear import (
    FALSE_POSITIVE,
    ID_SWITCH,
    IGNORED,
    MATCHED,
    GtComparison,
    compare_to_gt,
)
from emtrack.io import MotTable, SeqInfo
from emtrack.io.atomic import atomic_write
from emtrack.viz._common import MAX_PNG_BYTES, require, save_png

__all__ = [
    "PALETTE",
    "TrackRenderer",
    "TracksSummary",
    "draw_tracks",
    "identity_colour",
    "write_contact_sheet",
]

RGB = tuple[int, int, int]

#: Identity colours, ordered so that neighbouring entries differ strongly; no pure red, yellow
#: or magenta (those mark errors against the gt). Id ``k`` gets entry ``k % 17``, so any 17
#: consecutive ids (tracks born close in time) have different colours.
PALETTE: tuple[RGB, ...] = (
    (31, 119, 180),  # blue
    (255, 152, 60),  # orange
    (44, 160, 44),  # green
    (197, 176, 213),  # lavender
    (23, 190, 207),  # cyan
    (140, 86, 75),  # brown
    (152, 223, 138),  # light green
    (65, 105, 225),  # royal blue
    (196, 156, 148),  # tan
    (0, 128, 128),  # teal
    (210, 210, 210),  # light grey
    (148, 103, 189),  # purple
    (107, 142, 35),  # olive
    (174, 199, 232),  # light blue
    (255, 187, 120),  # light orange
    (0, 200, 150),  # mint
    (120, 120, 255),  # periwinkle
)

FP_COLOUR: RGB = (235, 40, 40)
MISS_COLOUR: RGB = (255, 221, 0)
IDSW_COLOUR: RGB = (255, 0, 255)
IGNORED_COLOUR: RGB = (128, 128, 128)
CANVAS_COLOUR: RGB = (32, 34, 40)


def identity_colour(track_id: int) -> RGB:
    """The colour of an identity: the same id always gets the same colour, in every run."""
    return PALETTE[int(track_id) % len(PALETTE)]


# --------------------------------------------------------------------------------------------
# Drawing one frame
# --------------------------------------------------------------------------------------------


def _image_path(images: Path, frame: int) -> Path | None:
    for ext in (".jpg", ".png", ".jpeg", ".JPG", ".PNG", ".JPEG"):
        candidate = images / f"{frame:06d}{ext}"
        if candidate.is_file():
            return candidate
    return None


def _even(value: float) -> int:
    """Round to an even number of pixels >= 2 (H.264 with 4:2:0 colour needs even sizes)."""
    return max(2, round(value / 2.0) * 2)


class TrackRenderer:
    """Draws the tracks of one frame onto its image (or a blank canvas).

    Args:
        result: Tracker output (``ids`` = track ids, boxes in pixels of the full image).
        seqinfo: The sequence (image size; frame count).
        images: A MOTChallenge ``img1/`` folder (``000001.jpg`` ...), or None for a blank canvas.
        comparison: Errors to mark (from :func:`~emtrack.eval.clear.compare_to_gt`), or None.
        scale: Output size relative to the sequence's image size (rounded to even pixels).
        trail_frames: Length of the motion trails, in frames.
    """

    def __init__(
        self,
        result: MotTable,
        seqinfo: SeqInfo,
        images: Path | None = None,
        comparison: GtComparison | None = None,
        scale: float = 1.0,
        trail_frames: int = 15,
    ) -> None:
        require("PIL", "drawing tracks")
        if not (math.isfinite(scale) and scale > 0):
            raise EmtrackInputError(f"scale must be a positive number, got {scale}")
        if trail_frames < 0:
            raise EmtrackInputError(f"trail length must be >= 0 frames, got {trail_frames}")
        self.result, self.seqinfo, self.images = result, seqinfo, images
        self.comparison = comparison
        self.trail_frames = trail_frames
        self.num_frames = max(seqinfo.seq_length, result.num_frames)
        width, height = self._source_size()
        self.source_size = (width, height)
        self.size = (_even(width * scale), _even(height * scale))
        self.scale_xy = (self.size[0] / width, self.size[1] / height)
        self._index = result.frame_index(self.num_frames)
        if comparison is not None:
            self._gt_index = comparison.gt.frame_index(self.num_frames)
        # Rows sorted by (id, frame): each id's trail is a slice.
        order = np.lexsort((result.frames, result.ids))
        self._trail_frames = result.frames[order]
        boxes = result.boxes_xyxy[order]
        self._trail_points = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], 1)
        ids = result.ids[order]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0)
        ends = np.r_[starts[1:], len(ids)] if len(ids) else np.zeros(0)
        self._trail_slices = {
            int(ids[s]): (int(s), int(e)) for s, e in zip(starts, ends, strict=True)
        }
        short = min(self.size)
        self.line_width = max(2, round(short / 300))
        self.font = self._font(max(11, round(short / 40)))

    def _source_size(self) -> tuple[int, int]:
        info = self.seqinfo
        if info.im_width and info.im_height:
            return int(info.im_width), int(info.im_height)
        if self.images is not None:
            from PIL import Image

            first = _image_path(self.images, 1)
            if first is not None:
                with Image.open(first) as image:
                    return image.size
        if len(self.result):
            extent = self.result.boxes_xyxy.max(0)
            return max(2, math.ceil(extent[2])), max(2, math.ceil(extent[3]))
        raise EmtrackInputError(
            "seqinfo.ini has no imWidth/imHeight and there are no images or boxes to size "
            "the canvas",
            info.path,
        )

    @staticmethod
    def _font(size: int) -> Any:
        from PIL import ImageFont

        try:
            return ImageFont.load_default(size=size)
        except TypeError:  # Pillow < 10.1: fixed-size bitmap font
            return ImageFont.load_default()

    def missing_images(self, frames: Iterable[int]) -> list[int]:
        """Frames of ``frames`` whose image is not in the images folder."""
        if self.images is None:
            return []
        return [f for f in frames if _image_path(self.images, f) is None]

    def _background(self, frame: int) -> Any:
        from PIL import Image

        if self.images is None:
            return Image.new("RGB", self.size, CANVAS_COLOUR)
        path = _image_path(self.images, frame)
        if path is None:
            raise EmtrackInputError(f"no image {frame:06d}.jpg/.png for frame {frame}", self.images)
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != self.size:
                image = image.resize(self.size, Image.Resampling.BILINEAR)
            return image

    def _scaled(self, boxes: np.ndarray) -> np.ndarray:
        sx, sy = self.scale_xy
        return boxes * np.array([sx, sy, sx, sy])

    def render(self, frame: int) -> Any:
        """The PIL RGB image of ``frame`` (1-based) with its tracks drawn."""
        from PIL import ImageDraw

        image = self._background(frame)
        draw = ImageDraw.Draw(image, "RGBA")
        rows = self._index[frame - 1] if frame <= self.num_frames else np.zeros(0, np.int64)
        self._draw_trails(draw, frame, rows)
        status = None if self.comparison is None else self.comparison.result_status[rows]
        boxes = self._scaled(self.result.boxes_xyxy[rows])
        width = self.line_width
        for k, (box, track_id) in enumerate(zip(boxes, self.result.ids[rows], strict=True)):
            colour = identity_colour(track_id)
            label = str(int(track_id))
            row_status = MATCHED if status is None else int(status[k])
            if row_status == FALSE_POSITIVE:
                draw.rectangle(box.tolist(), fill=(*FP_COLOUR, 60), outline=FP_COLOUR, width=width)
                self._label(draw, box, f"{label} FP", FP_COLOUR)
                continue
            if row_status == IGNORED:
                draw.rectangle(box.tolist(), outline=IGNORED_COLOUR, width=1)
                continue
            if row_status == ID_SWITCH:
                grown = box + np.array([-width, -width, width, width])
                draw.rectangle(grown.tolist(), outline=IDSW_COLOUR, width=2 * width)
                self._label(draw, grown, f"{label} IDSW", IDSW_COLOUR)
                continue
            draw.rectangle(box.tolist(), outline=colour, width=width)
            self._label(draw, box, label, colour)
        counts = None
        if self.comparison is not None:
            counts = self._draw_misses(draw, frame, rows, status)
        self._draw_header(draw, frame, counts)
        return image

    def _draw_trails(self, draw: Any, frame: int, rows: np.ndarray) -> None:
        if self.trail_frames < 1:
            return
        first = frame - self.trail_frames + 1
        for track_id in self.result.ids[rows].tolist():
            start, end = self._trail_slices[int(track_id)]
            frames = self._trail_frames[start:end]
            lo = start + int(np.searchsorted(frames, first, "left"))
            hi = start + int(np.searchsorted(frames, frame, "right"))
            if hi - lo < 2:
                continue
            points = self._trail_points[lo:hi] * np.array(self.scale_xy)
            draw.line(
                [tuple(p) for p in points.tolist()],
                fill=identity_colour(track_id),
                width=max(1, self.line_width - 1),
                joint="curve",
            )

    def _draw_misses(
        self, draw: Any, frame: int, rows: np.ndarray, status: np.ndarray | None
    ) -> dict[str, int]:
        assert self.comparison is not None
        g_rows = self._gt_index[frame - 1] if frame <= self.num_frames else np.zeros(0, np.int64)
        missed = g_rows[self.comparison.gt_missed[g_rows]]
        for box in self._scaled(self.comparison.gt.boxes_xyxy[missed]):
            _dashed_rectangle(draw, box, MISS_COLOUR, self.line_width)
        status = np.zeros(0) if status is None else status
        return {
            "FP": int((status == FALSE_POSITIVE).sum()),
            "miss": len(missed),
            "IDSW": int((status == ID_SWITCH).sum()),
        }

    def _label(self, draw: Any, box: np.ndarray, text: str, colour: RGB) -> None:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=self.font)
        text_w, text_h = right - left, bottom - top
        pad = max(1, text_h // 5)
        x = float(np.clip(box[0], 0, max(0, self.size[0] - text_w - 2 * pad)))
        y = float(box[1]) - text_h - 2 * pad
        if y < 0:
            y = float(box[1])
        draw.rectangle([x, y, x + text_w + 2 * pad, y + text_h + 2 * pad], fill=colour)
        luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
        ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
        draw.text((x + pad - left, y + pad - top), text, fill=ink, font=self.font)

    def _draw_header(self, draw: Any, frame: int, counts: dict[str, int] | None) -> None:
        parts: list[tuple[str, RGB]] = [(f"frame {frame}/{self.seqinfo.seq_length}", (255,) * 3)]
        if counts is not None:
            parts += [
                (f"FP {counts['FP']}", FP_COLOUR),
                (f"miss {counts['miss']}", MISS_COLOUR),
                (f"ID switch {counts['IDSW']}", IDSW_COLOUR),
            ]
        pad = max(2, self.line_width * 2)
        x, y = pad, pad
        boxes = [draw.textbbox((0, 0), text, font=self.font) for text, _ in parts]
        height = max(b[3] - b[1] for b in boxes)
        total = sum(b[2] - b[0] for b in boxes) + 3 * pad * (len(parts) - 1)
        draw.rectangle([0, 0, x + total + pad, y + height + 2 * pad], fill=(0, 0, 0, 150))
        for (text, colour), (left, top, right, _) in zip(parts, boxes, strict=True):
            draw.text((x - left, y + pad // 2 - top), text, fill=colour, font=self.font)
            x += right - left + 3 * pad


def _dashed_rectangle(draw: Any, box: np.ndarray, colour: RGB, width: int) -> None:
    x1, y1, x2, y2 = box.tolist()
    dash = max(4, 3 * width)
    for a, b, horizontal, fixed in (
        (x1, x2, True, y1),
        (x1, x2, True, y2),
        (y1, y2, False, x1),
        (y1, y2, False, x2),
    ):
        start = a
        while start < b:
            end = min(start + dash, b)
            if horizontal:
                draw.line([(start, fixed), (end, fixed)], fill=colour, width=width)
            else:
                draw.line([(fixed, start), (fixed, end)], fill=colour, width=width)
            start += 2 * dash


# --------------------------------------------------------------------------------------------
# Outputs: MP4, PNG frames, contact sheet
# --------------------------------------------------------------------------------------------


def _frames_array(renderer: TrackRenderer, frames: Iterable[int]) -> Iterator[np.ndarray]:
    for frame in frames:
        yield np.asarray(renderer.render(frame))


def _write_mp4(path: Path, images: Iterable[np.ndarray], fps: float, size: tuple[int, int]) -> int:
    """Encode ``(H, W, 3)`` uint8 frames as H.264 MP4 (atomically); returns the frame count."""
    av = require("av", "writing MP4 videos")
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with atomic_write(path, "wb") as handle:
        container = av.open(handle, mode="w", format="mp4")
        try:
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            if codec == "libx264":
                stream.options = {"crf": "23", "preset": "veryfast"}
            for array in images:
                frame = av.VideoFrame.from_ndarray(array, format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
                count += 1
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
    return count


def _write_png_frames(folder: Path, renderer: TrackRenderer, frames: Iterable[int]) -> int:
    """One ``<frame:06d>.png`` per frame; written to a temporary folder, then moved in."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a folder made by mkdir is not
    try:
        count = 0
        for frame in frames:
            renderer.render(frame).save(tmp / f"{frame:06d}.png", format="PNG", compress_level=3)
            count += 1
        if not folder.exists():
            os.replace(tmp, folder)
        else:
            for item in sorted(tmp.iterdir()):
                os.replace(item, folder / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return count


def write_contact_sheet(
    renderer_at: Any,
    frames: Sequence[int],
    path: Path,
    title: str,
    tiles: int = 9,
    tile_width: int = 420,
    max_bytes: int = MAX_PNG_BYTES,
) -> Path:
    """A grid of up to ``tiles`` frames, evenly spaced over ``frames``, as one small PNG.

    Args:
        renderer_at: ``scale -> TrackRenderer`` (tiles are drawn at their final size, so labels
            stay readable).
        frames: The frames to choose from.
        path: The ``.png`` to write (atomically; at most ``max_bytes``).
        title: Printed above the grid.
        tiles: Number of frames shown (fewer when ``frames`` is shorter).
        tile_width: Width of one tile in pixels.
        max_bytes: Size limit of the file (the image is quantised, then shrunk, to fit).
    """
    from PIL import Image, ImageDraw

    count = min(tiles, len(frames))
    picks = [frames[round(i)] for i in np.linspace(0, len(frames) - 1, count)]
    probe = renderer_at(1.0)
    source_w, _ = probe.source_size
    renderer = renderer_at(tile_width / source_w)
    tile_w, tile_h = renderer.size
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    gap = 6
    font = renderer._font(16)
    title_h = 28
    sheet = Image.new(
        "RGB",
        (cols * tile_w + (cols + 1) * gap, title_h + rows * tile_h + (rows + 1) * gap),
        (255, 255, 255),
    )
    draw = ImageDraw.Draw(sheet)
    draw.text((gap, 6), title, fill=(0, 0, 0), font=font)
    for k, frame in enumerate(picks):
        r, c = divmod(k, cols)
        corner = (gap + c * (tile_w + gap), title_h + gap + r * (tile_h + gap))
        sheet.paste(renderer.render(frame), corner)
    return save_png(sheet, path, max_bytes=max_bytes)


@dataclass(frozen=True)
class TracksSummary:
    """What :func:`draw_tracks` wrote.

    Attributes:
        out: The MP4 file or PNG folder, or None.
        sheet: The contact sheet, or None.
        frames: The frames drawn.
        size: ``(width, height)`` of the video frames in pixels.
        counts: Totals of :class:`~emtrack.eval.clear.GtComparison` over the whole sequence,
            when gt was given.
    """

    out: Path | None
    sheet: Path | None
    frames: range
    size: tuple[int, int]
    counts: dict[str, int] | None


def draw_tracks(
    result: MotTable,
    seqinfo: SeqInfo,
    out: str | Path | None = None,
    *,
    sheet: str | Path | None = None,
    images: str | Path | None = None,
    gt: MotTable | None = None,
    frames: range | None = None,
    scale: float = 1.0,
    trail_frames: int = 15,
    progress: bool | None = None,
) -> TracksSummary:
    """Draw a tracking result as an MP4 or PNG frames, and/or a contact sheet.

    Args:
        result: Tracker output.
        seqinfo: Its sequence (size, frame rate, length).
        out: ``*.mp4`` for a video, or a folder for ``000001.png`` ... (None: no frames).
        sheet: ``*.png`` for a one-page contact sheet of 9 frames (< 300 KB).
        images: MOTChallenge ``img1/`` folder to draw on (default: a blank canvas).
        gt: Ground truth: mark false positives, misses and identity switches.
        frames: Frames to draw (default: all ``1..seqLength``).
        scale: Size of the video relative to the images (rounded to even pixels).
        trail_frames: Length of the motion trails.
        progress: Progress bar on stderr (default: when stderr is a terminal).

    Raises:
        EmtrackInputError: Bad output path, frames outside the sequence, a missing image.
    """
    if out is None and sheet is None:
        raise EmtrackInputError("nothing to write: give an output (MP4 or folder) or a sheet")
    out_path = None if out is None else Path(out)
    if out_path is not None:
        is_mp4 = out_path.suffix.lower() == ".mp4"
        if out_path.suffix and not is_mp4 and not out_path.is_dir():
            raise EmtrackInputError("the output must be an .mp4 file or a folder", out_path)
        if is_mp4 and out_path.is_dir():
            raise EmtrackInputError("is a folder; give the video's file name", out_path)
        if not is_mp4 and out_path.exists() and not out_path.is_dir():
            raise EmtrackInputError(
                "exists and is not a folder (PNG frames go in a folder)", out_path
            )
    sheet_path = None if sheet is None else Path(sheet)
    if sheet_path is not None and sheet_path.suffix.lower() != ".png":
        raise EmtrackInputError("the contact sheet must be a .png file", sheet_path)
    images_path = None if images is None else Path(images)
    if images_path is not None and not images_path.is_dir():
        raise EmtrackInputError("images folder not found", images_path)
    frames = frames if frames is not None else range(1, seqinfo.seq_length + 1)
    if len(frames) == 0:
        raise EmtrackInputError("no frames to draw")
    comparison = None if gt is None else compare_to_gt(result, gt)

    def renderer_at(scale_: float) -> TrackRenderer:
        return TrackRenderer(result, seqinfo, images_path, comparison, scale_, trail_frames)

    renderer = renderer_at(scale)
    missing = renderer.missing_images(frames)
    if missing:
        raise EmtrackInputError(
            f"no image for {len(missing)} of the frames (first: frame {missing[0]}, "
            f"expected {missing[0]:06d}.jpg or .png)",
            images_path,
        )
    if out_path is not None:
        bar = tqdm(frames, desc=f"drawing {out_path.name}", unit="frame", disable=_quiet(progress))
        if out_path.suffix.lower() == ".mp4":
            _write_mp4(out_path, _frames_array(renderer, bar), seqinfo.frame_rate, renderer.size)
        else:
            _write_png_frames(out_path, renderer, bar)
    if sheet_path is not None:
        title = f"{seqinfo.name}: frames {frames[0]}-{frames[-1]}"
        if comparison is not None:
            c = comparison.counts
            title += (
                f"   FP {c['false_positives']}  misses {c['misses']}  "
                f"ID switches {c['id_switches']} (whole sequence)"
            )
        write_contact_sheet(renderer_at, frames, sheet_path, title)
    return TracksSummary(
        out_path,
        sheet_path,
        frames,
        renderer.size,
        None if comparison is None else comparison.counts,
    )


def _quiet(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None lets tqdm hide the bar when stderr is not a terminal."""
    return None if progress is None else not progress
