"""``emtrack track --workers N``: a folder of sequences tracked by a pool of processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emtrack.cli import main
from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo, write_mot
from emtrack.synth import SceneConfig, generate_scene
from emtrack.track.run import track_sequences

SEQINFO = "[Sequence]\nname={name}\nframeRate=30\nseqLength={length}\nimWidth=1920\nimHeight=1080\n"
NUM_FRAMES = 40


def write_scene(root: Path, name: str, seed: int, seq_length: int = NUM_FRAMES) -> Path:
    """A synthetic crowd as ``<root>/<name>/det/det.txt`` (ids removed) with seqinfo.ini."""
    scene = generate_scene(SceneConfig(num_frames=NUM_FRAMES, mean_objects=12), seed)
    dets = scene.detections
    det_path = root / name / "det" / "det.txt"
    write_mot(det_path, MotTable.from_arrays(dets.frames, dets.boxes_xyxy, dets.scores))
    (root / name / "seqinfo.ini").write_text(SEQINFO.format(name=name, length=seq_length))
    return det_path


@pytest.fixture(scope="module")
def three_sequences(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seqs")
    for seed, name in enumerate(("alpha", "beta", "gamma")):
        write_scene(root, name, seed)
    return root


def track_folder(root: Path, out: Path, *extra: str) -> dict[str, bytes]:
    assert main(["-q", "track", "--det", str(root), "--out", f"{out}/", *extra]) == 0
    return {path.name: path.read_bytes() for path in sorted(out.iterdir())}


@pytest.mark.parametrize("offline", [False, True], ids=["online", "offline"])
def test_two_workers_write_the_same_files_as_one(
    three_sequences: Path, tmp_path: Path, offline: bool
) -> None:
    extra = ["--offline"] if offline else []
    single = track_folder(three_sequences, tmp_path / "one", "--workers", "1", *extra)
    pooled = track_folder(three_sequences, tmp_path / "two", "--workers", "2", *extra)
    assert list(single) == ["alpha.txt", "beta.txt", "gamma.txt"]
    assert all(len(content) > 0 for content in single.values())
    assert pooled == single  # byte for byte


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_worker_count_is_a_usage_error(
    three_sequences: Path, tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["track", "--det", str(three_sequences), "--out", f"{out}/", "--workers", value]
    assert main(argv) == 2
    assert "--workers" in capsys.readouterr().err
    assert not out.exists()


def test_error_in_a_worker_leaves_no_output(
    three_sequences: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "seqs"
    for name in ("alpha", "beta"):
        (root / name / "det").mkdir(parents=True)
        for part in ("det/det.txt", "seqinfo.ini"):
            (root / name / part).write_bytes((three_sequences / name / part).read_bytes())
    # seqLength shorter than the detections: found while tracking, inside a worker.
    bad = write_scene(root, "broken", seed=7, seq_length=NUM_FRAMES - 5)
    out = tmp_path / "out"
    argv = ["track", "--det", str(root), "--out", f"{out}/", "--workers", "2"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert str(bad) in error and "beyond seqLength" in error
    assert not out.exists() or not any(out.iterdir())


def test_library_rejects_zero_workers() -> None:
    empty = MotTable.from_arrays(np.zeros(0, np.int64), np.zeros((0, 4)))
    with pytest.raises(EmtrackInputError, match="workers"):
        next(track_sequences([], workers=0))
    # One process per sequence at most: a single sequence never starts a pool.
    (run,) = track_sequences([(empty, SeqInfo("s", 30.0, 5))], workers=4)
    assert run.num_frames == 5 and len(run.result) == 0
