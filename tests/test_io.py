"""Tests of emtrack.io: MOTChallenge readers and writers, seqinfo.ini, atomic writes."""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emtrack.errors import EmtrackInputError, EmtrackInputWarning
from emtrack.io import (
    MotTable,
    SeqInfo,
    Timestamps,
    atomic_write,
    find_sequences,
    read_mot,
    read_seqinfo,
    read_timestamps,
    write_mot,
)


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def det_row(frame: int = 1, x: float = 10, y: float = 20, w: float = 30, h: float = 40) -> str:
    return f"{frame},-1,{x},{y},{w},{h},0.9,-1,-1,-1"


# --------------------------------------------------------------------------------------------
# read_mot: malformed input
# --------------------------------------------------------------------------------------------

MALFORMED = [
    # (file text, expected 1-based line, substrings the message must contain), test id
    pytest.param(f"{det_row()}\n1,-1,10,20,30,40\n", 2, ["too few columns: 6"], id="few-columns"),
    pytest.param("1,-1,10,20,30\n", 1, ["too few columns: 5", "at least 6"], id="five-columns"),
    pytest.param(
        "1,-1,10,20,30,40\n1\n1,-1,11,20,30,40\n", 2, ["too few columns: 1"], id="six-and-cut-row"
    ),
    pytest.param(
        f"{det_row()}\n1 -1 10 20 30 40 0.9\n", 2, ["too few columns: 1"], id="mixed-separators"
    ),
    pytest.param("1;-1;10;20;30;40;0.9\n", 1, ["too few columns: 1", "';'"], id="semicolons"),
    pytest.param("1 -1 10 20 30\n", 1, ["too few columns: 5"], id="whitespace-five"),
    pytest.param(
        f"{det_row()}\n{det_row()}\n2,-1,abc,20,30,40,0.9,-1,-1,-1\n",
        3,
        ["column 3 (x)", "not a number", "'abc'"],
        id="non-numeric-x",
    ),
    pytest.param(
        "1,1,10,20,30,40,1,1,high\n", 1, ["column 9 (visibility)", "'high'"], id="non-numeric-vis"
    ),
    pytest.param("1,1,10,20,30,40,1,-1,-1,z\n", 1, ["column 10 (Z)", "'z'"], id="non-numeric-Z"),
    pytest.param("1,-1,10,,30,40,0.9,-1,-1,-1\n", 1, ["column 4 (y) is empty"], id="empty-field"),
    pytest.param("1,-1,10,20,30,40,0.9,\n", 1, ["column 8 (X) is empty"], id="trailing-comma"),
    pytest.param("1,-1,1_0,20,30,40,0.9\n", 1, ["column 3 (x)", "'1_0'"], id="underscore"),
    pytest.param(f"{det_row()}\n{det_row(x=np.nan)}\n", 2, ["column 3 (x)", "finite"], id="nan"),
    pytest.param("1,-1,1,2,3,4,inf\n", 1, ["column 7 (conf)", "finite", "'inf'"], id="inf"),
    pytest.param(f"{det_row()}\n{det_row(w=-1)}\n", 2, ["width", "> 0", "'-1'"], id="neg-width"),
    pytest.param(f"{det_row(h=-4.5)}\n", 1, ["height", "> 0", "'-4.5'"], id="negative-height"),
    pytest.param(
        f"{det_row(w=-30)}\n", 1, ["x2, y2 given for w, h", "header line"], id="negative-hint"
    ),
    pytest.param(f"{det_row()}\n{det_row(frame=0)}\n", 2, ["frame", ">= 1", "'0'"], id="frame-0"),
    pytest.param(f"{det_row(frame=-3)}\n", 1, ["frame", ">= 1"], id="negative-frame"),
    pytest.param("1.5,-1,1,2,3,4,0.9\n", 1, ["frame", "whole number", "'1.5'"], id="frac-frame"),
    pytest.param("1e300,-1,1,2,3,4,0.9\n", 1, ["frame", "whole number"], id="huge-frame"),
    pytest.param("1,2.5,1,2,3,4,0.9\n", 1, ["id (column 2)", "'2.5'"], id="fractional-id"),
    pytest.param("1,1,1,2,3,4,1,1.5,0.9\n", 1, ["class (column 8)"], id="fractional-class"),
    pytest.param(f"\n\n{det_row()}\n\nx\n", 5, ["too few columns: 1"], id="blank-lines-count"),
    pytest.param(
        f"{det_row()}\r\n{det_row()}\r\n{det_row(w=-1)}\r\n", 3, ["width"], id="crlf-line-numbers"
    ),
    # The first bad row in file order is reported, whatever kind of error comes later.
    pytest.param(
        f"{det_row()}\n1,-1,a,20,30,40,0.9\n1,-1\n", 2, ["column 3 (x)"], id="first-error-wins"
    ),
    pytest.param(
        f"{det_row(w=-2)}\n1,-1,a,20,30,40,0.9\n", 1, ["width"], id="first-error-before-parse-error"
    ),
    # A degenerate row (skipped) does not hide the error after it.
    pytest.param(
        f"{det_row(w=0)}\n1,-1,a,20,30,40,0.9\n", 2, ["column 3 (x)"], id="degenerate-then-error"
    ),
    pytest.param(
        f"{det_row()}\n1,1,10,20,-3,40,1,1,1\n{det_row(h=-1)}\n",
        2,
        ["width"],
        id="first-error-across-column-counts",
    ),
    # Header lines: they must name the columns, and rows must match them.
    pytest.param("frame,id,x,y,w,h\n1,-1,1,2,3\n", 2, ["5 columns", "header (line 1)"], id="hdr-n"),
    pytest.param("hello world\n1 -1 1 2 3 4\n", 1, ["not a header line"], id="not-a-header"),
    pytest.param("frame,id,x,y,w,score\n", 1, ["no h or y2 column"], id="header-missing-h"),
    pytest.param("frame,x,y,w,h,score,conf\n", 1, ["score column twice"], id="header-twice"),
    pytest.param("frame,x,y,w,x2,h\n", 1, ["both a width and an x2"], id="header-w-and-x2"),
    pytest.param("frame,x,y,w,h,class\n1,1,2,3,4,car\n", 2, ["column 6 (class)"], id="hdr-text"),
    pytest.param(
        "frame,x1,y1,x2,y2\n1,10,10,5,20\n",
        2,
        ["column 4 (x2) must be > column 2 (x1)"],
        id="header-x2-before-x1",
    ),
    pytest.param("frame x y w h\n1 2 3 4 nan\n", 2, ["column 5 (h)", "finite"], id="hdr-nan"),
]


