"""Property-based tests (hypothesis) of the tracker and the MOT reader.

* Random valid detection streams never crash the tracker (online and offline), and the tracks
  do not depend on the row order of the det file: shuffling the rows gives the same partition
  of detections into tracks (ids are numbered in birth order, so they may be renamed).
* Random arrays given to ``Tracker.update`` (0 to 300 boxes, tiny to huge, any finite score)
  give well-formed output.
* Random corruptions of a valid det file (garbage, NaN/Inf, non-positive sizes, bad frame or
  id, truncated rows, binary bytes) always raise ``EmtrackInputError`` naming the file and the
  corrupted line, and ``emtrack track`` exits 2 without writing a result.

Hypothesis draws the structure (lengths, counts, formats, which line and field to corrupt, with
what); numeric values come from a numpy generator seeded by hypothesis, so boxes never tie
exactly (ties would make the optimal assignment ambiguous and order-dependent by nature).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emtrack import EmtrackInputError, Tracker
from emtrack.cli import main
from emtrack.io import MotTable, SeqInfo, read_mot
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


@dataclass(frozen=True)
class StreamSpec:
    """What hypothesis decides about a stream; :func:`stream_rows` fills in the numbers."""

    num_frames: int
    objects: int
    max_clutter: int
    crowd_frame: bool
    columns: int
    seed: int


stream_specs = st.builds(
    StreamSpec,
    num_frames=st.integers(1, 25),
    objects=st.integers(0, 6),
    max_clutter=st.integers(0, 3),
    crowd_frame=st.booleans(),
    columns=st.sampled_from([7, 9, 10]),
    seed=st.integers(0, 2**32 - 1),
)


def stream_rows(spec: StreamSpec) -> list[str]:
    """Det-file rows (sorted by frame) of walkers, clutter and optionally one crowded frame.

    Walkers have heights from 2 px to 600 px, start anywhere in or partly outside the
    640x480 image, move up to 15 px a frame and are missed 20 % of the time; scores are
    uniform in [0, 1] (so both association stages and births are exercised).
    """
    rng = np.random.default_rng(spec.seed)
    k = spec.objects
    height = np.exp(rng.uniform(np.log(2.0), np.log(600.0), k))
    width = height * rng.uniform(0.2, 1.0, k)
    left = rng.uniform(-100.0, IMAGE_WIDTH, k)
    top = rng.uniform(-100.0, IMAGE_HEIGHT, k)
    velocity = rng.uniform(-15.0, 15.0, (k, 2))
    crowd = int(rng.integers(1, spec.num_frames + 1)) if spec.crowd_frame else 0
    rows = []
    for frame in range(1, spec.num_frames + 1):
        boxes = []
        present = rng.random(k) >= 0.2
        for i in np.flatnonzero(present):
            x = left[i] + velocity[i, 0] * frame + rng.normal(0.0, 0.5)
            y = top[i] + velocity[i, 1] * frame + rng.normal(0.0, 0.5)
            boxes.append((x, y, width[i], height[i]))
        clutter = int(rng.integers(0, spec.max_clutter + 1)) + (150 if frame == crowd else 0)
        for _ in range(clutter):
            h = rng.uniform(5.0, 200.0)
            boxes.append((rng.uniform(-50, IMAGE_WIDTH), rng.uniform(-50, IMAGE_HEIGHT), h / 2, h))
        for x, y, w, h in boxes:
            fields = [f"{frame}", "-1", f"{x:.3f}", f"{y:.3f}", f"{w:.3f}", f"{h:.3f}"]
            fields.append(f"{rng.uniform(0.0, 1.0):.4f}")
            if spec.columns == 9:
                fields += ["1", f"{rng.uniform(0.0, 1.0):.3f}"]
            elif spec.columns == 10:
                fields += ["-1", "-1", "-1"]
            rows.append(",".join(fields))
    return rows


def partition(result: MotTable) -> set[frozenset[tuple]]:
    """The result's tracks as sets of (frame, box, score) rows, whatever the ids are."""
    tracks: dict[int, set[tuple]] = {}
    for frame, track_id, box, score in zip(
        result.frames.tolist(),
        result.ids.tolist(),
        np.round(result.boxes_xyxy, 6).tolist(),
        np.round(result.scores, 6).tolist(),
        strict=True,
    ):
        tracks.setdefault(track_id, set()).add((frame, *box, score))
    return {frozenset(rows) for rows in tracks.values()}


@PROPERTY_SETTINGS
@given(spec=stream_specs, order_seed=st.integers(0, 2**32 - 1), offline=st.booleans())
def test_tracks_do_not_depend_on_the_row_order(
    spec: StreamSpec, order_seed: int, offline: bool
) -> None:
    rows = stream_rows(spec)
    shuffled = [rows[i] for i in np.random.default_rng(order_seed).permutation(len(rows))]
    seqinfo = SeqInfo("prop", frame_rate=30.0, seq_length=spec.num_frames)
    config = TrackerConfig()
    results = []
    with scratch_folder() as folder:
        for name, lines in (("sorted.txt", rows), ("shuffled.txt", shuffled)):
            path = folder / name
            path.write_text("".join(line + "\n" for line in lines))
            detections = read_mot(path)
            assert len(detections) == len(rows)
            run = track_sequence(detections, seqinfo, model=MODEL, config=config, offline=offline)
            results.append(run.result)
    first, second = results
    assert len(first) == len(second)
    assert partition(first) == partition(second)
    # Well-formed output: ids >= 1, one box per id and frame, frames within the sequence.
    for result in results:
        assert np.all(result.ids >= 1)
        pairs = result.frames * 10**6 + result.ids
        assert len(np.unique(pairs)) == len(pairs)
        assert result.num_frames <= spec.num_frames


