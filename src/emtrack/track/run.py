"""Tracking a whole sequence (online, or online then the offline pass)."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo
from emtrack.track.config import SCORE_NORMALISATIONS, TrackerConfig
from emtrack.track.offline import offline_tracks
from emtrack.track.tracker import Tracker
from emtrack.track.weights import AssociationWeights, load_model


@dataclass(frozen=True)
class TrackRun:
    """Result of :func:`track_sequence`.

    Attributes:
        result: reported boxes with track ids >= 1 (score column: the detection's score,
            0 for boxes filled in by the offline pass).
        update_seconds: time spent in ``Tracker.update`` calls only.
        num_frames: frames tracked.
    """

    result: MotTable
    update_seconds: float
    num_frames: int


def track_sequence(
    detections: MotTable,
    seqinfo: SeqInfo,
    model: str | Path | AssociationWeights | None = None,
    config: TrackerConfig | None = None,
    offline: bool = False,
) -> TrackRun:
    """Track every frame ``1 … seqinfo.seq_length``.

    Raises:
        EmtrackInputError: Detections beyond ``seqLength`` (the file and the sequence
            disagree; an error, not a warning, so no detection is silently dropped). The
            message names the det file and, when it can be re-read, the first such line.
    """
    num_frames = seqinfo.seq_length
    if len(detections) and int(detections.frames.max()) > num_frames:
        line, frame = _first_line_beyond(detections.path, num_frames)
        if frame is None:
            frame = int(detections.frames.max())
        raise EmtrackInputError(
            f"detection in frame {frame}, beyond seqLength={num_frames}"
            + (f" of {seqinfo.path}" if seqinfo.path else ""),
            detections.path,
            line,
        )
    config = config or TrackerConfig()
    tracker = Tracker(seqinfo.frame_rate, model, config, keep_history=offline)
    index = detections.frame_index(num_frames)
    tracker_scores = normalised_scores(
        detections.scores, config.score_normalisation, config.new_track_score
    )
    dets_all = np.concatenate([detections.boxes_xyxy, tracker_scores[:, None]], 1)
    frames, ids, boxes, scores = [], [], [], []
    elapsed = 0.0
    for f in range(1, num_frames + 1):
        dets = dets_all[index[f - 1]]
        start = time.perf_counter()
        out = tracker.update(dets)
        elapsed += time.perf_counter() - start
        if len(out):
            frames.append(np.full(len(out), f))
            ids.append(out[:, 4].astype(np.int64))
            boxes.append(out[:, :4])
            scores.append(dets[tracker.last_rows, 4])
    if offline:
        result = offline_tracks(
            tracker.history,
            tracker.weights,
            tracker.frame_rate,
            config,
            tracker_scores,
            tracker.noise,
        )
    elif frames:
        result = MotTable.from_arrays(
            np.concatenate(frames),
            np.concatenate(boxes),
            np.concatenate(scores),
            np.concatenate(ids),
        )
    else:
        result = MotTable.from_arrays(np.zeros(0, np.int64), np.zeros((0, 4)))
    if tracker_scores is not detections.scores:
        result = replace(
            result, scores=_original_scores(result.scores, tracker_scores, detections.scores)
        )
    return TrackRun(result, elapsed, num_frames)


def normalised_scores(
    scores: np.ndarray,
    mode: str = "auto",
    new_track_score: float = TrackerConfig.new_track_score,
) -> np.ndarray:
    """The scores the tracker compares with its thresholds (see ``score_normalisation``).

    ``auto`` keeps scores as given when they are probability-like: all in [0, 1], not all
    equal, and at least :data:`MIN_STARTING_SHARE` of them reach ``new_track_score``
    (otherwise almost no track could ever start: a detector whose scores run lower than the
    thresholds expect, e.g. 0.3 to 0.7, would be tracked as if it found nobody).

    Args:
        scores: ``(N,)`` the det file's scores.
        mode: ``auto``, ``rank`` or ``none``.
        new_track_score: the threshold a detection must reach to start a track (``auto`` only).

    Returns:
        ``scores`` itself when left as is, else ``(N,)`` ranks in ``(0, 1]``: the fraction of
        the file's detections scoring at most as high (equal scores get equal ranks).
    """
    if mode not in SCORE_NORMALISATIONS:
        raise ValueError(f"score normalisation must be one of {SCORE_NORMALISATIONS}, got {mode!r}")
    if len(scores) == 0 or mode == "none":
        return scores
    if mode == "auto" and _probability_like(scores, new_track_score):
        return scores
    return rankdata(scores, method="max") / len(scores)


#: ``auto`` ranks a file's scores when fewer than this share of them reach ``new_track_score``.
MIN_STARTING_SHARE = 0.05


def _probability_like(scores: np.ndarray, new_track_score: float) -> bool:
    """Whether ``auto`` may compare ``scores`` ``(N > 0,)`` with the thresholds as given."""
    low, high = float(scores.min()), float(scores.max())
    # One score for every detection says nothing (a detector that writes 0 or -1 for "no
    # score"): ranking makes them all 1, so all are used rather than none.
    if not 0.0 <= low < high <= 1.0:
        return False
    return np.count_nonzero(scores >= new_track_score) >= MIN_STARTING_SHARE * len(scores)


def _original_scores(
    reported: np.ndarray, normalised: np.ndarray, original: np.ndarray
) -> np.ndarray:
    """Map reported (normalised) scores back to the file's; 0 (offline gap fills) stays 0.

    Ranks are a monotone function of the scores, equal only for equal scores, so every
    reported detection score is found exactly among ``normalised``.
    """
    order = np.argsort(normalised, kind="stable")
    keys = normalised[order]
    at = np.clip(np.searchsorted(keys, reported), 0, len(keys) - 1)
    found = keys[at] == reported
    return np.where(found & (reported > 0), original[order][at], 0.0)


def track_sequences(
    sequences: Sequence[tuple[MotTable, SeqInfo]],
    model: str | Path | AssociationWeights | None = None,
    config: TrackerConfig | None = None,
    offline: bool = False,
    workers: int = 1,
) -> Iterator[TrackRun]:
    """:func:`track_sequence` on each ``(detections, seqinfo)``, results in the input order.

    With ``workers > 1`` the sequences are tracked in a pool of that many processes (at most
    one per sequence; started with ``spawn``, so it works the same on every platform). Each
    sequence is tracked by one process from start to end with the same code and inputs, so
    the results are identical to a single-process run. The first error stops the run: it is
    raised here and sequences not yet started are cancelled.

    Args:
        sequences: Detections and sequence info of each sequence.
        model: Weights (loaded once here and sent to the workers), None for the default model.
        config: Tracker settings.
        offline: Run the offline pass too.
        workers: Processes to use (>= 1).

    Yields:
        One :class:`TrackRun` per sequence, in the order of ``sequences``.

    Raises:
        EmtrackInputError: ``workers`` below 1, or bad input found while tracking.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise EmtrackInputError(f"workers must be a whole number >= 1, got {workers!r}")
    weights = load_model(model)
    if workers == 1 or len(sequences) < 2:
        for detections, seqinfo in sequences:
            yield track_sequence(detections, seqinfo, weights, config, offline)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(sequences)), mp_context=context) as pool:
        futures = [
            pool.submit(track_sequence, detections, seqinfo, weights, config, offline)
            for detections, seqinfo in sequences
        ]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _first_line_beyond(path: str | None, num_frames: int) -> tuple[int | None, int | None]:
    """The 1-based line and frame of the first row of ``path`` with frame > ``num_frames``.

    Only called on the error path (``read_mot`` has already checked the file), so a file that
    cannot be re-read simply gives ``(None, None)``.
    """
    if path is None:
        return None, None
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None, None
    for number, line in enumerate(text.split("\n"), start=1):
        field = line.split(",", 1)[0].strip()
        try:
            frame = float(field)
        except ValueError:
            continue
        if frame > num_frames:
            return number, int(frame)
    return None, None