@pytest.mark.parametrize(("text", "line", "fragments"), MALFORMED)
def test_read_mot_malformed_reports_file_and_line(
    tmp_path: Path, text: str, line: int, fragments: list[str]
) -> None:
    path = write_text(tmp_path / "det.txt", text)

    with pytest.raises(EmtrackInputError) as info:
        read_mot(path)
    error = info.value
    assert error.path == str(path)
    assert error.line == line
    assert str(error).startswith(f"{path}:{line}: ")
    for fragment in fragments:
        assert fragment in str(error)


def test_read_mot_nul_bytes_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "det.txt"
    path.write_bytes(f"{det_row()}\n{det_row()}\n".encode() + b"\x00\x01\x02garbage")
    with pytest.raises(EmtrackInputError, match="binary") as info:
        read_mot(path)
    assert info.value.line == 3
    assert str(path) in str(info.value)


def test_read_mot_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "det.txt"
    path.write_bytes(f"{det_row()}\n".encode() + b"1,-1,\xff\xfe,20,30,40,0.9,-1,-1,-1\n")
    with pytest.raises(EmtrackInputError, match="not UTF-8") as info:
        read_mot(path)
    assert info.value.line == 2


def test_read_mot_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "det.txt"
    with pytest.raises(EmtrackInputError, match="not found") as info:
        read_mot(path)
    assert str(path) in str(info.value)


def test_read_mot_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(EmtrackInputError, match="folder") as info:
        read_mot(tmp_path)
    assert str(tmp_path) in str(info.value)


# --------------------------------------------------------------------------------------------
# read_mot: valid input
# --------------------------------------------------------------------------------------------


def test_read_mot_10_columns_converts_xywh_to_xyxy(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "det.txt",
        "1,-1,1691.97,381.048,152.23,352.617,0.995616,-1,-1,-1\n2,7,-5,0,10,20,0.5,3.2,1.1,0\n",
    )
    table = read_mot(path)
    assert len(table) == 2
    assert table.path == str(path)
    np.testing.assert_array_equal(table.frames, [1, 2])
    np.testing.assert_array_equal(table.ids, [-1, 7])
    np.testing.assert_allclose(
        table.boxes_xyxy,
        [[1691.97, 381.048, 1691.97 + 152.23, 381.048 + 352.617], [-5, 0, 5, 20]],
    )
    np.testing.assert_array_equal(table.scores, [0.995616, 0.5])
    # 10 columns carry world coordinates, not class/visibility.
    np.testing.assert_array_equal(table.classes, [-1, -1])
    np.testing.assert_array_equal(table.visibility, [-1, -1])
    assert table.frames.dtype == np.int64 and table.ids.dtype == np.int64
    assert table.classes.dtype == np.int64
    assert table.boxes_xyxy.dtype == np.float64 and table.boxes_xyxy.shape == (2, 4)


def test_read_mot_9_columns_reads_class_and_visibility(tmp_path: Path) -> None:
    path = write_text(tmp_path / "gt.txt", "1,1,912,484,97,109,0,7,1\n1,2,10,20,30,40,1,1,0.25\n")
    table = read_mot(path)
    np.testing.assert_array_equal(table.classes, [7, 1])
    np.testing.assert_array_equal(table.visibility, [1.0, 0.25])
    np.testing.assert_array_equal(table.scores, [0, 1])
    np.testing.assert_array_equal(table.boxes_xyxy[0], [912, 484, 1009, 593])


def test_read_mot_7_and_8_columns(tmp_path: Path) -> None:
    path = write_text(tmp_path / "res.txt", "1,3,10,20,30,40,0.8\n2,4,1,2,3,4,0.7,5\n")
    table = read_mot(path)
    np.testing.assert_array_equal(table.ids, [3, 4])
    np.testing.assert_array_equal(table.scores, [0.8, 0.7])
    np.testing.assert_array_equal(table.classes, [-1, -1])
    np.testing.assert_array_equal(table.visibility, [-1, -1])
    np.testing.assert_array_equal(table.boxes_xyxy, [[10, 20, 40, 60], [1, 2, 4, 6]])


def test_read_mot_ignores_columns_after_the_tenth(tmp_path: Path) -> None:
    path = write_text(tmp_path / "det.txt", "1,-1,10,20,30,40,0.9,-1,-1,-1,extra,stuff\n")
    table = read_mot(path)
    assert len(table) == 1
    np.testing.assert_array_equal(table.boxes_xyxy, [[10, 20, 40, 60]])


