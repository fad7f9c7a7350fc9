"""Reliability: every bad input gets one clear error (exit 2, file and line), unusual but valid
input works, and no writer ever leaves a half-written file.

CLI tests run ``emtrack.cli.main([...])`` in-process and check the exit status, the single
``emtrack: error:`` line (file, line number, problem), an empty stdout and that no output file
appeared. API tests check :class:`~emtrack.Tracker`, ``load_model`` and ``load_checkpoint``
directly. The atomic-write tests crash writers half-way (a failing ``os.replace`` or serializer,
and a ``SIGKILL`` of a writing process) and check that the old file survives.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emtrack import EmtrackInputError, Tracker
from emtrack.cli import main
from emtrack.io import MotTable, SeqInfo, atomic_write, read_mot, write_mot
from emtrack.track import load_model, track_sequence
from sequences import write_sequence


def error_line(stderr: str) -> str:
    """The one ``emtrack: error:`` line of ``stderr`` (fails on a traceback or extra lines)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("emtrack: error: "), stderr
    return lines[0]


def run_track(det: Path, out: Path, *extra: str) -> list[str]:
    return ["track", "--det", str(det), "--out", str(out), *extra]


# --------------------------------------------------------------------------------------------
# Bad rows in a det file: exit 2, "det.txt:LINE: problem", nothing written
# --------------------------------------------------------------------------------------------

GOOD_ROW = "3,-1,10,100,30,70,0.9,-1,-1,-1"
BAD_ROWS = [
    ("3,-1,10,100,30,70,abc,-1,-1,-1", "column 7 (conf) is not a number: 'abc'"),
    ("3,-1,10,100,30,70,,-1,-1,-1", "column 7 (conf) is empty"),
    ("3,-1,nan,100,30,70,0.9,-1,-1,-1", "column 3 (x) must be finite, got 'nan'"),
    ("3,-1,10,-inf,30,70,0.9,-1,-1,-1", "column 4 (y) must be finite"),
    ("3,-1,10,100,inf,70,0.9,-1,-1,-1", "column 5 (w) must be finite"),
    ("3,-1,10,100,30,70,NaN,-1,-1,-1", "column 7 (conf) must be finite"),
    ("3,-1,10,100,30,70,0.9,-1,-1,nan", "column 10 (Z) must be finite"),
    ("3,-1,10,100,-30,70,0.9,-1,-1,-1", "width w (column 5) must be > 0, got '-30'"),
    ("3,-1,10,100,30,-70,0.9,-1,-1,-1", "height h (column 6) must be > 0, got '-70'"),
    ("0,-1,10,100,30,70,0.9,-1,-1,-1", "frame (column 1) must be >= 1, got '0'"),
    ("-2,-1,10,100,30,70,0.9,-1,-1,-1", "frame (column 1) must be >= 1"),
    ("2.5,-1,10,100,30,70,0.9,-1,-1,-1", "frame (column 1) must be a whole number, got '2.5'"),
    ("1e300,-1,10,100,30,70,0.9,-1,-1,-1", "frame (column 1) must be a whole number"),
    ("3,1.5,10,100,30,70,0.9,-1,-1,-1", "id (column 2) must be a whole number"),
    ("3,-1,10,100,30,70", "too few columns: 6, need at least 7"),
    ("3 -1 10 100 30 70 0.9 -1 -1 -1", "too few columns: 1"),
    ("3;-1;10;100;30;70;0.9;-1;-1;-1", "too few columns: 1"),
    ("0x3,-1,10,100,30,70,0.9,-1,-1,-1", "column 1 (frame) is not a number: '0x3'"),
    ("3,-1,1_000,100,30,70,0.9,-1,-1,-1", "column 3 (x) is not a number: '1_000'"),
    ("3,-1,10,100,30,70,0.9,2.5,1", "class (column 8) must be a whole number"),
    ("\u0663,-1,10,100,30,70,0.9,-1,-1,-1", "non-ASCII character"),  # Arabic-Indic 3
    ("3,-1,10,100,30,70,0.9\u00a0,-1,-1,-1", "non-ASCII character '\\xa0'"),  # no-break space
]


