"""``emtrack viz``: tracks (MP4, PNG frames, contact sheet), training curves, association
heatmaps, benchmark charts, and the CLI's help and exit codes.

Outputs are checked for what they promise: the frame count and size of a video read back, the
names and sizes of PNG frames, the byte size of the contact sheet, the pixels of drawn boxes;
the ground-truth comparison is checked on a hand-made case.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emtrack.cli import main
from emtrack.errors import EmtrackInputError
from emtrack.eval.clear import FALSE_POSITIVE, ID_SWITCH, IGNORED, MATCHED, compare_to_gt
from emtrack.io import MotTable, write_mot
from emtrack.viz._common import MAX_PNG_BYTES, parse_frame_range
from emtrack.viz.tracks import PALETTE, identity_colour

av = pytest.importorskip("av")
pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

REPO = Path(__file__).resolve().parents[1]


def video_frames(path: Path) -> tuple[int, int, int]:
    """(frame count, width, height) of a video, decoded back."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, stream.codec_context.width, stream.codec_context.height


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr, stderr
    assert lines and lines[-1].startswith("emtrack: error: "), stderr
    return lines[-1]


# --------------------------------------------------------------------------------------------
# viz tracks
# --------------------------------------------------------------------------------------------


def test_tracks_synthetic_mp4_and_sheet(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    video, sheet = tmp_path / "out" / "tracks.mp4", tmp_path / "sheet.png"
    argv = ["viz", "tracks", "--out", str(video), "--sheet", str(sheet)]
    assert main([*argv, "--synthetic-frames", "30", "--frames", "3:14"]) == 0
    assert video_frames(video) == (12, 1280, 720)
    assert 0 < sheet.stat().st_size < MAX_PNG_BYTES
    width, height = png_size(sheet)
    assert 1000 < width < 1400 and height > 500
    err = capsys.readouterr().err
    assert "against the gt:" in err and "identity switches" in err
    assert not list(tmp_path.rglob(".*.tmp"))  # no temporary files left behind


def test_tracks_png_frames_folder(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    argv = ["viz", "tracks", "--out", str(folder), "--frames", "5:9", "--scale", "0.25"]
    assert main([*argv, "--synthetic-frames", "20"]) == 0
    names = sorted(path.name for path in folder.iterdir())
    assert names == [f"{f:06d}.png" for f in range(5, 10)]
    assert {png_size(folder / name) for name in names} == {(320, 180)}
    # Drawing again into the existing folder replaces the frames, adds none.
    assert main([*argv, "--synthetic-frames", "20", "-q"]) == 0
    assert len(list(folder.iterdir())) == 5


def _tiny_sequence(tmp_path: Path, images: bool = False) -> tuple[Path, Path, Path]:
    """A 6-frame 64x48 sequence: one track (id 4) moving right; result, seqinfo, gt."""
    frames = np.arange(1, 7)
    boxes = np.stack([10.0 + 2 * frames, np.full(6, 10.0), 24.0 + 2 * frames, np.full(6, 40.0)], 1)
    result, gt = tmp_path / "result.txt", tmp_path / "gt.txt"
    write_mot(result, MotTable.from_arrays(frames, boxes, ids=np.full(6, 4)))
    write_mot(gt, MotTable.from_arrays(frames, boxes, ids=np.full(6, 1)))
    seqinfo = tmp_path / "seqinfo.ini"
    seqinfo.write_text("[Sequence]\nname=tiny\nframeRate=5\nseqLength=6\nimWidth=64\nimHeight=48\n")
    if images:
        (tmp_path / "img1").mkdir()
        for f in frames:
            Image.new("RGB", (64, 48), (0, 90, 0)).save(tmp_path / "img1" / f"{f:06d}.jpg")
    return result, seqinfo, gt


def test_tracks_over_images_and_identity_colour(tmp_path: Path) -> None:
    result, seqinfo, _ = _tiny_sequence(tmp_path, images=True)
    folder = tmp_path / "frames"
    argv = ["viz", "tracks", "--result", str(result), "--seqinfo", str(seqinfo)]
    assert main([*argv, "--images", str(tmp_path / "img1"), "--out", str(folder)]) == 0
    pixels = np.asarray(Image.open(folder / "000006.png"))
    assert pixels.shape == (48, 64, 3)
    # The image is the background (dark green), and track 4's box is drawn in its colour.
    assert np.abs(pixels[46, 2].astype(int) - (0, 90, 0)).max() <= 12
    left_edge = pixels[25, 22]  # x1 = 22 in frame 6
    assert np.abs(left_edge.astype(int) - identity_colour(4)).max() <= 12


def test_tracks_missing_image_writes_nothing(tmp_path: Path, capsys) -> None:
    result, seqinfo, _ = _tiny_sequence(tmp_path, images=True)
    (tmp_path / "img1" / "000004.jpg").unlink()
    video = tmp_path / "v.mp4"
    argv = ["viz", "tracks", "--result", str(result), "--seqinfo", str(seqinfo)]
    assert main([*argv, "--images", str(tmp_path / "img1"), "--out", str(video)]) == 2
    assert "frame 4" in error_line(capsys.readouterr().err)
    assert not video.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--frames", "0:3", "--out", "v.mp4"], "outside"),
        (["--frames", "x:y", "--out", "v.mp4"], "A:B"),
        (["--out", "v.avi"], ".mp4"),
        (["--sheet", "sheet.jpg"], ".png"),
        (["--scale", "0", "--out", "v.mp4"], "--scale"),
        ([], "nothing to write"),
    ],
)
def test_tracks_bad_options(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    result, seqinfo, _ = _tiny_sequence(tmp_path)
    argv = ["viz", "tracks", "--result", str(result), "--seqinfo", str(seqinfo)]
    extra = [str(tmp_path / e) if "." in e and not e[0].isdigit() else e for e in extra]
    assert main([*argv, *extra]) == 2
    assert message in error_line(capsys.readouterr().err)
    assert not [path for path in tmp_path.iterdir() if path.suffix in (".mp4", ".avi", ".jpg")]


def test_tracks_real_sequence(shared_data: Path, tmp_path: Path) -> None:
    seq = shared_data / "MOT15" / "TUD-Campus"
    result = tmp_path / "TUD-Campus.txt"
    assert main(["-q", "track", "--det", str(seq / "det" / "det.txt"), "--out", str(result)]) == 0
    video, sheet = tmp_path / "tud.mp4", tmp_path / "tud.png"
    argv = ["viz", "tracks", "--result", str(result), "--seqinfo", str(seq / "seqinfo.ini")]
    argv += ["--gt", str(seq / "gt" / "gt.txt"), "--frames", "60:", "--out", str(video)]
    assert main([*argv, "--sheet", str(sheet)]) == 0
    assert video_frames(video) == (12, 640, 480)  # TUD-Campus: 71 frames of 640x480
    assert 0 < sheet.stat().st_size < MAX_PNG_BYTES


# --------------------------------------------------------------------------------------------
# The ground-truth comparison and the palette
# --------------------------------------------------------------------------------------------


def _table(rows: list[tuple[int, int, float, float]], **kwargs: np.ndarray) -> MotTable:
    """Rows (frame, id, x, y) of 10x20 boxes."""
    data = np.array(rows, float)
    boxes = np.stack([data[:, 2], data[:, 3], data[:, 2] + 10, data[:, 3] + 20], 1)
    return MotTable.from_arrays(data[:, 0].astype(int), boxes, ids=data[:, 1].astype(int), **kwargs)


def test_compare_to_gt_hand_made_case() -> None:
    # gt: object 1 at x=0 in frames 1-3, object 2 at x=100 in frames 1-3, object 3 (ignored,
    # conf 0) at x=200 in frame 1.
    gt = _table(
        [(1, 1, 0, 0), (1, 2, 100, 0), (1, 3, 200, 0), (2, 1, 0, 0), (2, 2, 100, 0)]
        + [(3, 1, 0, 0), (3, 2, 100, 0)],
        scores=np.array([1, 1, 0, 1, 1, 1, 1.0]),
    )
    # result: frame 1 tracks 7 and 8 on objects 1 and 2, plus a box on the ignored object;
    # frame 2: track 9 takes over object 1 (switch), object 2 missed, a false positive;
    # frame 3: track 9 on object 1 again (no new switch), track 8 back on object 2 (no switch).
    result = _table(
        [(1, 7, 0, 0), (1, 8, 101, 1), (1, 5, 200, 0), (2, 9, 1, 0), (2, 6, 400, 0)]
        + [(3, 9, 0, 0), (3, 8, 100, 0)]
    )
    comparison = compare_to_gt(result, gt)
    assert comparison.result_status.tolist() == [
        MATCHED,
        MATCHED,
        IGNORED,
        ID_SWITCH,
        FALSE_POSITIVE,
        MATCHED,
        MATCHED,
    ]
    assert comparison.gt_missed.tolist() == [False, False, False, True, False, False]
    assert comparison.counts == {
        "matches": 5,
        "false_positives": 1,
        "misses": 1,
        "id_switches": 1,
    }


def test_compare_to_gt_keeps_previous_match_when_ambiguous() -> None:
    # Two result boxes overlap gt object 1 in frame 2 (IoU 1 and 0.6); track 7 had it before,
    # so CLEAR keeps 7 even though the other box fits better: no identity switch.
    gt = _table([(1, 1, 0, 0), (2, 1, 0, 0)])
    result = _table([(1, 7, 0, 0), (2, 7, 2.5, 0), (2, 8, 0, 0)])
    comparison = compare_to_gt(result, gt)
    assert comparison.result_status.tolist() == [MATCHED, MATCHED, FALSE_POSITIVE]


def _trackeval_counts(result: MotTable, gt: MotTable, seqinfo, tmp_path: Path) -> dict:
    from emtrack.eval import EvalSequence, evaluate

    write_mot(tmp_path / "gt.txt", gt)
    write_mot(tmp_path / "result.txt", result)
    scores = evaluate(
        [EvalSequence(seqinfo.name, tmp_path / "gt.txt", tmp_path / "result.txt", seqinfo)]
    ).combined
    return {
        "matches": scores.clr_tp,
        "false_positives": scores.clr_fp,
        "misses": scores.clr_fn,
        "id_switches": scores.idsw,
    }


def test_compare_to_gt_agrees_with_trackeval_on_a_synthetic_scene(tmp_path: Path) -> None:
    """The marks on the pictures add up to TrackEval's CLEAR counts (the oracle)."""
    from emtrack.viz.synthetic import synthetic_example

    example = synthetic_example(num_frames=60, seed=2)
    counts = compare_to_gt(example.result, example.gt).counts
    assert counts["id_switches"] > 0 and counts["false_positives"] > 0  # a telling case
    assert counts == _trackeval_counts(example.result, example.gt, example.seqinfo, tmp_path)


def test_compare_to_gt_agrees_with_trackeval_on_tud_campus(
    shared_data: Path, tmp_path: Path
) -> None:
    from emtrack.io import read_mot, read_seqinfo
    from emtrack.track import track_sequence

    seq = shared_data / "MOT15" / "TUD-Campus"
    seqinfo = read_seqinfo(seq / "seqinfo.ini")
    result = track_sequence(read_mot(seq / "det" / "det.txt"), seqinfo).result
    gt = read_mot(seq / "gt" / "gt.txt")
    counts = compare_to_gt(result, gt).counts
    assert counts == _trackeval_counts(result, gt, seqinfo, tmp_path)


def test_identity_colours_stable_and_distinct() -> None:
    assert identity_colour(5) == identity_colour(5) == identity_colour(5 + len(PALETTE))
    assert len({identity_colour(k) for k in range(40, 40 + len(PALETTE))}) == len(PALETTE)
    assert (235, 40, 40) not in PALETTE and (255, 0, 255) not in PALETTE


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, (1, 10)), ("3:5", (3, 5)), ("4:", (4, 10)), (":2", (1, 2)), ("7", (7, 7))],
)
def test_parse_frame_range(text: str | None, expected: tuple[int, int]) -> None:
    frames = parse_frame_range(text, 10)
    assert (frames[0], frames[-1]) == expected


