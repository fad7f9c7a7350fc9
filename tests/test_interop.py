"""emtrack with supervision, the ``trackers`` package and pandas.

``Tracker.update(sv.Detections)`` gives the same track ids as the numpy path (``class_id`` as the
class column: per-class tracking), keeps every input row and what it carries, and marks untracked
rows -1; ``EmtrackTracker`` has the ``trackers`` interface, timestamps included;
``MotTable.to_dataframe`` holds the table's values.
"""

from __future__ import annotations

import inspect
import sys
import warnings

import numpy as np
import pytest

import emtrack
from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable
from emtrack.synth import SceneConfig, generate_scene
from emtrack.track.interop import EmtrackTracker, is_supervision_detections

sv = pytest.importorskip("supervision")


def scene_frames(num_frames: int = 40) -> tuple[list[np.ndarray], float]:
    """Per-frame ``(N, 5)`` detections of a small synthetic scene, and its frame rate."""
    scene = generate_scene(SceneConfig(num_frames=num_frames, mean_objects=8.0), 3)
    d = scene.detections
    rows = np.concatenate([d.boxes_xyxy, d.scores[:, None]], 1)
    return [rows[index] for index in d.frame_index(num_frames)], scene.seqinfo.frame_rate


def class_ids(n: int) -> np.ndarray:
    """Three classes, mixed within each frame."""
    return np.arange(n) % 3


def as_detections(dets: np.ndarray, class_id: np.ndarray | None = None) -> object:
    n = len(dets)
    return sv.Detections(
        xyxy=dets[:, :4].copy(),
        confidence=dets[:, 4].copy(),
        class_id=class_ids(n) if class_id is None else class_id,
        data={"name": np.array([f"det{k}" for k in range(n)])},
    )


def with_classes(dets: np.ndarray) -> np.ndarray:
    """The ``(N, 6)`` numpy rows of ``as_detections(dets)``."""
    return np.column_stack([dets, class_ids(len(dets))])


def test_update_with_detections_matches_the_numpy_path() -> None:
    frames, fps = scene_frames()
    plain, supervised = emtrack.Tracker(fps), emtrack.Tracker(fps)
    untracked = 0
    for dets in frames:
        expected = plain.update(with_classes(dets))
        detections = as_detections(dets)
        out = supervised.update(detections)
        assert is_supervision_detections(out) and out is not detections
        assert len(out) == len(dets)
        np.testing.assert_array_equal(out.xyxy, dets[:, :4])  # every row, input order
        np.testing.assert_array_equal(out.class_id, detections.class_id)
        np.testing.assert_array_equal(out.data["name"], detections.data["name"])
        tracked = out.tracker_id >= 0
        np.testing.assert_array_equal(np.flatnonzero(tracked), plain.last_rows)
        np.testing.assert_array_equal(out.tracker_id[tracked], expected[:, 4].astype(int))
        assert detections.tracker_id is None  # the input is not modified
        untracked += int((~tracked).sum())
    assert untracked > 0  # some rows were -1 (tentative tracks, false positives)


def test_update_with_detections_edge_cases() -> None:
    tracker = emtrack.Tracker(10)
    empty = tracker.update(sv.Detections.empty())
    assert len(empty) == 0 and empty.tracker_id.shape == (0,)
    # No confidence: every row counts as 1.0 (as in trackers), so tracks start at once.
    boxes = np.array([[0.0, 0, 10, 20], [50, 0, 60, 20]])
    out = tracker.update(sv.Detections(xyxy=boxes))
    assert out.tracker_id.tolist() == [1, 2]
    with pytest.raises(EmtrackInputError, match="row 1"):
        tracker.update(sv.Detections(xyxy=np.array([[0.0, 0, 10, 20], [5, 5, 4, 30]])))


def test_emtrack_tracker_has_the_trackers_interface() -> None:
    trackers = pytest.importorskip("trackers")
    ours = inspect.signature(EmtrackTracker.update).parameters
    theirs = inspect.signature(trackers.SORTTracker.update).parameters
    assert list(ours) == list(theirs)  # self, detections, frame, timestamp
    assert callable(EmtrackTracker.reset)

    frames, fps = scene_frames(20)
    adapter, sort = EmtrackTracker(frame_rate=fps), trackers.SORTTracker(frame_rate=fps)
    reference = emtrack.Tracker(fps)
    for dets in frames:
        detections = as_detections(dets)
        ours_out, theirs_out = adapter.update(detections), sort.update(detections)
        # Same contract as SORT: all rows, tracker_id -1 for untracked ones.
        assert len(ours_out) == len(theirs_out) == len(dets)
        assert ours_out.tracker_id.dtype.kind == theirs_out.tracker_id.dtype.kind == "i"
        expected = reference.update(with_classes(dets))
        np.testing.assert_array_equal(
            ours_out.tracker_id[ours_out.tracker_id >= 0], expected[:, 4].astype(int)
        )
    adapter.reset()
    first = adapter.update(as_detections(frames[0]))
    assert first.tracker_id.max() == np.count_nonzero(first.tracker_id >= 0)  # ids restart at 1