def test_read_mot_mixed_column_counts_keep_file_order(tmp_path: Path) -> None:
    text = "1,1,0,0,1,1,0.1\n1,2,0,0,1,1,0.2,5,0.5\n1,3,0,0,1,1,0.3,-1,-1,-1\n1,4,0,0,1,1,0.4\n"
    table = read_mot(write_text(tmp_path / "mixed.txt", text))
    np.testing.assert_array_equal(table.ids, [1, 2, 3, 4])
    np.testing.assert_array_equal(table.scores, [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_array_equal(table.classes, [-1, 5, -1, -1])
    np.testing.assert_array_equal(table.visibility, [-1, 0.5, -1, -1])


def test_read_mot_tolerates_crlf_spaces_blank_lines_and_bom(tmp_path: Path) -> None:
    text = (
        "\ufeff\r\n 1 , -1 , 10 , 20 , 30 , 40 , 0.9 , -1 , -1 , -1 \r\n"
        "\r\n   \r\n1.0,-1,1,2,3,4,1e-1\r\n"
    )
    table = read_mot(write_text(tmp_path / "det.txt", text))
    np.testing.assert_array_equal(table.frames, [1, 1])
    np.testing.assert_array_equal(table.boxes_xyxy, [[10, 20, 40, 60], [1, 2, 4, 6]])
    np.testing.assert_allclose(table.scores, [0.9, 0.1])


# The same three detections in every accepted dialect: each reads as the same table.
DIALECT_ROWS = [
    {"f": 1, "i": 7, "x": 10.5, "y": 20, "w": 30, "h": 40, "s": 0.9},
    {"f": 2, "i": 7, "x": 12, "y": 21, "w": 30, "h": 41, "s": 0.8},
    {"f": 1, "i": 8, "x": 100, "y": 0, "w": 5, "h": 6, "s": 0.25},
]


def dialect_rows(row_format: str, newline: str = "\n") -> str:
    """DIALECT_ROWS in ``row_format`` (``{f}, {i}, {x}, {y}, {w}, {h}, {s}``, ``{x2}, {y2}``)."""
    return "".join(
        row_format.format(**row, x2=row["x"] + row["w"], y2=row["y"] + row["h"]) + newline
        for row in DIALECT_ROWS
    )


DIALECTS = {
    "comma-10": dialect_rows("{f},{i},{x},{y},{w},{h},{s},-1,-1,-1"),
    "comma-7": dialect_rows("{f},{i},{x},{y},{w},{h},{s}"),
    "spaces": dialect_rows("{f}  {i} {x} {y} {w} {h} {s}"),
    "tabs": dialect_rows("{f}\t{i}\t{x}\t{y}\t{w}\t{h}\t{s}\t-1\t-1\t-1", "\r\n"),
    "bom-header": "\ufeffframe,id,bb_left,bb_top,bb_width,bb_height,conf,X,Y,Z\n"
    + dialect_rows("{f},{i},{x},{y},{w},{h},{s},-1,-1,-1"),
    "hash-header-reordered": "# score frame w h x y id\n"
    + dialect_rows("{s} {f} {w} {h} {x} {y} {i}"),
    "corners-header": "Frame,Track_ID,X1,Y1,X2,Y2,Score\n"
    + dialect_rows("{f},{i},{x},{y},{x2},{y2},{s}"),
    "header-extra-columns": "<frame_index>,<target_id>,<bbox_left>,<bbox_top>,<bbox_width>,"
    "<bbox_height>,<score>,<truncation>,<occlusion>\n"
    + dialect_rows("{f},{i},{x},{y},{w},{h},{s},zero,1"),
}


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_read_mot_dialects_give_the_same_table(tmp_path: Path, name: str) -> None:
    table = read_mot(write_text(tmp_path / "det.txt", DIALECTS[name]))
    np.testing.assert_array_equal(table.frames, [1, 1, 2])
    np.testing.assert_array_equal(table.ids, [7, 8, 7])
    np.testing.assert_allclose(
        table.boxes_xyxy, [[10.5, 20, 40.5, 60], [100, 0, 105, 6], [12, 21, 42, 62]]
    )
    np.testing.assert_array_equal(table.scores, [0.9, 0.25, 0.8])
    np.testing.assert_array_equal(table.classes, [-1, -1, -1])


def test_read_mot_six_columns_have_score_one(tmp_path: Path) -> None:
    table = read_mot(write_text(tmp_path / "det.txt", "2,-1,10,20,30,40\n1,3,1,2,3,4\n"))
    np.testing.assert_array_equal(table.frames, [1, 2])
    np.testing.assert_array_equal(table.ids, [3, -1])
    np.testing.assert_array_equal(table.scores, [1.0, 1.0])
    np.testing.assert_array_equal(table.boxes_xyxy, [[1, 2, 4, 6], [10, 20, 40, 60]])
    whitespace = read_mot(write_text(tmp_path / "ws.txt", "2 -1 10 20 30 40\n1 3 1 2 3 4\n"))
    np.testing.assert_array_equal(whitespace.boxes_xyxy, table.boxes_xyxy)


def test_read_mot_header_class_column_and_header_only(tmp_path: Path) -> None:
    text = "frame,id,x,y,w,h,score,class\n1,-1,10,20,30,40,0.9,3\n1,-1,1,2,3,4,0.5,0\n"
    table = read_mot(write_text(tmp_path / "det.txt", text))
    np.testing.assert_array_equal(table.classes, [3, 0])
    np.testing.assert_array_equal(table.visibility, [-1, -1])
    # No id, no score column: -1 and 1.
    bare = read_mot(write_text(tmp_path / "bare.txt", "frame x y w h\n4 1 2 3 4\n"))
    assert bare.ids.tolist() == [-1] and bare.scores.tolist() == [1.0]
    assert len(read_mot(write_text(tmp_path / "empty.txt", "frame,id,x,y,w,h\n\n"))) == 0


def test_read_mot_skips_degenerate_rows_with_one_warning(tmp_path: Path) -> None:
    """Zero width or height: skipped, one warning per file counting them, naming the first."""
    text = (
        f"{det_row(1)}\n{det_row(1, w=0)}\n{det_row(2)}\n{det_row(2, h=0.0)}\n"
        f"{det_row(3, w=-0)}\n{det_row(3)}\n"
    )
    path = write_text(tmp_path / "det.txt", text)
    with pytest.warns(EmtrackInputWarning) as caught:
        table = read_mot(path)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(f"{path}:2: skipped 3 degenerate rows (zero width or height)")
    assert "strict" in message
    np.testing.assert_array_equal(table.frames, [1, 2, 3])
    np.testing.assert_array_equal(table.boxes_xyxy[:, 2] - table.boxes_xyxy[:, 0], [30, 30, 30])
    with pytest.raises(EmtrackInputError, match="must be > 0, got '0'") as info:
        read_mot(path, strict=True)
    assert info.value.line == 2
    # Corners named by a header: x2 == x1 is degenerate too.
    corners = write_text(tmp_path / "xyxy.txt", "frame x1 y1 x2 y2\n1 5 5 5 9\n1 5 5 8 9\n")
    with pytest.warns(EmtrackInputWarning, match="xyxy.txt:2: skipped 1 degenerate row "):
        assert read_mot(corners).boxes_xyxy.tolist() == [[5, 5, 8, 9]]


def test_read_mot_skips_boxes_outside_the_image_when_its_size_is_known(tmp_path: Path) -> None:
    rows = [
        det_row(1, x=100, y=100),  # inside
        det_row(1, x=-50, y=10, w=50),  # right edge at x = 0: outside
        det_row(2, x=630, y=470, w=30, h=40),  # partly inside: kept
        det_row(2, x=640, y=10),  # left edge at the image's width: outside
        det_row(3, x=10, y=-100, h=90),  # above the image
    ]
    path = write_text(tmp_path / "det.txt", "\n".join(rows) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_mot(path)) == 5  # size unknown: all kept, no warning
    with pytest.warns(EmtrackInputWarning, match=r"det.txt:2: skipped 3 degenerate rows \(zero"):
        table = read_mot(path, image_size=(640, 480))
    np.testing.assert_array_equal(table.boxes_xyxy[:, 0], [100, 630])
    with pytest.raises(EmtrackInputError, match="outside the 640x480 image") as info:
        read_mot(path, image_size=(640, 480), strict=True)
    assert info.value.line == 2


def test_read_mot_sorts_by_frame_stably(tmp_path: Path) -> None:
    rows = [(3, 1), (1, 2), (3, 3), (2, 4), (1, 5), (3, 6)]  # (frame, id)
    text = "".join(f"{f},{i},0,0,1,1,1,-1,-1,-1\n" for f, i in rows)
    table = read_mot(write_text(tmp_path / "gt.txt", text))
    np.testing.assert_array_equal(table.frames, [1, 1, 2, 3, 3, 3])
    np.testing.assert_array_equal(table.ids, [2, 5, 4, 1, 3, 6])


@pytest.mark.parametrize("text", ["", "\n\n", "  \r\n\t\n"])
def test_read_mot_empty_file_gives_empty_table(tmp_path: Path, text: str) -> None:
    table = read_mot(write_text(tmp_path / "det.txt", text))
    assert len(table) == 0
    assert table.num_frames == 0
    assert table.boxes_xyxy.shape == (0, 4)
    assert table.frames.dtype == np.int64
    assert table.frame_index() == []
    assert [len(rows) for rows in table.frame_index(3)] == [0, 0, 0]


def test_read_mot_frames_without_detections(tmp_path: Path) -> None:
    table = read_mot(
        write_text(tmp_path / "det.txt", f"{det_row(2)}\n{det_row(5)}\n{det_row(2)}\n")
    )
    assert table.num_frames == 5
    index = table.frame_index()
    assert [rows.tolist() for rows in index] == [[], [0, 1], [], [], [2]]
    assert [len(rows) for rows in table.frame_index(7)] == [0, 2, 0, 0, 1, 0, 0]


def test_read_mot_100k_lines(tmp_path: Path) -> None:
    """A large file reads whole and right (its speed is not a test's business)."""
    rng = np.random.default_rng(0)
    n = 100_000
    frames = np.sort(rng.integers(1, 2000, n))
    xywh = rng.uniform(1, 500, (n, 4))
    lines = [
        f"{f},-1,{x:.3f},{y:.3f},{w:.3f},{h:.3f},{s:.6f},-1,-1,-1\n"
        for f, (x, y, w, h), s in zip(frames, xywh, rng.uniform(0, 1, n), strict=True)
    ]
    path = write_text(tmp_path / "big.txt", "".join(lines))
    table = read_mot(path)
    assert len(table) == n
    assert table.frames.tolist() == frames.tolist()
    np.testing.assert_allclose(
        table.boxes_xyxy[:, 2] - table.boxes_xyxy[:, 0], xywh[:, 2], atol=1.1e-3
    )


# --------------------------------------------------------------------------------------------
# MotTable
# --------------------------------------------------------------------------------------------


def make_table(frames: list[int], path: str | None = None) -> MotTable:
    n = len(frames)
    boxes = np.column_stack([np.arange(n), np.zeros(n), np.arange(n) + 1.0, np.ones(n)])
    return MotTable.from_arrays(frames=frames, boxes_xyxy=boxes, ids=np.arange(n), path=path)


def test_from_arrays_defaults_and_stable_sort() -> None:
    table = MotTable.from_arrays(
        frames=[2, 1, 2, 1], boxes_xyxy=np.arange(16.0).reshape(4, 4), ids=[10, 11, 12, 13]
    )
    np.testing.assert_array_equal(table.frames, [1, 1, 2, 2])
    np.testing.assert_array_equal(table.ids, [11, 13, 10, 12])
    np.testing.assert_array_equal(table.boxes_xyxy[:, 0], [4, 12, 0, 8])
    np.testing.assert_array_equal(table.scores, np.ones(4))
    np.testing.assert_array_equal(table.classes, -np.ones(4))
    np.testing.assert_array_equal(table.visibility, -np.ones(4))
    assert table.path is None


def test_from_arrays_empty_and_defaults_ids() -> None:
    table = MotTable.from_arrays(frames=[], boxes_xyxy=[])
    assert len(table) == 0 and table.boxes_xyxy.shape == (0, 4)
    assert MotTable.from_arrays(frames=[1], boxes_xyxy=[[0, 0, 1, 1]]).ids.tolist() == [-1]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"frames": [1, 2], "boxes_xyxy": np.zeros((2, 3))}, "shape (2, 4)"),
        ({"frames": [1, 2], "boxes_xyxy": np.zeros((2, 4)), "scores": [1.0]}, "scores"),
        ({"frames": [1, 2], "boxes_xyxy": np.zeros((2, 4)), "ids": [1.5, 2]}, "whole"),
        ({"frames": [0, 2], "boxes_xyxy": np.zeros((2, 4))}, ">= 1"),
        ({"frames": [[1, 2]], "boxes_xyxy": np.zeros((2, 4))}, "shape (N,)"),
        ({"frames": ["a"], "boxes_xyxy": np.zeros((1, 4))}, "integers"),
    ],
)
def test_from_arrays_rejects_bad_arrays(kwargs: dict, fragment: str) -> None:
    with pytest.raises(EmtrackInputError) as info:
        MotTable.from_arrays(**kwargs, path="x.txt")
    assert fragment in str(info.value)
    assert str(info.value).startswith("x.txt: ")