@PROPERTY_SETTINGS
@given(
    counts=st.lists(st.integers(0, 300), min_size=1, max_size=8),
    log_size=st.tuples(st.floats(-2.0, 5.0), st.floats(0.0, 3.0)),
    jump=st.floats(0.0, 500.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_update_arrays_never_crash(
    counts: list[int], log_size: tuple[float, float], jump: float, seed: int
) -> None:
    """0 to 300 boxes a frame, sizes from 0.01 px to 100 000 px, jumps up to 500 px."""
    rng = np.random.default_rng(seed)
    output_boxes = "detections" if rng.random() < 0.5 else "filtered"
    config = TrackerConfig(output_boxes=output_boxes)
    tracker = Tracker(frame_rate=float(rng.uniform(1.0, 120.0)), model=MODEL, config=config)
    low, spread = log_size
    for n in counts:
        size = 10.0 ** rng.uniform(low, low + spread, (n, 2))
        corner = rng.uniform(-1000.0, 3000.0, (n, 2)) + rng.normal(0.0, jump + 1e-9, (n, 2))
        dets = np.concatenate(
            [corner, corner + size, rng.uniform(-1.0, 2.0, (n, 1))], axis=1
        ).astype(np.float32 if rng.random() < 0.5 else np.float64)
        # float32 may round a tiny box to zero width: such rows are invalid input, skip them
        wide = (dets[:, 2] > dets[:, 0]) & (dets[:, 3] > dets[:, 1])
        dets = dets[wide]
        out = tracker.update(dets)
        assert out.shape == (len(tracker.last_rows), 5)
        assert np.all(np.isfinite(out))
        if output_boxes == "detections":
            np.testing.assert_array_equal(out[:, :4], dets[tracker.last_rows, :4].astype(float))
        else:  # the tracks' estimates: proper boxes
            assert np.all(out[:, 2:4] > out[:, 0:2])
        assert np.all(np.diff(tracker.last_rows) > 0)  # input order, each row at most once
        assert len(set(out[:, 4].tolist())) == len(out) and np.all(out[:, 4] >= 1)


# --------------------------------------------------------------------------------------------
# Corrupted files
# --------------------------------------------------------------------------------------------

GARBAGE = ["abc", "", " ", "nan", "NaN", "inf", "-inf", "1e999", "0x1F", "1_0", "--1", "1.2.3"]
GARBAGE += ["#", "1,5".replace(",", ";"), "None", "\t", "1e", "+-3", "\u0661"]
NON_POSITIVE = ["0", "-0", "0.0", "-1", "-12.5", "-1e-9"]
BAD_FRAMES = ["0", "-1", "1.5", "2.0000001", "1e300", "-0.5"]
BAD_IDS = ["0.5", "-1.25", "3.000001"]
INVALID_BYTES = [b"\x00", b"\xff", b"\xfe", b"\xc0", b"\x80", b"\xe9"]


@st.composite
def corrupted_files(draw: st.DrawFn) -> tuple[bytes, int, str]:
    """A valid det file with exactly one line corrupted: (content, its 1-based line, kind)."""
    spec = draw(stream_specs)
    rows = stream_rows(spec)
    if not rows:
        rows = ["1,-1,10,10,5,5,0.9,-1,-1,-1"]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    index = draw(st.integers(0, len(rows) - 1))
    fields = rows[index].split(",")
    kind = draw(st.sampled_from(["garbage", "size", "frame", "id", "truncate", "binary"]))
    line_bytes: bytes
    if kind == "garbage":
        fields[draw(st.integers(0, len(fields) - 1))] = draw(st.sampled_from(GARBAGE))
    elif kind == "size":
        fields[draw(st.sampled_from([4, 5]))] = draw(st.sampled_from(NON_POSITIVE))
    elif kind == "frame":
        fields[0] = draw(st.sampled_from(BAD_FRAMES))
    elif kind == "id":
        fields[1] = draw(st.sampled_from(BAD_IDS))
    elif kind == "truncate":
        fields = fields[: draw(st.integers(1, 6))]
    line_bytes = ",".join(fields).encode("utf-8")
    if kind == "binary":
        blob = bytearray(draw(st.binary(max_size=8)).replace(b"\n", b""))
        blob[draw(st.integers(0, len(blob))) : 0] = draw(st.sampled_from(INVALID_BYTES))
        at = draw(st.integers(0, len(line_bytes)))
        line_bytes = line_bytes[:at] + bytes(blob) + line_bytes[at:]
    lines = [row.encode("ascii") for row in rows]
    lines[index] = line_bytes
    content = b"".join(line + newline.encode() for line in lines)
    if draw(st.booleans()):
        content = b"\xef\xbb\xbf" + content  # a UTF-8 BOM must not shift the reported line
    return content, index + 1, kind


@PROPERTY_SETTINGS
@given(case=corrupted_files())
def test_corrupted_file_names_the_line_and_writes_nothing(case: tuple[bytes, int, str]) -> None:
    content, line, kind = case
    with scratch_folder() as folder:
        det = folder / "SEQ" / "det" / "det.txt"
        det.parent.mkdir(parents=True)
        det.write_bytes(content)
        (folder / "SEQ" / "seqinfo.ini").write_text("[Sequence]\nframeRate=30\nseqLength=30\n")
        with pytest.raises(EmtrackInputError) as caught:
            read_mot(det)
        assert (caught.value.path, caught.value.line) == (str(det), line), (kind, caught.value)

        out = folder / "out" / "result.txt"
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            status = main(["track", "--det", str(det), "--out", str(out)])
        assert status == 2
        assert f"emtrack: error: {det}:{line}: " in stderr.getvalue()
        assert "Traceback" not in stderr.getvalue()
        assert not out.exists() and not out.parent.exists()
