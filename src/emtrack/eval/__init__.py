"""Scoring with TrackEval: HOTA, CLEAR (MOTA, IDSW) and Identity (IDF1) metrics."""

from emtrack.eval.evaluate import BENCHMARKS, EvalSequence, evaluate, evaluate_folder
from emtrack.eval.scores import EvalReport, TrackingScores

__all__ = [
    "BENCHMARKS",
    "EvalReport",
    "EvalSequence",
    "TrackingScores",
    "evaluate",
    "evaluate_folder",
]
