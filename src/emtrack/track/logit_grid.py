"""Association logits of detections vs tracks, and the assignment solved on them.

Large frames skip the network on pairs a proven bound rules out
(:mod:`emtrack.track.far_pairs`) and compute them only if the assignment would use them.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from emtrack.track.far_pairs import far_pair_bound
from emtrack.track.iou import IouScorer
from emtrack.track.weights import AssociationWeights

NO_ROWS = np.zeros(0, np.int64)
NO_ROWS.flags.writeable = False

#: Below this many pairs every logit is computed; from it on, pairs that a proven bound rules
#: out (:class:`~emtrack.track.far_pairs.FarPairBound`) are skipped first.
GATE_MIN_PAIRS = 2048


class LogitGrid:
    """Association logits of detections (rows) vs tracks (columns), exact where it matters.

    Small grids are computed in full. In large ones, far pairs
    (:meth:`~emtrack.track.far_pairs.FarPairBound.far_mask`) start at the bound's logit, an upper
    bound of their true value, and :meth:`match` computes a far pair only when the assignment
    would use it. An assignment that uses only computed pairs and is optimal with the others at
    their upper bounds is optimal with their true values too (no other assignment can score
    higher), so the result is the one the full grid gives.

    Args:
        weights: The association network, or :class:`~emtrack.track.iou.IouScorer` (whose
            grids are always computed in full: IoU is cheaper than any bound).
        track_boxes: ``(N, 4)`` predicted track boxes.
        gap_s: ``(N,)`` seconds since each track's last detection.
        gap_max_s: The largest gap any track can have (for the bound).
        det_boxes: ``(M, 4)`` detection boxes.
    """

    def __init__(
        self,
        weights: AssociationWeights | IouScorer,
        track_boxes: np.ndarray,
        gap_s: np.ndarray,
        gap_max_s: float,
        det_boxes: np.ndarray,
    ) -> None:
        self.weights = weights
        self.track_boxes, self.det_boxes, self.gap_s = track_boxes, det_boxes, gap_s
        self.known: np.ndarray | None = None  # None: every logit is computed
        bound = None
        if (
            isinstance(weights, AssociationWeights)
            and len(det_boxes) * len(track_boxes) >= GATE_MIN_PAIRS
        ):
            bound = far_pair_bound(weights, gap_max_s)
        if bound is None or float(gap_s.max()) > bound.gap_max_s:
            self.logits = weights.grid_logits(track_boxes, det_boxes, gap_s, gap_in_range=True)
            return
        self.known = ~bound.far_mask(track_boxes, det_boxes)
        self.logits = np.full(self.known.shape, bound.logit)
        self._compute(np.nonzero(self.known))

    def _compute(self, pairs: tuple[np.ndarray, np.ndarray]) -> None:
        det, trk = pairs
        self.logits[det, trk] = self.weights.pair_logits(
            self.track_boxes[trk], self.det_boxes[det], self.gap_s[trk]
        )

    def _reveal(self, rows: np.ndarray, cols: np.ndarray) -> None:
        """Compute every pair of grid rows ``rows`` and of grid columns ``cols``."""
        assert self.known is not None
        det, trk = (~self.known[rows]).nonzero()
        det = rows[det]
        self.known[rows] = True
        more_det, more_trk = (~self.known[:, cols]).nonzero()
        self.known[:, cols] = True
        self._compute((np.concatenate([det, more_det]), np.concatenate([trk, cols[more_trk]])))

    def match(
        self, rows: np.ndarray | None, cols: np.ndarray | None, margin: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Hungarian between detections ``rows`` and tracks ``cols`` (None: all of them).

        Returns:
            ``(positions in rows, track indices)`` of the pairs whose
            ``logit - dustbin logit - margin`` is > 0 in the optimal assignment (positions
            and indices are grid rows and columns where ``rows`` / ``cols`` is None).
        """
        if (rows is not None and len(rows) == 0) or (cols is not None and len(cols) == 0):
            return NO_ROWS, NO_ROWS
        if self.logits.size == 0:
            return NO_ROWS, NO_ROWS
        while True:
            block = self.logits if rows is None else self.logits.take(rows, 0)
            if cols is not None:
                block = block.take(cols, 1)
            # cost = -gain, gain = (logit - dustbin) - margin (negation is exact).
            cost = self.weights.dustbin_logit - block
            cost += margin
            r, c = assign(cost)
            if self.known is None:
                break
            grid_r = r if rows is None else rows[r]
            grid_c = c if cols is None else cols[c]
            unknown = ~self.known[grid_r, grid_c]
            if not unknown.any():
                break
            # Compute every pair of the detections and tracks that used a bound; solve again.
            self._reveal(np.unique(grid_r[unknown]), np.unique(grid_c[unknown]))
        ok = cost[r, c] < 0
        return r[ok], (c[ok] if cols is None else cols[c[ok]])


def assign(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the assignment minimising ``cost`` (capped at 1000) ``(M, N)``.

    One row or one column: the first minimum, which is what ``linear_sum_assignment`` picks.
    """
    if cost.shape[0] == 1:
        return _ZERO, np.array([int(np.argmin(cost[0]))])
    if cost.shape[1] == 1:
        return np.array([int(np.argmin(cost[:, 0]))]), _ZERO
    return linear_sum_assignment(np.minimum(cost, 1e3))


_ZERO = np.zeros(1, np.int64)
_ZERO.flags.writeable = False
