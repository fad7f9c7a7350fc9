"""Tracking a whole sequence (online, or online then the offline pass)."""

from __future__ import annotations

import functools
import logging
import math
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo, Timestamps
from emtrack.track.config import TrackerConfig
from emtrack.track.fit import SequenceFit, fit_sequence, frame_offsets
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
        fits: what was fitted to the input (score calibration, noise, camera), one per class
            tracked on its own (by class value; ``None`` for a file tracked as one).
    """

    result: MotTable
    update_seconds: float
    num_frames: int
    dropped_frames: int = 0
    fits: dict[float | None, SequenceFit] = field(default_factory=dict)

    @property
    def fit(self) -> SequenceFit:
        """The fit of a file tracked as one (the first class's otherwise)."""
        return next(iter(self.fits.values()), SequenceFit())


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

    First the tracker is fitted to the input (:func:`~emtrack.track.fit.fit_sequence`: score
    calibration, noise constants, camera model, as ``config`` asks), then it tracks.

    **Classes.** When the detections hold more than one class (``detections.classes``), each
    class is tracked on its own, exactly as if its rows were the whole file (fitting, online
    tracking, offline pass), with track ids unique across classes (numbered by first frame,
    then class); the result keeps each box's class. ``class_agnostic`` tracks all rows
    together (the result still gives each detection's class online; offline boxes get -1, as
    a track may then mix classes).

    **Time.** ``timestamps`` lists the frames the detector saw and their times: only those are
    tracked, each predicted over the real time since the previous one, and the frames not
    listed are dropped frames (not frames without detections: no track is lost for missing
    them). Without ``timestamps``, every frame is tracked at ``seqinfo.frame_rate``, except
    when the frames that hold detections all lie on a stride ``s > 1`` (frames ``f0, f0 + s,
    f0 + 2s, …``: a detector run on every s-th frame): then the frames between them are
    dropped frames. The offline pass and the noise and camera fits work on frame numbers at
    ``seqinfo.frame_rate``.

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
    weights = load_model(model)
    classes = detections.classes
    values = np.unique(classes)
    if class_agnostic or len(values) < 2:
        run = _track_one(detections, seqinfo, weights, config, offline, tracked_frames, seconds)
        result = run.result
        if offline and not class_agnostic and len(values) == 1 and values[0] != -1:
            result = replace(result, classes=np.full(len(result), values[0]))
        return TrackRun(
            result,
            run.update_seconds,
            len(tracked_frames),
            num_frames - len(tracked_frames),
            {None: run.fit},
        )
    runs = {}
    for value in values.tolist():
        own = detections.select(classes == value)
        runs[value] = _track_one(own, seqinfo, weights, config, offline, tracked_frames, seconds)
    result = _merge_classes({value: run.result for value, run in runs.items()})
    return TrackRun(
        result,
        sum(run.update_seconds for run in runs.values()),
        len(tracked_frames),
        num_frames - len(tracked_frames),
        {value: run.fit for value, run in runs.items()},
    )


@dataclass(frozen=True)
class _OneRun:
    result: MotTable
    update_seconds: float
    fit: SequenceFit


def _track_one(
    detections: MotTable,
    seqinfo: SeqInfo,
    weights: AssociationWeights,
    config: TrackerConfig,
    offline: bool,
    tracked_frames: np.ndarray,
    seconds: np.ndarray | None,
) -> _OneRun:
    """Fit and track one table (all its rows together) over ``tracked_frames``."""
    fit = fit_sequence(detections, seqinfo, weights, config, tracked_frames, seconds)
    tracker = Tracker(
        seqinfo.frame_rate,
        weights,
        config,
        keep_history=offline,
        noise=fit.noise,
        camera_motion=fit.camera_motion,
        output_boxes=fit.output_boxes,
        online_fit=False,
        class_agnostic=True,
    )
    index = detections.frame_index(seqinfo.seq_length)
    if fit.calibration is not None:
        tracker_scores = fit.calibration(detections.scores)
    else:
        tracker_scores = normalised_scores(detections.scores, config.score_normalisation)
    dets_all = np.concatenate([detections.boxes_xyxy, tracker_scores[:, None]], 1)
    frames, ids, boxes, rows_out = [], [], [], []
    elapsed = 0.0
    for k, f in enumerate(tracked_frames.tolist()):
        rows = index[f - 1]
        timestamp = None if seconds is None else float(seconds[k])
        start = time.perf_counter()
        out = tracker.update(dets_all[rows], timestamp)
        elapsed += time.perf_counter() - start
        if len(out):
            frames.append(np.full(len(out), f))
            ids.append(out[:, 4].astype(np.int64))
            boxes.append(out[:, :4])
            rows_out.append(rows[tracker.last_rows])
    if offline:
        history = tracker.history
        # The history counts updates; its rows are those of each update's array.
        order, starts = frame_offsets([index[f - 1] for f in tracked_frames.tolist()])
        source = {key: order[starts[h.frames - 1] + h.rows] for key, h in history.items()}
        history = {
            key: replace(h, frames=tracked_frames[h.frames - 1]) for key, h in history.items()
        }
        result = offline_tracks(
            history,
            weights,
            seqinfo.frame_rate,
            config,
            tracker_scores,
            tracker.noise,
            # The file's own scores, not the ones the thresholds compared.
            reported_scores={key: detections.scores[rows] for key, rows in source.items()},
            detection_boxes=not tracker.output_filtered,
            calibration=None if fit is None else fit.calibration,
        )
    elif frames:
        rows = np.concatenate(rows_out)
        result = MotTable.from_arrays(
            np.concatenate(frames),
            np.concatenate(boxes),
            detections.scores[rows],
            np.concatenate(ids),
            classes=detections.classes[rows],
        )
    else:
        result = MotTable.from_arrays(np.zeros(0, np.int64), np.zeros((0, 4)))
    return _OneRun(result, elapsed, fit)


def _merge_classes(parts: dict[float, MotTable]) -> MotTable:
    """One table of the classes' results, ids renumbered 1 … K by first frame, then class;
    each box keeps its class."""
    tables = list(parts.values())
    frames = np.concatenate([table.frames for table in tables])
    part_of = np.concatenate([np.full(len(table), k) for k, table in enumerate(tables)])
    ids = np.concatenate([table.ids for table in tables])
    keys = part_of * (int(ids.max(initial=0)) + 1) + ids
    unique_keys, inverse = np.unique(keys, return_inverse=True)
    first_frame = np.full(len(unique_keys), np.iinfo(np.int64).max)
    np.minimum.at(first_frame, inverse, frames)
    order = np.lexsort((unique_keys, first_frame))
    new_id = np.empty(len(unique_keys), np.int64)
    new_id[order] = np.arange(1, len(unique_keys) + 1)
    classes = np.concatenate([np.full(len(table), value) for value, table in parts.items()])
    return MotTable.from_arrays(
        frames,
        np.concatenate([table.boxes_xyxy for table in tables]).reshape(-1, 4),
        np.concatenate([table.scores for table in tables]),
        new_id[inverse],
        classes=classes,
    )


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
    # The same call for every sequence (picklable, for the worker processes).
    track_one = functools.partial(
        track_sequence,
        model=load_model(model),
        config=config,
        offline=offline,
        class_agnostic=class_agnostic,
    )
    jobs = [(*sequence, stamps) for sequence, stamps in zip(sequences, times, strict=True)]
    if workers == 1 or len(sequences) < 2:
        for detections, seqinfo, stamps in jobs:
            yield track_one(detections, seqinfo, timestamps=stamps)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(sequences)), mp_context=context) as pool:
        futures = [
            pool.submit(track_one, detections, seqinfo, timestamps=stamps)
            for detections, seqinfo, stamps in jobs
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
