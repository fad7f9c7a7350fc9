"""Scoring with TrackEval: HOTA, CLEAR (MOTA, IDSW) and Identity (IDF1) metrics, and the
row-by-row CLEAR matching of a result against the ground truth (:mod:`emtrack.eval.clear`)."""

from emtrack.eval.clear import GtComparison, compare_to_gt
from emtrack.eval.evaluate import BENCHMARKS, EvalSequence, evaluate, evaluate_folder
from emtrack.eval.scores import EvalReport, TrackingScores

__all__ = [
    "BENCHMARKS",
    "EvalReport",
    "EvalSequence",
    "GtComparison",
    "TrackingScores",
    "compare_to_gt",
    "evaluate",
    "evaluate_folder",
]