@pytest.mark.parametrize("text", ["0:3", "5:4", "9:11", "a:b", "1:2:3"])
def test_parse_frame_range_rejects(text: str) -> None:
    with pytest.raises(EmtrackInputError):
        parse_frame_range(text, 10)


# --------------------------------------------------------------------------------------------
# viz training
# --------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_checkpoint(tmp_path: Path, one_torch_thread: None) -> Path:
    """A real checkpoint (save_checkpoint) of an untrained net with a 3-epoch history."""
    from emtrack.model.network import AssociationNet, NoiseModel
    from emtrack.train import EpochRecord, TrainConfig, TrainResult
    from emtrack.train.checkpoint import save_checkpoint

    history = [
        EpochRecord(e, 30.0 / e, 15.0 / e, 15.0 / e, 0.5, 80.0, 0.6 + 0.1 * e, 0.9, 0.95)
        for e in (1, 2, 3)
    ]
    result = TrainResult(AssociationNet((8,)), NoiseModel(), TrainConfig(hidden=(8,)), history)
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, result, None, 0, np.random.default_rng(0))
    return path


def test_training_plot_from_checkpoint_and_json(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "plots" / "training.png"
    assert main(["viz", "training", str(tiny_checkpoint), "--out", str(out)]) == 0
    assert png_size(out) == (880, 352)  # 8 x 3.2 inches at 110 dpi: loss and accuracy panels

    import torch

    history = torch.load(tiny_checkpoint, weights_only=True)["history"]
    log = tmp_path / "log.json"
    log.write_text(json.dumps([{"epoch": r["epoch"], "loss": r["loss"]} for r in history]))
    assert main(["viz", "training", str(log), "--out", str(tmp_path / "loss.png")]) == 0
    assert png_size(tmp_path / "loss.png") == (495, 352)  # no accuracy: the loss panel only


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON"), ('{"history": []}', "no training history"),
     ('[{"epoch": 1}]', "'loss'")],
)  # fmt: skip
def test_training_plot_bad_log(tmp_path: Path, capsys, content: str, message: str) -> None:
    log = tmp_path / "log.json"
    log.write_text(content)
    out = tmp_path / "t.png"
    assert main(["viz", "training", str(log), "--out", str(out)]) == 2
    line = error_line(capsys.readouterr().err)
    assert message in line and str(log) in line
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# viz assoc
# --------------------------------------------------------------------------------------------


