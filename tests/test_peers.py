"""emtrack.bench.peers: the `trackers` package's peers (and, where it is installed, boxmot's
motion-only trackers) driven frame by frame on MotTables."""

from __future__ import annotations

import dataclasses
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trackers")

from emtrack.bench.boxmot_peers import BOXMOT_PEERS, boxmot_unavailable, make_boxmot_peer
from emtrack.bench.peers import PEERS, PeerRun, make_peer, run_peer
from emtrack.bench.track_bench import TRACKERS, default_trackers, run_track_bench
from emtrack.errors import EmtrackInputError
from emtrack.eval import EvalSequence, evaluate
from emtrack.io import MotTable, SeqInfo, read_mot, read_seqinfo, write_mot
from sequences import write_sequence

HAVE_BOXMOT = boxmot_unavailable() is None
needs_boxmot = pytest.mark.skipif(
    not HAVE_BOXMOT, reason="the optional 'boxmot' package (benchmark only) is not importable"
)

FRAME_RATE = 25.0


def two_walkers(frames: list[int]) -> MotTable:
    """Two 40 x 100 boxes starting side by side and walking apart 4 px per frame.

    The true identity is kept in ``ids`` (1 = walking left, 2 = walking right).
    """
    rows_frames, rows_boxes, rows_ids = [], [], []
    for frame in frames:
        for identity, direction in ((1, -1.0), (2, 1.0)):
            x1 = 300.0 + direction * (30.0 + 4.0 * frame)
            rows_frames.append(frame)
            rows_boxes.append([x1, 100.0, x1 + 40.0, 200.0])
            rows_ids.append(identity)
    return MotTable.from_arrays(
        frames=np.array(rows_frames),
        boxes_xyxy=np.array(rows_boxes),
        scores=np.full(len(rows_frames), 0.9),
        ids=np.array(rows_ids),
    )


def true_identity(result: MotTable) -> np.ndarray:
    """Which walker each result box is: 1 if left of centre, else 2."""
    centre_x = result.boxes_xyxy[:, [0, 2]].mean(axis=1)
    return np.where(centre_x < 320.0, 1, 2)


def assert_one_id_per_walker(run: PeerRun, expected_ids: int = 2) -> None:
    result = run.result
    assert len(result) > 0
    assert np.all(result.ids >= 1)
    assert len(np.unique(result.ids)) == expected_ids
    identity = true_identity(result)
    for track_id in np.unique(result.ids):
        # Each reported id follows one walker only.
        assert len(np.unique(identity[result.ids == track_id])) == 1
    for frame in np.unique(result.frames):
        # At most one box per walker and frame, with distinct ids.
        in_frame = result.frames == frame
        assert len(np.unique(result.ids[in_frame])) == in_frame.sum()


ALL_PEERS = [
    *PEERS,
    *(pytest.param(name, marks=needs_boxmot) for name in BOXMOT_PEERS),
]


@pytest.mark.parametrize("peer", ALL_PEERS)
def test_two_objects_moving_apart_keep_two_stable_ids(peer: str) -> None:
    seqinfo = SeqInfo(name="walkers", frame_rate=FRAME_RATE, seq_length=20)
    run = run_peer(peer, two_walkers(list(range(1, 21))), seqinfo)
    assert run.name == peer
    assert run.num_frames == 20
    assert run.update_seconds > 0
    assert_one_id_per_walker(run)
    # Once confirmed (a few frames), both walkers are reported in every frame.
    assert set(range(6, 21)) <= set(run.result.frames.tolist())
    assert np.all(np.isin(run.result.frames, np.arange(1, 21)))


@pytest.mark.parametrize("peer", ALL_PEERS)
def test_short_gap_of_empty_frames_keeps_ids(peer: str) -> None:
    # Frames 11-13 have no detection, and neither have the last two frames of the sequence.
    frames = [*range(1, 11), *range(14, 24)]
    seqinfo = SeqInfo(name="walkers", frame_rate=FRAME_RATE, seq_length=25)
    run = run_peer(peer, two_walkers(frames), seqinfo)
    assert run.num_frames == 25
    assert_one_id_per_walker(run, expected_ids=2)
    assert not np.any(np.isin(run.result.frames, [11, 12, 13, 24, 25]))
    assert np.any(run.result.frames > 13)


