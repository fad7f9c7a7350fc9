"""Property-based tests (hypothesis) of the tracker and the MOT reader.

* Random valid detection streams never crash the tracker (online and offline), and the tracks
  do not depend on the row order of the det file: shuffling the rows gives the same partition
  of detections into tracks (ids are numbered in birth order, so they may be renamed). The
  streams come in every det-file dialect (commas, spaces, tabs, a header line; 6, 7, 9 or 10
  columns), with one or two classes (tracked per class), with degenerate rows (zero width or
  height, boxes entirely outside the image: skipped, the tracks are those of the file without
  them) and with dropped frames (a shuffled timestamps file with uneven times).
* Random arrays given to ``Tracker.update`` (0 to 300 boxes, tiny to huge, some of zero width
  or height, any finite score, with or without a class column, with or without timestamps)
  give well-formed output.
* Random corruptions of a valid det file in any dialect (garbage, NaN/Inf, negative sizes, bad
  frame or id, truncated rows, binary bytes) always raise ``EmtrackInputError`` naming the file
  and the corrupted line, and ``emtrack track`` exits 2 without writing a result; a zero width
  or height instead is skipped with one warning naming its line (``--strict``: the error).

Hypothesis draws the structure (lengths, counts, formats, which line and field to corrupt, with
what); numeric values come from a numpy generator seeded by hypothesis, so boxes never tie
exactly (ties would make the optimal assignment ambiguous and order-dependent by nature).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emtrack import EmtrackInputError, EmtrackInputWarning, Tracker
from emtrack.cli import main
from emtrack.io import MotTable, SeqInfo, read_mot, read_timestamps
from emtrack.track import TrackerConfig, load_model, track_sequence

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
MODEL = load_model()  # the shipped weights, loaded once
IMAGE_WIDTH, IMAGE_HEIGHT = 640, 480


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    """A fresh folder per hypothesis example (function-scoped fixtures are shared by all)."""
    with tempfile.TemporaryDirectory(prefix="emtrack-prop-") as folder:
        yield Path(folder)


# --------------------------------------------------------------------------------------------
# Valid streams
# --------------------------------------------------------------------------------------------

#: Det-file dialects: how rows are written (see :func:`format_rows`).
DIALECTS = ("comma", "spaces", "tabs", "header")


@dataclass(frozen=True)
class StreamSpec:
    """What hypothesis decides about a stream; :func:`stream_rows` fills in the numbers.

    ``columns``: 6, 7, 9 or 10 columns (a ``header`` dialect names its own); ``two_classes``:
    objects of classes 1 and 2 (a class column: 9 columns or a header); ``degenerate``: rows of
    zero width or height added; ``dropped``: frames the detector skipped (their rows removed,
    the others listed in a timestamps file with uneven times).
    """

    num_frames: int
    objects: int
    max_clutter: int
    crowd_frame: bool
    columns: int
    seed: int
    dialect: str = "comma"
    two_classes: bool = False
    degenerate: int = 0
    dropped: bool = False


stream_specs = st.builds(
    StreamSpec,
    num_frames=st.integers(1, 25),
    objects=st.integers(0, 6),
    max_clutter=st.integers(0, 3),
    crowd_frame=st.booleans(),
    columns=st.sampled_from([6, 7, 9, 10]),
    seed=st.integers(0, 2**32 - 1),
    dialect=st.sampled_from(DIALECTS),
    two_classes=st.booleans(),
    degenerate=st.integers(0, 3),
    dropped=st.booleans(),
)

#: A stream row: frame, x, y, w, h, score, class.
Row = tuple[int, float, float, float, float, float, int]


def stream_rows(spec: StreamSpec) -> list[Row]:
    """Rows (sorted by frame) of walkers, clutter and optionally one crowded frame.

    Walkers have heights from 2 px to 600 px, start anywhere in or partly outside the
    640x480 image, move up to 15 px a frame and are missed 20 % of the time; scores are
    uniform in [0, 1] (so both association stages and births are exercised). With
    ``two_classes`` every object and clutter box is of class 1 or 2 (else 1).
    """
    rng = np.random.default_rng(spec.seed)
    k = spec.objects
    height = np.exp(rng.uniform(np.log(2.0), np.log(600.0), k))
    width = height * rng.uniform(0.2, 1.0, k)
    left = rng.uniform(-100.0, IMAGE_WIDTH, k)
    top = rng.uniform(-100.0, IMAGE_HEIGHT, k)
    velocity = rng.uniform(-15.0, 15.0, (k, 2))
    classes = rng.integers(1, 3, k) if spec.two_classes else np.ones(k, np.int64)
    crowd = int(rng.integers(1, spec.num_frames + 1)) if spec.crowd_frame else 0
    rows: list[Row] = []
    for frame in range(1, spec.num_frames + 1):
        boxes = []
        present = rng.random(k) >= 0.2
        for i in np.flatnonzero(present):
            x = left[i] + velocity[i, 0] * frame + rng.normal(0.0, 0.5)
            y = top[i] + velocity[i, 1] * frame + rng.normal(0.0, 0.5)
            boxes.append((x, y, width[i], height[i], int(classes[i])))
        clutter = int(rng.integers(0, spec.max_clutter + 1)) + (150 if frame == crowd else 0)
        for _ in range(clutter):
            h = rng.uniform(5.0, 200.0)
            x, y = rng.uniform(-50, IMAGE_WIDTH), rng.uniform(-50, IMAGE_HEIGHT)
            boxes.append((x, y, h / 2, h, int(rng.integers(1, 3)) if spec.two_classes else 1))
        for x, y, w, h, class_id in boxes:
            score = 1.0 if spec.columns == 6 and spec.dialect != "header" else rng.uniform()
            rows.append((frame, round(x, 3), round(y, 3), round(w, 3), round(h, 3),
                         round(score, 4), class_id))  # fmt: skip
    return rows


def degenerate_rows(spec: StreamSpec) -> list[Row]:
    """``spec.degenerate`` rows of zero width or height, in random frames."""
    rng = np.random.default_rng(spec.seed + 1)
    rows: list[Row] = []
    for _ in range(spec.degenerate):
        w, h = (0.0, 50.0) if rng.random() < 0.5 else (30.0, 0.0)
        frame = int(rng.integers(1, spec.num_frames + 1))
        rows.append((frame, float(rng.uniform(0, 600)), 100.0, w, h, 0.99, 1))
    return rows


def inside_image(row: Row) -> bool:
    """Whether a row's box overlaps the 640x480 image (else it is skipped as degenerate)."""
    _, x, y, w, h, _, _ = row
    return x + w > 0 and y + h > 0 and x < IMAGE_WIDTH and y < IMAGE_HEIGHT


