"""Identities for real detections, taken from the ground truth by IoU matching (scoring only).

A detector's boxes carry no identity. To score how well a linker joins them across frames,
each detection is given the identity of the gt box it overlaps, frame by frame, the way
TrackEval decides which tracker boxes count (``MotChallenge2DBox.get_preprocessed_seq_data``):

* gt with a class column (MOT16/17/20 style, and KITTI-car converted to it): the detections of
  a frame are first matched to *all* its gt rows (Hungarian on IoU, pairs below 0.5 left out);
  a detection matched to a distractor (classes 2 person on vehicle, 7 static person,
  8 distractor, 12 reflection, and for MOT20 also 6 non-motorised vehicle) is
  :data:`IGNORED`, as TrackEval removes such tracker boxes before scoring. The others are
  matched again, in the same way, to the evaluated gt rows only (class 1, conf column not 0)
  and take the matched row's id; the unmatched ones are :data:`FALSE_POSITIVE`.
* gt without a class column (MOT15: the class field is -1 in every row): no distractors; the
  evaluated rows are those with a conf column not 0, matched as above.

MOT20 is recognised as :func:`emtrack.eval.evaluate` does: ``"MOT20"`` in the sequence name.
These identities are for scoring only: nothing that is trained or tracked ever sees them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from emtrack.io import MotTable
from emtrack.model.features import box_iou

__all__ = [
    "DISTRACTOR_CLASSES",
    "FALSE_POSITIVE",
    "IGNORED",
    "MATCH_IOU",
    "MOT20_DISTRACTOR_CLASSES",
    "GtLabels",
    "label_detections",
]

MATCH_IOU = 0.5
"""A detection and a gt box match when their IoU is at least this (TrackEval's threshold)."""

FALSE_POSITIVE = -1
"""Label of a detection that matches no evaluated gt box."""

IGNORED = -2
"""Label of a detection matched to a distractor gt box: neither right nor wrong."""

DISTRACTOR_CLASSES: tuple[int, ...] = (2, 7, 8, 12)
"""TrackEval's MOT17 distractor classes (person on vehicle, static person, distractor,
reflection)."""

MOT20_DISTRACTOR_CLASSES: tuple[int, ...] = (*DISTRACTOR_CLASSES, 6)
"""MOT20 also ignores non-motorised vehicles."""

_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class GtLabels:
    """The identities of one sequence's detections.

    Attributes:
        ids: ``(N,)`` int64 per detection, in table order: the matched gt id (>= 0),
            :data:`FALSE_POSITIVE` or :data:`IGNORED`.
        has_class_column: Whether the gt has a class column (distractors honoured).
    """

    ids: np.ndarray
    has_class_column: bool

    @property
    def matched(self) -> int:
        return int(np.sum(self.ids >= 0))

    @property
    def false_positives(self) -> int:
        return int(np.sum(self.ids == FALSE_POSITIVE))

    @property
    def ignored(self) -> int:
        return int(np.sum(self.ids == IGNORED))


def _match(iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the maximum-IoU matching of ``iou`` ``(G, D)``, pairs with IoU
    below :data:`MATCH_IOU` excluded (TrackEval's Hungarian)."""
    scores = np.where(iou >= MATCH_IOU - _EPS, iou, 0.0)
    rows, cols = linear_sum_assignment(-scores)
    keep = scores[rows, cols] > _EPS
    return rows[keep], cols[keep]


def label_detections(detections: MotTable, gt: MotTable, mot20: bool = False) -> GtLabels:
    """Give each detection the identity of the gt box it matches (see the module docstring).

    Args:
        detections: ``N`` detections (``frames``, ``boxes_xyxy``; ids ignored).
        gt: The sequence's ground truth as :func:`emtrack.io.read_mot` reads it (``scores``
            is the conf column, ``classes`` the class column or -1).
        mot20: Use MOT20's distractor classes.

    Returns:
        One label per detection.
    """
    has_class_column = bool(len(gt)) and not bool(np.all(gt.classes == -1))
    if has_class_column:
        evaluated = (gt.scores != 0) & (gt.classes == 1)
        distractors = MOT20_DISTRACTOR_CLASSES if mot20 else DISTRACTOR_CLASSES
        is_distractor = np.isin(gt.classes, distractors)
    else:
        evaluated = gt.scores != 0
        is_distractor = np.zeros(len(gt), dtype=bool)

    ids = np.full(len(detections), FALSE_POSITIVE, dtype=np.int64)
    num_frames = max(detections.num_frames, gt.num_frames)
    det_rows = detections.frame_index(num_frames)
    gt_rows = gt.frame_index(num_frames)
    for dets, truth in zip(det_rows, gt_rows, strict=True):
        if len(dets) == 0 or len(truth) == 0:
            continue
        boxes = detections.boxes_xyxy[dets]
        if has_class_column:
            iou = box_iou(gt.boxes_xyxy[truth][:, None], boxes[None])
            rows, cols = _match(iou)
            ignored = cols[is_distractor[truth[rows]]]
            ids[dets[ignored]] = IGNORED
            remaining = np.setdiff1d(np.arange(len(dets)), ignored)
        else:
            remaining = np.arange(len(dets))
        kept = truth[evaluated[truth]]
        if len(kept) == 0 or len(remaining) == 0:
            continue
        iou = box_iou(gt.boxes_xyxy[kept][:, None], boxes[remaining][None])
        rows, cols = _match(iou)
        ids[dets[remaining[cols]]] = gt.ids[kept[rows]]
    return GtLabels(ids=ids, has_class_column=has_class_column)
