"""Sampling training clips from detection streams (never from identities)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from emtrack.io import MotTable
from emtrack.model.loss import ClipBatch

_PAD_BOX = np.array([0.0, 0.0, 1.0, 1.0])


@dataclass(frozen=True)
class DetectionStream:
    """Detections of one sequence, as training sees them: boxes and scores per frame.

    Identities are dropped on construction, so nothing downstream can read them.

    Attributes:
        name: sequence name.
        frames: list (index f-1) of ``(n_f, 4)`` float64 boxes, sorted by descending score.
        frame_rate: frames per second.
        image_area: pixels², for the clutter density.
    """

    name: str
    frames: tuple[np.ndarray, ...]
    frame_rate: float
    image_area: float

    @classmethod
    def from_table(
        cls,
        name: str,
        table: MotTable,
        frame_rate: float,
        num_frames: int | None = None,
        image_size: tuple[float, float] | None = None,
        min_score: float = -np.inf,
    ) -> DetectionStream:
        """Build from a :class:`MotTable`; the id column is ignored.

        ``image_size`` defaults to the extent of the boxes when the sequence has no seqinfo.
        """
        keep = table.scores >= min_score
        boxes, scores, frames = table.boxes_xyxy[keep], table.scores[keep], table.frames[keep]
        total = int(num_frames if num_frames is not None else (frames.max() if len(frames) else 0))
        order = np.lexsort((-scores, frames))
        boxes, frames = boxes[order], frames[order]
        bounds = np.searchsorted(frames, np.arange(1, total + 2))
        per_frame = tuple(boxes[bounds[f] : bounds[f + 1]] for f in range(total))
        if image_size is None:
            width = float(boxes[:, 2].max()) if len(boxes) else 1.0
            height = float(boxes[:, 3].max()) if len(boxes) else 1.0
        else:
            width, height = image_size
        return cls(name, per_frame, float(frame_rate), max(width * height, 1.0))

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class ClipSampler:
    """Draws padded clip batches of ``clip_length`` frames from several streams.

    Attributes:
        streams: the detection streams (weighted by their usable length).
        clip_length: frames per clip (T).
        max_stride: clips use every s-th frame, s drawn uniformly in ``1 … max_stride``.
        max_detections: per frame; the highest-scoring ones are kept.
    """

    streams: tuple[DetectionStream, ...]
    clip_length: int = 10
    max_stride: int = 2
    max_detections: int = 64

    def __post_init__(self) -> None:
        if self.clip_length < 2:
            raise ValueError("clip_length must be >= 2")
        usable = [s for s in self.streams if len(s) >= self.clip_length]
        if not usable:
            raise ValueError(
                f"no detection stream has at least clip_length={self.clip_length} frames"
            )

    def _max_stride(self, stream: DetectionStream) -> int:
        """The largest stride of ``stream``'s clips (a short stream allows fewer)."""
        return max(1, min(self.max_stride, (len(stream) - 1) // (self.clip_length - 1)))

    @property
    def max_gap_s(self) -> float:
        """The longest time (s) between linked clip frames of any clip this sampler draws:
        the largest gap the network is trained on."""
        return max(
            self._max_stride(stream) / stream.frame_rate
            for stream in self.streams
            if len(stream) >= self.clip_length
        )

    def sample(self, batch_size: int, rng: np.random.Generator) -> ClipBatch:
        """A batch of clips; clips whose first frame is empty are redrawn."""
        lengths = np.array([max(len(s) - self.clip_length + 1, 0) for s in self.streams], float)
        weights = lengths / lengths.sum()
        clips: list[list[np.ndarray]] = []
        dts: list[float] = []
        areas: list[float] = []
        attempts = 0
        while len(clips) < batch_size:
            attempts += 1
            if attempts > 100 * batch_size:
                raise ValueError("could not find clips with detections in their first frame")
            stream = self.streams[rng.choice(len(self.streams), p=weights)]
            stride = int(rng.integers(1, self._max_stride(stream) + 1))
            span = (self.clip_length - 1) * stride
            start = int(rng.integers(0, len(stream) - span))
            frames = [
                stream.frames[start + k * stride][: self.max_detections]
                for k in range(self.clip_length)
            ]
            if len(frames[0]) == 0:
                continue
            clips.append(frames)
            dts.append(stride / stream.frame_rate)
            areas.append(stream.image_area)
        return pad_clips(clips, np.array(dts), np.array(areas))


def pad_clips(clips: list[list[np.ndarray]], dts: np.ndarray, areas: np.ndarray) -> ClipBatch:
    """Pad lists of per-frame boxes into a :class:`ClipBatch` (float64 tensors).

    Args:
        clips: B lists of T arrays ``(n_t, 4)``.
        dts: ``(B,)`` seconds between clip frames; areas: ``(B,)`` image areas.
    """
    b, t = len(clips), len(clips[0])
    n = max(1, max(len(f) for clip in clips for f in clip))
    boxes = np.broadcast_to(_PAD_BOX, (b, t, n, 4)).copy()
    mask = np.zeros((b, t, n), dtype=bool)
    for i, clip in enumerate(clips):
        for k, frame in enumerate(clip):
            boxes[i, k, : len(frame)] = frame
            mask[i, k, : len(frame)] = True
    return ClipBatch(
        torch.from_numpy(boxes),
        torch.from_numpy(mask),
        torch.from_numpy(np.asarray(dts, dtype=np.float64)),
        torch.from_numpy(-np.log(np.asarray(areas, dtype=np.float64))),
    )
