"""``emtrack bench accuracy``: held-out link accuracy of a model file, by gap and frame rate."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emtrack.bench.accuracy_bench import run_accuracy_bench, torch_modules
from emtrack.bench.track_bench import _find_root_sequences, derived_detections
from emtrack.cli import main
from emtrack.errors import EmtrackInputError
from emtrack.io import read_mot, write_mot
from emtrack.synth import DetectionNoiseConfig
from emtrack.track import load_model
from emtrack.train.trainer import TrainConfig, gap_accuracy
from sequences import SEQINFO


def test_torch_modules_hold_the_exported_weights() -> None:
    """The torch network rebuilt from the shipped .npz gives the numpy tracker's logits."""
    weights = load_model(None)
    net, noise = torch_modules(weights)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1500, size=(2, 7, 2))
    wh = rng.uniform(20, 300, size=(2, 7, 2))
    boxes = np.concatenate([xy, xy + wh], -1)
    gap = np.full((7, 7), 0.1)
    expected = weights.logits(boxes[0], boxes[1], gap)
    with torch.no_grad():
        got = net(torch.from_numpy(boxes[0]), torch.from_numpy(boxes[1]), torch.from_numpy(gap))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert float(net.dustbin_logit.detach()) == weights.dustbin_logit
    with torch.no_grad():
        params = noise.params()
    assert float(params.q) == pytest.approx(weights.noise_q, rel=1e-12)
    assert float(params.r) == pytest.approx(weights.noise_r, rel=1e-12)


def test_gap_rows_equal_what_training_prints() -> None:
    """With the trainer's held-out scene count the gap rows are the trainer's own figures."""
    weights = load_model(None)
    config = TrainConfig(heldout_scenes=2, heldout_clips=6)
    net, noise = torch_modules(weights)
    trained = gap_accuracy(net.float(), noise.float(), config, strides=(1, 3))
    report = run_accuracy_bench(None, scenes=2, clips=6, gaps=(1, 3))
    gap_rows = {int(row.value): row for row in report.rows if row.group == "gap"}
    assert sorted(gap_rows) == [1, 3]
    for stride, scores in trained.items():
        assert gap_rows[stride].network == pytest.approx(scores["accuracy"])
        assert gap_rows[stride].iou == pytest.approx(scores["iou_accuracy"])
        assert gap_rows[stride].oracle == pytest.approx(scores["oracle_accuracy"])


def test_rows_per_frame_rate_and_a_trained_model_beats_an_untrained_one() -> None:
    report = run_accuracy_bench(None, scenes=3, clips=6, gaps=(1,))
    fps_rows = [row for row in report.rows if row.group == "fps"]
    assert fps_rows and sum(row.scenes for row in fps_rows) == 3
    assert [row.value for row in fps_rows] == sorted({row.value for row in fps_rows})
    for row in report.rows:
        assert row.detections > 0
        assert 0.0 <= row.network <= 1.0 and 0.0 <= row.iou <= 1.0 and 0.0 <= row.oracle <= 1.0
    shipped = report.rows[0]
    # Every logit equal: the network cannot tell pairs apart.
    weights = load_model(None)
    last_w, last_b = weights.layers[-1]
    flat = dataclasses.replace(
        weights, layers=(*weights.layers[:-1], (np.zeros_like(last_w), last_b))
    )
    untrained = run_accuracy_bench(flat, scenes=3, clips=6, gaps=(1,)).rows[0]
    assert untrained.iou == shipped.iou and untrained.oracle == shipped.oracle
    assert shipped.network > untrained.network + 0.1
    assert "frame rate (gap 1)" in report.format_table()


def test_bad_counts_are_input_errors() -> None:
    with pytest.raises(EmtrackInputError, match="scenes"):
        run_accuracy_bench(None, scenes=0)
    with pytest.raises(EmtrackInputError, match="clip_length"):
        run_accuracy_bench(None, clip_length=1)
    with pytest.raises(EmtrackInputError, match="gaps"):
        run_accuracy_bench(None, gaps=(0,))


def test_cli_writes_the_json(tmp_path, capsys) -> None:
    out = tmp_path / "acc.json"
    assert main(["bench", "accuracy", "--scenes", "2", "--clips", "4", "--json", str(out)]) == 0
    assert "true-id KF" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["benchmark"] == "accuracy"
    assert {row["group"] for row in data["rows"]} == {"gap", "fps"}
    assert data["settings"]["scenes"] == 2
    assert main(["bench", "accuracy", "--model", str(tmp_path / "missing.npz")]) == 2


