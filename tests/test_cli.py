"""The ``emtrack`` command line, run in-process through ``main([...])`` (plus two subprocesses).

Checks: every ``--help`` exits 0; bad input exits 2 with one ``emtrack: error:`` line that names
the file (and line) and writes nothing; ``track`` (file and folder mode), ``eval``, ``train``,
``bench track`` and ``demo`` produce what they promise; options map one-to-one onto config
fields, and no options give the config defaults (``TrackerConfig()``, ``TrainConfig()``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emtrack.cli import (
    build_parser,
    main,
    options,
    tracker_config_from_args,
    train_config_from_args,
)
from emtrack.io import MotTable, read_mot, write_mot
from sequences import SEQINFO, write_sequence

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "eval"
HAS_TRACKERS = importlib.util.find_spec("trackers") is not None


@pytest.fixture(scope="module")
def model_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tracker weights of a fresh (seeded, untrained) network: tests need a file, not skill."""
    import torch

    from emtrack.model.network import AssociationNet, NoiseModel
    from emtrack.track import AssociationWeights

    torch.manual_seed(0)
    weights = AssociationWeights.from_arrays({**AssociationNet().export(), **NoiseModel().export()})
    path = tmp_path_factory.mktemp("model") / "weights.npz"
    np.savez(path, **weights.to_arrays())
    return path


def one_error_line(stderr: str, only: bool = True) -> str:
    """The ``emtrack: error:`` line that ends ``stderr``.

    Fails on a traceback, on more than one error line, or (``only``) on any other line.
    """
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr, stderr
    assert lines and lines[-1].startswith("emtrack: error: "), stderr
    assert sum(line.startswith("emtrack: error:") for line in lines) == 1, stderr
    if only:
        assert len(lines) == 1, stderr
    return lines[-1]