@pytest.mark.parametrize("peer", ALL_PEERS)
def test_empty_frames_age_tracks_until_they_are_dropped(peer: str) -> None:
    # At 25 fps the default lost_track_buffer (30 frames at 30 fps) is ceil(25) = 25 frames
    # (boxmot: 20 to 30 frames); after 60 empty frames the old tracks must be gone, so the
    # walkers get new ids.
    frames = [*range(1, 11), *range(71, 81)]
    seqinfo = SeqInfo(name="walkers", frame_rate=FRAME_RATE, seq_length=80)
    run = run_peer(peer, two_walkers(frames), seqinfo)
    before = np.unique(run.result.ids[run.result.frames <= 10])
    after = np.unique(run.result.ids[run.result.frames >= 71])
    assert len(before) == 2
    assert len(after) == 2
    assert not set(before.tolist()) & set(after.tolist())


@pytest.mark.parametrize("peer", ALL_PEERS)
def test_sequence_without_detections_gives_an_empty_result(peer: str) -> None:
    empty = MotTable.from_arrays(frames=np.zeros(0, dtype=np.int64), boxes_xyxy=np.zeros((0, 4)))
    run = run_peer(peer, empty, SeqInfo(name="empty", frame_rate=FRAME_RATE, seq_length=5))
    assert len(run.result) == 0
    assert run.num_frames == 5


def test_detections_past_the_sequence_end_are_rejected() -> None:
    seqinfo = SeqInfo(name="walkers", frame_rate=FRAME_RATE, seq_length=5)
    with pytest.raises(EmtrackInputError, match="reach frame 6"):
        run_peer("sort", two_walkers([1, 6]), seqinfo)


def test_unknown_peer_is_rejected() -> None:
    seqinfo = SeqInfo(name="walkers", frame_rate=FRAME_RATE, seq_length=5)
    with pytest.raises(EmtrackInputError, match="unknown peer"):
        run_peer("deepsort", two_walkers([1]), seqinfo)


def test_sort_on_tud_campus_scores_above_20_hota(shared_data: Path, tmp_path: Path) -> None:
    seq_dir = shared_data / "MOT15" / "TUD-Campus"
    seqinfo = read_seqinfo(seq_dir / "seqinfo.ini")
    run = run_peer("sort", read_mot(seq_dir / "det" / "det.txt"), seqinfo)
    assert run.num_frames == seqinfo.seq_length
    result_path = tmp_path / "TUD-Campus.txt"
    write_mot(result_path, run.result)
    report = evaluate([EvalSequence("TUD-Campus", seq_dir / "gt" / "gt.txt", result_path, seqinfo)])
    assert report.combined.hota > 20


def test_cbiou_is_the_packages_cbiou_tracker_at_the_sequence_frame_rate() -> None:
    import trackers

    tracker = make_peer("cbiou", 10.0)
    assert type(tracker) is trackers.CBIoUTracker
    # Its own defaults (buffer ratios 0.3 / 0.5), with the 30-frame buffer scaled to 10 fps.
    assert (tracker.buffer_ratio_first, tracker.buffer_ratio_second) == (0.3, 0.5)
    assert (
        tracker.maximum_frames_without_update
        == make_peer("sort", 10.0).maximum_frames_without_update
    )
    assert (
        tracker.maximum_frames_without_update
        < make_peer("cbiou", 30.0).maximum_frames_without_update
    )


