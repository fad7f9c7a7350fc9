"""Tracking a whole sequence (online, or online then the offline pass)."""

from __future__ import annotations

import logging
import math
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo, Timestamps
from emtrack.track.config import SCORE_NORMALISATIONS, TrackerConfig
from emtrack.track.offline import offline_tracks
from emtrack.track.tracker import Tracker
from emtrack.track.weights import AssociationWeights, load_model

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackRun:
    """Result of :func:`track_sequence`.

    Attributes:
        result: reported boxes with track ids >= 1 (score column: the detection's score,
            0 for boxes filled in by the offline pass; class column: the detection's class
            where the detections have classes, else -1).
        update_seconds: time spent in ``Tracker.update`` calls only.
        num_frames: frames tracked (``Tracker.update`` calls).
        dropped_frames: frames of ``1 … seq_length`` not tracked: absent from the timestamps,
            or between the frames of a det file whose frames with detections all lie on a
            stride (see :func:`track_sequence`).
    """

    result: MotTable
    update_seconds: float
    num_frames: int
    dropped_frames: int = 0


def track_sequence(
    detections: MotTable,
    seqinfo: SeqInfo,
    model: str | Path | AssociationWeights | None = None,
    config: TrackerConfig | None = None,
    offline: bool = False,
    *,
    class_agnostic: bool = False,
    timestamps: Timestamps | None = None,
) -> TrackRun:
    """Track every frame ``1 … seqinfo.seq_length`` (or those that ``timestamps`` lists).

    **Classes.** When the detections hold more than one class (``detections.classes``), each
    class is tracked on its own, exactly as if its rows were the whole file (score
    normalisation, online tracking, offline pass), with track ids unique across classes; the
    result keeps each box's class. ``class_agnostic`` tracks all rows together (the result
    still gives each detection's class online; offline boxes get -1, as a track may then mix
    classes).

    **Time.** ``timestamps`` lists the frames the detector saw and their times: only those are
    tracked, each predicted over the real time since the previous one, and the frames not
    listed are dropped frames (not frames without detections: no track is lost for missing
    them). Without ``timestamps``, every frame is tracked at ``seqinfo.frame_rate``, except
    when the frames that hold detections all lie on a stride ``s > 1`` (frames ``f0, f0 + s,
    f0 + 2s, …``: a detector run on every s-th frame): then the frames between them are
    dropped frames. The offline pass smooths over frame numbers at ``seqinfo.frame_rate``.

    Raises:
        EmtrackInputError: Detections beyond ``seqLength`` (the file and the sequence
            disagree; an error, not a warning, so no detection is silently dropped), or, with
            ``timestamps``, frames beyond ``seqLength`` in them or detections in a frame they
            do not list. The message names the file and, where it can be found, the line.
    """
    num_frames = seqinfo.seq_length
    if len(detections) and int(detections.frames.max()) > num_frames:
        line, frame = _first_line_where(detections.path, lambda f: f > num_frames)
        if frame is None:
            frame = int(detections.frames.max())
        raise EmtrackInputError(
            f"detection in frame {frame}, beyond seqLength={num_frames}"
            + (f" of {seqinfo.path}" if seqinfo.path else ""),
            detections.path,
            line,
        )
    tracked_frames, seconds = _tracked_frames(detections, seqinfo, timestamps)
    config = config or TrackerConfig()
    classes = detections.classes
    per_class = not class_agnostic and len(np.unique(classes)) > 1
    tracker = Tracker(seqinfo.frame_rate, model, config, keep_history=offline)
    index = detections.frame_index(num_frames)
    if per_class:  # each class's scores normalised as if they were the whole file
        tracker_scores = np.empty_like(detections.scores)
        for rows in _class_rows(classes):
            tracker_scores[rows] = normalised_scores(
                detections.scores[rows], config.score_normalisation, config.new_track_score
            )
        if np.array_equal(tracker_scores, detections.scores):
            tracker_scores = detections.scores
    else:
        tracker_scores = normalised_scores(
            detections.scores, config.score_normalisation, config.new_track_score
        )
    columns = [detections.boxes_xyxy, tracker_scores[:, None]]
    if per_class:
        columns.append(classes[:, None].astype(np.float64))
    dets_all = np.concatenate(columns, 1)
    frames, ids, boxes, scores, out_classes = [], [], [], [], []
    elapsed = 0.0
    for k, f in enumerate(tracked_frames.tolist()):
        rows = index[f - 1]
        dets = dets_all[rows]
        timestamp = None if seconds is None else float(seconds[k])
        start = time.perf_counter()
        out = tracker.update(dets, timestamp)
        elapsed += time.perf_counter() - start
        if len(out):
            frames.append(np.full(len(out), f))
            ids.append(out[:, 4].astype(np.int64))
            boxes.append(out[:, :4])
            scores.append(dets[tracker.last_rows, 4])
            out_classes.append(classes[rows[tracker.last_rows]])
    if offline:
        result = _offline_result(
            tracker, config, tracker_scores, tracked_frames, classes, per_class
        )
    elif frames:
        result = MotTable.from_arrays(
            np.concatenate(frames),
            np.concatenate(boxes),
            np.concatenate(scores),
            np.concatenate(ids),
            classes=np.concatenate(out_classes),
        )
    else:
        result = MotTable.from_arrays(np.zeros(0, np.int64), np.zeros((0, 4)))
    if tracker_scores is not detections.scores:
        original = result.scores.copy()
        for value in np.unique(classes) if per_class else [None]:
            mask = np.ones(len(detections), bool) if value is None else classes == value
            out_mask = np.ones(len(result), bool) if value is None else result.classes == value
            original[out_mask] = _original_scores(
                result.scores[out_mask], tracker_scores[mask], detections.scores[mask]
            )
        result = replace(result, scores=original)
    dropped = num_frames - len(tracked_frames)
    return TrackRun(result, elapsed, len(tracked_frames), dropped)


