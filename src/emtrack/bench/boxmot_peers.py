"""The motion-only trackers of the optional ``boxmot`` package, as benchmark peers.

``boxmot`` is AGPL-3.0: emtrack never depends on it, ships no extra for it, and imports it
only inside these functions, when a benchmark asks for one of its trackers. Installed beside
emtrack for the benchmark only (README, "Tracking benchmark"), it gives five more peers:

============================  ==============================================================
name                          built as
============================  ==============================================================
``boxmot-boosttrack``         ``BoostTrack(use_embeddings=False, use_cmc=False)``
``boxmot-hybridsort``         ``HybridSort(use_embeddings=False, cmc_method=None)``
``boxmot-ocsort``             ``OcSort()``
``boxmot-bytetrack``          ``ByteTrack(frame_rate=seqinfo.frame_rate)``
``boxmot-botsort``            ``BotSort(use_embeddings=False, use_cmc=False, frame_rate=...)``
============================  ==============================================================

Every other setting is the constructor's default (what ``boxmot``'s Python classes give a
user who builds them; ``boxmot``'s own command line reads other, tuned values from its
``configs/trackers/*.yaml``, which these peers do not use). Appearance embeddings and camera-
motion compensation are off: there are no images, and nothing may load re-identification
weights. ``ByteTrack`` and ``BotSort`` get the sequence frame rate (their track buffers are
given in 30 fps frames, as for the ``trackers`` peers); ``OcSort``, ``HybridSort`` and
``BoostTrack`` have no frame-rate argument and count ``max_age`` in frames, as shipped.

Per frame, ``tracker.update(dets, img)`` gets ``dets`` ``(N, 6)`` float rows
``x1, y1, x2, y2, conf, cls`` (class 0; ``(0, 6)`` for a frame without detections, so tracks
still age) and ``img=None``. Scores in [0, 1] are passed unchanged; ``boxmot`` refuses any
other (KITTI's PointRCNN logits, the raw ACF scores), so those are clipped to [0, 1]
(:func:`boxmot_scores`): every threshold strictly between 0 and 1 then decides as on the raw
score, as the ``trackers`` peers (which take raw scores) decide, and scores above 1 count as
fully confident where ``boxmot`` weighs by score. ``img=None`` because, with embeddings and
camera-motion compensation off, none of the five needs an image
(``tracker.requirements.frame`` is false). Should a tracker's requirements ask for one, it
gets a blank ``uint8`` image of the sequence's ``imHeight x imWidth x 3`` (created once),
which gives it the image size and nothing else. ``update`` returns rows
``x1, y1, x2, y2, id, conf, cls, det_ind``; ids start at 0 in ``boxmot`` and at 1 here.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import numpy as np

from emtrack.bench.peers import FrameOutput, PeerRun, timed_peer_run
from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo

__all__ = [
    "BOXMOT_PEERS",
    "boxmot_scores",
    "boxmot_unavailable",
    "make_boxmot_peer",
    "run_boxmot_peer",
]

#: name -> (module, class, constructor keywords that make it motion-only, takes frame_rate).
_BOXMOT_TRACKERS: dict[str, tuple[str, str, dict[str, Any], bool]] = {
    "boxmot-boosttrack": (
        "boxmot.trackers.box.boosttrack.tracker",
        "BoostTrack",
        {"use_embeddings": False, "use_cmc": False},
        False,
    ),
    "boxmot-hybridsort": (
        "boxmot.trackers.box.hybridsort.tracker",
        "HybridSort",
        {"use_embeddings": False, "cmc_method": None},
        False,
    ),
    "boxmot-ocsort": ("boxmot.trackers.box.ocsort.tracker", "OcSort", {}, False),
    "boxmot-bytetrack": ("boxmot.trackers.box.bytetrack.tracker", "ByteTrack", {}, True),
    "boxmot-botsort": (
        "boxmot.trackers.box.botsort.tracker",
        "BotSort",
        {"use_embeddings": False, "use_cmc": False},
        True,
    ),
}

BOXMOT_PEERS: tuple[str, ...] = tuple(_BOXMOT_TRACKERS)
"""Names of the ``boxmot`` peers accepted by :func:`run_boxmot_peer` (and ``run_peer``)."""

_BOXMOT_LOGGER = "boxmot"


def boxmot_unavailable() -> str | None:
    """``None`` when every ``boxmot`` peer can be imported, else why not (one line).

    Imports the five tracker modules (``boxmot`` and what they need, e.g. ``lap``).
    """
    for module, class_name, _, _ in _BOXMOT_TRACKERS.values():
        try:
            getattr(importlib.import_module(module), class_name)
        except ImportError as error:  # the package, or one of its imports, is missing
            return f"{type(error).__name__}: {error}"
        except AttributeError:
            return f"this boxmot has no {module}.{class_name}"
    return None


def make_boxmot_peer(name: str, frame_rate: float) -> Any:
    """Build one ``boxmot`` peer (see the module docstring for its settings).

    ``boxmot`` logs each tracker's settings at INFO when it is built; that line is held
    back (its logger is raised to WARNING while the constructor runs).

    Args:
        name: One of :data:`BOXMOT_PEERS`.
        frame_rate: Frames per second of the sequence (> 0).

    Raises:
        EmtrackInputError: Unknown ``name`` or a non-positive frame rate.
        ImportError: ``boxmot`` (or a package its trackers import) is not installed.
    """
    if name not in _BOXMOT_TRACKERS:
        raise EmtrackInputError(f"unknown boxmot peer {name!r}; expected one of {BOXMOT_PEERS}")
    if not np.isfinite(frame_rate) or frame_rate <= 0:
        raise EmtrackInputError(f"frame rate must be a positive number, got {frame_rate}")
    module, class_name, overrides, takes_frame_rate = _BOXMOT_TRACKERS[name]
    tracker_class = getattr(importlib.import_module(module), class_name)
    keywords = dict(overrides)
    if takes_frame_rate:
        keywords["frame_rate"] = float(frame_rate)
    logger = logging.getLogger(_BOXMOT_LOGGER)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return tracker_class(**keywords)
    finally:
        logger.setLevel(level)


def boxmot_scores(scores: np.ndarray) -> np.ndarray:
    """Detection scores ``(N,)`` as the ``boxmot`` peers get them: clipped to [0, 1], which
    ``boxmot`` requires (scores already in [0, 1] are unchanged)."""
    return np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)


def _blank_image(tracker: Any, seqinfo: SeqInfo) -> np.ndarray | None:
    """``None`` unless the tracker's requirements ask for a frame; then a blank image."""
    requirements = getattr(tracker, "requirements", None)
    if not (
        getattr(requirements, "frame", False)
        or getattr(requirements, "frame_dimensions_only", False)
    ):
        return None
    if seqinfo.im_width is None or seqinfo.im_height is None:
        raise EmtrackInputError(
            f"{type(tracker).__name__} needs the image size, but the seqinfo of "
            f"{seqinfo.name!r} has no imWidth/imHeight"
        )
    return np.zeros((int(seqinfo.im_height), int(seqinfo.im_width), 3), dtype=np.uint8)


