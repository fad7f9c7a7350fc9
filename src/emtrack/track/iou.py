"""IoU association: the tracker's pair score replaced by the IoU of the predicted box.

:class:`IouScorer` stands in for :class:`~emtrack.track.weights.AssociationWeights` wherever
the tracker scores (detection, track) pairs — both online stages and the offline re-linking —
so that ``TrackerConfig(association="iou")`` changes nothing but the scores: the IoU of a
track's Kalman-predicted box and a detection, with a dustbin score of 0, so that a pair is
matched when its IoU beats the stage's gate (``iou_gate``, SORT's 0.3, in the first stage and
when re-linking; the stricter ``low_iou_gate`` in the second). It is the baseline that says
what the learned network adds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emtrack.model.features import box_iou


class IouScorer:
    """Pair scores = IoU of the reference (predicted) box and the current box.

    The same methods as :class:`~emtrack.track.weights.AssociationWeights` uses for scoring;
    the time gap is ignored.
    """

    #: The score of "no match": a pair is kept when its IoU minus this beats the gate.
    dustbin_logit = 0.0

    def logits(
        self, ref_boxes_xyxy: np.ndarray, cur_boxes_xyxy: np.ndarray, gap_s: Any
    ) -> np.ndarray:
        """IoU of current boxes ``(..., M, 4)`` vs references ``(..., N, 4)`` -> ``(..., M, N)``."""
        ref = np.asarray(ref_boxes_xyxy, dtype=float)[..., None, :, :]
        cur = np.asarray(cur_boxes_xyxy, dtype=float)[..., :, None, :]
        return box_iou(cur, ref)

    def grid_logits(
        self,
        ref_boxes_xyxy: np.ndarray,
        cur_boxes_xyxy: np.ndarray,
        gap_s: np.ndarray,
        gap_in_range: bool = False,
    ) -> np.ndarray:
        """IoU of boxes ``(M, 4)`` vs references ``(N, 4)`` -> ``(M, N)``."""
        return box_iou(cur_boxes_xyxy[:, None, :], ref_boxes_xyxy[None, :, :])

    def pair_logits(
        self, ref_boxes_xyxy: np.ndarray, cur_boxes_xyxy: np.ndarray, gap_s: np.ndarray
    ) -> np.ndarray:
        """IoU of ``K`` given pairs ``(K, 4)`` and ``(K, 4)`` -> ``(K,)``."""
        return box_iou(cur_boxes_xyxy, ref_boxes_xyxy)


#: The one instance the tracker uses (it holds no state).
IOU_SCORER = IouScorer()