def test_post_init_requires_sorted_frames() -> None:
    n = 2
    with pytest.raises(EmtrackInputError, match="sorted"):
        MotTable(
            frames=np.array([2, 1]),
            ids=np.zeros(n),
            boxes_xyxy=np.zeros((n, 4)),
            scores=np.zeros(n),
            classes=np.zeros(n),
            visibility=np.zeros(n),
        )


def test_post_init_converts_dtypes() -> None:
    table = MotTable(
        frames=[1, 1],
        ids=np.array([1.0, 2.0]),
        boxes_xyxy=np.zeros((2, 4), dtype=np.float32),
        scores=[1, 0],
        classes=np.array([1, 1], dtype=np.int32),
        visibility=[0.5, 1],
    )
    assert table.frames.dtype == np.int64 and table.ids.dtype == np.int64
    assert table.boxes_xyxy.dtype == np.float64 and table.scores.dtype == np.float64
    assert table.classes.dtype == np.int64 and table.visibility.dtype == np.float64


def test_select_mask_and_indices() -> None:
    table = make_table([1, 1, 2, 3], path="t.txt")
    picked = table.select(np.array([True, False, True, True]))
    np.testing.assert_array_equal(picked.ids, [0, 2, 3])
    assert picked.path == "t.txt"
    # Integer indices in any order: the result is sorted by frame again, stably.
    reordered = table.select(np.array([3, 1, 0]))
    np.testing.assert_array_equal(reordered.frames, [1, 1, 3])
    np.testing.assert_array_equal(reordered.ids, [1, 0, 3])
    assert len(table.select([])) == 0
    assert len(table.select(np.zeros(4, dtype=bool))) == 0


