"""The edge features as numpy planes, one plane per feature, for the torch-free tracker.

:func:`edge_feature_planes` computes :func:`emtrack.model.features.edge_features` (the same
values, bit for bit) with a few whole-plane operations into a preallocated buffer; the tracker
calls it every frame. The clamps and the minimum side come from the feature contract in
:mod:`emtrack.model.features`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from emtrack.model.features import (
    GAP_CLAMP_S,
    LOG_RATIO_CLAMP,
    MIN_SIDE,
    NUM_FEATURES,
    OFFSET_CLAMP,
)

__all__ = ["BOX_TERMS", "box_terms", "edge_feature_planes", "feature_buffer", "planes_from_terms"]


#: Per-box terms of the edge features as linear maps of ``[x1, y1, x2, y2]``: x centre, y bottom,
#: y top, height, width, then ``x1, y1, x2, y2`` again (contiguous, for the overlap). Every
#: coefficient is 0, ±1 or 0.5, so each product is exact and the matrix product rounds once,
#: like ``(x1 + x2) * 0.5`` and ``y2 - y1`` do.
BOX_TERMS = np.array(
    [
        [0.5, 0.0, 0.5, 0.0],
        [0.0, 0.0, 0.0, 1.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, -1.0, 0.0, 1.0],
        [-1.0, 0.0, 1.0, 0.0],
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
BOX_TERMS.flags.writeable = False


@functools.lru_cache(maxsize=8)
def _clamps(ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper clamps of the first five feature planes, shaped for ``ndim`` dims."""
    high = np.array([OFFSET_CLAMP] * 3 + [LOG_RATIO_CLAMP] * 2).reshape(-1, *[1] * (ndim - 1))
    low = -high
    low.flags.writeable = high.flags.writeable = False
    return low, high


def box_terms(boxes: np.ndarray) -> np.ndarray:
    """``(4, *S)`` boxes, coordinates first -> ``(9, *S)`` (rows as in ``BOX_TERMS``).

    Sides are floored at the features' minimum side.
    """
    terms = (BOX_TERMS @ boxes.reshape(4, -1)).reshape(len(BOX_TERMS), *boxes.shape[1:])
    np.maximum(terms[3:5], MIN_SIDE, out=terms[3:5])
    return terms


def feature_buffer(shape: tuple[int, ...]) -> np.ndarray:
    """``(F + 1, *shape)`` buffer for :meth:`AssociationWeights.mlp`: row ``F`` set to ones."""
    planes = np.empty((NUM_FEATURES + 1, *shape))
    planes[NUM_FEATURES] = 1.0
    return planes


def edge_feature_planes(
    ref: np.ndarray, cur: np.ndarray, gap_s: Any, out: np.ndarray
) -> np.ndarray:
    """:func:`emtrack.model.features.edge_features` for numpy, one plane per feature.

    The same values, bit for bit (the same floating-point operations on every element; tested
    against ``edge_features``), computed with a few whole-plane operations into ``out``: the
    tracker calls this every frame.

    Args:
        ref: ``(4, ...)`` reference boxes, coordinates first (``x1, y1, x2, y2``).
        cur: ``(4, ...)`` current boxes, coordinates first. ``ref.shape[1:]`` and
            ``cur.shape[1:]`` have the same number of axes and broadcast to the pairs' shape
            ``S``: ``(4, 1, N)`` and ``(4, M, 1)`` give the ``(M, N)`` grid, ``(4, K)`` and
            ``(4, K)`` give ``K`` pairs.
        gap_s: seconds between the boxes, broadcastable to ``S``.
        out: ``(F, *S)`` float64, C-contiguous, ``F = NUM_FEATURES``.

    Returns:
        ``out``, filled: ``out[f]`` is feature ``FEATURE_NAMES[f]`` of every pair.
    """
    return planes_from_terms(box_terms(ref), box_terms(cur), gap_s, out)


def planes_from_terms(
    r_terms: np.ndarray,
    c_terms: np.ndarray,
    gap_s: Any,
    out: np.ndarray,
    gap_in_range: bool = False,
) -> np.ndarray:
    """:func:`edge_feature_planes` from the boxes' :func:`box_terms` (``gap_in_range``: gaps
    already within ``[0, GAP_CLAMP_S]``, written as they are)."""
    norm = np.add(r_terms[3], c_terms[3], out=out[6])  # scratch until the distance
    np.divide(2.0, norm, out=norm)
    offsets = np.subtract(r_terms[0:3], c_terms[0:3], out=out[0:3])  # dx_centre, dy_bottom, dy_top
    offsets *= norm
    ratios = np.divide(r_terms[3:5], c_terms[3:5], out=out[3:5])  # log_h_ratio, log_w_ratio
    np.log(ratios, out=ratios)
    low, high = _clamps(out.ndim)  # offsets to ±8, log ratios to ±3
    np.maximum(out[0:5], low, out=out[0:5])
    np.minimum(out[0:5], high, out=out[0:5])
    overlap = np.minimum(r_terms[7:9], c_terms[7:9])  # [x, y]
    overlap -= np.maximum(r_terms[5:7], c_terms[5:7])
    np.maximum(overlap, 0.0, out=overlap)
    inter = np.multiply(overlap[0], overlap[1], out=out[5])
    union = r_terms[4] * r_terms[3] + c_terms[4] * c_terms[3]  # w * h + w * h
    union -= inter
    np.divide(inter, union, out=inter)  # iou
    distance = np.multiply(out[0], out[0], out=out[6])
    distance += np.square(out[1])
    distance += 1e-12
    np.sqrt(distance, out=distance)
    if gap_in_range:
        out[7] = gap_s
    else:
        out[7] = np.minimum(np.maximum(gap_s, 0.0), GAP_CLAMP_S)  # np.clip, without its overhead
    return out
