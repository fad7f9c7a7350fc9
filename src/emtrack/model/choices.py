"""The string choices of the EM loss as ``Literal`` types (torch-free).

Configs (:class:`~emtrack.train.TrainConfig`) and the command line name these choices without
importing torch; the tuples are derived from the types, so each list of values is written once.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "ASSOCIATIONS",
    "KALMAN_IMPLS",
    "OBJECTIVES",
    "Association",
    "KalmanImpl",
    "Objective",
]

#: ``smoothed``: the paper's objective (RTS-smoothed posterior); ``filtered``: the same with
#: the filtered posterior (ablation); ``innovations``: the exact marginal likelihood.
Objective = Literal["smoothed", "filtered", "innovations"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)
#: ``structured``: the fast filter of :mod:`emtrack.model.kalman` (always used for training);
#: ``dense``: the joint-state oracle of :mod:`emtrack.model.dense` (tests and benchmark only).
KalmanImpl = Literal["structured", "dense"]
KALMAN_IMPLS: tuple[str, ...] = get_args(KalmanImpl)
#: ``chain``: the paper's association of adjacent frames, chained into ``P_t = A_t … A_1``;
#: ``predicted``: each frame's detections against the slots' Kalman-predicted boxes (what the
#: tracker does), so a missed detection does not cut the slot off for the rest of the clip.
Association = Literal["chain", "predicted"]
ASSOCIATIONS: tuple[str, ...] = get_args(Association)