def has_class_column(spec: StreamSpec) -> bool:
    return spec.dialect == "header" or spec.columns == 9


def format_rows(rows: list[Row], spec: StreamSpec) -> list[str]:
    """Det-file lines of ``rows`` in the spec's dialect (a header dialect: its first line)."""
    if spec.dialect == "header":
        lines = ["# frame score class x y w h id"]
        lines += [f"{f} {s} {c} {x} {y} {w} {h} -1" for f, x, y, w, h, s, c in rows]
        return lines
    separator = {"comma": ",", "spaces": "  ", "tabs": "\t"}[spec.dialect]
    lines = []
    for f, x, y, w, h, s, c in rows:
        fields = [f"{f}", "-1", f"{x}", f"{y}", f"{w}", f"{h}"]
        if spec.columns >= 7:
            fields.append(f"{s}")
        if spec.columns == 9:
            fields += [f"{c}", "0.5"]
        elif spec.columns == 10:
            fields += ["-1", "-1", "-1"]
        lines.append(separator.join(fields))
    return lines


def drop_frames(rows: list[Row], spec: StreamSpec) -> tuple[list[Row], list[str]]:
    """With ``spec.dropped``: rows without the dropped frames (about a third, never all),
    and the timestamps lines of the kept frames (uneven times, in shuffled order)."""
    if not spec.dropped:
        return rows, []
    rng = np.random.default_rng(spec.seed + 2)
    frames = np.arange(1, spec.num_frames + 1)
    kept = frames[(rng.random(len(frames)) >= 0.35) | (frames == 1)]
    times = np.cumsum(rng.uniform(0.5, 1.5, len(kept))) / 30.0
    lines = [f"{f},{t:.6f}" for f, t in zip(kept.tolist(), times.tolist(), strict=True)]
    lines = [lines[i] for i in rng.permutation(len(lines))]
    return [row for row in rows if row[0] in set(kept.tolist())], ["frame,seconds", *lines]