def test_assoc_synthetic_default(tmp_path: Path, one_torch_thread: None) -> None:
    out = tmp_path / "assoc.png"
    assert main(["viz", "assoc", "--out", str(out)]) == 0
    width, height = png_size(out)
    assert (width, height) == (1000, 840)  # boxes above, assignment and IoU below


def test_association_view_is_a_dustbin_assignment(one_torch_thread: None) -> None:
    from emtrack.track import load_model
    from emtrack.viz.assoc import association_view, frame_pair
    from emtrack.viz.synthetic import synthetic_scene

    scene = synthetic_scene(num_frames=20, seed=1, mean_objects=6.0)
    ref, cur, ref_ids, cur_ids = frame_pair(
        scene.detections, scene.seqinfo, 5, None, 20, by_identity=True
    )
    view = association_view(load_model(None), ref, cur, 0.1, 5, ref_ids=ref_ids, cur_ids=cur_ids)
    m, n = len(cur), len(ref)
    assert view.assignment.shape == (m + 1, n + 1) and view.iou.shape == (m, n)
    # Sinkhorn ends on the columns: they sum to 1; rows nearly, after training's 20 rounds.
    np.testing.assert_allclose(view.assignment[:, :n].sum(0), 1.0, atol=1e-6)
    np.testing.assert_allclose(view.assignment[:m].sum(1), 1.0, atol=0.05)
    # Ordered by identity: the true matches of real objects lie on the diagonal.
    assert view.true_match is not None and view.true_match[:m].sum(1).tolist() == [1] * m
    shared = [k for k in range(min(m, n)) if ref_ids[k] == cur_ids[k] and ref_ids[k] >= 1]
    assert shared and all(view.true_match[k, k] for k in shared)
    assert 0.0 <= view.accuracy <= 1.0