def test_select_rejects_bad_rows() -> None:
    table = make_table([1, 2])
    with pytest.raises(EmtrackInputError, match="shape"):
        table.select(np.array([True]))
    with pytest.raises(EmtrackInputError, match="out of range"):
        table.select(np.array([2]))


def test_frame_index_rejects_too_few_frames() -> None:
    table = make_table([1, 4], path="t.txt")
    assert len(table.frame_index(4)) == 4
    with pytest.raises(EmtrackInputError, match="frame 4"):
        table.frame_index(3)


def test_table_is_frozen() -> None:
    table = make_table([1])
    with pytest.raises(AttributeError):
        table.frames = np.array([2])  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# write_mot
# --------------------------------------------------------------------------------------------


def test_write_mot_format(tmp_path: Path) -> None:
    table = MotTable.from_arrays(
        frames=[2, 1],
        boxes_xyxy=[[1.5, 2.25, 11.5, 22.25], [10, 20, 40, 60]],
        scores=[0.123456789, 0.9],
        ids=[7, 3],
    )
    path = tmp_path / "new" / "folder" / "res.txt"
    write_mot(path, table)
    assert path.read_text() == (
        "1,3,10.000,20.000,30.000,40.000,0.9,-1,-1,-1\n"
        "2,7,1.500,2.250,10.000,20.000,0.123457,-1,-1,-1\n"
    )


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 200
    xy = rng.uniform(-50, 1900, (n, 2))
    wh = rng.uniform(1, 300, (n, 2))
    table = MotTable.from_arrays(
        frames=rng.integers(1, 50, n),
        boxes_xyxy=np.concatenate([xy, xy + wh], axis=1),
        scores=rng.uniform(0, 1, n),
        ids=rng.integers(1, 20, n),
    )
    path = tmp_path / "res.txt"
    write_mot(path, table)
    back = read_mot(path)
    np.testing.assert_array_equal(back.frames, table.frames)
    np.testing.assert_array_equal(back.ids, table.ids)
    np.testing.assert_allclose(back.boxes_xyxy, table.boxes_xyxy, atol=1.1e-3)
    np.testing.assert_allclose(back.scores, table.scores, rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(1, 10_000),
            st.integers(-1, 10**6),
            st.floats(-1e4, 1e4),
            st.floats(-1e4, 1e4),
            st.floats(0.001, 1e4),
            st.floats(0.001, 1e4),
            st.floats(-1e3, 1e3),
        ),
        max_size=20,
    )
)
def test_write_read_round_trip_property(tmp_path_factory, rows: list[tuple]) -> None:
    array = np.array(rows, dtype=np.float64).reshape(-1, 7)
    table = MotTable.from_arrays(
        frames=array[:, 0].astype(np.int64),
        ids=array[:, 1].astype(np.int64),
        boxes_xyxy=np.concatenate([array[:, 2:4], array[:, 2:4] + array[:, 4:6]], axis=1),
        scores=array[:, 6],
    )
    path = tmp_path_factory.mktemp("prop") / "res.txt"
    write_mot(path, table)
    back = read_mot(path)
    np.testing.assert_array_equal(back.frames, table.frames)
    np.testing.assert_array_equal(back.ids, table.ids)
    np.testing.assert_allclose(back.boxes_xyxy, table.boxes_xyxy, atol=2e-3)
    np.testing.assert_allclose(back.scores, table.scores, rtol=1e-5, atol=1e-300)


