"""Edge features between pairs of boxes, shared by training (torch) and tracking (numpy).

The functions take numpy arrays or torch tensors and return the same kind, so the tracker
computes exactly the features the network was trained on without importing torch.

The feature contract is defined here and nowhere else: the names and order
(:data:`FEATURE_NAMES`), the clamps (:data:`OFFSET_CLAMP`, :data:`LOG_RATIO_CLAMP`,
:data:`GAP_CLAMP_S`) and the minimum box side (:data:`MIN_SIDE`). The torch features
(:func:`edge_features`), the tracker's numpy planes (:mod:`emtrack.track.feature_planes`) and
the far-pair bound (:mod:`emtrack.track.far_pairs`) all read them from this module.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

#: Names of the edge features, in order (the last axis of :func:`edge_features`).
FEATURE_NAMES: tuple[str, ...] = (
    "dx_centre",  # 2 (xc_i - xc_j) / (h_i + h_j)
    "dy_bottom",  # 2 (ybot_i - ybot_j) / (h_i + h_j)
    "dy_top",  # 2 (ytop_i - ytop_j) / (h_i + h_j)
    "log_h_ratio",  # log(h_i / h_j)
    "log_w_ratio",  # log(w_i / w_j)
    "iou",
    "distance",  # hypot(dx_centre, dy_bottom)
    "gap_s",  # time between the two boxes, seconds
)
NUM_FEATURES = len(FEATURE_NAMES)

# Clamps keep features finite and bounded for absurd but valid inputs (500 px jumps, 1 px boxes).
#: ``dx_centre``, ``dy_bottom`` and ``dy_top`` are clamped to ``±OFFSET_CLAMP`` (box heights).
OFFSET_CLAMP = 8.0
#: ``log_h_ratio`` and ``log_w_ratio`` are clamped to ``±LOG_RATIO_CLAMP``.
LOG_RATIO_CLAMP = 3.0
#: ``gap_s`` is clamped to ``[0, GAP_CLAMP_S]`` seconds: the longest gap any network can see.
GAP_CLAMP_S = 10.0
#: Box widths and heights are floored at ``MIN_SIDE`` pixels before any ratio or division.
MIN_SIDE = 1e-3


def _namespace(x: Any) -> Any:
    """numpy or torch, whichever ``x`` belongs to (torch is never imported here)."""
    if type(x).__module__.startswith("torch"):
        return sys.modules["torch"]
    return np


def edge_features(ref_boxes_xyxy: Any, cur_boxes_xyxy: Any, gap_s: Any) -> Any:
    """Scale-invariant features of every (reference box, current box) pair.

    Args:
        ref_boxes_xyxy: ``(..., N, 4)`` reference boxes (the previous frame's detections in
            training; the tracks' predicted boxes in tracking).
        cur_boxes_xyxy: ``(..., M, 4)`` current boxes (detections of frame t).
        gap_s: time between reference and current boxes in seconds, broadcastable to
            ``(..., M, N)`` (a scalar, ``(..., 1, 1)`` or ``(..., 1, N)``).

    Returns:
        ``(..., M, N, F)`` features, rows = current boxes, columns = reference boxes,
        ``F = NUM_FEATURES`` in the order of :data:`FEATURE_NAMES`.
    """
    xp = _namespace(cur_boxes_xyxy)
    ref = ref_boxes_xyxy[..., None, :, :]  # (..., 1, N, 4)
    cur = cur_boxes_xyxy[..., :, None, :]  # (..., M, 1, 4)
    w_i = xp.clip(ref[..., 2] - ref[..., 0], MIN_SIDE, None)
    h_i = xp.clip(ref[..., 3] - ref[..., 1], MIN_SIDE, None)
    w_j = xp.clip(cur[..., 2] - cur[..., 0], MIN_SIDE, None)
    h_j = xp.clip(cur[..., 3] - cur[..., 1], MIN_SIDE, None)
    norm = 2.0 / (h_i + h_j)
    dx = ((ref[..., 0] + ref[..., 2]) - (cur[..., 0] + cur[..., 2])) * 0.5 * norm
    dy_bottom = (ref[..., 3] - cur[..., 3]) * norm
    dy_top = (ref[..., 1] - cur[..., 1]) * norm
    dx = xp.clip(dx, -OFFSET_CLAMP, OFFSET_CLAMP)
    dy_bottom = xp.clip(dy_bottom, -OFFSET_CLAMP, OFFSET_CLAMP)
    dy_top = xp.clip(dy_top, -OFFSET_CLAMP, OFFSET_CLAMP)
    log_h = xp.clip(xp.log(h_i / h_j), -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    log_w = xp.clip(xp.log(w_i / w_j), -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    inter_w = xp.clip(
        xp.minimum(ref[..., 2], cur[..., 2]) - xp.maximum(ref[..., 0], cur[..., 0]), 0.0, None
    )
    inter_h = xp.clip(
        xp.minimum(ref[..., 3], cur[..., 3]) - xp.maximum(ref[..., 1], cur[..., 1]), 0.0, None
    )
    inter = inter_w * inter_h
    iou = inter / (w_i * h_i + w_j * h_j - inter)
    distance = xp.sqrt(dx * dx + dy_bottom * dy_bottom + 1e-12)
    gap = xp.clip(gap_s + 0.0 * dx, 0.0, GAP_CLAMP_S)
    return xp.stack([dx, dy_bottom, dy_top, log_h, log_w, iou, distance, gap], -1)


def box_positions(boxes_xyxy: Any) -> Any:
    """Kalman observation of a box: the centre of its bottom edge.

    Args:
        boxes_xyxy: ``(..., 4)``.

    Returns:
        ``(..., 2)`` ``[x_centre, y_bottom]``.
    """
    xp = _namespace(boxes_xyxy)
    return xp.stack([(boxes_xyxy[..., 0] + boxes_xyxy[..., 2]) * 0.5, boxes_xyxy[..., 3]], -1)


def box_heights(boxes_xyxy: Any) -> Any:
    """Box heights ``(...)``, floored at a small positive value (noise scales with them)."""
    xp = _namespace(boxes_xyxy)
    return xp.clip(boxes_xyxy[..., 3] - boxes_xyxy[..., 1], MIN_SIDE, None)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of xyxy boxes ``(..., 4)``, broadcast against each other.

    ``box_iou(a[:, None], b[None])`` is the ``(M, N)`` matrix of ``a`` ``(M, 4)`` against
    ``b`` ``(N, 4)``. Unlike the ``iou`` feature, sides are not floored: boxes without area
    (union 0) get IoU 0. numpy only (used by evaluation baselines and plots).
    """
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