def _class_rows(classes: np.ndarray) -> list[np.ndarray]:
    """Row indices ``(n_c,)`` of each distinct value of ``classes`` ``(N,)``, by value."""
    return [np.flatnonzero(classes == value) for value in np.unique(classes).tolist()]


def _tracked_frames(
    detections: MotTable, seqinfo: SeqInfo, timestamps: Timestamps | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The frames to track ``(K,)`` and their times in seconds (None: every frame, at the
    frame rate); see :func:`track_sequence`."""
    num_frames = seqinfo.seq_length
    if timestamps is not None:
        beyond = np.flatnonzero(timestamps.frames > num_frames)
        if len(beyond):
            k = int(beyond[0])
            raise EmtrackInputError(
                f"frame {int(timestamps.frames[k])} is beyond seqLength={num_frames}"
                + (f" of {seqinfo.path}" if seqinfo.path else ""),
                timestamps.path,
                int(timestamps.lines[k]) or None,
            )
        listed = np.isin(detections.frames, timestamps.frames)
        if not listed.all():
            frame = int(detections.frames[np.argmin(listed)])
            line, _ = _first_line_where(detections.path, lambda f: f == frame)
            raise EmtrackInputError(
                f"detections in frame {frame}, which the timestamps"
                + (f" {timestamps.path}" if timestamps.path else "")
                + " do not list (a frame absent from them is a dropped frame, which the "
                "detector never saw)",
                detections.path,
                line,
            )
        return timestamps.frames, timestamps.seconds
    all_frames = np.arange(1, num_frames + 1)
    seen = np.unique(detections.frames)
    stride = int(np.gcd.reduce(np.diff(seen))) if len(seen) > 1 else 1
    if stride <= 1:
        return all_frames, None
    first = (int(seen[0]) - 1) % stride + 1
    tracked = np.arange(first, num_frames + 1, stride)
    _log.info(
        "%s: detections in every %d-th frame only (frames %d, %d, ...): the frames between are "
        "dropped frames",
        detections.path or seqinfo.name,
        stride,
        int(seen[0]),
        int(seen[0]) + stride,
    )
    return tracked, (tracked - 1) / seqinfo.frame_rate


def _offline_result(
    tracker: Tracker,
    config: TrackerConfig,
    tracker_scores: np.ndarray,
    tracked_frames: np.ndarray,
    classes: np.ndarray,
    per_class: bool,
) -> MotTable:
    """The offline pass over the tracker's history, per class with ``per_class``; ids are
    numbered 1 … K by first frame (then class) across classes."""
    history = tracker.history
    if len(tracked_frames) != tracker.frame_count or np.any(
        tracked_frames != np.arange(1, len(tracked_frames) + 1)
    ):  # the history counts updates; the offline pass works on frame numbers
        history = {
            key: replace(track, frames=tracked_frames[track.frames - 1])
            for key, track in history.items()
        }
    fps = tracker.frame_rate
    if not per_class:
        result = offline_tracks(history, tracker.weights, fps, config, tracker_scores)
        if len(classes) and classes[0] != -1 and np.all(classes == classes[0]):  # keep it
            result = replace(result, classes=np.full(len(result), classes[0]))
        return result
    parts = []
    for value in np.unique(classes).tolist():
        own = {key: track for key, track in history.items() if track.class_id == value}
        part = offline_tracks(own, tracker.weights, fps, config, tracker_scores[classes == value])
        parts.append(replace(part, classes=np.full(len(part), value)))
    frames = np.concatenate([part.frames for part in parts])
    part_of = np.concatenate([np.full(len(part), k) for k, part in enumerate(parts)])
    ids = np.concatenate([part.ids for part in parts])
    # Renumber (part, id) pairs by first frame, then class.
    keys = part_of * (int(ids.max(initial=0)) + 1) + ids
    unique_keys, inverse = np.unique(keys, return_inverse=True)
    first_frame = np.full(len(unique_keys), np.iinfo(np.int64).max)
    np.minimum.at(first_frame, inverse, frames)
    order = np.lexsort((unique_keys, first_frame))
    new_id = np.empty(len(unique_keys), np.int64)
    new_id[order] = np.arange(1, len(unique_keys) + 1)
    return MotTable.from_arrays(
        frames,
        np.concatenate([part.boxes_xyxy for part in parts]).reshape(-1, 4),
        np.concatenate([part.scores for part in parts]),
        new_id[inverse],
        classes=np.concatenate([part.classes for part in parts]),
    )


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
    *,
    class_agnostic: bool = False,
    timestamps: Sequence[Timestamps | None] | None = None,
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
        class_agnostic: Track all classes together (see :func:`track_sequence`).
        timestamps: The frame times of each sequence (None: none for any), in the order of
            ``sequences``.

    Yields:
        One :class:`TrackRun` per sequence, in the order of ``sequences``.

    Raises:
        EmtrackInputError: ``workers`` below 1, ``timestamps`` of another length than
            ``sequences``, or bad input found while tracking.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise EmtrackInputError(f"workers must be a whole number >= 1, got {workers!r}")
    times = [None] * len(sequences) if timestamps is None else list(timestamps)
    if len(times) != len(sequences):
        raise EmtrackInputError(
            f"timestamps: {len(times)} given for {len(sequences)} sequences (one each, or None)"
        )
    weights = load_model(model)
    if workers == 1 or len(sequences) < 2:
        for (detections, seqinfo), stamps in zip(sequences, times, strict=True):
            yield track_sequence(
                detections,
                seqinfo,
                weights,
                config,
                offline,
                class_agnostic=class_agnostic,
                timestamps=stamps,
            )
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(sequences)), mp_context=context) as pool:
        futures = [
            pool.submit(
                track_sequence,
                detections,
                seqinfo,
                weights,
                config,
                offline,
                class_agnostic=class_agnostic,
                timestamps=stamps,
            )
            for (detections, seqinfo), stamps in zip(sequences, times, strict=True)
        ]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _first_line_where(
    path: str | None, test: Callable[[int], bool]
) -> tuple[int | None, int | None]:
    """The 1-based line and frame of the first row of ``path`` whose frame passes ``test``.

    Only called on error paths (``read_mot`` has already checked the file), so a file that
    cannot be re-read simply gives ``(None, None)``. Fields are split as ``read_mot`` does
    (at commas, else at whitespace); a header line does not parse as a frame and is skipped.
    """
    if path is None:
        return None, None
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None, None
    for number, line in enumerate(text.split("\n"), start=1):
        fields = line.split(",", 1) if "," in line else line.split(None, 1)
        try:
            frame = float(fields[0]) if fields else math.nan
        except ValueError:
            continue
        if math.isfinite(frame) and frame == int(frame) and test(int(frame)):
            return number, int(frame)
    return None, None
