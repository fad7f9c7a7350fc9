"""emtrack.bench.peers: the `trackers` package's peers driven frame by frame on MotTables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trackers")

from emtrack.bench.peers import PEERS, PeerRun, run_peer
from emtrack.errors import EmtrackInputError
from emtrack.eval import EvalSequence, evaluate
from emtrack.io import MotTable, SeqInfo, read_mot, read_seqinfo, write_mot

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


@pytest.mark.parametrize("peer", PEERS)
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


@pytest.mark.parametrize("peer", PEERS)
def test_short_gap_of_empty_frames_keeps_ids(peer: str) -> None:
    # Frames 11-13 have no detection, and neither have the last two frames of the sequence.
    frames = [*range(1, 11), *range(14, 24)]
    seqinfo = SeqInfo(name="walkers", frame_rate=FRAME_RATE, seq_length=25)
    run = run_peer(peer, two_walkers(frames), seqinfo)
    assert run.num_frames == 25
    assert_one_id_per_walker(run, expected_ids=2)
    assert not np.any(np.isin(run.result.frames, [11, 12, 13, 24, 25]))
    assert np.any(run.result.frames > 13)


@pytest.mark.parametrize("peer", PEERS)
def test_empty_frames_age_tracks_until_they_are_dropped(peer: str) -> None:
    # At 25 fps the default lost_track_buffer (30 frames at 30 fps) is ceil(25) = 25 frames;
    # after 60 empty frames the old tracks must be gone, so the walkers get new ids.
    frames = [*range(1, 11), *range(71, 81)]
    seqinfo = SeqInfo(name="walkers", frame_rate=FRAME_RATE, seq_length=80)
    run = run_peer(peer, two_walkers(frames), seqinfo)
    before = np.unique(run.result.ids[run.result.frames <= 10])
    after = np.unique(run.result.ids[run.result.frames >= 71])
    assert len(before) == 2
    assert len(after) == 2
    assert not set(before.tolist()) & set(after.tolist())


@pytest.mark.parametrize("peer", PEERS)
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