def test_emtrack_tracker_warns_once_and_rejects_arrays() -> None:
    adapter = EmtrackTracker(frame_rate=10)
    detections = sv.Detections(xyxy=np.array([[0.0, 0, 10, 20]]), confidence=np.array([0.9]))
    image = np.zeros((20, 20, 3), np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adapter.update(detections, frame=image)
        adapter.update(detections, frame=image, timestamp=0.2)
        adapter.update(detections, frame=image, timestamp=0.3)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "frame" in messages[0]  # timestamps are used, not ignored
    assert adapter.tracker.time == 0.3
    with pytest.raises(EmtrackInputError, match=r"supervision\.Detections"):
        adapter.update(np.array([[0.0, 0, 10, 20, 0.9]]))
    with pytest.raises(EmtrackInputError, match="is not after"):
        adapter.update(detections, timestamp=0.25)


def test_class_id_tracks_each_class_alone_and_class_agnostic_mixes() -> None:
    """Two classes on the same boxes: per class each gets its own tracks (ids unique across
    classes); class-agnostic, the rows are tracked as if they had no class."""
    frames, fps = scene_frames(20)
    per_class, agnostic = EmtrackTracker(fps), EmtrackTracker(fps, class_agnostic=True)
    alone, classless = emtrack.Tracker(fps), emtrack.Tracker(fps)
    for dets in frames:
        doubled = np.concatenate([dets, dets])
        classes = np.repeat([0, 5], len(dets))
        out = per_class.update(as_detections(doubled, classes))
        expected = alone.update(dets)
        first, second = out.tracker_id[: len(dets)], out.tracker_id[len(dets) :]
        np.testing.assert_array_equal(first >= 0, second >= 0)
        tracked = first >= 0
        np.testing.assert_array_equal(np.flatnonzero(tracked), alone.last_rows)
        assert not set(first[tracked].tolist()) & set(second[tracked].tolist())
        assert len(expected) == int(tracked.sum())
        mixed = agnostic.update(as_detections(doubled, classes))
        reference = classless.update(doubled)
        np.testing.assert_array_equal(np.flatnonzero(mixed.tracker_id >= 0), classless.last_rows)
        np.testing.assert_array_equal(mixed.tracker_id[classless.last_rows], reference[:, 4])
    assert int(tracked.sum()) > 0


def test_degenerate_detections_and_bad_class_ids() -> None:
    tracker = emtrack.Tracker(10)
    boxes = np.array([[0.0, 0, 10, 20], [30, 5, 30, 25], [50, 0, 60, 20]])  # row 1: zero width
    with pytest.warns(emtrack.EmtrackInputWarning, match="degenerate"):
        out = tracker.update(sv.Detections(xyxy=boxes, confidence=np.ones(3)))
    assert out.tracker_id.tolist() == [1, -1, 2]
    with pytest.raises(EmtrackInputError, match="strict"):
        tracker.update(sv.Detections(xyxy=boxes), strict=True)
    with pytest.raises(EmtrackInputError, match="class_id"):
        tracker.update(sv.Detections(xyxy=boxes, class_id=np.array(["a", "b", "c"], dtype=object)))


def test_mot_table_to_dataframe() -> None:
    pytest.importorskip("pandas")
    table = MotTable.from_arrays(
        np.array([2, 1]),
        np.array([[1.0, 2, 3, 4], [5, 6, 7, 8]]),
        scores=np.array([0.5, 0.9]),
        ids=np.array([7, 3]),
    )
    frame = table.to_dataframe()
    assert list(frame.columns) == [
        "frame", "id", "x1", "y1", "x2", "y2", "score", "class", "visibility",
    ]  # fmt: skip
    assert frame["frame"].tolist() == [1, 2]  # the table's order (sorted by frame)
    assert frame["id"].tolist() == [3, 7] and frame["id"].dtype == np.int64
    assert frame[["x1", "y1", "x2", "y2"]].to_numpy().tolist() == [[5, 6, 7, 8], [1, 2, 3, 4]]
    assert frame["score"].tolist() == [0.9, 0.5]
    empty = MotTable.from_arrays(np.zeros(0, np.int64), np.zeros((0, 4))).to_dataframe()
    assert len(empty) == 0 and len(empty.columns) == 9


def test_track_run_result_as_dataframe() -> None:
    pytest.importorskip("pandas")
    from emtrack.track import track_sequence

    scene = generate_scene(SceneConfig(num_frames=15, mean_objects=5.0), 1)
    d = scene.detections
    run = track_sequence(MotTable.from_arrays(d.frames, d.boxes_xyxy, d.scores), scene.seqinfo)
    frame = run.result.to_dataframe()
    assert len(frame) == len(run.result) > 0
    assert (frame["id"] >= 1).all()


def test_to_dataframe_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    table = MotTable.from_arrays(np.array([1]), np.array([[1.0, 2, 3, 4]]))
    with pytest.raises(ImportError, match="pip install pandas"):
        table.to_dataframe()