def partition(result: MotTable) -> set[frozenset[tuple]]:
    """The result's tracks as sets of (frame, box, score, class) rows, whatever the ids are."""
    tracks: dict[int, set[tuple]] = {}
    for frame, track_id, box, score, class_id in zip(
        result.frames.tolist(),
        result.ids.tolist(),
        np.round(result.boxes_xyxy, 6).tolist(),
        np.round(result.scores, 6).tolist(),
        result.classes.tolist(),
        strict=True,
    ):
        tracks.setdefault(track_id, set()).add((frame, *box, score, class_id))
    return {frozenset(rows) for rows in tracks.values()}


def write_stream(folder: Path, name: str, lines: list[str], stamps: list[str]) -> tuple:
    """Write a det file (and its timestamps file); read them back as the CLI would."""
    path = folder / f"{name}.txt"
    path.write_text("".join(line + "\n" for line in lines))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        detections = read_mot(path, image_size=(IMAGE_WIDTH, IMAGE_HEIGHT))
    timestamps = None
    if stamps:
        (folder / f"{name}.times").write_text("\n".join(stamps) + "\n")
        timestamps = read_timestamps(folder / f"{name}.times")
    return detections, timestamps, [str(w.message) for w in caught]


@PROPERTY_SETTINGS
@given(spec=stream_specs, order_seed=st.integers(0, 2**32 - 1), offline=st.booleans())
def test_tracks_do_not_depend_on_the_row_order(
    spec: StreamSpec, order_seed: int, offline: bool
) -> None:
    """Every dialect, with classes (tracked per class), degenerate rows (zero width or height,
    or entirely outside the image: skipped, the same tracks as without them) and dropped frames
    (timestamps): shuffling the rows of the det file, and of the timestamps file, changes no
    track."""
    clean = stream_rows(spec)
    rows, stamps = drop_frames(clean + degenerate_rows(spec), spec)
    clean, _ = drop_frames([row for row in clean if inside_image(row)], spec)
    rng = np.random.default_rng(order_seed)
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    shuffled_stamps = stamps[:1] + [stamps[1:][i] for i in rng.permutation(len(stamps) - 1)]
    seqinfo = SeqInfo("prop", frame_rate=30.0, seq_length=spec.num_frames)
    config = TrackerConfig()
    results = []
    with scratch_folder() as folder:
        cases = [("sorted", rows, stamps), ("shuffled", shuffled, shuffled_stamps)]
        if spec.degenerate:
            cases.append(("clean", clean, stamps))
        for name, stream, times in cases:
            lines = format_rows(stream, spec)
            detections, timestamps, caught = write_stream(folder, name, lines, times)
            skipped = len(stream) - len(clean)
            assert len(detections) == len(clean)
            assert len(caught) == (1 if skipped else 0), caught
            if skipped:
                assert f"skipped {skipped} degenerate row" in caught[0]
            run = track_sequence(
                detections, seqinfo, model=MODEL, config=config, offline=offline,
                timestamps=timestamps,
            )  # fmt: skip
            results.append(run.result)
    first = results[0]
    for other in results[1:]:
        assert len(first) == len(other)
        assert partition(first) == partition(other)
    # Well-formed output: ids >= 1, one box per id and frame, frames within the sequence,
    # classes those of the input, each track of one class.
    two = spec.two_classes and has_class_column(spec)
    for result in results:
        assert np.all(result.ids >= 1)
        pairs = result.frames * 10**6 + result.ids
        assert len(np.unique(pairs)) == len(pairs)
        assert result.num_frames <= spec.num_frames
        if not offline and has_class_column(spec):
            assert set(result.classes.tolist()) <= ({1, 2} if two else {1})
        for track_id in np.unique(result.ids).tolist():
            assert len(set(result.classes[result.ids == track_id].tolist())) == 1