# --------------------------------------------------------------------------------------------
# Help and usage
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["train", "--help"],
        ["track", "--help"],
        ["eval", "--help"],
        ["bench", "--help"],
        ["bench", "track", "--help"],
        ["demo", "--help"],
    ],
)
def test_help_exits_zero(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("usage: emtrack")


def test_help_shows_config_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    from emtrack.track import TrackerConfig

    assert main(["track", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"(default: {TrackerConfig().high_score})" in out


def test_track_help_lists_the_input_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["track", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for flag in ("--strict", "--class-agnostic", "--timestamps FILE", "frame,seconds"):
        assert flag in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["no-such-command"],
        ["track"],  # --det and --out are required
        ["train", "--out", "x.pt", "--objective", "nonsense"],
        ["track", "--det", "d.txt", "--out", "o.txt", "--min-hits", "two"],
        ["bench"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: emtrack" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from emtrack import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"emtrack {__version__}"


def test_console_script_and_python_m() -> None:
    script = Path(sys.executable).parent / "emtrack"
    commands = [[sys.executable, "-m", "emtrack", "--help"]]
    if script.exists():
        commands.append([str(script), "--help"])
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("usage: emtrack"), done.stdout


def test_subprocess_error_has_no_traceback(tmp_path: Path) -> None:
    det = tmp_path / "det.txt"
    det.write_text("1,-1,1,2,3,4,0.9\n")
    done = subprocess.run(
        [sys.executable, "-m", "emtrack", "track", "--det", str(det), "--out", "r.txt"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "seqinfo.ini" in one_error_line(done.stderr)
    assert not (tmp_path / "r.txt").exists()


# --------------------------------------------------------------------------------------------
# Options map onto config fields
# --------------------------------------------------------------------------------------------


def test_choices_match_the_library() -> None:
    """The choices the CLI copies (to build its parser without importing the tracker).

    The training options' choices are read from TrainConfig's Literal types, not copied.
    """
    from emtrack.eval import BENCHMARKS
    from emtrack.track import (
        ASSOCIATIONS as TRACK_ASSOCIATIONS,
    )
    from emtrack.track import (
        CAMERA_MODELS,
        MEASUREMENT_NOISES,
        NOISES,
        OUTPUT_BOXES,
        SCORE_NORMALISATIONS,
    )

    assert tuple(BENCHMARKS) == options.BENCHMARKS
    assert tuple(SCORE_NORMALISATIONS) == options.SCORE_NORMALISATIONS
    assert tuple(OUTPUT_BOXES) == options.OUTPUT_BOXES
    assert tuple(MEASUREMENT_NOISES) == options.MEASUREMENT_NOISES
    assert tuple(TRACK_ASSOCIATIONS) == options.TRACK_ASSOCIATIONS
    assert tuple(CAMERA_MODELS) == options.CAMERA_MODELS
    assert tuple(NOISES) == options.NOISES


@pytest.mark.parametrize(
    "command", [["track", "--det", "d", "--out", "o"], ["bench", "track", "r"]]
)
def test_no_tracker_flags_build_the_default_config(command: list[str]) -> None:
    from emtrack.track import TrackerConfig

    args = build_parser().parse_args(command)
    assert tracker_config_from_args(args) == TrackerConfig()


def test_no_train_flags_build_the_default_config() -> None:
    from emtrack.train import TrainConfig

    args = build_parser().parse_args(["train", "--out", "x.pt"])
    assert train_config_from_args(args) == TrainConfig()


def test_every_config_field_has_exactly_one_flag() -> None:
    from emtrack.track import TrackerConfig
    from emtrack.train import TrainConfig

    for flags, config in [
        (options.TRACKER_FLAGS, TrackerConfig),
        (options.TRAIN_FLAGS, TrainConfig),
    ]:
        mapped = [flag.field for flag in flags]
        assert sorted(mapped) == sorted(f.name for f in dataclasses.fields(config))
        assert len({flag.option for flag in flags}) == len(flags)


def _other_value(flag: options.ConfigFlag, default: object) -> tuple[list[str], object]:
    """Command-line words that set ``flag`` to a valid non-default value, and that value."""
    if flag.const is not None:
        return [flag.option], flag.const
    if flag.choices:
        value = next(choice for choice in flag.choices if choice != default)
        return [flag.option, value], value
    if isinstance(default, bool):
        raise AssertionError(f"{flag.option}: a bool field needs a switch")
    if isinstance(default, tuple):
        return [flag.option, "8,4"], (8, 4)
    if isinstance(default, int):
        return [flag.option, str(default + 1)], default + 1
    if isinstance(default, float):
        value = default + 0.25
        return [flag.option, repr(value)], value
    if default is None and flag.type is int:  # an optional override (e.g. --max-gap-fill)
        return [flag.option, "7"], 7
    return [flag.option, "cpu"], "cpu"


def test_each_tracker_flag_sets_its_own_field() -> None:
    from emtrack.track import TrackerConfig

    defaults = TrackerConfig()
    for flag in options.TRACKER_FLAGS:
        words, value = _other_value(flag, getattr(defaults, flag.field))
        args = build_parser().parse_args(["track", "--det", "d", "--out", "o", *words])
        expected = dataclasses.replace(defaults, **{flag.field: value})
        assert tracker_config_from_args(args) == expected, flag.option


def test_each_train_flag_sets_its_own_field() -> None:
    from emtrack.train import TrainConfig

    defaults = TrainConfig()
    for flag in options.TRAIN_FLAGS:
        words, value = _other_value(flag, getattr(defaults, flag.field))
        args = build_parser().parse_args(["train", "--out", "x.pt", *words])
        expected = dataclasses.replace(defaults, **{flag.field: value})
        assert train_config_from_args(args) == expected, flag.option


def test_invalid_config_value_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    det = write_sequence(tmp_path, "SEQ")
    out = tmp_path / "out.txt"
    argv = ["track", "--det", str(det), "--out", str(out), "--min-hits", "0"]
    assert main(argv) == 2
    assert "min_hits" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# track
# --------------------------------------------------------------------------------------------


def test_track_bad_field_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    det = write_sequence(tmp_path, "SEQ")
    lines = det.read_text().splitlines()
    lines[2] = lines[2].replace(",0.9,", ",high,")
    det.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.txt"
    assert main(["track", "--det", str(det), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert f"{det}:3: " in one_error_line(captured.err)
    assert captured.out == ""
    assert not out.exists()


def test_track_missing_det_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    det = tmp_path / "SEQ" / "det" / "det.txt"
    out = tmp_path / "out.txt"
    assert main(["track", "--det", str(det), "--out", str(out)]) == 2
    assert str(det) in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_track_seqinfo_without_seq_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    det = write_sequence(tmp_path, "SEQ")
    seqinfo = tmp_path / "SEQ" / "seqinfo.ini"
    seqinfo.write_text("[Sequence]\nname=SEQ\nframeRate=10\n")
    out = tmp_path / "out.txt"
    assert main(["track", "--det", str(det), "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(seqinfo) in line and "seqLength" in line
    assert not out.exists()


def test_track_folder_with_one_bad_sequence_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sequence(tmp_path / "data", "A")
    bad = write_sequence(tmp_path / "data", "B")
    bad.write_text(bad.read_text() + "11,-1,1,2,3\n")
    out = tmp_path / "results"
    assert main(["track", "--det", str(tmp_path / "data"), "--out", f"{out}/"]) == 2
    assert f"{bad}:21: " in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_track_file_writes_readable_result(
    tmp_path: Path, model_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    det = write_sequence(tmp_path, "SEQ")
    out = tmp_path / "out" / "SEQ.txt"
    assert main(["track", "--det", str(det), "--out", str(out), "--model", str(model_npz)]) == 0
    result = read_mot(out)
    assert np.all(result.ids >= 1)
    assert result.num_frames <= 10
    assert "SEQ: 10 frames" in capsys.readouterr().err


def test_track_output_boxes_option(tmp_path: Path) -> None:
    """Online results carry the tracks' estimates by default, the detections' boxes on request."""
    det = write_sequence(tmp_path, "SEQ")
    runs = {}
    for choice in ("filtered", "detections"):
        out = tmp_path / f"{choice}.txt"
        assert (
            main(["-q", "track", "--det", str(det), "--out", str(out), "--output-boxes", choice])
            == 0
        )
        runs[choice] = read_mot(out)
    filtered, detections = runs["filtered"], runs["detections"]
    assert len(detections) > 0
    np.testing.assert_array_equal(filtered.frames, detections.frames)
    np.testing.assert_array_equal(filtered.ids, detections.ids)
    given = read_mot(det)
    given_boxes = {
        (f, *b) for f, b in zip(given.frames.tolist(), given.boxes_xyxy.tolist(), strict=True)
    }
    assert all(
        (f, *b) in given_boxes
        for f, b in zip(detections.frames.tolist(), detections.boxes_xyxy.tolist(), strict=True)
    )
    assert not np.array_equal(filtered.boxes_xyxy, detections.boxes_xyxy)
    assert (
        main(
            ["track", "--det", str(det), "--out", str(tmp_path / "x.txt"), "--output-boxes", "raw"]
        )
        == 2
    )


def test_track_explicit_seqinfo_and_quiet(
    tmp_path: Path, model_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    det = write_sequence(tmp_path, "SEQ")
    elsewhere = tmp_path / "elsewhere.txt"
    shutil.copy(det, elsewhere)
    argv = [
        "-q",
        "track",
        "--det",
        str(elsewhere),
        "--seqinfo",
        str(tmp_path / "SEQ" / "seqinfo.ini"),
        "--out",
        str(tmp_path / "out.txt"),
        "--model",
        str(model_npz),
    ]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""
    read_mot(tmp_path / "out.txt")


def test_track_unwritable_output_is_one_line_exit_1(
    tmp_path: Path, model_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    det = write_sequence(tmp_path, "SEQ")
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "r.txt"  # its parent is a file
    assert main(["track", "--det", str(det), "--out", str(out), "--model", str(model_npz)]) == 1
    assert "a-file" in one_error_line(capsys.readouterr().err)


def test_track_folder_writes_one_file_per_sequence(
    tmp_path: Path, model_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("A", "B", "C"):
        write_sequence(tmp_path / "data", name)
    (tmp_path / "data" / "not-a-sequence").mkdir()
    out = tmp_path / "results"
    argv = ["track", "--det", str(tmp_path / "data"), "--out", f"{out}/", "--model", str(model_npz)]
    assert main([*argv, "--offline"]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["A.txt", "B.txt", "C.txt"]
    for path in out.iterdir():
        read_mot(path)


def test_track_folder_rejects_seqinfo_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sequence(tmp_path / "data", "A")
    argv = ["track", "--det", str(tmp_path / "data"), "--out", f"{tmp_path}/r/"]
    assert main([*argv, "--seqinfo", str(tmp_path / "data" / "A" / "seqinfo.ini")]) == 2
    assert "--seqinfo" in one_error_line(capsys.readouterr().err)


def test_track_frame_rate_replaces_or_stands_in_for_seqinfo(
    tmp_path: Path, model_npz: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import emtrack.track.run as run_module

    det = write_sequence(tmp_path / "data", "A")  # seqinfo.ini: 10 fps, 10 frames
    write_sequence(tmp_path / "data", "B")
    (tmp_path / "data" / "B" / "seqinfo.ini").unlink()
    model = ["--model", str(model_npz)]

    # A det file without seqinfo.ini: --frame-rate and its last frame (10) stand in for it.
    alone = tmp_path / "alone.txt"
    shutil.copy(det, alone)
    assert main(["track", "--det", str(alone), "--out", str(tmp_path / "x.txt"), *model]) == 2
    assert "--frame-rate" in one_error_line(capsys.readouterr().err)
    with_ini = tmp_path / "with_ini.txt"
    assert main(["track", "--det", str(det), "--out", str(with_ini), *model]) == 0
    argv = ["track", "--det", str(alone), "--out", str(tmp_path / "alone_out.txt"), *model]
    assert main([*argv, "--frame-rate", "10"]) == 0
    assert (tmp_path / "alone_out.txt").read_bytes() == with_ini.read_bytes()

    # A folder: B has no seqinfo.ini, so it needs --frame-rate; with it, A and B alike.
    folder = ["track", "--det", str(tmp_path / "data"), "--out", f"{tmp_path}/r/", *model]
    capsys.readouterr()
    assert main(folder) == 2
    err = one_error_line(capsys.readouterr().err)
    assert "B" in err and "--frame-rate" in err
    assert not (tmp_path / "r").exists()
    seen: list[tuple[str, float, int]] = []
    real = run_module.track_sequences

    def spy(items, **kwargs):
        items = list(items)
        seen.extend((info.name, info.frame_rate, info.seq_length) for _, info in items)
        return real(items, **kwargs)

    monkeypatch.setattr(run_module, "track_sequences", spy)
    assert main([*folder, "--frame-rate", "2.5"]) == 0
    assert sorted(seen) == [("A", 2.5, 10), ("B", 2.5, 10)]  # A's seqinfo.ini says 10 fps
    assert (tmp_path / "r" / "A.txt").read_bytes() == (tmp_path / "r" / "B.txt").read_bytes()

    capsys.readouterr()
    for bad in ("0", "-1", "nan", "inf", "fast"):
        assert main([*folder, "--frame-rate", bad]) == 2
        assert "--frame-rate" in capsys.readouterr().err


def test_track_kitti_det_file_with_a_zero_width_box_tracks_with_a_warning(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Done when: a real KITTI det file with one box clipped to zero width (line 614) is tracked
    with one warning naming the line, as if the row were not there; --strict refuses it."""
    source = shared_data / "KITTI-car" / "KITTI-car-0000"
    seq = tmp_path / "KITTI-car-0000"
    (seq / "det").mkdir(parents=True)
    shutil.copy(source / "seqinfo.ini", seq / "seqinfo.ini")
    lines = (source / "det" / "det.txt").read_text().splitlines()
    fields = lines[613].split(",")
    fields[4] = "0.00"  # width: the box clipped at the image border
    det = seq / "det" / "det.txt"
    det.write_text("\n".join([*lines[:613], ",".join(fields), *lines[614:]]) + "\n")
    without = tmp_path / "without" / "det" / "det.txt"
    without.parent.mkdir(parents=True)
    without.write_text("\n".join([*lines[:613], *lines[614:]]) + "\n")
    shutil.copy(source / "seqinfo.ini", without.parent.parent / "seqinfo.ini")

    out = tmp_path / "out.txt"
    assert main(["track", "--det", str(det), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("emtrack: warning:")]
    assert warnings == [
        f"emtrack: warning: {det}:614: skipped 1 degenerate row (zero width or height, or "
        "entirely outside the 1242x375 image); the first is line 614 (strict / --strict makes "
        "them an error)"
    ]
    assert "Traceback" not in err and "emtrack: error" not in err
    reference = tmp_path / "reference.txt"
    assert main(["track", "--det", str(without), "--out", str(reference)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert out.read_bytes() == reference.read_bytes()
    assert len(read_mot(out)) > 300

    strict_out = tmp_path / "strict.txt"
    assert main(["track", "--det", str(det), "--out", str(strict_out), "--strict"]) == 2
    message = one_error_line(capsys.readouterr().err)
    assert message.startswith(f"emtrack: error: {det}:614: width w (column 5) must be > 0")
    assert not strict_out.exists()


def _two_class_det(path: Path) -> None:
    """The two walkers of ``write_sequence`` twice, as classes 1 and 2, with a header."""
    table = read_mot(path)
    xywh = np.column_stack(
        [table.boxes_xyxy[:, :2], table.boxes_xyxy[:, 2:] - table.boxes_xyxy[:, :2]]
    )
    rows = ["frame id x y w h score class"]
    for class_id in (1, 2):
        rows += [
            f"{f} -1 {x:.3f} {y:.3f} {w:.3f} {h:.3f} 0.9 {class_id}"
            for f, (x, y, w, h) in zip(table.frames.tolist(), xywh.tolist(), strict=True)
        ]
    path.write_text("\n".join(rows) + "\n")


def test_track_class_column_per_class_and_class_agnostic(tmp_path: Path) -> None:
    """Two classes on the same boxes: per class each gets the tracks of the boxes alone (ids
    unique across classes, the class in column 8); --class-agnostic tracks the rows as if they
    had no class column."""
    det = write_sequence(tmp_path, "SEQ")
    alone = tmp_path / "alone.txt"
    model: list[str] = []  # the shipped model: these walkers need real association
    assert main(["track", "--det", str(det), "--out", str(alone), *model]) == 0
    _two_class_det(det)
    out, agnostic = tmp_path / "out.txt", tmp_path / "agnostic.txt"
    assert main(["track", "--det", str(det), "--out", str(out), *model]) == 0
    assert (
        main(["track", "--det", str(det), "--out", str(agnostic), "--class-agnostic", *model]) == 0
    )
    result, single = read_mot(out), read_mot(alone)
    assert out.read_text().splitlines()[0].count(",") == 8  # 9 columns: class in column 8
    for class_id in (1, 2):
        mine = result.select(result.classes == class_id)
        np.testing.assert_array_equal(mine.frames, single.frames)
        np.testing.assert_allclose(mine.boxes_xyxy, single.boxes_xyxy, atol=1e-3)
        assert len(set(mine.ids.tolist())) == len(set(single.ids.tolist())) == 2
    ids = [set(result.ids[result.classes == c].tolist()) for c in (1, 2)]
    assert not ids[0] & ids[1]
    mixed = read_mot(agnostic)
    assert set(mixed.classes.tolist()) == {1, 2}
    classless = tmp_path / "classless.txt"
    classless.write_text(
        "\n".join(line.rsplit(" ", 1)[0] for line in det.read_text().splitlines()) + "\n"
    )
    reference = tmp_path / "reference.txt"
    assert (
        main(["track", "--det", str(classless), "--out", str(reference), "--frame-rate", "10"]) == 0
    )
    expected = read_mot(reference)
    np.testing.assert_array_equal(mixed.frames, expected.frames)
    np.testing.assert_array_equal(mixed.ids, expected.ids)
    np.testing.assert_array_equal(mixed.boxes_xyxy, expected.boxes_xyxy)


def test_track_timestamps_file_and_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Frames 1-5 at 0.0-0.4 s, frames 6-10 at 5.0-5.4 s: with the timestamps the walkers are
    lost in the 4.6 s between (4 tracks), without them they are not (2 tracks); frames not
    listed are dropped; bad timestamps are one error line."""
    model: list[str] = []  # the shipped model: these walkers need real association
    det = write_sequence(tmp_path / "data", "A")
    write_sequence(tmp_path / "data", "B")
    times = tmp_path / "times"
    times.mkdir()
    stamps = "frame,seconds\n" + "".join(
        f"{f},{(f - 1) * 0.1 + (4.6 if f > 5 else 0):.1f}\n" for f in range(1, 11)
    )
    (times / "A.txt").write_text(stamps)
    out, plain = tmp_path / "out.txt", tmp_path / "plain.txt"
    argv = ["track", "--det", str(det), *model]
    assert main([*argv, "--out", str(out), "--timestamps", str(times / "A.txt")]) == 0
    assert main([*argv, "--out", str(plain)]) == 0
    assert len(set(read_mot(out).ids.tolist())) == 4
    assert len(set(read_mot(plain).ids.tolist())) == 2
    # Dropped frames 4 and 5 (not listed, no detections): not tracked, nothing lost.
    lines = det.read_text().splitlines()
    det.write_text("\n".join(lines[:6] + lines[10:]) + "\n")
    (times / "A.txt").write_text(
        "".join(f"{f} {(f - 1) * 0.1:.1f}\n" for f in (1, 2, 3, 6, 7, 8, 9, 10))
    )
    assert main([*argv, "--out", str(out), "--timestamps", str(times / "A.txt")]) == 0
    result = read_mot(out)
    assert sorted(set(result.frames.tolist())) == [1, 2, 3, 6, 7, 8, 9, 10]
    assert len(set(result.ids.tolist())) == 2
    capsys.readouterr()

    # A folder of sequences: a folder of <seq>.txt timestamps, one per sequence.
    folder = ["track", "--det", str(tmp_path / "data"), "--out", f"{tmp_path / 'r'}/", *model]
    assert main([*folder, "--timestamps", str(times)]) == 2
    err = one_error_line(capsys.readouterr().err)
    assert f"{times / 'B.txt'}: no timestamps file for sequence B" in err
    (times / "B.txt").write_text(stamps)
    assert main([*folder, "--timestamps", str(times / "A.txt")]) == 2
    assert "--timestamps must be a folder" in one_error_line(capsys.readouterr().err)
    assert main([*folder, "--timestamps", str(times)]) == 0
    assert len(set(read_mot(tmp_path / "r" / "B.txt").ids.tolist())) == 4
    capsys.readouterr()

    # Bad timestamps: file and line; detections in a frame the timestamps do not list.
    bad = tmp_path / "bad.txt"
    for text, where, fragment in [
        ("1,0.0\n2,0.1\n2,0.2\n", f"{bad}:3: ", "frame 2 is listed twice"),
        ("1,0.0\n2,zero\n", f"{bad}:2: ", "seconds must be a finite number"),
        ("1,0.0\n2,0.1\n", f"{det}:", "detections in frame 3, which the timestamps"),
    ]:
        bad.write_text(text)
        assert main([*argv, "--out", str(tmp_path / "x.txt"), "--timestamps", str(bad)]) == 2
        err = one_error_line(capsys.readouterr().err)
        assert err.startswith(f"emtrack: error: {where}") and fragment in err, err
    assert not (tmp_path / "x.txt").exists()
    assert (
        main([*argv, "--out", str(tmp_path / "x.txt"), "--timestamps", str(tmp_path / "no")]) == 2
    )
    assert "file not found" in one_error_line(capsys.readouterr().err)


def test_track_default_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from emtrack.track import DEFAULT_MODEL_PATH

    if not DEFAULT_MODEL_PATH.is_file():
        pytest.skip(f"no shipped model at {DEFAULT_MODEL_PATH} yet")
    det = write_sequence(tmp_path, "SEQ")
    assert main(["track", "--det", str(det), "--out", str(tmp_path / "r.txt")]) == 0
    result = read_mot(tmp_path / "r.txt")
    # Two clean, well-separated tracks: the shipped model must keep them apart.
    assert len(set(result.ids.tolist())) == 2


# --------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "sequence", "result", "hota"),
    [("mot15", "TOY15", "perfect", "100.00"), ("mot17", "TOY17", "perfect", "100.00")],
)
def test_eval_prints_hota(
    style: str,
    sequence: str,
    result: str,
    hota: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(FIXTURES / "results" / f"{result}.txt", results / f"{sequence}.txt")
    json_path = tmp_path / "scores.json"
    argv = ["eval", "--gt", str(FIXTURES / style), "--results", str(results)]
    assert main([*argv, "--json", str(json_path)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:7] == ["Sequence", "HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW"]
    combined = next(line for line in out.splitlines() if line.startswith("COMBINED")).split()
    assert combined[1] == hota
    data = json.loads(json_path.read_text())
    assert data["combined"]["hota"] == pytest.approx(float(hota))
    assert list(data["per_sequence"]) == [sequence]


def test_eval_id_switch_matches_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from emtrack.eval import evaluate_folder

    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(FIXTURES / "results" / "id_switch.txt", results / "TOY15.txt")
    assert main(["eval", "--gt", str(FIXTURES / "mot15"), "--results", str(results)]) == 0
    expected = evaluate_folder(FIXTURES / "mot15", results).format_table()
    assert capsys.readouterr().out.strip() == expected


def test_eval_malformed_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(FIXTURES / "results" / "malformed.txt", results / "TOY15.txt")
    json_path = tmp_path / "scores.json"
    argv = ["eval", "--gt", str(FIXTURES / "mot15"), "--results", str(results)]
    assert main([*argv, "--json", str(json_path)]) == 2
    assert str(results / "TOY15.txt") in one_error_line(capsys.readouterr().err)
    assert not json_path.exists()


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_tiny_writes_checkpoint_and_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from emtrack.track import load_model

    checkpoint, weights = tmp_path / "run" / "model.pt", tmp_path / "model.npz"
    argv = [
        "train",
        "--synthetic",
        "2",
        "--synthetic-frames",
        "60",
        "--heldout-scenes",
        "1",
        "--heldout-clips",
        "4",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--batch-size",
        "4",
        "--out",
        str(checkpoint),
        "--export",
        str(weights),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("epoch 1/1  loss ")
    assert "accuracy" in out and "clips/s" in out
    assert checkpoint.is_file()
    load_model(weights)
    load_model(checkpoint)


def test_train_nothing_to_train_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.pt"
    assert main(["train", "--synthetic", "0", "--out", str(out)]) == 2
    assert "nothing to train on" in one_error_line(capsys.readouterr().err, only=False)
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# bench track
# --------------------------------------------------------------------------------------------


def _bench_roots(tmp_path: Path) -> tuple[Path, Path]:
    """A MOT15-layout ROOT (det files) and a gt-only ROOT, from short synthetic scenes."""
    from emtrack.synth import SceneConfig, generate_scene

    det_root, gt_root = tmp_path / "det-root", tmp_path / "gt-root"
    config = SceneConfig(
        num_frames=40, image_width=640, image_height=480, frame_rate=10.0, mean_objects=6.0
    )
    for root, seeds in ((det_root, (1, 2)), (gt_root, (3,))):
        for seed in seeds:
            scene = generate_scene(config, seed)
            seq = root / scene.seqinfo.name
            write_mot(seq / "gt" / "gt.txt", scene.gt)
            info = scene.seqinfo
            (seq / "seqinfo.ini").write_text(SEQINFO.format(name=info.name, length=info.seq_length))
            if root == det_root:
                dets = scene.detections
                stream = MotTable.from_arrays(dets.frames, dets.boxes_xyxy, dets.scores)
                write_mot(seq / "det" / "det.txt", stream)
    return det_root, gt_root


@pytest.mark.skipif(not HAS_TRACKERS, reason="needs the optional 'trackers' package")
def test_bench_track_two_layouts(
    tmp_path: Path, model_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    det_root, gt_root = _bench_roots(tmp_path)
    json_path, kept = tmp_path / "bench.json", tmp_path / "kept"
    argv = ["bench", "track", str(det_root), str(gt_root), "--model", str(model_npz)]
    argv += ["--trackers", "emtrack,emtrack-offline,sort,bytetrack"]
    argv += ["--json", str(json_path), "--results-dir", str(kept), "--seed", "5", "--repeat", "2"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "DetectionNoiseConfig(" in captured.err  # the noise model used is printed
    out = captured.out
    assert out.count("tracker") == 2 and "vs bytetrack" in out
    for name in ("emtrack-offline", "sort", "bytetrack"):
        assert out.count(f"\n{name} ") == 2, out

    data = json.loads(json_path.read_text())
    assert {"versions", "machine", "git", "rows", "settings"} <= set(data)
    assert {"python", "numpy", "torch", "trackers", "trackeval"} <= set(data["versions"])
    assert data["machine"]["cpu_count"] >= 1
    assert len(data["rows"]) == 8
    reference = [row for row in data["rows"] if row["tracker"] == "bytetrack"]
    assert all(row["fps_vs_bytetrack"] == pytest.approx(1.0) for row in reference)
    assert [root["layout"] for root in data["roots"]] == ["det", "gt-only"]

    # The derived stream carries no identities, and the same seed derives the same stream.
    derived = sorted(kept.glob("1-gt-root/det/*/det/det.txt"))
    assert len(derived) == 1
    assert np.all(read_mot(derived[0]).ids == -1)
    first = derived[0].read_text()
    again = tmp_path / "again"
    rerun = ["bench", "track", str(gt_root), "--trackers", "sort", "--seed", "5"]
    assert main([*rerun, "--results-dir", str(again)]) == 0
    assert next(again.glob("0-gt-root/det/*/det/det.txt")).read_text() == first


def test_bench_track_without_peers_package(
    tmp_path: Path, model_npz: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    find_spec = importlib.util.find_spec

    def no_trackers(name: str, *args: object) -> object:
        return None if name == "trackers" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", no_trackers)
    for name in [name for name in sys.modules if name.split(".")[0] == "boxmot"] + ["boxmot"]:
        monkeypatch.setitem(sys.modules, name, None)  # nor the optional boxmot peers
    det_root, _ = _bench_roots(tmp_path)
    assert main(["bench", "track", str(det_root), "--model", str(model_npz)]) == 0
    captured = capsys.readouterr()
    assert "peers skipped" in captured.err and "trackers" in captured.err
    assert "boxmot peers not run" in captured.err
    lines = captured.out.splitlines()[3:]
    rows = [line.split()[0] for line in lines if line.strip() and not line.startswith("(")]
    assert rows == ["emtrack", "emtrack-offline", "emtrack-iou", "emtrack-iou-offline"]


def test_bench_track_frame_stride(
    tmp_path: Path, model_npz: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from emtrack.io import read_seqinfo
    from emtrack.track import track_sequence

    det_root, gt_root = _bench_roots(tmp_path)
    kept, json_path = tmp_path / "kept", tmp_path / "bench.json"
    argv = ["bench", "track", str(det_root), str(gt_root), "--model", str(model_npz)]
    argv += ["--trackers", "emtrack", "--frame-stride", "2", "--seed", "4"]
    assert main([*argv, "--results-dir", str(kept), "--json", str(json_path)]) == 0
    assert capsys.readouterr().out.count("every 2nd frame (frame rate / 2)") == 2
    data = json.loads(json_path.read_text())
    assert data["settings"]["frame_stride"] == 2

    # Detections and gt keep frames 1, 3, 5, … renumbered 1, 2, 3, …; gt lines otherwise as is.
    seq = sorted(p for p in det_root.iterdir())[0]
    thinned_det = read_mot(next(kept.glob(f"0-det-root/det/{seq.name}/det/*.txt")))
    original = read_mot(seq / "det" / "det.txt")
    odd = original.select((original.frames % 2) == 1)
    np.testing.assert_array_equal(thinned_det.frames, (odd.frames + 1) // 2)
    np.testing.assert_allclose(thinned_det.boxes_xyxy, odd.boxes_xyxy, atol=1e-3)
    gt_lines = (seq / "gt" / "gt.txt").read_text().splitlines()
    expected = [
        f"{(int(line.split(',')[0]) + 1) // 2},{line.split(',', 1)[1]}"
        for line in gt_lines
        if int(line.split(",")[0]) % 2 == 1
    ]
    thinned_gt = next(kept.glob(f"0-det-root/det/{seq.name}/gt/*.txt"))
    assert thinned_gt.read_text().splitlines() == expected

    # emtrack saw the thinned stream at half the frame rate and 20 of the 40 frames.
    info = read_seqinfo(seq / "seqinfo.ini")
    half = dataclasses.replace(info, frame_rate=info.frame_rate / 2, seq_length=20)
    direct = track_sequence(thinned_det, half, model_npz).result
    result = read_mot(kept / "0-det-root" / "emtrack" / f"{seq.name}.txt")
    np.testing.assert_array_equal(result.frames, direct.frames)
    np.testing.assert_array_equal(result.ids, direct.ids)

    # A gt-only ROOT is derived at the full rate first (same seed), then thinned.
    full = tmp_path / "full"
    assert main(["bench", "track", str(gt_root), "--trackers", "emtrack", "--seed", "4",
                 "--model", str(model_npz), "--results-dir", str(full)]) == 0  # fmt: skip
    derived = read_mot(next(full.glob("0-gt-root/det/*/det/det.txt")))
    derived_odd = derived.select((derived.frames % 2) == 1)
    thinned = read_mot(next(kept.glob("1-gt-root/det/*/det/stride2.txt")))
    np.testing.assert_array_equal(thinned.frames, (derived_odd.frames + 1) // 2)
    np.testing.assert_allclose(thinned.boxes_xyxy, derived_odd.boxes_xyxy, atol=1e-3)

    capsys.readouterr()
    assert main(["bench", "track", str(det_root), "--frame-stride", "0"]) == 2
    assert "argument --frame-stride: must be >= 1" in capsys.readouterr().err
    from emtrack.bench.track_bench import run_track_bench
    from emtrack.errors import EmtrackInputError

    for bad in (0, 1.5, True):
        with pytest.raises(EmtrackInputError, match="frame_stride"):
            run_track_bench([det_root], trackers=("emtrack",), frame_stride=bad)


def test_bench_track_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "track", str(tmp_path / "missing")]) == 2
    assert str(tmp_path / "missing") in one_error_line(capsys.readouterr().err)
    (tmp_path / "empty").mkdir()
    assert main(["bench", "track", str(tmp_path / "empty")]) == 2
    one_error_line(capsys.readouterr().err)
    assert main(["bench", "track", str(tmp_path / "empty"), "--trackers", "sort,nope"]) == 2
    assert "nope" in one_error_line(capsys.readouterr().err)


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


def test_demo_with_model(model_npz: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--frames", "40", "--seed", "3", "--model", str(model_npz)]) == 0
    out = capsys.readouterr().out
    assert "HOTA" in out and "emtrack" in out
    if HAS_TRACKERS:
        assert "sort" in out


def test_demo_default_model(capsys: pytest.CaptureFixture[str]) -> None:
    from emtrack.track import DEFAULT_MODEL_PATH

    if not DEFAULT_MODEL_PATH.is_file():
        pytest.skip(f"no shipped model at {DEFAULT_MODEL_PATH} yet")
    assert main(["demo", "--frames", "60"]) == 0
    assert "HOTA" in capsys.readouterr().out
