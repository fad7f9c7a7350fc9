"""A result matched against the ground truth row by row, as CLEAR MOT matches them.

TrackEval computes the scores (:mod:`emtrack.eval.evaluate`); this gives what the scores do
not: the status of every result row (matched, false positive, identity switch, or on an
ignored gt box) and of every gt row (missed or not), which ``emtrack viz tracks`` draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from emtrack.io import MotTable
from emtrack.model.features import box_iou

__all__ = ["FALSE_POSITIVE", "ID_SWITCH", "IGNORED", "MATCHED", "GtComparison", "compare_to_gt"]

#: Status of a result row against the ground truth (:attr:`GtComparison.result_status`).
MATCHED, FALSE_POSITIVE, ID_SWITCH, IGNORED = 0, 1, 2, 3


@dataclass(frozen=True)
class GtComparison:
    """A result matched against the ground truth frame by frame.

    Attributes:
        gt: The evaluable ground-truth rows (conf != 0 and class 1 or -1, as
            :func:`emtrack.synth.load_gt_objects` keeps them).
        result_status: ``(R,)`` int8 per row of the result: :data:`MATCHED`,
            :data:`FALSE_POSITIVE`, :data:`ID_SWITCH` (matched, but its gt object was matched
            to another track id before) or :data:`IGNORED` (unmatched, on an ignored gt box).
        gt_missed: ``(G,)`` bool per row of ``gt``: no result box matched it.
    """

    gt: MotTable
    result_status: np.ndarray
    gt_missed: np.ndarray

    @property
    def counts(self) -> dict[str, int]:
        """Totals: matches (including switches), false positives, misses and id switches."""
        status = self.result_status
        return {
            "matches": int(np.isin(status, (MATCHED, ID_SWITCH)).sum()),
            "false_positives": int((status == FALSE_POSITIVE).sum()),
            "misses": int(self.gt_missed.sum()),
            "id_switches": int((status == ID_SWITCH).sum()),
        }


def compare_to_gt(result: MotTable, gt: MotTable, iou_threshold: float = 0.5) -> GtComparison:
    """Match result boxes to gt boxes in every frame, as CLEAR MOT does.

    Per frame, the Hungarian algorithm maximises the IoU over pairs with IoU >= ``iou_threshold``,
    keeping the pairs of the previous frame when they still qualify (a large bonus, as
    TrackEval's CLEAR does). A match is an identity switch when its gt object was last matched
    to a different track id. Unmatched result boxes are false positives unless they overlap an
    ignored gt box (conf 0, or a class other than pedestrian) by ``iou_threshold``.

    Args:
        result: Tracker output (``ids`` = track ids).
        gt: Ground truth as read by :func:`emtrack.io.read_mot`.
        iou_threshold: Minimum IoU of a match.

    Returns:
        The per-row statuses (see :class:`GtComparison`).
    """
    evaluable = (gt.scores != 0) & np.isin(gt.classes, (1, -1))
    gt_eval, gt_ignored = gt.select(evaluable), gt.select(~evaluable)
    num_frames = max(result.num_frames, gt.num_frames)
    result_index = result.frame_index(num_frames)
    gt_index = gt_eval.frame_index(num_frames)
    ignored_index = gt_ignored.frame_index(num_frames)
    status = np.full(len(result), FALSE_POSITIVE, np.int8)
    missed = np.ones(len(gt_eval), bool)
    last_match: dict[int, int] = {}  # gt id -> track id it was last matched to
    previous: set[tuple[int, int]] = set()  # (gt id, track id) pairs of the previous frame
    for f in range(num_frames):
        r_rows, g_rows = result_index[f], gt_index[f]
        current: set[tuple[int, int]] = set()
        if len(r_rows) and len(g_rows):
            iou = box_iou(gt_eval.boxes_xyxy[g_rows][:, None], result.boxes_xyxy[r_rows][None])
            ok = iou >= iou_threshold - 1e-9
            g_ids, r_ids = gt_eval.ids[g_rows], result.ids[r_rows]
            keep = np.array(
                [[(int(g), int(r)) in previous for r in r_ids] for g in g_ids], dtype=bool
            ).reshape(ok.shape)
            score = np.where(ok, iou + 1000.0 * keep, 0.0)
            gi, ri = linear_sum_assignment(-score)
            good = score[gi, ri] > 0
            for g, r in zip(gi[good].tolist(), ri[good].tolist(), strict=True):
                gt_id, track_id = int(g_ids[g]), int(r_ids[r])
                missed[g_rows[g]] = False
                before = last_match.get(gt_id)
                status[r_rows[r]] = ID_SWITCH if before not in (None, track_id) else MATCHED
                last_match[gt_id] = track_id
                current.add((gt_id, track_id))
        previous = current
        unmatched = r_rows[status[r_rows] == FALSE_POSITIVE]
        i_rows = ignored_index[f]
        if len(unmatched) and len(i_rows):
            iou = box_iou(
                gt_ignored.boxes_xyxy[i_rows][:, None], result.boxes_xyxy[unmatched][None]
            )
            status[unmatched[(iou >= iou_threshold - 1e-9).any(0)]] = IGNORED
    return GtComparison(gt_eval, status, missed)
