"""``emtrack bench accuracy``: held-out link accuracy of a model file, by gap and frame rate."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emtrack.bench.accuracy_bench import run_accuracy_bench, torch_modules
from emtrack.bench.gt_labels import IGNORED, label_detections
from emtrack.bench.roots import derived_detections, find_root_sequences
from emtrack.cli import main
from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, read_mot, write_mot
from emtrack.synth import DetectionNoiseConfig
from emtrack.track import load_model
from emtrack.train.config import TrainConfig
from emtrack.train.heldout import gap_accuracy
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
    bench_root = find_root_sequences(root, "det.txt", 5, DetectionNoiseConfig(), tmp_path / "w")
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


# --------------------------------------------------------------------------------------------
# Real detection files: identities from the gt by IoU matching
# --------------------------------------------------------------------------------------------


def _gt_table(rows: list[tuple[int, int, float, float, float, float, float, int]]) -> MotTable:
    """Class-column gt from ``(frame, id, x1, y1, x2, y2, conf, class)`` rows."""
    data = np.array(rows, dtype=float)
    return MotTable.from_arrays(
        frames=data[:, 0].astype(int),
        boxes_xyxy=data[:, 2:6],
        scores=data[:, 6],
        ids=data[:, 1].astype(int),
        classes=data[:, 7].astype(int),
    )


def _dets(frames: list[int], boxes: list[list[float]]) -> MotTable:
    return MotTable.from_arrays(np.array(frames), np.array(boxes, dtype=float))


def test_labels_follow_trackevals_matching_and_distractor_rule() -> None:
    gt = _gt_table(
        [
            (1, 1, 0, 0, 10, 20, 1, 1),  # pedestrian P
            (1, 9, 100, 0, 110, 20, 0, 7),  # static person (a distractor), conf 0
            (1, 3, 200, 0, 210, 20, 0, 1),  # pedestrian marked "ignore" (conf 0)
            (1, 4, 300, 0, 310, 20, 1, 4),  # bicycle: not evaluated, not a distractor
            (2, 1, 2, 0, 12, 20, 1, 1),
            (2, 5, 400, 0, 410, 20, 1, 6),  # non-motorised vehicle: a MOT20 distractor only
        ]
    )
    detections = _dets(
        [1, 1, 1, 1, 1, 1, 2, 2, 2],
        [
            [0, 0, 10, 19],  # P, IoU 0.95
            [101, 0, 111, 20],  # the static person, IoU 0.82: ignored
            [200, 0, 210, 20],  # the conf-0 pedestrian: a false positive
            [300, 0, 310, 20],  # the bicycle: a false positive
            [0, 0, 10, 8],  # P again, IoU 0.4 (and P is taken): a false positive
            [500, 0, 510, 20],  # nothing
            [5, 0, 15, 20],  # P moved by 3 px: IoU 7/13 = 0.54 >= 0.5
            [400, 0, 410, 20],  # class 6
            [2.1, 0, 12, 20],  # P, IoU 0.99: Hungarian gives P to this one, not the first
        ],
    )
    labels = label_detections(detections, gt)
    assert labels.has_class_column
    assert labels.ids.tolist() == [1, IGNORED, -1, -1, -1, -1, -1, -1, 1]
    assert (labels.matched, labels.false_positives, labels.ignored) == (2, 6, 1)
    mot20 = label_detections(detections, gt, mot20=True)
    assert mot20.ids.tolist() == [1, IGNORED, -1, -1, -1, -1, -1, IGNORED, 1]


def test_a_distractor_takes_its_detection_first_as_trackeval_does() -> None:
    # B overlaps the pedestrian (IoU 0.6) but the distractor more (0.8); A takes the pedestrian.
    gt = _gt_table([(1, 1, 0, 0, 10, 10, 1, 1), (1, 2, 4, 0, 14, 10, 0, 8)])
    detections = _dets([1, 1], [[0, 0, 10, 10], [3.5, 0, 13.5, 10]])
    assert label_detections(detections, gt).ids.tolist() == [1, IGNORED]
    # Without the distractor row, B is simply a second box on the pedestrian: a false positive.
    alone = _gt_table([(1, 1, 0, 0, 10, 10, 1, 1)])
    assert label_detections(detections, alone).ids.tolist() == [1, -1]


def test_mot15_gt_has_no_distractors_and_drops_conf_zero_rows() -> None:
    gt = MotTable.from_arrays(
        frames=np.array([1, 1]),
        boxes_xyxy=np.array([[0.0, 0, 10, 20], [50, 0, 60, 20]]),
        scores=np.array([1.0, 0.0]),
        ids=np.array([7, 8]),
    )
    detections = _dets([1, 1, 2], [[0, 0, 10, 20], [50, 0, 60, 20], [0, 0, 10, 20]])
    labels = label_detections(detections, gt)
    assert not labels.has_class_column
    assert labels.ids.tolist() == [7, -1, -1]


def _det_root(folder: Path, num_frames: int = 40, distractor: str | None = None) -> Path:
    """A ROOT of two synthetic scenes whose det files hold the true boxes (and one false
    positive per frame in a corner), so IoU matching must give back the true identities.

    ``distractor="class"`` writes the gt with a class column and marks identity 1 of each
    scene a static person (class 7, conf 0); ``"dropped"`` removes its gt rows instead; its
    detections stay in the det file either way.
    """
    from emtrack.synth import SceneConfig, generate_scene

    config = SceneConfig(
        num_frames=num_frames, image_width=640, image_height=480, frame_rate=10.0, mean_objects=6
    )
    for seed in (3, 4):
        scene = generate_scene(config, seed)
        gt = scene.gt
        seq = folder / scene.seqinfo.name
        frames = np.arange(1, num_frames + 1)
        corner = np.tile([[0.0, 0.0, 4.0, 4.0]], (num_frames, 1))
        detections = MotTable.from_arrays(
            frames=np.concatenate([gt.frames, frames]),
            boxes_xyxy=np.concatenate([gt.boxes_xyxy, corner]),
            scores=np.full(len(gt) + num_frames, 0.9),
        )
        write_mot(seq / "det" / "det.txt", detections)
        first = gt.ids == gt.ids.min()
        if distractor == "dropped":
            gt = gt.select(~first)
        if distractor is None or distractor == "dropped":
            write_mot(seq / "gt" / "gt.txt", gt)
        else:
            xywh = np.column_stack(
                [gt.boxes_xyxy[:, :2], gt.boxes_xyxy[:, 2:] - gt.boxes_xyxy[:, :2]]
            )
            lines = [
                f"{f},{i},{x:.3f},{y:.3f},{w:.3f},{h:.3f},{0 if d else 1},{7 if d else 1},1"
                for f, i, (x, y, w, h), d in zip(gt.frames, gt.ids, xywh, first, strict=True)
            ]
            (seq / "gt").mkdir(parents=True, exist_ok=True)
            (seq / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
        (seq / "seqinfo.ini").write_text(SEQINFO.format(name=seq.name, length=num_frames))
    return folder


def test_det_rows_score_real_detection_files_with_the_gt_identities(tmp_path: Path) -> None:
    from emtrack.io import find_sequences, read_seqinfo
    from emtrack.synth import Scene
    from emtrack.train.heldout import evaluate_accuracy, heldout_labelled_clips

    root = _det_root(tmp_path / "det-root")
    report = run_accuracy_bench(None, scenes=1, clips=6, gaps=(1, 3), seed=2, det_roots=[root])
    det_rows = [row for row in report.rows if row.group == "det"]
    assert [(row.value, row.root, row.scenes) for row in det_rows] == [
        (1.0, str(root), 2),
        (3.0, str(root), 2),
    ]
    labels = report.settings["det_labels"]
    assert len(labels) == 1 and labels[0]["ignored"] == 0
    assert labels[0]["false_positives"] == 2 * 40  # the corner boxes, and nothing else
    assert labels[0]["matched"] + labels[0]["false_positives"] == labels[0]["detections"]

    # The identities IoU matching found are the true ones, so the rows are the accuracies of
    # the same clips labelled with the truth (training's held-out scoring).
    weights = load_model(None)
    config = TrainConfig(clip_length=10, seed=2)
    net, noise = torch_modules(weights)
    net, noise = net.to(config.dtype), noise.to(config.dtype)
    scenes = []
    for paths in find_sequences(root):
        detections, gt = read_mot(paths.det), read_mot(paths.gt)
        # The true identity of a detection: the gt row of its frame with the same box.
        same = (detections.frames[:, None] == gt.frames[None]) & np.all(
            np.abs(detections.boxes_xyxy[:, None] - gt.boxes_xyxy[None]) < 1e-2, axis=-1
        )
        truth = np.where(same.any(1), gt.ids[same.argmax(1)], -1)
        scenes.append(
            Scene(dataclasses.replace(detections, ids=truth), gt, read_seqinfo(paths.seqinfo))
        )
    for row in det_rows:
        clips = heldout_labelled_clips(scenes, config, 6, int(row.value))
        expected = evaluate_accuracy(net, noise, clips, config)
        assert row.network == pytest.approx(expected["accuracy"])
        assert row.iou == pytest.approx(expected["iou_accuracy"])
        assert row.oracle == pytest.approx(expected["oracle_accuracy"])
        assert row.detections == int(clips.batch.mask[:, 1:].sum())
    assert "real detections of" in report.format_table()
    assert "0.0 % on distractors" in report.format_table()


def test_detections_on_distractors_are_linked_but_not_scored(tmp_path: Path) -> None:
    marked = _det_root(tmp_path / "marked", distractor="class")
    dropped = _det_root(tmp_path / "dropped", distractor="dropped")
    kwargs = {"scenes": 1, "clips": 6, "gaps": (1,), "seed": 2}
    with_class = run_accuracy_bench(None, det_roots=[marked], **kwargs)
    without = run_accuracy_bench(None, det_roots=[dropped], **kwargs)
    ignored = with_class.settings["det_labels"][0]["ignored"]
    assert ignored > 0 and without.settings["det_labels"][0]["ignored"] == 0
    # Same det files, so the same clips: the distractor's detections (false positives where
    # its gt rows are gone) are left out of the score, not out of the clips.
    row, other = with_class.rows[-1], without.rows[-1]
    assert row.group == other.group == "det"
    assert 0 < row.detections < other.detections
    assert "% on distractors (not scored)" in with_class.format_table()


def test_bad_det_roots_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(EmtrackInputError, match="not found"):
        run_accuracy_bench(None, scenes=1, clips=2, det_roots=[tmp_path / "missing"])
    short = _det_root(tmp_path / "short", num_frames=6)
    with pytest.raises(EmtrackInputError, match="more than 9 frames"):
        run_accuracy_bench(None, scenes=1, clips=2, gaps=(1,), det_roots=[short])
    no_gt = _det_root(tmp_path / "no_gt")
    victim = sorted(no_gt.iterdir())[0]
    (victim / "gt" / "gt.txt").unlink()
    with pytest.raises(EmtrackInputError, match=r"no gt/gt\.txt") as error:
        run_accuracy_bench(None, scenes=1, clips=2, det_roots=[no_gt])
    assert str(victim) in str(error.value)
    with pytest.raises(EmtrackInputError, match=r"det_acf\.txt"):
        run_accuracy_bench(None, scenes=1, clips=2, det_roots=[short], det_name="det_acf.txt")


def test_cli_det_rows(tmp_path: Path, capsys) -> None:
    root = _det_root(tmp_path / "det-root")
    out = tmp_path / "acc.json"
    argv = ["bench", "accuracy", "--scenes", "1", "--clips", "3", "--det", str(root)]
    assert main([*argv, "--det-name", "det.txt", "--json", str(out)]) == 0
    assert f"real detections of {root}" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert {row["group"] for row in data["rows"]} == {"gap", "fps", "det"}
    assert data["settings"]["det_roots"] == [str(root)]
    assert data["settings"]["det_labels"][0]["root"] == str(root)
    assert main(["bench", "accuracy", "--det", str(tmp_path / "missing")]) == 2


def test_labels_of_real_detections(shared_data: Path) -> None:
    """Most evaluated gt boxes of TUD-Campus (MOT15) and of a KITTI-car sequence (class
    column with DontCare/Van distractors) get a detection of the detectors' files."""
    for seq in (shared_data / "MOT15" / "TUD-Campus", shared_data / "KITTI-car" / "KITTI-car-0000"):
        detections, gt = read_mot(seq / "det" / "det.txt"), read_mot(seq / "gt" / "gt.txt")
        labels = label_detections(detections, gt)
        assert labels.has_class_column == ("KITTI" in seq.name)
        evaluated = (gt.scores != 0) & np.isin(gt.classes, (1, -1))
        assert labels.matched > 0.6 * evaluated.sum()
        assert labels.matched + labels.false_positives + labels.ignored == len(detections)
        assert set(labels.ids[labels.ids >= 0].tolist()) <= set(gt.ids.tolist())
        if labels.has_class_column:
            assert labels.ignored > 0