def test_assoc_real_sequence(shared_data: Path, tmp_path: Path, one_torch_thread: None) -> None:
    det = shared_data / "MOT15" / "TUD-Campus" / "det" / "det.txt"
    out = tmp_path / "assoc.png"
    assert main(["viz", "assoc", "--det", str(det), "--frame", "20", "--out", str(out)]) == 0
    assert png_size(out)[0] == 1000


def test_assoc_bad_frame(tmp_path: Path, capsys, one_torch_thread: None) -> None:
    out = tmp_path / "assoc.png"
    assert main(["viz", "assoc", "--frame", "30", "--out", str(out)]) == 2  # 30 frames: F+1 = 31
    assert "--frame" in error_line(capsys.readouterr().err)
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# viz bench and bench track --plot
# --------------------------------------------------------------------------------------------


def test_bench_plot_from_json(tmp_path: Path) -> None:
    rows = [
        {"root": root, "tracker": name, "hota": hota, "idf1": hota + 5, "fps": fps}
        for root in ("data/A", "data/B")
        for name, hota, fps in (("emtrack", 40.0, 3000.0), ("sort", 35.0, 2500.0))
    ]
    source = tmp_path / "bench.json"
    source.write_text(json.dumps({"rows": rows}))
    out = tmp_path / "bench.png"
    assert main(["viz", "bench", str(source), "--out", str(out)]) == 0
    width, height = png_size(out)
    assert width == 900 and height == 520  # two panels side by side, one row per ROOT


