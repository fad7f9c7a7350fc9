"""Detection noise: turn ground-truth boxes into a realistic, noisy detection stream.

The same noise model serves the synthetic scenes (:func:`emtrack.synth.generate_scene`) and real
MOT17/MOT20 ground truth (:func:`detections_from_gt`). It is documented once, on
:class:`DetectionNoiseConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from numbers import Real

import numpy as np

from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo

__all__ = [
    "DetectionNoiseConfig",
    "detections_from_gt",
    "load_gt_objects",
]

# Scores of "high" detections lie in [0.5, 1], of "low" ones in [_LOW_SCORE_MIN, 0.5).
_LOW_SCORE_MIN = 0.1
# High scores are 0.5 + 0.5 * Beta(4, 1.5) (mean 0.86): most confident detections are near 1.
_HIGH_SCORE_BETA = (4.0, 1.5)
# Smallest box side (px) a noisy box is allowed to shrink to.
_MIN_SIDE_PX = 1.0

# (count, rng) -> boxes_xyxy (count, 4): where the non-duplicate false positives of a stream go;
# (0, 4) when it cannot place any (those false positives are then dropped).
FalsePositiveSampler = Callable[[int, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class DetectionNoiseConfig:
    """How a detector sees the true boxes: jitter, misses, dropouts, false positives and scores.

    The default model ("emtrack default detection noise"), applied independently to every
    ground-truth row (one object in one frame), with ``h`` the height of the true box:

    * **Box jitter**: each of the four edges ``x1, y1, x2, y2`` moves by independent Gaussian
      noise with standard deviation ``box_noise_frac * h`` (default 4 % of the height, i.e.
      about 10 % of the width of a pedestrian box). Noisy boxes are clipped to the image (never
      beyond where the true box already was) and keep at least 1 px per side.
    * **Misses**: a row is missed with probability ``p(v)`` that depends on its visibility ``v``
      (MOT17/MOT20 gt visibility column; in synthetic scenes ``1 - IoA`` with the most occluding
      nearer object): ``p = miss_prob`` (default 0.08) for ``v >= visibility_full`` (0.8),
      ``p = occluded_miss_prob`` (0.9) for ``v <= visibility_occluded`` (0.4, i.e. more than
      60 % of the box hidden), linear in between. Rows with unknown visibility (-1, e.g. MOT15
      gt) use ``miss_prob``.
    * **Burst dropouts** (occlusion by things not in the gt, motion blur): each row starts a run
      of consecutive misses of the same object with probability ``burst_start_prob`` (0.01);
      the run length in frames is geometric with mean ``burst_mean_frames`` (6). Stationary
      fraction of rows inside a burst: ``1 - prod_k (1 - b q^k)`` with ``b = burst_start_prob``,
      ``q = 1 - 1 / burst_mean_frames``, about ``b * burst_mean_frames`` (5.8 % by default).
    * **False positives**: per frame, a Poisson number with mean ``fp_per_frame`` (1.0). A share
      ``fp_duplicate_frac`` (0.3) are "part / duplicate" detections next to a true object of
      the frame (its box shifted by up to 0.6 of its width and 0.3 of its height and scaled by
      0.5-1.2); the rest are boxes of plausible size at random positions (for real gt: sizes of
      random gt boxes, positions uniform in the image; in synthetic scenes: placed with the
      scene's perspective).
    * **Scores**: "high" scores are ``0.5 + 0.5 * Beta(4, 1.5)`` (mean 0.86), "low" ones are
      uniform in ``[0.1, 0.5)``. A true detection is low with probability ``true_low_score_prob``
      (0.1) when fully visible, rising with the same visibility ramp as the misses to
      ``occluded_low_score_prob`` (0.5); a false positive is high with probability
      ``fp_high_score_prob`` (0.25), so false positives score lower on average.
    * Rows are shuffled within each frame (``shuffle_within_frame``) so the order carries no
      identity.

    Misses and bursts are decided per row, so a frame rate change does not rescale them: a
    burst lasts ``burst_mean_frames`` frames whatever the fps.

    Attributes:
        box_noise_frac: Std of each box edge, as a fraction of the true box height.
        miss_prob: Miss probability of a fully visible (or unknown-visibility) object.
        occluded_miss_prob: Miss probability at visibility ``<= visibility_occluded``.
        visibility_full: Visibility from which an object counts as fully visible.
        visibility_occluded: Visibility at and below which ``occluded_miss_prob`` applies.
        burst_start_prob: Per-row probability that a burst of consecutive misses starts.
        burst_mean_frames: Mean length (frames, >= 1) of a burst, geometric distribution.
        fp_per_frame: Mean number of false positives per frame (Poisson).
        fp_duplicate_frac: Share of false positives placed next to a true object.
        true_low_score_prob: Probability of a low score for a fully visible true detection.
        occluded_low_score_prob: Probability of a low score for a heavily occluded detection.
        fp_high_score_prob: Probability of a high score for a false positive.
        shuffle_within_frame: Shuffle the detections of each frame.
    """

    box_noise_frac: float = 0.04
    miss_prob: float = 0.08
    occluded_miss_prob: float = 0.9
    visibility_full: float = 0.8
    visibility_occluded: float = 0.4
    burst_start_prob: float = 0.01
    burst_mean_frames: float = 6.0
    fp_per_frame: float = 1.0
    fp_duplicate_frac: float = 0.3
    true_low_score_prob: float = 0.1
    occluded_low_score_prob: float = 0.5
    fp_high_score_prob: float = 0.25
    shuffle_within_frame: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "shuffle_within_frame":
                if not isinstance(value, bool):
                    raise EmtrackInputError(f"DetectionNoiseConfig.{f.name} must be a bool")
                continue
            if isinstance(value, bool) or not isinstance(value, Real):
                raise EmtrackInputError(
                    f"DetectionNoiseConfig.{f.name} must be a number, got {value!r}"
                )
            if not np.isfinite(value):
                raise EmtrackInputError(f"DetectionNoiseConfig.{f.name} must be finite")
        probabilities = (
            "miss_prob",
            "occluded_miss_prob",
            "visibility_full",
            "visibility_occluded",
            "burst_start_prob",
            "fp_duplicate_frac",
            "true_low_score_prob",
            "occluded_low_score_prob",
            "fp_high_score_prob",
        )
        for name in probabilities:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise EmtrackInputError(
                    f"DetectionNoiseConfig.{name} must be in [0, 1], got {value}"
                )
        if self.box_noise_frac < 0:
            raise EmtrackInputError(
                f"DetectionNoiseConfig.box_noise_frac must be >= 0, got {self.box_noise_frac}"
            )
        if self.fp_per_frame < 0:
            raise EmtrackInputError(
                f"DetectionNoiseConfig.fp_per_frame must be >= 0, got {self.fp_per_frame}"
            )
        if self.burst_mean_frames < 1:
            raise EmtrackInputError(
                f"DetectionNoiseConfig.burst_mean_frames must be >= 1, got {self.burst_mean_frames}"
            )
        if self.visibility_occluded >= self.visibility_full:
            raise EmtrackInputError(
                "DetectionNoiseConfig.visibility_occluded must be < visibility_full, got "
                f"{self.visibility_occluded} >= {self.visibility_full}"
            )

    @classmethod
    def noiseless(cls) -> DetectionNoiseConfig:
        """A detector that reports every true box exactly, in ground-truth order, and nothing else.

        Scores are still drawn (all "high", in ``[0.5, 1]``).
        """
        return cls(
            box_noise_frac=0.0,
            miss_prob=0.0,
            occluded_miss_prob=0.0,
            burst_start_prob=0.0,
            fp_per_frame=0.0,
            true_low_score_prob=0.0,
            occluded_low_score_prob=0.0,
            shuffle_within_frame=False,
        )

    def occlusion_ramp(self, visibility: np.ndarray) -> np.ndarray:
        """Weight of the "occluded" end of the model for each visibility.

        Args:
            visibility: ``(N,)`` visibilities in ``[0, 1]``; negative means unknown.

        Returns:
            ``(N,)`` float64 in ``[0, 1]``: 0 at ``visibility >= visibility_full`` (or unknown),
            1 at ``visibility <= visibility_occluded``, linear in between.
        """
        visibility = np.asarray(visibility, dtype=np.float64)
        span = self.visibility_full - self.visibility_occluded
        ramp = np.clip((self.visibility_full - visibility) / span, 0.0, 1.0)
        return np.where(visibility < 0, 0.0, ramp)

    def miss_probability(self, visibility: np.ndarray) -> np.ndarray:
        """Per-row independent miss probability ``p(v)`` (bursts not included).

        Args:
            visibility: ``(N,)`` visibilities; negative means unknown (base rate).

        Returns:
            ``(N,)`` float64 probabilities.
        """
        ramp = self.occlusion_ramp(visibility)
        return self.miss_prob + (self.occluded_miss_prob - self.miss_prob) * ramp

    def burst_fraction(self) -> float:
        """Expected share of rows of a long track that fall inside a burst dropout."""
        b = self.burst_start_prob
        if b == 0.0:
            return 0.0
        q = 1.0 - 1.0 / self.burst_mean_frames
        k = np.arange(int(np.ceil(50 * self.burst_mean_frames)) + 1)
        return float(1.0 - np.prod(1.0 - b * q**k))


def load_gt_objects(gt: MotTable) -> MotTable:
    """Keep the ground-truth rows that are real, evaluable pedestrians.

    A row is kept when its conf column (``scores``) is not 0 and its class is 1 (MOT17/MOT20
    pedestrian) or -1 (MOT15 gt, which has no class column). Distractors, static persons,
    vehicles and rows marked "ignore" (conf 0) are dropped.

    Args:
        gt: A ground-truth table as read by :func:`emtrack.io.read_mot`.

    Returns:
        The kept rows, in their original order.
    """
    keep = (gt.scores != 0) & np.isin(gt.classes, (1, -1))
    return gt.select(keep)


def detections_from_gt(
    gt: MotTable,
    noise: DetectionNoiseConfig,
    rng: np.random.Generator | int,
    seqinfo: SeqInfo | None = None,
) -> MotTable:
    """Turn a ground truth into a noisy detection stream (see :class:`DetectionNoiseConfig`).

    Every row of ``gt`` is one object to detect: pass ``load_gt_objects(gt)`` to keep only
    evaluable pedestrians. The visibility column (MOT17/MOT20) raises the miss probability of
    occluded objects; where it is -1 the base rate applies.

    False positives are drawn for every frame ``1..seq_length`` (``seqinfo``) or
    ``1..gt.num_frames``; their sizes are those of random gt boxes, their positions uniform in
    the image (``seqinfo.im_width`` x ``seqinfo.im_height``), or in the extent of the gt boxes
    when the image size is unknown. Noisy boxes are clipped to the same area.

    Args:
        gt: ``N`` true boxes (``boxes_xyxy`` ``(N, 4)``, ``ids`` ``(N,)``, ``visibility``
            ``(N,)``).
        noise: The detector model.
        rng: Random generator (or seed); the only source of randomness.
        seqinfo: Image size and sequence length, optional.

    Returns:
        Detections sorted by frame: ``ids`` holds the gt id of each true detection and -1 for
        false positives (strip them before giving the stream to a tracker or a trainer),
        ``scores`` in ``[0.1, 1]``, ``classes`` and ``visibility`` -1.
    """
    rng = np.random.default_rng(rng)
    num_frames = gt.num_frames
    extent: np.ndarray | None = None
    if seqinfo is not None:
        num_frames = max(num_frames, int(seqinfo.seq_length))
        if seqinfo.im_width is not None and seqinfo.im_height is not None:
            extent = np.array([0.0, 0.0, float(seqinfo.im_width), float(seqinfo.im_height)])
    if extent is None and len(gt) > 0:
        boxes = gt.boxes_xyxy
        extent = np.array(
            [boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()]
        )
    sizes_wh = gt.boxes_xyxy[:, 2:] - gt.boxes_xyxy[:, :2]
    sizes_wh = sizes_wh[(sizes_wh > 0).all(axis=1)]

    def sample_fp_boxes(count: int, gen: np.random.Generator) -> np.ndarray:
        if count == 0 or extent is None or len(sizes_wh) == 0:
            return np.zeros((0, 4))
        wh = sizes_wh[gen.integers(0, len(sizes_wh), size=count)]
        span = extent[2:] - extent[:2]
        wh = np.minimum(wh, span)
        top_left = extent[:2] + gen.random((count, 2)) * (span - wh)
        return np.concatenate([top_left, top_left + wh], axis=1)

    return apply_detection_noise(
        gt,
        noise,
        rng,
        num_frames=num_frames,
        extent_xyxy=extent,
        fp_sampler=sample_fp_boxes,
    )


def apply_detection_noise(
    gt: MotTable,
    noise: DetectionNoiseConfig,
    rng: np.random.Generator,
    *,
    num_frames: int,
    extent_xyxy: np.ndarray | None,
    fp_sampler: FalsePositiveSampler,
) -> MotTable:
    """Shared core of the detector model, vectorised over all rows of ``gt``.

    Args:
        gt: ``N`` true boxes with ids and visibility (-1 = unknown).
        noise: The detector model.
        rng: Random generator.
        num_frames: False positives are drawn for frames ``1..num_frames``.
        extent_xyxy: ``(4,)`` image area the noisy boxes are clipped to, or None (no clipping).
        fp_sampler: Draws the boxes ``(count, 4)`` of the non-duplicate false positives.

    Returns:
        The detection table (see :func:`detections_from_gt`).
    """
    n = len(gt)
    boxes = np.asarray(gt.boxes_xyxy, dtype=np.float64).reshape(n, 4)
    visibility = np.asarray(gt.visibility, dtype=np.float64)
    ramp = noise.occlusion_ramp(visibility)

    # Misses: independent (visibility-dependent) plus bursts of consecutive misses.
    detected = rng.random(n) >= noise.miss_probability(visibility)
    if noise.burst_start_prob > 0 and n > 0:
        detected &= ~_burst_mask(gt.frames, gt.ids, noise, rng)

    true_boxes = boxes[detected]
    heights = true_boxes[:, 3] - true_boxes[:, 1]
    if noise.box_noise_frac > 0:
        jitter = rng.standard_normal(true_boxes.shape) * (noise.box_noise_frac * heights)[:, None]
        true_boxes = _clip_boxes(true_boxes + jitter, true_boxes, extent_xyxy)
    low_prob = (
        noise.true_low_score_prob
        + (noise.occluded_low_score_prob - noise.true_low_score_prob) * ramp[detected]
    )
    true_scores = _draw_scores(rng, rng.random(len(true_boxes)) >= low_prob)

    # False positives.
    fp_frames = np.repeat(
        np.arange(1, num_frames + 1, dtype=np.int64),
        rng.poisson(noise.fp_per_frame, size=num_frames) if noise.fp_per_frame > 0 else 0,
    )
    fp_boxes = np.zeros((len(fp_frames), 4))
    if len(fp_frames):
        duplicate = rng.random(len(fp_frames)) < noise.fp_duplicate_frac
        rows_of_frame = gt.frame_index(max(num_frames, gt.num_frames))
        counts = np.array([len(r) for r in rows_of_frame], dtype=np.int64)
        duplicate &= counts[fp_frames - 1] > 0
        dup_idx = np.flatnonzero(duplicate)
        if len(dup_idx):
            starts = np.cumsum(counts) - counts
            order = np.concatenate(rows_of_frame).astype(np.int64)
            f0 = fp_frames[dup_idx] - 1
            pick = starts[f0] + (rng.random(len(dup_idx)) * counts[f0]).astype(np.int64)
            fp_boxes[dup_idx] = _duplicate_boxes(boxes[order[pick]], rng)
        other_idx = np.flatnonzero(~duplicate)
        if len(other_idx):
            sampled = fp_sampler(len(other_idx), rng)
            if len(sampled) == len(other_idx):
                fp_boxes[other_idx] = sampled
            else:  # The sampler cannot place false positives (e.g. no gt sizes): drop them.
                fp_frames, fp_boxes = fp_frames[duplicate], fp_boxes[duplicate]
        fp_boxes = _clip_boxes(fp_boxes, None, extent_xyxy)
    fp_scores = _draw_scores(rng, rng.random(len(fp_frames)) < noise.fp_high_score_prob)

    frames = np.concatenate([gt.frames[detected], fp_frames]).astype(np.int64)
    ids = np.concatenate([gt.ids[detected], np.full(len(fp_frames), -1)]).astype(np.int64)
    out_boxes = np.concatenate([true_boxes, fp_boxes]).reshape(-1, 4)
    scores = np.concatenate([true_scores, fp_scores])
    if noise.shuffle_within_frame:
        order = np.lexsort((rng.random(len(frames)), frames))
    else:
        order = np.argsort(frames, kind="stable")
    return MotTable.from_arrays(
        frames=frames[order],
        boxes_xyxy=out_boxes[order],
        scores=scores[order],
        ids=ids[order],
    )


def _burst_mask(
    frames: np.ndarray,
    ids: np.ndarray,
    noise: DetectionNoiseConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Rows covered by a burst dropout: a run of ``L`` frames of one id from a random start.

    Args:
        frames: ``(N,)`` frame numbers.
        ids: ``(N,)`` object ids; rows with a negative id never drop out in bursts.
        noise: Gives the start probability and the mean run length.
        rng: Random generator.

    Returns:
        ``(N,)`` bool, True where the row is inside a burst.
    """
    n = len(frames)
    frames = np.asarray(frames, dtype=np.int64)
    ids = np.asarray(ids, dtype=np.int64)
    order = np.lexsort((frames, ids))
    f_sorted = frames[order]
    id_sorted = ids[order]
    starts = np.flatnonzero((rng.random(n) < noise.burst_start_prob) & (id_sorted >= 0))
    covered_sorted = np.zeros(n, dtype=bool)
    if len(starts):
        lengths = rng.geometric(1.0 / noise.burst_mean_frames, size=len(starts))
        # Sorted by (id, frame): a run covers rows of the same id with frame < start frame + L.
        span = int(f_sorted.max()) + int(lengths.max()) + 2
        keys = (id_sorted - id_sorted.min()) * span + f_sorted
        ends = np.searchsorted(keys, keys[starts] + lengths, side="left")
        diff = np.zeros(n + 1, dtype=np.int64)
        np.add.at(diff, starts, 1)
        np.add.at(diff, ends, -1)
        covered_sorted = np.cumsum(diff[:n]) > 0
    covered = np.empty(n, dtype=bool)
    covered[order] = covered_sorted
    return covered


def _draw_scores(rng: np.random.Generator, high: np.ndarray) -> np.ndarray:
    """Detection scores: ``0.5 + 0.5 Beta(4, 1.5)`` where ``high``, else uniform ``[0.1, 0.5)``.

    Args:
        rng: Random generator.
        high: ``(N,)`` bool.

    Returns:
        ``(N,)`` float64 scores.
    """
    n = len(high)
    high_scores = 0.5 + 0.5 * rng.beta(*_HIGH_SCORE_BETA, size=n)
    low_scores = _LOW_SCORE_MIN + (0.5 - _LOW_SCORE_MIN) * rng.random(n)
    return np.where(high, high_scores, low_scores)


def _duplicate_boxes(boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """False positives next to true boxes: shifted and rescaled copies ("parts", duplicates).

    Args:
        boxes: ``(M, 4)`` xyxy true boxes.
        rng: Random generator.

    Returns:
        ``(M, 4)`` xyxy boxes.
    """
    wh = boxes[:, 2:] - boxes[:, :2]
    centre = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    shift = rng.uniform(-1.0, 1.0, size=(len(boxes), 2)) * np.array([0.6, 0.3]) * wh
    scale = rng.uniform(0.5, 1.2, size=(len(boxes), 1))
    half = 0.5 * wh * scale
    return np.concatenate([centre + shift - half, centre + shift + half], axis=1)


def _clip_boxes(
    boxes: np.ndarray, reference: np.ndarray | None, extent_xyxy: np.ndarray | None
) -> np.ndarray:
    """Clip boxes to the image (never tighter than ``reference``) and keep >= 1 px per side.

    Args:
        boxes: ``(M, 4)`` xyxy boxes to clip.
        reference: ``(M, 4)`` boxes each one may extend to even outside the image (the true
            boxes the noisy ones came from), or None.
        extent_xyxy: ``(4,)`` image area, or None for no clipping.

    Returns:
        ``(M, 4)`` xyxy boxes with ``x2 > x1`` and ``y2 > y1``.
    """
    boxes = boxes.copy()
    if extent_xyxy is not None and len(boxes):
        low = np.broadcast_to(extent_xyxy[:2], (len(boxes), 2))
        high = np.broadcast_to(extent_xyxy[2:], (len(boxes), 2))
        if reference is not None:
            low = np.minimum(low, reference[:, :2])
            high = np.maximum(high, reference[:, 2:])
        boxes[:, :2] = np.clip(boxes[:, :2], low, high - _MIN_SIDE_PX)
        boxes[:, 2:] = np.clip(boxes[:, 2:], low + _MIN_SIDE_PX, high)
    # Enforce a minimum side around the box centre (only touches degenerate boxes).
    for lo, hi in ((0, 2), (1, 3)):
        small = boxes[:, hi] - boxes[:, lo] < _MIN_SIDE_PX
        if np.any(small):
            mid = 0.5 * (boxes[small, lo] + boxes[small, hi])
            boxes[small, lo] = mid - 0.5 * _MIN_SIDE_PX
            boxes[small, hi] = mid + 0.5 * _MIN_SIDE_PX
    return boxes