def run_boxmot_peer(name: str, detections: MotTable, seqinfo: SeqInfo) -> PeerRun:
    """Track a sequence's detections with one ``boxmot`` peer, frame by frame.

    The contract of :func:`emtrack.bench.peers.run_peer`: frames ``1..seqinfo.seq_length``
    in order (empty frames included), ids from 1, ``update_seconds`` summed over the
    ``update`` calls only. Rows with an id below 0 (none are expected) are dropped. Scores
    outside [0, 1] are clipped to it (:func:`boxmot_scores`).

    Args:
        name: One of :data:`BOXMOT_PEERS`.
        detections: The detection table (ids are ignored).
        seqinfo: Gives ``frame_rate`` and ``seq_length`` (and the image size, if asked for).

    Raises:
        EmtrackInputError: Unknown peer, bad frame rate, detections past ``seq_length``.
        ImportError: ``boxmot`` is not importable.
    """
    tracker = make_boxmot_peer(name, seqinfo.frame_rate)
    image = _blank_image(tracker, seqinfo)
    rows_xyxy_conf_cls = np.column_stack(
        [detections.boxes_xyxy, boxmot_scores(detections.scores), np.zeros(len(detections))]
    ).astype(np.float64)
    empty = np.zeros((0, 6))

    def frame_output(tracked: Any) -> FrameOutput | None:
        if len(tracked) == 0:
            return None
        tracked = np.asarray(tracked, dtype=np.float64)
        return tracked[:, 4].astype(np.int64), tracked[:, :4], tracked[:, 5]

    return timed_peer_run(
        name,
        detections,
        seqinfo,
        lambda rows: rows_xyxy_conf_cls[rows] if len(rows) else empty,
        lambda dets: tracker.update(dets, image),
        frame_output,
    )