@pytest.mark.parametrize(
    "box", [[0, 0, np.nan, 1], [0, 0, 1, np.inf], [5, 0, 5, 1], [0, 3, 1, 2], [0, 0, 1e-4, 1]]
)
def test_write_mot_refuses_unreadable_rows(tmp_path: Path, box: list[float]) -> None:
    path = tmp_path / "res.txt"
    path.write_text("old\n")
    table = MotTable.from_arrays(frames=[1, 2], boxes_xyxy=[[0, 0, 1, 1], box])
    with pytest.raises(EmtrackInputError, match="cannot write row 1") as info:
        write_mot(path, table)
    assert str(path) in str(info.value)
    assert path.read_text() == "old\n"


def test_write_mot_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "res.txt"
    write_mot(path, MotTable.from_arrays(frames=[], boxes_xyxy=np.zeros((0, 4))))
    assert path.read_text() == ""
    assert len(read_mot(path)) == 0


def test_write_mot_keeps_classes_in_column_8(tmp_path: Path) -> None:
    table = MotTable.from_arrays(
        frames=[1, 1], boxes_xyxy=[[0, 0, 10, 20], [5, 5, 6, 7]], ids=[1, 2], classes=[3, -1]
    )
    path = tmp_path / "res.txt"
    write_mot(path, table)
    assert path.read_text() == (
        "1,1,0.000,0.000,10.000,20.000,1,3,-1\n1,2,5.000,5.000,1.000,2.000,1,-1,-1\n"
    )
    np.testing.assert_array_equal(read_mot(path).classes, [3, -1])


# --------------------------------------------------------------------------------------------
# read_timestamps
# --------------------------------------------------------------------------------------------


