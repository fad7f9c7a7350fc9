"""Typed tracking scores, read out of TrackEval's nested result dicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["COMBINED", "EvalReport", "TrackingScores"]

COMBINED = "COMBINED"
"""Row label of the combined scores in :meth:`EvalReport.format_table`."""


@dataclass(frozen=True)
class TrackingScores:
    """The scores of one sequence, or of all sequences combined.

    Percentages are floats in ``[0, 100]`` (MOTA can be negative); counts are ints.
    HOTA, DetA and AssA are averaged over TrackEval's 19 localisation thresholds
    (alpha = 0.05, ..., 0.95); CLEAR and Identity metrics use IoU >= 0.5.

    Attributes:
        hota: Higher Order Tracking Accuracy, percent.
        deta: Detection accuracy (HOTA's detection term), percent.
        assa: Association accuracy (HOTA's association term), percent.
        mota: Multiple Object Tracking Accuracy, percent: ``1 - (FN + FP + IDSW) / num_gt_dets``.
        idf1: Identity F1, percent: ``2 IDTP / (2 IDTP + IDFP + IDFN)``.
        idsw: Number of identity switches (CLEAR).
        motp: Multiple Object Tracking Precision (mean IoU of CLEAR matches), percent.
        frag: Number of fragmentations (CLEAR).
        clr_tp: CLEAR true positives (matched boxes).
        clr_fn: CLEAR false negatives (missed ground-truth boxes).
        clr_fp: CLEAR false positives (unmatched tracker boxes).
        idtp: Identity true positives.
        idfn: Identity false negatives.
        idfp: Identity false positives.
        num_gt_dets: Ground-truth boxes evaluated (after preprocessing).
        num_tracker_dets: Tracker boxes evaluated (after preprocessing).
        num_gt_ids: Distinct ground-truth identities evaluated.
        num_tracker_ids: Distinct tracker identities evaluated.
    """

    hota: float
    deta: float
    assa: float
    mota: float
    idf1: float
    idsw: int
    motp: float
    frag: int
    clr_tp: int
    clr_fn: int
    clr_fp: int
    idtp: int
    idfn: int
    idfp: int
    num_gt_dets: int
    num_tracker_dets: int
    num_gt_ids: int
    num_tracker_ids: int

    @classmethod
    def from_trackeval(cls, metrics: dict[str, dict[str, Any]]) -> TrackingScores:
        """Read the scores from TrackEval's result dict of one sequence and class.

        Args:
            metrics: ``res[seq][cls]`` from ``trackeval.Evaluator.evaluate``: a dict with the
                keys ``"HOTA"``, ``"CLEAR"``, ``"Identity"`` and ``"Count"``, each a dict of
                TrackEval fields (fractions in ``[0, 1]``, HOTA fields arrays over alpha).

        Returns:
            The scores, in percent.
        """
        hota, clear, identity, count = (
            metrics["HOTA"],
            metrics["CLEAR"],
            metrics["Identity"],
            metrics["Count"],
        )
        return cls(
            hota=_percent_mean(hota["HOTA"]),
            deta=_percent_mean(hota["DetA"]),
            assa=_percent_mean(hota["AssA"]),
            mota=_percent_mean(clear["MOTA"]),
            idf1=_percent_mean(identity["IDF1"]),
            idsw=int(clear["IDSW"]),
            motp=_percent_mean(clear["MOTP"]),
            frag=int(clear["Frag"]),
            clr_tp=int(clear["CLR_TP"]),
            clr_fn=int(clear["CLR_FN"]),
            clr_fp=int(clear["CLR_FP"]),
            idtp=int(identity["IDTP"]),
            idfn=int(identity["IDFN"]),
            idfp=int(identity["IDFP"]),
            num_gt_dets=int(count["GT_Dets"]),
            num_tracker_dets=int(count["Dets"]),
            num_gt_ids=int(count["GT_IDs"]),
            num_tracker_ids=int(count["IDs"]),
        )


def _percent_mean(value: Any) -> float:
    """Mean of a TrackEval fraction (scalar or per-alpha array), in percent."""
    return float(np.mean(np.asarray(value, dtype=np.float64)) * 100.0)


_TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (header, attribute, format)
    ("HOTA", "hota", ".2f"),
    ("DetA", "deta", ".2f"),
    ("AssA", "assa", ".2f"),
    ("MOTA", "mota", ".2f"),
    ("IDF1", "idf1", ".2f"),
    ("IDSW", "idsw", "d"),
    ("Frag", "frag", "d"),
    ("GT", "num_gt_dets", "d"),
    ("Dets", "num_tracker_dets", "d"),
    ("GT_IDs", "num_gt_ids", "d"),
    ("IDs", "num_tracker_ids", "d"),
)


@dataclass(frozen=True)
class EvalReport:
    """Scores of every evaluated sequence and of all of them combined.

    Attributes:
        per_sequence: Scores by sequence name, in name order.
        combined: TrackEval's ``COMBINED_SEQ`` scores (counts summed over sequences, then the
            metrics computed from the sums; not a mean of the per-sequence numbers).
    """

    per_sequence: dict[str, TrackingScores]
    combined: TrackingScores

    def format_table(self) -> str:
        """A plain-text table: one row per sequence, then the combined row.

        Returns:
            The table, lines joined by ``"\\n"``, without a trailing newline.
        """
        headers = ["Sequence", *(header for header, _, _ in _TABLE_COLUMNS)]
        rows = [
            [name, *(format(getattr(scores, attr), fmt) for _, attr, fmt in _TABLE_COLUMNS)]
            for name, scores in [*self.per_sequence.items(), (COMBINED, self.combined)]
        ]
        widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

        def line(cells: list[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
            return "  ".join([first, *rest])

        separator = "  ".join("-" * width for width in widths)
        body = [line(row) for row in rows]
        return "\n".join([line(headers), separator, *body[:-1], separator, body[-1]])