@pytest.mark.parametrize("row, problem", BAD_ROWS, ids=[row for row, _ in BAD_ROWS])
def test_bad_det_row_is_one_error_line_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str, problem: str
) -> None:
    det = write_sequence(tmp_path)
    lines = det.read_text().splitlines()
    lines.insert(4, row)  # becomes line 5
    det.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out" / "result.txt"
    assert main(run_track(det, out)) == 2
    captured = capsys.readouterr()
    message = error_line(captured.err)
    assert message.startswith(f"emtrack: error: {det}:5: "), message
    assert problem in message
    assert captured.out == ""
    assert not out.exists() and not out.parent.exists()


@pytest.mark.parametrize(
    "payload, line, problem",
    [
        (b"1,-1,10,100,30,70,0.9,-1,-1,-1\n\x00\x00\x00\x01\n", 2, "binary data (NUL byte)"),
        (b"1,-1,10,100,30,70,0.9,-1,-1,-1\n2,-1,1\xff,1,1,1,1\n", 2, "not UTF-8 text (byte 0xff)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 3, "binary data (NUL byte)"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 1, "binary data (NUL byte)"),
        (b"\xca\xfe\xba\xbe garbage", 1, "not UTF-8 text"),
        (b"\xef\xbb\xbf1,-1,10,100,30,70,0.9\n\xe9t\xe9\n", 2, "not UTF-8 text (byte 0xe9)"),
        (b"1,-1,10,100,30,70,0.9\n2,-1,10,100,30,70,\xc3\xa9\n", 2, "non-ASCII character"),
    ],
    ids=["nul", "latin1", "png", "gzip", "random", "bom-then-latin1", "utf8-letter"],
)
def test_binary_or_garbage_det_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], payload: bytes, line: int, problem: str
) -> None:
    det = write_sequence(tmp_path)
    det.write_bytes(payload)
    out = tmp_path / "result.txt"
    assert main(run_track(det, out)) == 2
    message = error_line(capsys.readouterr().err)
    assert message.startswith(f"emtrack: error: {det}:{line}: "), message
    assert problem in message
    assert not out.exists()