def hide_boxmot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import boxmot`` (and of any of its modules, even already imported ones) fail."""
    for name in [name for name in sys.modules if name == "boxmot" or name.startswith("boxmot.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "boxmot", None)


def test_boxmot_peers_are_skipped_with_a_note_without_boxmot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_boxmot(monkeypatch)
    assert boxmot_unavailable() is not None
    assert set(BOXMOT_PEERS) <= set(TRACKERS)
    assert not set(BOXMOT_PEERS) & set(default_trackers())
    with pytest.raises(ImportError):
        run_peer("boxmot-ocsort", two_walkers([1, 2]), SeqInfo("w", FRAME_RATE, 2))

    write_sequence(tmp_path / "root", num_frames=20)
    report = run_track_bench([tmp_path / "root"], trackers=("sort", "boxmot-ocsort"))
    assert report.trackers == ("sort",)
    assert report.skipped == ("boxmot-ocsort",)
    assert [row.tracker for row in report.rows] == ["sort"]
    note = next(note for note in report.notes if "boxmot" in note)
    assert "peers skipped (boxmot-ocsort)" in note and "AGPL" in note


def test_the_default_list_has_the_boxmot_peers_exactly_when_boxmot_imports() -> None:
    defaults = default_trackers()
    assert set(PEERS) <= set(defaults)
    assert (set(BOXMOT_PEERS) <= set(defaults)) == HAVE_BOXMOT
    assert set(defaults) <= set(TRACKERS)


@needs_boxmot
def test_boxmot_peers_are_built_motion_only() -> None:
    boost = make_boxmot_peer("boxmot-boosttrack", 25.0)
    assert boost.use_embeddings is False and boost.use_cmc is False and boost.cmc is None
    hybrid = make_boxmot_peer("boxmot-hybridsort", 25.0)
    assert hybrid.use_embeddings is False and hybrid.cmc is None
    botsort = make_boxmot_peer("boxmot-botsort", 25.0)
    assert botsort.use_embeddings is False and botsort.cmc is None
    for name in BOXMOT_PEERS:
        tracker = make_boxmot_peer(name, 25.0)
        assert not tracker.requirements.frame and not tracker.requirements.embeddings
    # ByteTrack and BoT-SORT scale their 30 fps buffers (25 and 30 frames) to the frame rate.
    assert make_boxmot_peer("boxmot-bytetrack", 15.0).max_time_lost == 12
    assert make_boxmot_peer("boxmot-botsort", 15.0).max_time_lost == 15
    with pytest.raises(EmtrackInputError, match="unknown boxmot peer"):
        make_boxmot_peer("boxmot-deepocsort", 25.0)
    with pytest.raises(EmtrackInputError, match="frame rate"):
        make_boxmot_peer("boxmot-ocsort", 0.0)


@needs_boxmot
def test_boxmot_peers_run_without_the_network_and_score_in_the_bench(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a boxmot peer tried to open a connection (weights download?)")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    write_sequence(tmp_path / "root", num_frames=20)
    report = run_track_bench([tmp_path / "root"], trackers=BOXMOT_PEERS)
    assert report.trackers == BOXMOT_PEERS and report.skipped == ()
    assert not any("clipped" in note for note in report.notes)  # scores 0.9 stay as they are
    for row in report.rows:
        # Two people walking apart, detected in every frame: every peer follows both.
        assert row.scores.idsw == 0, row.tracker
        assert row.scores.hota > 50, row.tracker
        assert row.num_frames == 20
    assert report.to_dict()["versions"]["boxmot"] is not None

    # Logit-like scores: the report says they were clipped for boxmot.
    det_path = write_sequence(tmp_path / "logits", num_frames=20)
    raw = read_mot(det_path)
    write_mot(det_path, dataclasses.replace(raw, scores=np.full(len(raw), 5.0)))
    report = run_track_bench([tmp_path / "logits"], trackers=("sort", "boxmot-ocsort"))
    assert any("clipped to [0, 1] for the boxmot peers" in note for note in report.notes)
    assert len(report.rows) == 2


@needs_boxmot
@pytest.mark.parametrize("peer", BOXMOT_PEERS)
def test_boxmot_peers_take_scores_outside_0_1_clipped(peer: str) -> None:
    """boxmot refuses scores outside [0, 1] (e.g. logits): they are clipped, so raw scores
    of 12 track exactly as scores of 1, and those below 0 as 0 (never a track)."""
    seqinfo = SeqInfo(name="walkers", frame_rate=FRAME_RATE, seq_length=20)
    walkers = two_walkers(list(range(1, 21)))
    logits = dataclasses.replace(walkers, scores=np.full(len(walkers), 12.0))
    certain = dataclasses.replace(walkers, scores=np.ones(len(walkers)))
    raw, clipped = run_peer(peer, logits, seqinfo).result, run_peer(peer, certain, seqinfo).result
    assert len(raw) > 0
    np.testing.assert_array_equal(raw.ids, clipped.ids)
    np.testing.assert_allclose(raw.boxes_xyxy, clipped.boxes_xyxy)
    negative = dataclasses.replace(walkers, scores=np.full(len(walkers), -3.0))
    assert len(run_peer(peer, negative, seqinfo).result) == 0
