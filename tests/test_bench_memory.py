"""``emtrack bench memory``: the lazy synthetic stream, the report, and a tracker whose state
stays bounded over a long stream (no timing or memory-size assertions: those are the
benchmark's job, see docs/benchmarks.md)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from emtrack import EmtrackInputError, Tracker
from emtrack.bench.memory import (
    MemoryReport,
    StreamConfig,
    measure_stream,
    run_memory_bench,
    synthetic_stream,
)
from emtrack.cli import main


def test_stream_is_lazy_seeded_and_valid() -> None:
    stream = synthetic_stream(10**12)  # would not fit in memory if it were not lazy
    assert inspect.isgenerator(stream)
    frames = [next(stream) for _ in range(50)]
    for dets in frames:
        assert dets.ndim == 2 and dets.shape[1] == 5 and dets.dtype == np.float64
        assert np.all(dets[:, 2] > dets[:, 0]) and np.all(dets[:, 3] > dets[:, 1])
        assert np.all(np.isfinite(dets))
    again = list(synthetic_stream(50))
    assert all(np.array_equal(a, b) for a, b in zip(frames, again, strict=True))
    other = list(synthetic_stream(50, StreamConfig(seed=1)))
    assert not all(np.array_equal(a, b) for a, b in zip(frames, other, strict=True))
    assert list(synthetic_stream(0)) == []


@pytest.mark.parametrize(
    "kwargs",
    [{"objects": 0}, {"frame_rate": 0}, {"miss_rate": 1.0}, {"seed": -1}, {"image_width": 10}],
)
def test_stream_config_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(EmtrackInputError):
        StreamConfig(**kwargs)


def test_tracker_state_stays_bounded_while_tracks_come_and_go() -> None:
    """Over 900 frames the tracker starts many times more tracks than are ever alive at once,
    and the live count in the last third is no higher than in the first third: ended tracks
    are dropped, and nothing is kept per frame (no history in online mode)."""
    config = StreamConfig(objects=8, mean_lifetime_s=2.0)
    tracker = Tracker(frame_rate=config.frame_rate)
    live = []
    for dets in synthetic_stream(900, config):
        tracker.update(dets)
        live.append(tracker.num_tracks)
        # Every per-track array has exactly one entry per live track.
        tracks = tracker.tracks
        for array in (tracks.mean, tracks.cov, tracks.ids, tracks.born, tracks.lost):
            assert len(array) == tracker.num_tracks
    started = tracker._next_id - 1
    assert tracker.history == {}
    assert started > 5 * max(live)
    assert max(live[600:]) <= max(live[:300]) + config.objects


def test_measure_stream_in_process() -> None:
    run = measure_stream(200, StreamConfig(objects=5), trace_heap=True)
    assert run.frames == 200 and run.warmup_frames == 20
    assert run.detections > 0 and run.update_seconds > 0 and run.frames_per_s > 0
    assert run.peak_rss_mib >= run.warm_rss_mib > 0
    assert run.final_python_blocks > 0 and run.warm_python_blocks > 0
    assert run.heap_peak_mib is not None and run.final_heap_mib is not None
    assert run.heap_peak_mib >= 0
    assert run.history_entries == 0
    assert run.tracks_started >= run.max_live_tracks > 0
    untraced = measure_stream(50, StreamConfig(objects=5))
    assert untraced.final_heap_mib is None and untraced.heap_peak_mib is None
    with pytest.raises(EmtrackInputError, match="num_frames"):
        measure_stream(0)


def test_report_structure_in_process() -> None:
    report = run_memory_bench([400, 200], StreamConfig(objects=5), fresh_process=False)
    assert isinstance(report, MemoryReport)
    assert [run.frames for run in report.runs] == [200, 400]
    assert not any(run.fresh_process for run in report.runs)
    assert report.peak_rss_ratio > 0 and report.python_blocks_ratio > 0
    assert report.heap_ratio is None
    table = report.format_table().splitlines()
    assert table[0].split()[:3] == ["frames", "peak", "RSS"]
    assert [line.split()[0] for line in table[1:3]] == ["200", "400"]
    assert table[3].startswith("400 vs 200 frames: peak RSS ")
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["benchmark"] == "memory" and len(data["runs"]) == 2
    assert {"versions", "machine", "git"} <= set(data["environment"])
    with pytest.raises(EmtrackInputError):
        run_memory_bench([], fresh_process=False)
    with pytest.raises(EmtrackInputError):
        run_memory_bench([10, 0], fresh_process=False)


def test_cli_runs_each_length_in_a_fresh_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "memory.json"
    argv = ["bench", "memory", "--frames", "60,30", "--objects", "4", "--json", str(out)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "peak RSS" in table and "60 vs 30 frames" in table
    data = json.loads(out.read_text())
    assert [run["frames"] for run in data["runs"]] == [30, 60]
    assert all(run["fresh_process"] for run in data["runs"])
    assert data["stream"]["objects"] == 4
    assert all(run["history_entries"] == 0 for run in data["runs"])


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "memory", "--help"]) == 0
    assert "--frames" in capsys.readouterr().out