def test_read_timestamps_forms(tmp_path: Path) -> None:
    text = "\ufefframe,seconds\r\n3,0.2\r\n\r\n1 , 0.0\r\n7\t0.5\r\n"
    stamps = read_timestamps(write_text(tmp_path / "t.txt", text))
    np.testing.assert_array_equal(stamps.frames, [1, 3, 7])
    np.testing.assert_array_equal(stamps.seconds, [0.0, 0.2, 0.5])
    np.testing.assert_array_equal(stamps.lines, [4, 2, 5])
    assert stamps.path == str(tmp_path / "t.txt")
    empty = read_timestamps(write_text(tmp_path / "e.txt", "frame seconds\n"))
    assert len(empty.frames) == 0
    made = Timestamps.from_arrays([5, 2], [1.5, 1.0])
    assert made.frames.tolist() == [2, 5] and made.seconds.tolist() == [1.0, 1.5]
    with pytest.raises(EmtrackInputError, match="must increase"):
        Timestamps.from_arrays([1, 2], [1.0, 1.0])


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("1,0.0\n2,0.1,9\n", 2, "expected 2 fields frame,seconds, got 3"),
        ("1,0.0\n2\n", 2, "expected 2 fields"),
        ("1,0.0\n2.5,0.1\n", 2, "frame must be a whole number >= 1, got '2.5'"),
        ("0,0.0\n", 1, "frame must be a whole number >= 1"),
        ("x,0.0\n1,0\n", 1, "frame is not a number: 'x'"),
        ("1,0.0\n2,nan\n", 2, "seconds must be a finite number, got 'nan'"),
        ("1,0.0\n2,1e999\n", 2, "seconds must be a finite number"),
        ("1,0.0\n2,0.1\n1,0.2\n", 3, "frame 1 is listed twice (also on line 1)"),
        ("1,0.0\n2,0.1\n3,0.1\n", 3, "frame 3 at 0.1 s is not after frame 2 at 0.1 s (line 2)"),
        ("2,1.0\n1,2.0\n", 1, "frame 2 at 1.0 s is not after frame 1 at 2.0 s"),
    ],
)
def test_read_timestamps_errors(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write_text(tmp_path / "t.txt", text)
    with pytest.raises(EmtrackInputError) as info:
        read_timestamps(path)
    assert (info.value.path, info.value.line) == (str(path), line)
    assert fragment in str(info.value)


# --------------------------------------------------------------------------------------------
# atomic_write
# --------------------------------------------------------------------------------------------


def test_atomic_write_text_and_binary(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    with atomic_write(path) as handle:
        handle.write("line\n")
    assert path.read_bytes() == b"line\n"
    with atomic_write(path, "wb") as handle:
        handle.write(b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_write_keeps_old_file_on_error(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old content\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(path) as handle:
        handle.write("partial new content")
        raise RuntimeError("boom")
    assert path.read_text() == "old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # temp file removed


def test_atomic_write_creates_nothing_on_error(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_write(tmp_path / "new.txt") as handle:
        handle.write("x")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_rejects_read_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "a", "r"):
        pass


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_atomic_write_permissions(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    with atomic_write(path) as handle:
        handle.write("x")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # like open(path, "w")
    path.chmod(0o640)
    with atomic_write(path) as handle:
        handle.write("y")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # kept from the replaced file


# --------------------------------------------------------------------------------------------
# read_seqinfo
# --------------------------------------------------------------------------------------------

SEQINFO = """[Sequence]
name=ADL-Rundle-6
imDir=img1
frameRate=30
seqLength=525
imWidth=1920
imHeight=1080
imExt=.jpg
"""


def test_read_seqinfo(tmp_path: Path) -> None:
    path = write_text(tmp_path / "seqinfo.ini", SEQINFO)
    info = read_seqinfo(path)
    assert info == SeqInfo("ADL-Rundle-6", 30.0, 525, 1920, 1080, path=str(path))


def test_read_seqinfo_case_insensitive_crlf_comments_and_defaults(tmp_path: Path) -> None:
    text = "; comment\r\n[other]\r\nx=1\r\n[SEQUENCE]\r\n# c\r\nFRAMERATE = 12.5\r\nseqlength=7\r\n"
    path = write_text(tmp_path / "MySeq" / "seqinfo.ini", text)
    info = read_seqinfo(path)
    assert info.name == "MySeq"  # defaults to the folder name
    assert info.frame_rate == 12.5 and info.seq_length == 7
    assert info.im_width is None and info.im_height is None


@pytest.mark.parametrize(
    ("text", "line", "fragments"),
    [
        ("[Sequence]\nframeRate=30\n", None, ["missing key seqLength"]),
        ("[Sequence]\nseqLength=30\n", None, ["missing key frameRate"]),
        ("[Sequence]\nframeRate=fast\nseqLength=5\n", 2, ["frameRate", "'fast'"]),
        ("[Sequence]\nframeRate=0\nseqLength=5\n", 2, ["frameRate", "> 0"]),
        ("[Sequence]\nframeRate=30\nseqLength=-5\n", 3, ["seqLength", "> 0"]),
        ("[Sequence]\nframeRate=30\nseqLength=5.5\n", 3, ["seqLength", "whole number"]),
        ("[Sequence]\nframeRate=nan\nseqLength=5\n", 2, ["frameRate"]),
        ("[Sequence]\nframeRate=30\nseqLength=5\nimWidth=wide\n", 4, ["imWidth", "'wide'"]),
        ("[Sequence]\nframeRate=30\nseqLength=5\nseqLength=6\n", 4, ["twice", "line 3"]),
        ("[Sequence]\nframeRate=30\njunk\n", 3, ["key=value"]),
        ("[Sequence\n", 1, ["section"]),
        ("name=x\nframeRate=30\nseqLength=5\n", None, ["no [Sequence] section"]),
        ("", None, ["no [Sequence] section"]),
    ],
)
def test_read_seqinfo_errors(
    tmp_path: Path, text: str, line: int | None, fragments: list[str]
) -> None:
    path = write_text(tmp_path / "seqinfo.ini", text)
    with pytest.raises(EmtrackInputError) as info:
        read_seqinfo(path)
    assert info.value.path == str(path)
    assert info.value.line == line
    for fragment in fragments:
        assert fragment in str(info.value)


def test_read_seqinfo_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EmtrackInputError, match="not found") as info:
        read_seqinfo(tmp_path / "seqinfo.ini")
    assert str(tmp_path / "seqinfo.ini") in str(info.value)


# --------------------------------------------------------------------------------------------
# find_sequences
# --------------------------------------------------------------------------------------------


def test_find_sequences_folder_of_sequences(tmp_path: Path) -> None:
    write_text(tmp_path / "B" / "det" / "det.txt", "")
    write_text(tmp_path / "B" / "seqinfo.ini", SEQINFO)
    write_text(tmp_path / "A" / "det" / "det.txt", "")
    write_text(tmp_path / "A" / "gt" / "gt.txt", "")
    write_text(tmp_path / "C" / "det" / "other.txt", "")  # skipped: no det.txt
    (tmp_path / "notes.txt").write_text("not a sequence")
    found = find_sequences(tmp_path)
    assert [s.name for s in found] == ["A", "B"]
    a, b = found
    assert a.det == tmp_path / "A" / "det" / "det.txt"
    assert a.gt == tmp_path / "A" / "gt" / "gt.txt" and a.seqinfo is None
    assert b.seqinfo == tmp_path / "B" / "seqinfo.ini" and b.gt is None
    assert [s.name for s in find_sequences(tmp_path, det_name="other.txt")] == ["C"]


def test_find_sequences_single_sequence_folder(tmp_path: Path) -> None:
    seq = tmp_path / "Seq-1"
    write_text(seq / "det" / "det.txt", "")
    (found,) = find_sequences(seq)
    assert found.name == "Seq-1" and found.det == seq / "det" / "det.txt"


def test_find_sequences_nothing_found(tmp_path: Path) -> None:
    write_text(tmp_path / "det" / "det_acf.txt", "")
    with pytest.raises(EmtrackInputError, match="no sequences found") as info:
        find_sequences(tmp_path)
    assert "det_acf.txt" in str(info.value)  # hints at the file that is there
    assert str(tmp_path) in str(info.value)
    with pytest.raises(EmtrackInputError, match="not found"):
        find_sequences(tmp_path / "missing")


# --------------------------------------------------------------------------------------------
# Real MOTChallenge files (../shared/data)
# --------------------------------------------------------------------------------------------


def test_real_mot15_det_and_gt(shared_data: Path) -> None:
    seq = shared_data / "MOT15" / "ADL-Rundle-6"
    det = read_mot(seq / "det" / "det.txt")
    assert len(det) == 4325
    np.testing.assert_allclose(
        det.boxes_xyxy[0], [1691.97, 381.048, 1691.97 + 152.23, 381.048 + 352.617]
    )
    assert det.scores[0] == 0.995616
    assert np.all(det.ids == -1) and np.all(det.classes == -1)
    gt = read_mot(seq / "gt" / "gt.txt")
    assert len(gt) == 5009
    assert np.all(gt.classes == -1) and np.all(gt.visibility == -1)  # 10-column gt
    info = read_seqinfo(seq / "seqinfo.ini")
    assert info == SeqInfo("ADL-Rundle-6", 30.0, 525, 1920, 1080, path=str(seq / "seqinfo.ini"))
    assert det.num_frames <= info.seq_length and gt.num_frames <= info.seq_length
    assert len(det.frame_index(info.seq_length)) == 525


def test_real_mot17_gt_nine_columns(shared_data: Path) -> None:
    seq = shared_data / "MOT17" / "MOT17-02-FRCNN"
    gt = read_mot(seq / "gt" / "gt.txt")  # the file is sorted by id, not frame
    assert len(gt) == 30003
    assert np.all(np.diff(gt.frames) >= 0)
    # First line of the file: 1,1,912,484,97,109,0,7,1 (id 1 comes first in frame 1: stable sort).
    assert gt.frames[0] == 1 and gt.ids[0] == 1
    np.testing.assert_array_equal(gt.boxes_xyxy[0], [912, 484, 1009, 593])
    assert gt.scores[0] == 0 and gt.classes[0] == 7 and gt.visibility[0] == 1
    assert {1, 2, 7}.issubset(set(gt.classes.tolist()))
    assert np.all((gt.visibility >= 0) & (gt.visibility <= 1))
    info = read_seqinfo(seq / "seqinfo.ini")
    assert (info.name, info.frame_rate, info.seq_length) == ("MOT17-02-FRCNN", 30.0, 600)
    assert gt.num_frames == info.seq_length


def test_real_every_file_reads(shared_data: Path) -> None:
    seqinfos = sorted(shared_data.glob("MOT*/*/seqinfo.ini"))
    assert len(seqinfos) == 15
    for seqinfo in seqinfos:
        info = read_seqinfo(seqinfo)
        assert info.name == seqinfo.parent.name
        for txt in sorted(seqinfo.parent.glob("*/*.txt")):
            table = read_mot(txt)
            assert len(table) > 0
            assert table.num_frames <= info.seq_length
            assert np.all(table.boxes_xyxy[:, 2:] > table.boxes_xyxy[:, :2])


def test_real_find_sequences(shared_data: Path) -> None:
    found = find_sequences(shared_data / "MOT15")
    assert [s.name for s in found] == sorted(
        ["ADL-Rundle-6", "ADL-Rundle-8", "ETH-Bahnhof", "ETH-Pedcross2", "TUD-Campus",
         "TUD-Stadtmitte", "Venice-2"]
    )  # fmt: skip
    assert all(s.seqinfo is not None and s.gt is not None for s in found)
    acf = find_sequences(shared_data / "MOT15", det_name="det_acf.txt")
    assert [s.name for s in acf] == ["TUD-Campus", "TUD-Stadtmitte", "Venice-2"]
    with pytest.raises(EmtrackInputError, match="no sequences"):
        find_sequences(shared_data / "MOT17")  # ground truth only, no det/


def test_real_det_round_trip(shared_data: Path, tmp_path: Path) -> None:
    det = read_mot(shared_data / "MOT15" / "TUD-Campus" / "det" / "det.txt")
    write_mot(tmp_path / "det.txt", det)
    back = read_mot(tmp_path / "det.txt")
    np.testing.assert_array_equal(back.frames, det.frames)
    np.testing.assert_allclose(back.boxes_xyxy, det.boxes_xyxy, atol=1.1e-3)
    np.testing.assert_array_equal(back.scores, det.scores)  # 6 significant digits: exact
