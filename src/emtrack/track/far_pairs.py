"""Far pairs: a proven upper bound on their logit, so the tracker can skip the network for them.

In a crowded frame most (detection, track) pairs are far apart; :func:`far_pair_bound` proves,
once per set of weights, that no such pair can score above a bound, and
:class:`~emtrack.track.logit_grid.LogitGrid` scores a far pair only when an assignment would use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emtrack.model.features import GAP_CLAMP_S, LOG_RATIO_CLAMP, NUM_FEATURES, OFFSET_CLAMP
from emtrack.track.feature_planes import BOX_TERMS
from emtrack.track.weights import AssociationWeights

#: Boxes taller than this (px) and at most this many heights wide, with coordinates within
#: ``_FAR_MAX_COORD`` px, can be part of a far pair (the conditions the bound's proof uses).
_FAR_MIN_HEIGHT = 1.0
_FAR_MAX_ASPECT = 2.0
_FAR_MAX_COORD = 1e6
# (gate distance in mean heights, target logit) tried in turn; the first proven one is used.
_FAR_ATTEMPTS: tuple[tuple[float, float], ...] = ((2.5, -10.0), (4.0, -5.0))
_FAR_MAX_BOXES = 300_000  # branch-and-bound budget per attempt
_FAR_SLACK = 1e-6  # covers floating-point rounding in the features, the network and the bound


@dataclass(frozen=True)
class FarPairBound:
    """No far pair has a logit above :attr:`logit` (proven for one set of weights).

    A (reference, current) pair is *far* when both boxes are eligible (height >= 1 px, width
    <= 2 heights, every coordinate within ±1e6 px) and its ``dx_centre`` or ``dy_bottom``
    feature before clamping is at least :attr:`distance` in absolute value (offsets of more
    than ``distance`` mean box heights). Far boxes do not overlap, so their IoU feature is 0,
    and ``dy_top = dy_bottom - 2 tanh(log_h_ratio / 2)`` before clamping. On that set of
    feature vectors (with ``distance`` lowered by a relative 1e-6, which covers the rounding
    of :meth:`far_mask`), for any time gap in ``[0, gap_max_s]``, branch and bound with
    interval arithmetic through the network (:func:`far_pair_bound`) proved that the logit
    stays below :attr:`logit` (plus a small slack for rounding, already included).

    Attributes:
        distance: The gate, in mean box heights.
        logit: The upper bound.
        gap_max_s: The largest time gap (s) the bound holds for.
    """

    distance: float
    logit: float
    gap_max_s: float

    def far_mask(self, ref_boxes_xyxy: np.ndarray, cur_boxes_xyxy: np.ndarray) -> np.ndarray:
        """``(M, N)`` bool: which (current ``(M, 4)``, reference ``(N, 4)``) pairs are far.

        Tests ``max(|x_i - x_j|, |y_i - y_j|) >= distance * (h_i + h_j) / 2`` on centres x and
        bottoms y, the features' offsets without their division (its result differs from
        theirs by rounding only); an ineligible box gets an infinite height, so none of its
        pairs is far.
        """
        ref = _far_terms(ref_boxes_xyxy, self.distance)
        cur = _far_terms(cur_boxes_xyxy, self.distance)
        offsets = np.subtract(ref[0:2, None, :], cur[0:2, :, None])
        np.abs(offsets, out=offsets)
        reach = np.add(ref[2], cur[2][:, None])
        return np.maximum(offsets[0], offsets[1], out=offsets[0]) >= reach


def _far_terms(boxes_xyxy: np.ndarray, distance: float) -> np.ndarray:
    """``(3, K)``: x centre, y bottom and ``distance * height / 2`` of boxes ``(K, 4)``.

    The last is infinite for boxes outside :class:`FarPairBound`'s conditions.
    """
    terms = BOX_TERMS[(0, 1, 3), :] @ boxes_xyxy.T  # x centre, y bottom, height
    width = boxes_xyxy[:, 2] - boxes_xyxy[:, 0]
    eligible = (
        (terms[2] >= _FAR_MIN_HEIGHT)
        & (width <= _FAR_MAX_ASPECT * terms[2])
        & (np.abs(boxes_xyxy).max(1) <= _FAR_MAX_COORD)
    )
    terms[2] *= 0.5 * distance
    terms[2, ~eligible] = np.inf
    return terms


_FAR_BOUNDS: dict[tuple[bytes, float], FarPairBound | None] = {}


def far_pair_bound(weights: AssociationWeights, gap_max_s: float) -> FarPairBound | None:
    """A proven :class:`FarPairBound` for ``weights`` and gaps up to ``gap_max_s``, or None.

    The first of a few (distance, logit) targets that branch and bound can prove within its
    budget; None when none can (then every pair must be scored). Results are cached per
    weights and gap range (``gap_max_s`` is rounded up to a multiple of 0.5 s first), so the
    proof (a fraction of a second) runs once per process.
    """
    gap_max_s = min(GAP_CLAMP_S, math.ceil(max(gap_max_s, 1e-9) * 2.0) / 2.0)
    key = (weights._layers_digest, gap_max_s)
    if key not in _FAR_BOUNDS:
        found = None
        for distance, target in _FAR_ATTEMPTS:
            if _prove_far_bound(weights.layers, distance * (1.0 - 1e-6), target, gap_max_s):
                found = FarPairBound(distance, target + _FAR_SLACK, gap_max_s)
                break
        _FAR_BOUNDS[key] = found
    return _FAR_BOUNDS[key]


def _prove_far_bound(
    layers: tuple[tuple[np.ndarray, np.ndarray], ...],
    distance: float,
    target: float,
    gap_max_s: float,
) -> bool:
    """Whether every far pair (see :class:`FarPairBound`) provably has a logit <= ``target``.

    Far pairs are parametrised by five numbers: the raw (unclamped) ``dx_centre`` and
    ``dy_bottom`` offsets ``p_dx``, ``p_dy``, the log height ratio ``s``, ``log_w_ratio`` and
    the gap. The features are then ``clamp(p_dx)``, ``clamp(p_dy)``,
    ``clamp(p_dy - 2 tanh(s / 2))``, ``clamp(s)``, ``log_w_ratio``, 0 (IoU), the norm of the
    clamped offsets, and the gap. Raw offsets beyond ±8 (±10 for ``p_dy``, which also moves
    ``dy_top``) give the same features as ±8 (±10), so bounded boxes cover everything. Each box
    of parameters gives intervals of the features, interval arithmetic gives an upper bound of
    the network's output over the box, and boxes whose bound is above ``target`` are halved
    along their widest side, until none is left (proved) or the budget is spent (not proved).
    """
    clamp, ratio = OFFSET_CLAMP, LOG_RATIO_CLAMP
    positive = [np.maximum(w, 0.0) for w, _ in layers]
    negative = [np.minimum(w, 0.0) for w, _ in layers]
    lows, highs = [], []
    for axis in (0, 1):
        for sign in (1.0, -1.0):
            # s is split into its two clamped tails and the middle; tails are never halved.
            for s_low, s_high in ((-math.inf, -ratio), (-ratio, ratio), (ratio, math.inf)):
                low = np.array([-clamp, -clamp - 2.0, s_low, -ratio, 0.0])
                high = np.array([clamp, clamp + 2.0, s_high, ratio, gap_max_s])
                if sign > 0:
                    low[axis] = distance
                else:
                    high[axis] = -distance
                lows.append(low)
                highs.append(high)
    low, high = np.array(lows), np.array(highs)
    scale = high.max(0) - low.min(0)
    scale[2] = 2.0 * ratio
    processed = 0
    while len(low):
        processed += len(low)
        if processed > _FAR_MAX_BOXES:
            return False
        f_low, f_high = np.empty((len(low), NUM_FEATURES)), np.empty((len(low), NUM_FEATURES))
        f_low[:, 0:2] = np.clip(low[:, 0:2], -clamp, clamp)
        f_high[:, 0:2] = np.clip(high[:, 0:2], -clamp, clamp)
        tanh_low, tanh_high = 2.0 * np.tanh(low[:, 2] / 2.0), 2.0 * np.tanh(high[:, 2] / 2.0)
        f_low[:, 2] = np.clip(low[:, 1] - tanh_high - _FAR_SLACK, -clamp, clamp)
        f_high[:, 2] = np.clip(high[:, 1] - tanh_low + _FAR_SLACK, -clamp, clamp)
        f_low[:, 3] = np.clip(low[:, 2], -ratio, ratio)
        f_high[:, 3] = np.clip(high[:, 2], -ratio, ratio)
        f_low[:, 4], f_high[:, 4] = low[:, 3], high[:, 3]
        f_low[:, 5] = f_high[:, 5] = 0.0
        straddles = (f_low[:, 0:2] < 0.0) & (f_high[:, 0:2] > 0.0)
        nearest = np.where(
            straddles, 0.0, np.minimum(np.abs(f_low[:, 0:2]), np.abs(f_high[:, 0:2]))
        )
        farthest = np.maximum(np.abs(f_low[:, 0:2]), np.abs(f_high[:, 0:2]))
        f_low[:, 6] = np.sqrt((nearest**2).sum(1))
        f_high[:, 6] = np.sqrt((farthest**2).sum(1) + 1e-12) + _FAR_SLACK
        f_low[:, 7], f_high[:, 7] = low[:, 4], high[:, 4]
        out_low, out_high = f_low, f_high
        for k, (_, b) in enumerate(layers):
            out_low, out_high = (
                out_low @ positive[k] + out_high @ negative[k] + b,
                out_high @ positive[k] + out_low @ negative[k] + b,
            )
            if k < len(layers) - 1:
                np.maximum(out_low, 0.0, out=out_low)
                np.maximum(out_high, 0.0, out=out_high)
        still_open = out_high[:, 0] > target
        low, high = low[still_open], high[still_open]
        width = (high - low) / scale
        width[~np.isfinite(width)] = 0.0
        axis = width.argmax(1)
        rows = np.arange(len(low))
        middle = 0.5 * (low[rows, axis] + high[rows, axis])
        upper_low, upper_high = low.copy(), high.copy()
        high[rows, axis] = middle
        upper_low[rows, axis] = middle
        low, high = np.concatenate([low, upper_low]), np.concatenate([high, upper_high])
    return True