def test_bench_plot_of_the_shipped_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.png"
    assert (
        main(["viz", "bench", str(REPO / "docs" / "bench" / "track.json"), "--out", str(out)]) == 0
    )
    assert out.stat().st_size < MAX_PNG_BYTES


def test_bench_plot_bad_json(tmp_path: Path, capsys) -> None:
    source = tmp_path / "bench.json"
    source.write_text(json.dumps({"rows": [{"tracker": "x"}]}))
    assert main(["viz", "bench", str(source), "--out", str(tmp_path / "b.png")]) == 2
    assert "'root'" in error_line(capsys.readouterr().err)


def test_bench_track_plot(tmp_path: Path, capsys) -> None:
    root = tmp_path / "root"
    seq = root / "walk"
    frames = np.repeat(np.arange(1, 13), 2)
    ids = np.tile([1, 2], 12)
    x = np.where(ids == 1, 10.0 + 4 * frames, 400.0 - 5 * frames)
    boxes = np.stack([x, np.full(24, 100.0), x + 30, np.full(24, 170.0)], 1)
    write_mot(seq / "gt" / "gt.txt", MotTable.from_arrays(frames, boxes, ids=ids))
    write_mot(seq / "det" / "det.txt", MotTable.from_arrays(frames, boxes, np.full(24, 0.9)))
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=walk\nframeRate=10\nseqLength=12\nimWidth=640\nimHeight=480\n"
    )
    out = tmp_path / "plot.png"
    argv = ["bench", "track", str(root), "--trackers", "emtrack", "--plot", str(out)]
    assert main(argv) == 0
    assert png_size(out) == (900, 290)
    assert main([*argv[:-1], str(tmp_path / "plot.jpg")]) == 2  # checked before the run
    assert "--plot" in error_line(capsys.readouterr().err)


# --------------------------------------------------------------------------------------------
# Help, exit codes, the optional extra
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["train"],
        ["track"],
        ["eval"],
        ["bench"],
        ["bench", "track"],
        ["demo"],
        ["viz"],
        ["viz", "tracks"],
        ["viz", "training"],
        ["viz", "assoc"],
        ["viz", "bench"],
    ],
)
def test_help_has_examples(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    heading = re.search(r"^examples[^\n]*:\n", out, re.MULTILINE)
    examples = out[heading.end() :] if heading else ""
    if argv == ["viz"]:  # the group lists its pictures and points to their examples
        assert "emtrack viz PICTURE --help" in out
        return
    # Examples are printed as written (not re-wrapped) and run the command being described.
    assert f"  emtrack {' '.join(argv)}".rstrip() in examples, out


def test_missing_extra_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    source = tmp_path / "bench.json"
    source.write_text(json.dumps({"rows": [{"root": "a", "tracker": "b", "fps": 1.0}]}))
    out = tmp_path / "b.png"
    assert main(["viz", "bench", str(source), "--out", str(out)]) == 1
    assert "pip install 'emtrack[viz]'" in error_line(capsys.readouterr().err)
    assert not out.exists()


def test_core_works_without_the_optional_packages(tmp_path: Path) -> None:
    """Tracking and the CLI work without matplotlib, PyAV, supervision and pandas; viz exits 1."""
    code = (
        "import sys\n"
        "for name in ('matplotlib', 'av', 'supervision', 'pandas'):\n"
        "    sys.modules[name] = None\n"
        "import numpy as np, emtrack\n"
        "from emtrack.cli import main\n"
        "tracker = emtrack.Tracker(frame_rate=10)\n"
        "assert tracker.update(np.array([[0, 0, 10, 20, 0.9]])).shape == (1, 5)\n"
        "assert main(['demo', '--help']) == 0\n"
        "assert main(['viz', 'training', 'log.json', '--out', 'x.png']) == 1\n"
    )
    (tmp_path / "log.json").write_text('[{"epoch": 1, "loss": 2.0}]')
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
