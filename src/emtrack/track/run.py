"""Tracking a whole sequence (online, or online then the offline pass)."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo
from emtrack.track.config import TrackerConfig
from emtrack.track.fit import SequenceFit, fit_sequence, frame_offsets
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
        fit: what was fitted to the input (score calibration, ...).
    """

    result: MotTable
    update_seconds: float
    num_frames: int
    fit: SequenceFit = field(default_factory=SequenceFit)


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
    weights = load_model(model)
    fit = fit_sequence(detections, seqinfo, weights, config)
    tracker = Tracker(
        seqinfo.frame_rate,
        weights,
        config,
        keep_history=offline,
        noise=fit.noise,
        camera_motion=fit.camera_motion,
    )
    index = detections.frame_index(num_frames)
    if fit.calibration is not None:
        tracker_scores = fit.calibration(detections.scores)
    else:
        tracker_scores = normalised_scores(detections.scores, config.score_normalisation)
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
            # The file's own scores, not the ones the thresholds compared.
            scores.append(detections.scores[index[f - 1][tracker.last_rows]])
    if offline:
        history = tracker.history
        order, starts = frame_offsets(index)
        reported = {
            track_id: detections.scores[order[starts[h.frames - 1] + h.rows]]
            for track_id, h in history.items()
        }
        result = offline_tracks(
            history,
            tracker.weights,
            tracker.frame_rate,
            config,
            tracker_scores,
            tracker.noise,
            reported_scores=reported,
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
    return TrackRun(result, elapsed, num_frames, fit)


def normalised_scores(scores: np.ndarray, mode: str) -> np.ndarray:
    """The scores the tracker compares with its thresholds under a fixed rule.

    ``auto``, the default of ``TrackerConfig.score_normalisation``, fits a calibration to the
    input instead (:func:`~emtrack.track.fit.fit_sequence`); the fixed rules override it.

    Args:
        scores: ``(N,)`` the det file's scores.
        mode: ``rank`` (each score replaced by the fraction of the file's detections scoring
            at most as high; equal scores get equal ranks) or ``none`` (as given).

    Returns:
        ``scores`` itself for ``none``, else ``(N,)`` ranks in ``(0, 1]``.
    """
    if mode not in ("rank", "none"):
        raise ValueError(f"score normalisation rule must be 'rank' or 'none', got {mode!r}")
    if len(scores) == 0 or mode == "none":
        return scores
    return rankdata(scores, method="max") / len(scores)


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