@PROPERTY_SETTINGS
@given(
    counts=st.lists(st.integers(0, 300), min_size=1, max_size=8),
    log_size=st.tuples(st.floats(-2.0, 5.0), st.floats(0.0, 3.0)),
    jump=st.floats(0.0, 500.0),
    seed=st.integers(0, 2**32 - 1),
    classes=st.integers(0, 3),
    timed=st.booleans(),
)
def test_random_update_arrays_never_crash(
    counts: list[int],
    log_size: tuple[float, float],
    jump: float,
    seed: int,
    classes: int,
    timed: bool,
) -> None:
    """0 to 300 boxes a frame, sizes from 0.01 px to 100 000 px, jumps up to 500 px, some rows
    of zero width or height (dropped), 0 (no class column) to 3 classes, uneven timestamps."""
    rng = np.random.default_rng(seed)
    output_boxes = "detections" if rng.random() < 0.5 else "filtered"
    config = TrackerConfig(output_boxes=output_boxes)
    tracker = Tracker(frame_rate=float(rng.uniform(1.0, 120.0)), model=MODEL, config=config)
    low, spread = log_size
    now = float(rng.uniform(-1e3, 1e3))
    for n in counts:
        size = 10.0 ** rng.uniform(low, low + spread, (n, 2))
        size[rng.random((n, 2)) < 0.05] = 0.0  # degenerate rows
        corner = rng.uniform(-1000.0, 3000.0, (n, 2)) + rng.normal(0.0, jump + 1e-9, (n, 2))
        columns = [corner, corner + size, rng.uniform(-1.0, 2.0, (n, 1))]
        if classes:
            columns.append(rng.integers(0, classes, (n, 1)).astype(float))
        dets = np.concatenate(columns, axis=1).astype(
            np.float32 if rng.random() < 0.5 else np.float64
        )
        # float32 may round a tiny box to zero width: such rows are dropped too
        wide = (dets[:, 2] > dets[:, 0]) & (dets[:, 3] > dets[:, 1])
        now += float(rng.uniform(0.001, 2.0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EmtrackInputWarning)
            out = tracker.update(dets, timestamp=now if timed else None)
        assert out.shape == (len(tracker.last_rows), 6 if classes else 5)
        assert np.all(np.isfinite(out))
        assert np.all(wide[tracker.last_rows])  # no degenerate row is tracked
        if output_boxes == "detections":
            np.testing.assert_array_equal(out[:, :4], dets[tracker.last_rows, :4].astype(float))
        else:  # the tracks' estimates: proper boxes
            assert np.all(out[:, 2:4] > out[:, 0:2])
        if classes:
            np.testing.assert_array_equal(out[:, 5], dets[tracker.last_rows, 5].astype(float))
        assert np.all(np.diff(tracker.last_rows) > 0)  # input order, each row at most once
        assert len(set(out[:, 4].tolist())) == len(out) and np.all(out[:, 4] >= 1)
    assert tracker.dropped_rows >= 0


# --------------------------------------------------------------------------------------------
# Corrupted files
# --------------------------------------------------------------------------------------------

GARBAGE = ["abc", "", " ", "nan", "NaN", "inf", "-inf", "1e999", "0x1F", "1_0", "--1", "1.2.3"]
GARBAGE += ["#", "1,5".replace(",", ";"), "None", "\t", "1e", "+-3", "\u0661"]
#: Garbage that is one field in every dialect (no separator, not empty).
WORD_GARBAGE = [g for g in GARBAGE if g.strip() and g == g.strip()]
NEGATIVE = ["-1", "-12.5", "-1e-9", "-0.001"]
ZERO = ["0", "-0", "0.0", "0e5", "-0.000"]
BAD_FRAMES = ["0", "-1", "1.5", "2.0000001", "1e300", "-0.5"]
BAD_IDS = ["0.5", "-1.25", "3.000001"]
INVALID_BYTES = [b"\x00", b"\xff", b"\xfe", b"\xc0", b"\x80", b"\xe9"]
_SEPARATORS = {"comma": ",", "spaces": "  ", "tabs": "\t", "header": " "}
#: Where the frame, id, w and h fields are in each layout of :func:`format_rows`.
_POSITIONAL_FIELDS = {"frame": 0, "id": 1, "w": 4, "h": 5}
_HEADER_FIELDS = {"frame": 0, "id": 7, "w": 5, "h": 6}


@st.composite
def valid_files(draw: st.DrawFn) -> tuple[StreamSpec, list[str], int]:
    """A valid det file's lines (any dialect) and the index of its first data line."""
    spec = draw(stream_specs)
    rows = stream_rows(spec) or [(1, 10.0, 10.0, 5.0, 5.0, 0.9, 1)]
    return spec, format_rows(rows, spec), 1 if spec.dialect == "header" else 0


def one_line_changed(
    draw: st.DrawFn, spec: StreamSpec, lines: list[str], start: int
) -> tuple[int, list[str], dict[str, int]]:
    """A data line drawn to change: its index, its fields and where frame/id/w/h are."""
    index = draw(st.integers(start, len(lines) - 1))
    line = lines[index]
    fields = line.split(",") if spec.dialect == "comma" else line.split()
    where = _HEADER_FIELDS if spec.dialect == "header" else _POSITIONAL_FIELDS
    return index, fields, where


def encode(
    draw: st.DrawFn, spec: StreamSpec, lines: list[str], index: int, line_bytes: bytes
) -> bytes:
    """The file's bytes with line ``index`` replaced: LF or CRLF, with or without a BOM."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    encoded = [line.encode("ascii") for line in lines]
    encoded[index] = line_bytes
    content = b"".join(line + newline.encode() for line in encoded)
    if draw(st.booleans()):
        content = b"\xef\xbb\xbf" + content  # a UTF-8 BOM must not shift the reported line
    return content


@st.composite
def corrupted_files(draw: st.DrawFn) -> tuple[bytes, int, str]:
    """A valid det file (any dialect) with exactly one data line corrupted: (content, its
    1-based line, kind)."""
    spec, lines, start = draw(valid_files())
    index, fields, where = one_line_changed(draw, spec, lines, start)
    kind = draw(st.sampled_from(["garbage", "size", "frame", "id", "truncate", "binary"]))
    if kind == "garbage":
        garbage = GARBAGE if spec.dialect == "comma" else WORD_GARBAGE
        fields[draw(st.integers(0, len(fields) - 1))] = draw(st.sampled_from(garbage))
    elif kind == "size":
        fields[where[draw(st.sampled_from(["w", "h"]))]] = draw(st.sampled_from(NEGATIVE))
    elif kind == "frame":
        fields[where["frame"]] = draw(st.sampled_from(BAD_FRAMES))
    elif kind == "id":
        fields[where["id"]] = draw(st.sampled_from(BAD_IDS))
    elif kind == "truncate":
        # 6 columns are the 6-column form only when every row has 6 (and a header says how
        # many there are)
        others = len(lines) - start > 1 and spec.columns > 6
        most = len(fields) - 1 if spec.dialect == "header" else (6 if others else 5)
        fields = fields[: draw(st.integers(1, most))]
    line_bytes = _SEPARATORS[spec.dialect].join(fields).encode("utf-8")
    if kind == "binary":
        blob = bytearray(draw(st.binary(max_size=8)).replace(b"\n", b""))
        blob[draw(st.integers(0, len(blob))) : 0] = draw(st.sampled_from(INVALID_BYTES))
        at = draw(st.integers(0, len(line_bytes)))
        line_bytes = line_bytes[:at] + bytes(blob) + line_bytes[at:]
    return encode(draw, spec, lines, index, line_bytes), index + 1, kind


def write_det(folder: Path, content: bytes) -> Path:
    det = folder / "SEQ" / "det" / "det.txt"
    det.parent.mkdir(parents=True)
    det.write_bytes(content)
    (folder / "SEQ" / "seqinfo.ini").write_text("[Sequence]\nframeRate=30\nseqLength=30\n")
    return det


def run_cli(argv: list[str]) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    return status, stderr.getvalue()


@PROPERTY_SETTINGS
@given(case=corrupted_files())
def test_corrupted_file_names_the_line_and_writes_nothing(case: tuple[bytes, int, str]) -> None:
    content, line, kind = case
    with scratch_folder() as folder:
        det = write_det(folder, content)
        with pytest.raises(EmtrackInputError) as caught:
            read_mot(det)
        assert (caught.value.path, caught.value.line) == (str(det), line), (kind, caught.value)

        out = folder / "out" / "result.txt"
        status, stderr = run_cli(["track", "--det", str(det), "--out", str(out)])
        assert status == 2
        assert f"emtrack: error: {det}:{line}: " in stderr
        assert "Traceback" not in stderr
        assert not out.exists() and not out.parent.exists()


@st.composite
def files_with_a_degenerate_row(draw: st.DrawFn) -> tuple[bytes, int]:
    """A valid det file (any dialect) with one data line's width or height set to zero."""
    spec, lines, start = draw(valid_files())
    index, fields, where = one_line_changed(draw, spec, lines, start)
    fields[where[draw(st.sampled_from(["w", "h"]))]] = draw(st.sampled_from(ZERO))
    line_bytes = _SEPARATORS[spec.dialect].join(fields).encode("ascii")
    return encode(draw, spec, lines, index, line_bytes), index + 1


@PROPERTY_SETTINGS
@given(case=files_with_a_degenerate_row())
def test_degenerate_row_is_skipped_with_one_warning_naming_its_line(
    case: tuple[bytes, int],
) -> None:
    """A zero width or height: the row is skipped with one warning naming its line and the
    file is tracked (exit 0); ``--strict`` makes it the error of that line."""
    content, line = case
    with scratch_folder() as folder:
        det = write_det(folder, content)
        with pytest.warns(EmtrackInputWarning) as caught:
            table = read_mot(det)
        assert len(caught) == 1
        assert str(caught[0].message).startswith(f"{det}:{line}: skipped 1 degenerate row ")
        with pytest.raises(EmtrackInputError) as error:
            read_mot(det, strict=True)
        assert (error.value.path, error.value.line) == (str(det), line)

        out = folder / "out" / "result.txt"
        status, stderr = run_cli(["track", "--det", str(det), "--out", str(out)])
        assert status == 0, stderr
        assert f"emtrack: warning: {det}:{line}: skipped 1 degenerate row " in stderr
        assert len(read_mot(out)) <= len(table)
        strict_out = folder / "strict.txt"
        status, stderr = run_cli(["track", "--det", str(det), "--out", str(strict_out), "--strict"])
        assert status == 2 and f"emtrack: error: {det}:{line}: " in stderr
        assert not strict_out.exists()