def _gt_root(folder: Path, num_frames: int = 40) -> Path:
    """A MOT17-layout ROOT (gt + seqinfo.ini, no detections) of two synthetic scenes."""
    from emtrack.synth import SceneConfig, generate_scene

    config = SceneConfig(
        num_frames=num_frames, image_width=640, image_height=480, frame_rate=10.0, mean_objects=6
    )
    for seed in (3, 4):
        scene = generate_scene(config, seed)
        seq = folder / scene.seqinfo.name
        write_mot(seq / "gt" / "gt.txt", scene.gt)
        (seq / "seqinfo.ini").write_text(SEQINFO.format(name=seq.name, length=num_frames))
    return folder


def test_gt_rows_score_the_streams_bench_track_derives(tmp_path: Path) -> None:
    root = _gt_root(tmp_path / "gt-root")
    report = run_accuracy_bench(None, scenes=1, clips=6, gaps=(1, 2), seed=5, gt_roots=[root])
    gt_rows = [row for row in report.rows if row.group == "gt"]
    assert [(row.value, row.root, row.scenes) for row in gt_rows] == [
        (1.0, str(root), 2),
        (2.0, str(root), 2),
    ]
    for row in gt_rows:
        assert row.detections > 0
        assert 0.0 <= row.network <= 1.0 and 0.0 <= row.iou <= 1.0 and 0.0 <= row.oracle <= 1.0
    assert report.settings["gt_roots"] == [str(root)]
    assert "streams derived from the gt of" in report.format_table()

    # The clips come from the very streams `bench track --seed 5` tracks (ids aside).
    bench_root = _find_root_sequences(root, "det.txt", 5, DetectionNoiseConfig(), tmp_path / "w")
    for seq in bench_root.sequences:
        tracked = read_mot(seq.det_path)
        derived = derived_detections(
            seq.name, read_mot(seq.gt_path), seq.seqinfo, DetectionNoiseConfig(), 5
        )
        np.testing.assert_allclose(tracked.boxes_xyxy, derived.boxes_xyxy, atol=1e-3)
        assert (derived.ids >= 1).sum() > 0.5 * len(derived)  # identities known here

    # A network that cannot tell pairs apart links worse on them too.
    weights = load_model(None)
    last_w, last_b = weights.layers[-1]
    flat = dataclasses.replace(
        weights, layers=(*weights.layers[:-1], (np.zeros_like(last_w), last_b))
    )
    flat_rows = run_accuracy_bench(flat, scenes=1, clips=6, gaps=(1, 2), seed=5, gt_roots=[root])
    for shipped, untrained in zip(gt_rows, flat_rows.rows[-2:], strict=True):
        assert untrained.iou == shipped.iou and untrained.oracle == shipped.oracle
        assert shipped.network > untrained.network + 0.1


def test_bad_gt_roots_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(EmtrackInputError, match="not found"):
        run_accuracy_bench(None, scenes=1, clips=2, gt_roots=[tmp_path / "missing"])
    short = _gt_root(tmp_path / "short", num_frames=6)  # a 10-frame clip does not fit
    with pytest.raises(EmtrackInputError, match="more than 9 frames"):
        run_accuracy_bench(None, scenes=1, clips=2, gaps=(1,), gt_roots=[short])
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmtrackInputError, match="no sequence"):
        run_accuracy_bench(None, scenes=1, clips=2, gt_roots=[tmp_path / "empty"])
    no_seqinfo = tmp_path / "no_seqinfo" / "A"
    (no_seqinfo / "gt").mkdir(parents=True)
    (no_seqinfo / "gt" / "gt.txt").write_text("1,1,10,10,20,40,1,1,1\n")
    with pytest.raises(EmtrackInputError, match=r"no seqinfo\.ini") as error:
        run_accuracy_bench(None, scenes=1, clips=2, gt_roots=[no_seqinfo.parent])
    assert str(no_seqinfo) in str(error.value)


def test_cli_gt_rows(tmp_path: Path, capsys) -> None:
    root = _gt_root(tmp_path / "gt-root")
    out = tmp_path / "acc.json"
    argv = ["bench", "accuracy", "--scenes", "1", "--clips", "3", "--gt", str(root)]
    assert main([*argv, "--json", str(out)]) == 0
    assert f"streams derived from the gt of {root}" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert {row["group"] for row in data["rows"]} == {"gap", "fps", "gt"}
    assert {row["root"] for row in data["rows"] if row["group"] == "gt"} == {str(root)}
    assert main(["bench", "accuracy", "--gt", str(tmp_path / "missing")]) == 2