def test_missing_unreadable_and_folder_det(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    det = write_sequence(tmp_path)
    out = tmp_path / "result.txt"
    missing = tmp_path / "nope" / "det" / "det.txt"
    assert main(run_track(missing, out)) == 2
    assert f"{missing}: det file not found" in error_line(capsys.readouterr().err)
    if os.geteuid() != 0:  # root reads files whatever their permission bits
        det.chmod(0)
        try:
            assert main(run_track(det, out)) == 2
            assert f"{det}: cannot read file" in error_line(capsys.readouterr().err)
        finally:
            det.chmod(0o644)
    assert not out.exists()
    with pytest.raises(EmtrackInputError, match="is a folder"):
        read_mot(det.parent)


def test_detections_beyond_seq_length_name_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error, not a warning: the det file and seqinfo.ini disagree; no row is dropped."""
    det = write_sequence(tmp_path, num_frames=4)
    lines = det.read_text().splitlines()
    lines[2] = lines[2].replace("2,", "7,", 1)  # line 3, frame 7 > seqLength 4
    det.write_text("\n".join(lines) + "\n")
    out = tmp_path / "result.txt"
    assert main(run_track(det, out)) == 2
    message = error_line(capsys.readouterr().err)
    seqinfo = det.parent.parent / "seqinfo.ini"
    assert message == (
        f"emtrack: error: {det}:3: detection in frame 7, beyond seqLength=4 of {seqinfo}"
    )
    assert not out.exists()
    # The API says the same, also for a table that has no file behind it.
    table = MotTable.from_arrays([1, 9], [[0, 0, 5, 5], [0, 0, 5, 5]])
    with pytest.raises(EmtrackInputError, match="frame 9, beyond seqLength=4"):
        track_sequence(table, SeqInfo("x", 10.0, 4))


# --------------------------------------------------------------------------------------------
# seqinfo.ini
# --------------------------------------------------------------------------------------------

BAD_SEQINFO = [
    ("[Sequence]\nname=SEQ\nframeRate=10\n", None, "missing key seqLength"),
    ("[Sequence]\nname=SEQ\nseqLength=10\n", None, "missing key frameRate"),
    ("[Sequence]\nframeRate=ten\nseqLength=10\n", 2, "frameRate is not a number: 'ten'"),
    ("[Sequence]\nframeRate=10\nseqLength=10.5\n", 3, "seqLength must be a whole number"),
    ("[Sequence]\nframeRate=10\nseqLength=0\n", 3, "seqLength must be > 0"),
    ("[Sequence]\nframeRate=-30\nseqLength=10\n", 2, "frameRate must be > 0"),
    ("[Sequence]\nframeRate=nan\nseqLength=10\n", 2, "frameRate must be > 0"),
    ("[Sequence]\nframeRate=10\nseqLength=10\nseqLength=11\n", 4, "given twice"),
    ("[Sequence]\nframeRate=10\nthis line has no value\n", 3, "expected 'key=value'"),
    ("[Other]\nframeRate=10\nseqLength=10\n", None, "no [Sequence] section"),
    ("", None, "no [Sequence] section"),
    ("[Sequence]\nframeRate=10\x00\n", 2, "binary data (NUL byte)"),
]


@pytest.mark.parametrize("text, line, problem", BAD_SEQINFO, ids=[p for _, _, p in BAD_SEQINFO])
def test_bad_seqinfo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int | None, problem: str
) -> None:
    det = write_sequence(tmp_path)
    seqinfo = det.parent.parent / "seqinfo.ini"
    seqinfo.write_text(text)
    out = tmp_path / "result.txt"
    assert main(run_track(det, out)) == 2
    message = error_line(capsys.readouterr().err)
    where = f"{seqinfo}:{line}: " if line is not None else f"{seqinfo}: "
    assert message.startswith(f"emtrack: error: {where}"), message
    assert problem in message
    assert not out.exists()


def test_missing_seqinfo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    det = write_sequence(tmp_path)
    (det.parent.parent / "seqinfo.ini").unlink()
    out = tmp_path / "result.txt"
    assert main(run_track(det, out)) == 2
    assert "no seqinfo.ini" in error_line(capsys.readouterr().err)
    given = tmp_path / "other.ini"
    assert main(run_track(det, out, "--seqinfo", str(given))) == 2
    assert f"{given}: file not found" in error_line(capsys.readouterr().err)
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# Model files and checkpoints: a clear error, never unpickled code
# --------------------------------------------------------------------------------------------


class _RunsCode:
    """A pickle that creates a file when unpickled (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def _weights_arrays() -> dict[str, np.ndarray]:
    return load_model().to_arrays()


def _bad_model(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A broken model file of the given kind, and a fragment of the expected message."""
    import torch

    from emtrack.model.checkpoint import CHECKPOINT_FORMAT

    if kind == "npz-garbage":
        path = tmp_path / "m.npz"
        path.write_bytes(b"this is not an archive")
        return path, "not an .npz archive"
    if kind == "npz-empty":
        path = tmp_path / "m.npz"
        path.write_bytes(b"")
        return path, "not an .npz archive"
    if kind == "npz-truncated":
        path = tmp_path / "m.npz"
        np.savez(path, **_weights_arrays())
        path.write_bytes(path.read_bytes()[:300])
        return path, "not a valid emtrack weights file"
    if kind == "npz-other-arrays":
        path = tmp_path / "m.npz"
        np.savez(path, a=np.zeros(3))
        return path, "do not match the feature set"
    if kind == "npz-nan":
        arrays = _weights_arrays()
        arrays["w1"] = arrays["w1"].copy()
        arrays["w1"][0, 0] = np.nan
        path = tmp_path / "m.npz"
        np.savez(path, **arrays)
        return path, "layer 1: w1 or b1 holds NaN or Inf"
    if kind == "npz-shapes":
        arrays = _weights_arrays()
        arrays["b1"] = arrays["b1"][:-1]
        path = tmp_path / "m.npz"
        np.savez(path, **arrays)
        return path, "do not follow a layer"
    if kind == "npz-negative-noise":
        arrays = _weights_arrays()
        arrays["noise_r"] = np.array(-1.0)
        path = tmp_path / "m.npz"
        np.savez(path, **arrays)
        return path, "noise_r must be > 0"
    if kind == "npz-objects":
        path = tmp_path / "m.npz"
        np.savez(path, w0=np.array([{"a": 1}], dtype=object))
        return path, "Object arrays cannot be loaded"
    if kind == "text-as-npz":
        path = tmp_path / "m.npz"
        path.write_text("1,-1,10,100,30,70,0.9,-1,-1,-1\n")
        return path, "not an .npz archive"
    if kind == "pt-garbage":
        path = tmp_path / "m.pt"
        path.write_bytes(b"hello world garbage")
        return path, "not a valid emtrack checkpoint"
    if kind == "pt-empty":
        path = tmp_path / "m.pt"
        path.write_bytes(b"")
        return path, "not a valid emtrack checkpoint"
    if kind == "pt-truncated":
        path = tmp_path / "m.pt"
        torch.save({"format": CHECKPOINT_FORMAT, "net": {"w": torch.zeros(100, 100)}}, path)
        path.write_bytes(path.read_bytes()[:2000])
        return path, "truncated, or not written by torch.save"
    if kind == "pt-code":
        path = tmp_path / "m.pt"
        with path.open("wb") as handle:
            pickle.dump(_RunsCode(tmp_path / "PWNED"), handle)
        return path, "refused"
    if kind == "pt-code-in-torch-zip":
        path = tmp_path / "m.pt"
        torch.save({"format": CHECKPOINT_FORMAT, "x": _RunsCode(tmp_path / "PWNED")}, path)
        return path, "refused"
    if kind == "pt-not-emtrack":
        path = tmp_path / "m.pt"
        torch.save({"weights": torch.zeros(3)}, path)
        return path, "not an emtrack checkpoint"
    if kind == "pt-missing-parts":
        path = tmp_path / "m.pt"
        torch.save({"format": CHECKPOINT_FORMAT, "config": {"hidden": [32, 32]}}, path)
        return path, "checkpoint does not match the model"
    if kind == "pt-bad-config":
        path = tmp_path / "m.pt"
        torch.save({"format": CHECKPOINT_FORMAT, "config": "nope", "net": {}}, path)
        return path, "checkpoint does not match the model"
    if kind == "folder":
        return tmp_path, "is a folder, expected a model file"
    if kind == "missing":
        return tmp_path / "none.npz", "model file not found"
    raise AssertionError(kind)


MODEL_KINDS = [
    "npz-garbage",
    "npz-empty",
    "npz-truncated",
    "npz-other-arrays",
    "npz-nan",
    "npz-shapes",
    "npz-negative-noise",
    "npz-objects",
    "text-as-npz",
    "pt-garbage",
    "pt-empty",
    "pt-truncated",
    "pt-code",
    "pt-code-in-torch-zip",
    "pt-not-emtrack",
    "pt-missing-parts",
    "pt-bad-config",
    "folder",
    "missing",
]


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_bad_model_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], one_torch_thread: None, kind: str
) -> None:
    model, problem = _bad_model(tmp_path, kind)
    det = write_sequence(tmp_path)
    out = tmp_path / "result.txt"
    assert main(run_track(det, out, "--model", str(model))) == 2
    message = error_line(capsys.readouterr().err)
    assert message.startswith(f"emtrack: error: {model}: "), message
    assert problem in message
    assert len(message) < 400  # one readable line, not torch's whole explanation
    assert not out.exists()
    assert not (tmp_path / "PWNED").exists()  # the pickled code never ran
    with pytest.raises(EmtrackInputError) as caught:  # the API gives the same message
        load_model(model)
    assert problem in str(caught.value) and caught.value.path == str(model)
    assert not (tmp_path / "PWNED").exists()


# --------------------------------------------------------------------------------------------
# Command-line arguments
# --------------------------------------------------------------------------------------------

# (argv after the placeholders are filled in, fragment of the error)
BAD_ARGUMENTS = [
    (["track", "--det", "{det}", "--out", "{out}", "--min-hits", "0"], "min_hits"),
    (["track", "--det", "{det}", "--out", "{out}", "--min-hits", "-1"], "min_hits"),
    (["track", "--det", "{det}", "--out", "{out}", "--min-hits", "two"], "argument --min-hits"),
    (["track", "--det", "{det}", "--out", "{out}", "--max-lost-s", "-1"], "durations"),
    (["track", "--det", "{det}", "--out", "{out}", "--max-gap-fill", "-3"], "durations"),
    (["track", "--det", "{det}", "--out", "{out}", "--max-gap-fill-s", "-0.5"], "durations"),
    (["track", "--det", "{det}", "--out", "{out}", "--max-gap-fill-s", "inf"], "max_gap_fill_s"),
    (["track", "--det", "{det}", "--out", "{out}", "--high-score", "nan"], "high_score"),
    (["track", "--det", "{det}", "--out", "{out}", "--low-score", "0.9"], "low_score"),
    (["track", "--det", "{missing}", "--out", "{out}"], "{missing}: det file not found"),
    (["track", "--det", "{det}", "--out", "{out}", "--model", "{missing}"], "{missing}"),
    (["track", "--det", "{det}", "--out", "{tmp}"], "is a folder, and --det is one det file"),
    (["track", "--det", "{empty}", "--out", "{out}"], "{empty}: no sequences found"),
    (["train", "--out", "{ckpt}", "--epochs", "0"], "epochs must be >= 1"),
    (["train", "--out", "{ckpt}", "--batch-size", "-4"], "batch_size must be >= 1"),
    (["train", "--out", "{ckpt}", "--steps-per-epoch", "0"], "steps_per_epoch"),
    (["train", "--out", "{ckpt}", "--lr", "0"], "learning_rate must be > 0"),
    (["train", "--out", "{ckpt}", "--hidden", "0"], "hidden widths must be >= 1"),
    (["train", "--out", "{ckpt}", "--clip-length", "1"], "clip_length must be >= 2"),
    (["train", "--out", "{ckpt}", "--synthetic", "-2"], "scene counts must be >= 0"),
    (["train", "--out", "{ckpt}", "--seed", "-1"], "argument --seed: must be >= 0"),
    (["train", "--out", "{ckpt}", "--det", "{missing}"], "{missing}"),
    (["train", "--out", "{tmp}"], "--out is a folder"),
    (["eval", "--gt", "{missing}", "--results", "{tmp}"], "{missing}: not a folder"),
    (["eval", "--gt", "{tmp}", "--results", "{missing}"], "{missing}: not a folder"),
    (["bench", "track", "{missing}"], "{missing}: benchmark ROOT not found"),
    (["bench", "track", "{tmp}", "--repeat", "0"], "repeats must be an integer >= 1"),
    (["bench", "track", "{tmp}", "--seed", "-1"], "argument --seed: must be >= 0"),
    (["bench", "memory", "--frames", "0"], "argument --frames: must be >= 1"),
    (["bench", "memory", "--frames", "10,-5"], "argument --frames: must be >= 1"),
    (["bench", "memory", "--frames", "many"], "argument --frames"),
    (["bench", "memory", "--objects", "0"], "argument --objects: must be >= 1"),
    (["bench", "memory", "--seed", "-3"], "argument --seed"),
    (["bench", "memory", "--frames", "5", "--model", "{missing}"], "{missing}"),
    (["demo", "--frames", "0"], "--frames must be at least 2"),
    (["demo", "--seed", "-1"], "--seed must be >= 0"),
]


@pytest.mark.parametrize(
    "argv, fragment", BAD_ARGUMENTS, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD_ARGUMENTS]
)
def test_bad_argument_exits_2_without_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    det = write_sequence(tmp_path)
    (tmp_path / "empty").mkdir()
    before = sorted(tmp_path.rglob("*"))
    fill = {
        "{det}": str(det),
        "{out}": str(tmp_path / "out" / "result.txt"),
        "{ckpt}": str(tmp_path / "out" / "model.pt"),
        "{missing}": str(tmp_path / "missing" / "file.txt"),
        "{empty}": str(tmp_path / "empty"),
        "{tmp}": str(tmp_path),
    }
    words = [fill.get(word, word) for word in argv]
    for placeholder, value in fill.items():
        fragment = fragment.replace(placeholder, value)
    assert main(words) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    last = captured.err.strip().splitlines()[-1]
    assert "error: " in last and fragment in last, captured.err
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, not even a folder


# --------------------------------------------------------------------------------------------
# Tracker.update and the Tracker constructor (API)
# --------------------------------------------------------------------------------------------

BAD_ARRAYS = [
    (np.zeros((3, 4)), "shape (N, 5)"),
    (np.zeros(5), "shape (N, 5)"),
    (np.zeros((2, 5, 1)), "shape (N, 5)"),
    (np.zeros((0, 4)), "shape (N, 5)"),
    (np.zeros((1, 0)), "shape (N, 5)"),
    (np.array([[0, 0, 10, 10, np.nan]]), "row 0 is not finite"),
    (np.array([[0, 0, 10, 10, 0.9], [0, 0, np.inf, 10, 0.9]]), "row 1 is not finite"),
    (np.array([[10, 0, 5, 10, 0.9]]), "row 0 has x2 < x1"),
    (np.array([[0, 10, 5, 5, 0.9]]), "row 0 has x2 < x1 or y2 < y1"),
    (np.array([["a", "b", "c", "d", "e"]]), "real numeric array, got dtype <U1"),
    (np.array([[0, 0, 10, 10, 0.9]], dtype=object), "got dtype object"),
    (np.ones((1, 5), dtype=bool), "got dtype bool"),
    (np.array([[0, 0, 10, 10, 1j]]), "got dtype complex128"),
    ([[0, 0, 10, 10, 0.9], [0, 0, 10]], "numeric array"),
    ([[0, 0, 10, 10, None]], "not finite"),
    ("0,0,10,10,0.9", "numeric array"),
]


@pytest.mark.parametrize("dets, problem", BAD_ARRAYS, ids=[p for _, p in BAD_ARRAYS])
def test_bad_update_arrays_leave_the_tracker_usable(dets: object, problem: str) -> None:
    tracker = Tracker(frame_rate=30)
    first = tracker.update(np.array([[0, 0, 10, 20, 0.9]]))
    with pytest.raises(EmtrackInputError) as caught:
        tracker.update(dets)  # type: ignore[arg-type]
    assert problem in str(caught.value)
    # A rejected call changes nothing: the next frame continues the same track.
    assert tracker.frame_count == 1
    again = tracker.update(np.array([[1, 0, 11, 20, 0.9]]))
    assert again[:, 4].tolist() == first[:, 4].tolist() == [1.0]


@pytest.mark.parametrize(
    "dets",
    [
        [],
        np.zeros((0,)),
        np.zeros((0, 5)),
        np.zeros((0, 5), dtype=np.float32),
        [[0, 0, 10, 20, 1]],  # a list of integer rows
        np.array([[0, 0, 10, 20, 1]], dtype=np.int32),
        np.array([[0, 0, 10, 20, 0.9]], dtype=np.float32),
        np.array([[-30, -50, 10, 20, 0.9]]),  # partly outside the image
        np.array([[0, 0, 10, 20, -3.5]]),  # raw detector scores may be negative
        np.array([[0, 0, 10, 20, 150.0]]),  # ... or above 1
        np.array([[0, 0, 10, 20, 1e308], [0, 0, 10, 20, 1e308]]),  # finite, but sums to inf
    ],
    ids=[
        "list",
        "(0,)",
        "(0,5)",
        "f32-empty",
        "int-list",
        "int32",
        "float32",
        "outside",
        "neg-score",
        "big-score",
        "overflowing-sum",
    ],
)
def test_unusual_but_valid_update_arrays(dets: object) -> None:
    out = Tracker(frame_rate=30).update(dets)  # type: ignore[arg-type]
    assert out.shape[1] == 5 and out.dtype == np.float64


@pytest.mark.parametrize("frame_rate", [30, 29.97, np.int64(25), np.float32(12.5)])
def test_frame_rate_accepts_numpy_numbers(frame_rate: object) -> None:
    assert Tracker(frame_rate=frame_rate).frame_rate == float(frame_rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("frame_rate", [0, -30, float("nan"), float("inf"), True, "30", None])
def test_bad_frame_rate(frame_rate: object) -> None:
    with pytest.raises(EmtrackInputError, match="frame_rate must be a positive number"):
        Tracker(frame_rate=frame_rate)  # type: ignore[arg-type]


def test_hundreds_of_detections_in_one_frame() -> None:
    """400 boxes on a grid, moving one pixel a frame: every one becomes its own track."""
    x, y = np.meshgrid(np.arange(20) * 50.0, np.arange(20) * 60.0)
    boxes = np.stack([x.ravel(), y.ravel(), x.ravel() + 20, y.ravel() + 40], axis=1)
    tracker = Tracker(frame_rate=30)
    for frame in range(3):
        dets = np.concatenate([boxes + frame, np.full((400, 1), 0.9)], axis=1)
        out = tracker.update(dets)
    assert len(out) == 400 and len(set(out[:, 4].tolist())) == 400
    assert tracker.num_tracks == 400


# --------------------------------------------------------------------------------------------
# Unusual but valid files through the CLI
# --------------------------------------------------------------------------------------------


def _track_text(tmp_path: Path, det_text: str | bytes, num_frames: int = 10) -> str:
    """Track a det file with this content (the two-walkers seqinfo) and return the result."""
    folder = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    det = write_sequence(folder, num_frames=num_frames)
    if isinstance(det_text, bytes):
        det.write_bytes(det_text)
    else:
        det.write_text(det_text)
    out = folder / "result.txt"
    assert main(run_track(det, out, "-q")) == 0
    return out.read_text()


def test_unusual_but_valid_files_give_the_same_result(tmp_path: Path) -> None:
    clean = write_sequence(tmp_path / "clean").read_text()
    expected = _track_text(tmp_path, clean)
    assert len(expected.splitlines()) == 20  # two tracks over 10 frames
    rows = clean.splitlines()
    variants = {
        "crlf": "\r\n".join(rows) + "\r\n",
        "spaces": "\n".join(" " + row.replace(",", " ,  ") + "\t" for row in rows) + "\n",
        "bom-and-blank-lines": "\ufeff\n" + "\n\n".join(rows) + "\n\n",
        "seven-columns": "\n".join(",".join(row.split(",")[:7]) for row in rows) + "\n",
        "eleven-columns": "\n".join(row + ",extra" for row in rows) + "\n",
        # Frames in reverse order (rows of one frame keep their order).
        "unsorted": "\n".join(rows[i] for f in range(9, -1, -1) for i in (2 * f, 2 * f + 1)),
    }
    for name, text in variants.items():
        assert _track_text(tmp_path, text) == expected, name


def test_empty_det_file_and_empty_frames(tmp_path: Path) -> None:
    assert _track_text(tmp_path, "") == ""  # an empty result file is written
    assert _track_text(tmp_path, "\n\n  \n") == ""
    rows = write_sequence(tmp_path / "clean").read_text().splitlines()
    sparse = "\n".join(row for row in rows if int(row.split(",")[0]) not in (4, 5, 6)) + "\n"
    result = read_mot_text(tmp_path, _track_text(tmp_path, sparse))
    assert 4 not in result.frames and 7 in result.frames
    assert len(set(result.ids.tolist())) == 2  # the walkers keep their ids across the gap


def test_single_frame_sequence_and_boxes_outside_the_image(tmp_path: Path) -> None:
    one = "1,-1,10,100,30,70,0.9,-1,-1,-1\n1,-1,-20,-40,30,70,0.9,-1,-1,-1\n"
    result = read_mot_text(tmp_path, _track_text(tmp_path, one, num_frames=1))
    assert len(result) == 2 and result.frames.tolist() == [1, 1]
    # A walker leaving the 640x480 image on the right: boxes cross the border (a box entirely
    # outside would be a degenerate row, skipped with a warning).
    rows = [f"{f},-1,{590 + 4 * f},200,40,90,0.9,-1,-1,-1" for f in range(1, 11)]
    result = read_mot_text(tmp_path, _track_text(tmp_path, "\n".join(rows) + "\n"))
    assert len(result) == 10 and len(set(result.ids.tolist())) == 1
    assert result.boxes_xyxy[:, 2].max() > 640


def read_mot_text(tmp_path: Path, text: str) -> MotTable:
    path = tmp_path / f"read{len(list(tmp_path.iterdir()))}.txt"
    path.write_text(text)
    return read_mot(path)


# --------------------------------------------------------------------------------------------
# Nothing half-written
# --------------------------------------------------------------------------------------------


def _folder_listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def _write_with_each_writer(name: str, target: Path) -> None:
    """Write ``target`` with one of emtrack's writers (valid content)."""
    if name == "write_mot":
        write_mot(target, MotTable.from_arrays([1, 2], [[0, 0, 5, 9], [1, 1, 6, 9]]))
    elif name == "export_weights":
        from emtrack.track import export_weights
        from emtrack.train import TrainConfig, TrainResult

        net, noise = _fresh_modules()
        export_weights(TrainResult(net, noise, TrainConfig(), []), target)
    elif name == "save_checkpoint":
        from emtrack.train import TrainConfig, TrainResult
        from emtrack.train.checkpoint import save_checkpoint

        net, noise = _fresh_modules()
        result = TrainResult(net, noise, TrainConfig(), [])
        save_checkpoint(target, result, None, 0, np.random.default_rng(0))
    elif name == "io_write_json":
        from emtrack.io import write_json

        write_json(target, {"scores": [1.0, 2.0]})
    elif name == "track_bench_json":
        from emtrack.bench.report import write_json
        from emtrack.bench.track_bench import BenchReport

        write_json(BenchReport((), (), (), (), ()), target)
    elif name == "memory_bench_json":
        from emtrack.bench.memory import MemoryReport, StreamConfig, measure_stream
        from emtrack.bench.report import write_json

        write_json(MemoryReport((measure_stream(5),), StreamConfig()), target)
    else:
        raise AssertionError(name)


def _fresh_modules() -> tuple:
    import torch

    from emtrack.model.network import AssociationNet, NoiseModel

    torch.manual_seed(0)
    return AssociationNet(), NoiseModel()


WRITERS = [
    ("write_mot", "result.txt"),
    ("export_weights", "weights.npz"),
    ("save_checkpoint", "model.pt"),
    ("io_write_json", "scores.json"),
    ("track_bench_json", "track.json"),
    ("memory_bench_json", "memory.json"),
]


@pytest.mark.parametrize("writer, file_name", WRITERS, ids=[w for w, _ in WRITERS])
def test_crash_before_rename_keeps_the_old_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    one_torch_thread: None,
    writer: str,
    file_name: str,
) -> None:
    """Every writer goes through atomic_write: a crash after the data is written but before
    the rename leaves the old file byte for byte, and no temporary file."""
    target = tmp_path / file_name
    target.write_bytes(b"OLD CONTENT\n")

    def crash(*args: object) -> None:
        raise OSError(28, "No space left on device (simulated)")

    monkeypatch.setattr("emtrack.io.atomic.os.replace", crash)
    with pytest.raises(OSError, match="simulated"):
        _write_with_each_writer(writer, target)
    assert target.read_bytes() == b"OLD CONTENT\n"
    assert _folder_listing(tmp_path) == [file_name]

    monkeypatch.undo()  # the same write without the crash replaces the file
    _write_with_each_writer(writer, target)
    assert target.read_bytes() != b"OLD CONTENT\n"
    assert _folder_listing(tmp_path) == [file_name]


def test_crash_inside_the_serializer_keeps_the_old_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_torch_thread: None
) -> None:
    """A serializer that dies half-way (after writing some bytes) leaves the old file."""
    import torch

    def half_then_crash(handle: Any) -> None:
        handle.write(b"PK\x03\x04 half an archive" if "b" in handle.mode else "[1, 2,")
        raise RuntimeError("killed half-way (simulated)")

    cases = [
        (np, "savez", lambda handle, **arrays: half_then_crash(handle), "export_weights"),
        (torch, "save", lambda data, handle: half_then_crash(handle), "save_checkpoint"),
        (json, "dump", lambda data, handle, **kw: half_then_crash(handle), "io_write_json"),
    ]
    for module, attribute, replacement, writer in cases:
        file_name = dict(WRITERS)[writer]
        target = tmp_path / file_name
        target.write_bytes(b"OLD")
        with monkeypatch.context() as patch:
            patch.setattr(module, attribute, replacement)
            with pytest.raises(RuntimeError, match="simulated"):
                _write_with_each_writer(writer, target)
        assert target.read_bytes() == b"OLD", writer
    assert _folder_listing(tmp_path) == ["model.pt", "scores.json", "weights.npz"]


def test_killed_writer_leaves_the_old_file(tmp_path: Path) -> None:
    """SIGKILL in the middle of a write: the target still holds the old content (a hidden
    ``.<name>.*.tmp`` file may stay behind, since a killed process cannot clean up)."""
    target = tmp_path / "result.txt"
    target.write_text("old result\n")
    child = textwrap.dedent(
        """
        import sys, time
        from emtrack.io import atomic_write
        with atomic_write(sys.argv[1]) as handle:
            handle.write("1,1,0,0,5,5,1,-1,-1,-1\\n" * 100_000)
            handle.flush()
            print("half-written", flush=True)
            time.sleep(60)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", child, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "half-written"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert target.read_text() == "old result\n"
    leftovers = [name for name in _folder_listing(tmp_path) if name != "result.txt"]
    assert all(name.startswith(".result.txt.") and name.endswith(".tmp") for name in leftovers)
    # The next write still works and replaces the file.
    with atomic_write(target) as handle:
        handle.write("new result\n")
    assert target.read_text() == "new result\n"
