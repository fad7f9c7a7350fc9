"""emtrack.eval against hand-derived TrackEval numbers on tiny MOT15- and MOT17-style fixtures.

Fixtures (tests/fixtures/eval/): two pedestrians, ids 1 and 2, standing still for 5 frames at
x = 10 and x = 100 (20 x 40 boxes, far apart), so every match has IoU 1 and there are 10 gt
boxes. TOY15 has 10-column MOT15 gt (no class). TOY17 has 9-column MOT17 gt and, in addition,
a distractor (id 3, class 8, conf 1, frames 1-5) and a zero-marked pedestrian (id 4, class 1,
conf 0, frames 2-3); neither may count as a miss. Expected values are written as fractions,
the way TrackEval's tests/test_metrics_original.py does.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
from pathlib import Path

import pytest

from emtrack.errors import EmtrackInputError
from emtrack.eval import EvalReport, EvalSequence, TrackingScores, evaluate, evaluate_folder
from emtrack.io import read_seqinfo

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "eval"
RESULTS = FIXTURES / "results"
STYLES = {"MOT15": FIXTURES / "mot15" / "TOY15", "MOT17": FIXTURES / "mot17" / "TOY17"}


def sequence(style: str, result: str, name: str | None = None) -> EvalSequence:
    """An EvalSequence on the fixture of ``style`` with results/<result>.txt."""
    seq_dir = STYLES[style]
    return EvalSequence(
        name=seq_dir.name if name is None else name,
        gt_path=seq_dir / "gt" / "gt.txt",
        result_path=RESULTS / f"{result}.txt",
        seqinfo=read_seqinfo(seq_dir / "seqinfo.ini"),
    )


def score(style: str, result: str) -> TrackingScores:
    report = evaluate([sequence(style, result)])
    assert list(report.per_sequence) == [STYLES[style].name]
    # One sequence: the combined row equals the sequence row.
    assert report.combined == report.per_sequence[STYLES[style].name]
    return report.combined


def approx(fraction: float) -> object:
    """A fraction in [0, 1] as the percentage the scores hold."""
    return pytest.approx(100 * fraction, abs=1e-9)


@pytest.mark.parametrize("style", ["MOT15", "MOT17"])
def test_perfect_tracker_scores_100(style: str) -> None:
    scores = score(style, "perfect")  # ids 7 and 9: labels need not equal gt ids
    for value in (scores.hota, scores.deta, scores.assa, scores.mota, scores.idf1, scores.motp):
        assert value == approx(1)
    assert (scores.idsw, scores.frag, scores.clr_fp, scores.clr_fn) == (0, 0, 0, 0)
    # The distractor (id 3) and zero-marked (id 4) rows of TOY17 are not ground truth.
    assert (scores.num_gt_dets, scores.num_gt_ids) == (10, 2)
    assert (scores.num_tracker_dets, scores.num_tracker_ids) == (10, 2)


@pytest.mark.parametrize("style", ["MOT15", "MOT17"])
def test_one_id_switch(style: str) -> None:
    # gt 1 is tracked as id 1 in frames 1-3, then as id 3 in frames 4-5; gt 2 as id 2 throughout.
    scores = score(style, "id_switch")
    assert scores.idsw == 1
    assert scores.frag == 0
    assert scores.mota == approx(1 - 1 / 10)  # 1 - (FN 0 + FP 0 + IDSW 1) / 10 gt boxes
    # Identity: gt1<->id1 (3 frames), gt2<->id2 (5): IDTP 8; id 3 unmatched: IDFP 2, IDFN 2.
    assert (scores.idtp, scores.idfp, scores.idfn) == (8, 2, 2)
    assert scores.idf1 == approx(2 * 8 / (2 * 8 + 2 + 2))
    # HOTA: every box detected at IoU 1, so DetA = 1 for every alpha. AssA averages
    # TPA / (TPA + FNA + FPA) over the 10 matches: gt1-id1 3/(3+2+0) (3 matches),
    # gt1-id3 2/(2+3+0) (2 matches), gt2-id2 5/5 (5 matches).
    assa = (3 * 3 / 5 + 2 * 2 / 5 + 5 * 1) / 10
    assert scores.deta == approx(1)
    assert scores.assa == approx(assa)
    assert scores.hota == approx(math.sqrt(1 * assa))


@pytest.mark.parametrize("style", ["MOT15", "MOT17"])
def test_all_missed(style: str) -> None:
    scores = score(style, "all_missed")  # an empty result file
    assert scores.mota == approx(1 - 10 / 10)
    assert scores.hota == approx(0)
    assert scores.deta == approx(0)
    assert scores.idf1 == approx(0)
    assert (scores.clr_fn, scores.clr_tp, scores.num_tracker_dets) == (10, 0, 0)


@pytest.mark.parametrize("style", ["MOT15", "MOT17"])
def test_one_false_positive(style: str) -> None:
    # The perfect result plus one box, id 5, far from everything in frame 3.
    scores = score(style, "false_positive")
    assert scores.clr_fp == 1
    assert scores.mota == approx(1 - 1 / 10)
    assert scores.idf1 == approx(2 * 10 / (2 * 10 + 1 + 0))
    assert scores.deta == approx(10 / (10 + 0 + 1))  # TP / (TP + FN + FP), every alpha
    assert scores.assa == approx(1)
    assert scores.hota == approx(math.sqrt(10 / 11 * 1))


def test_mot17_box_on_distractor_is_removed_not_a_false_positive() -> None:
    # The perfect result plus a box on the class-8 distractor in all 5 frames.
    scores = score("MOT17", "on_distractor")
    assert scores.clr_fp == 0
    assert scores.num_tracker_dets == 10
    assert scores.hota == approx(1)
    assert scores.mota == approx(1)


def test_mot15_has_no_distractors_so_the_same_box_is_a_false_positive() -> None:
    scores = score("MOT15", "on_distractor")
    assert scores.clr_fp == 5
    assert scores.mota == approx(1 - 5 / 10)


def test_mot17_zero_marked_pedestrian_is_not_a_miss_but_a_box_on_it_is_a_false_positive() -> None:
    # TrackEval removes conf-0 gt rows from the ground truth only (they are not distractors),
    # so a tracker that reports the zero-marked pedestrian (id 4, frames 2-3) gets 2 FP.
    scores = score("MOT17", "on_zero_marked")
    assert (scores.clr_fn, scores.clr_fp, scores.num_gt_dets) == (0, 2, 10)
    assert scores.mota == approx(1 - 2 / 10)


def test_unconfirmed_rows_are_dropped_with_a_warning() -> None:
    # The perfect result plus two rows with id -1.
    with pytest.warns(UserWarning, match=r"dropped 2 of 12 rows with id < 0"):
        scores = score("MOT15", "with_unconfirmed")
    assert scores.hota == approx(1)
    assert scores.num_tracker_dets == 10


def test_combined_row_sums_counts_over_sequences() -> None:
    report = evaluate(
        [sequence("MOT15", "perfect", name="A"), sequence("MOT15", "id_switch", name="B")]
    )
    assert list(report.per_sequence) == ["A", "B"]
    assert report.per_sequence["A"].idsw == 0
    assert report.per_sequence["B"].idsw == 1
    assert report.combined.idsw == 1
    assert report.combined.num_gt_dets == 20
    assert report.combined.mota == approx(1 - 1 / 20)
    assert report.combined.idf1 == approx(2 * 18 / (2 * 18 + 2 + 2))


def test_trackeval_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    evaluate([sequence("MOT17", "id_switch")])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_format_table_lists_sequences_then_combined() -> None:
    report = evaluate(
        [sequence("MOT15", "perfect", name="A"), sequence("MOT15", "id_switch", name="B")]
    )
    table = report.format_table()
    lines = table.splitlines()
    assert lines[0].split()[:6] == ["Sequence", "HOTA", "DetA", "AssA", "MOTA", "IDF1"]
    assert [line.split()[0] for line in lines if line[:1].isalpha()][1:] == ["A", "B", "COMBINED"]
    assert "100.00" in lines[2]
    assert f"{report.combined.mota:.2f}" in lines[-1]
    assert isinstance(report, EvalReport)


def test_explicit_benchmark_overrides_detection() -> None:
    # MOT15-style gt evaluated as MOT17: TrackEval rejects class -1 when preprocessing.
    with pytest.raises(EmtrackInputError, match=r"TrackEval: .*invalid gt classes"):
        evaluate([sequence("MOT15", "perfect")], benchmark="MOT17")
    scores = evaluate([sequence("MOT15", "perfect")], benchmark="MOT15").combined
    assert scores.hota == approx(1)


def test_unknown_benchmark_is_rejected() -> None:
    with pytest.raises(EmtrackInputError, match="unknown benchmark"):
        evaluate([sequence("MOT15", "perfect")], benchmark="KITTI")


def test_mixed_styles_are_rejected() -> None:
    with pytest.raises(EmtrackInputError, match="one ground-truth style"):
        evaluate([sequence("MOT15", "perfect"), sequence("MOT17", "perfect")])


def test_no_sequences_and_duplicate_names_are_rejected() -> None:
    with pytest.raises(EmtrackInputError, match="no sequences"):
        evaluate([])
    with pytest.raises(EmtrackInputError, match="distinct"):
        evaluate([sequence("MOT15", "perfect"), sequence("MOT15", "id_switch")])


@pytest.mark.parametrize("name", ["", "a/b", "a,b", ".."])
def test_unusable_sequence_names_are_rejected(name: str) -> None:
    with pytest.raises(EmtrackInputError, match="folder name"):
        sequence("MOT15", "perfect", name=name)


def test_malformed_result_file_names_the_file() -> None:
    with pytest.raises(EmtrackInputError) as error:
        evaluate([sequence("MOT15", "malformed")])
    assert error.value.path is not None
    assert error.value.path.endswith("malformed.txt")


@pytest.mark.parametrize(
    ("result", "message", "line"),
    [
        ("past_end", "frame 6 is beyond the sequence's seqLength=5", 2),
        ("duplicate_id", "id 1 appears more than once in frame 1 (also on line 2)", 1),
    ],
)
def test_results_trackeval_would_reject_name_the_file_and_line(
    result: str, message: str, line: int
) -> None:
    with pytest.raises(EmtrackInputError, match=re.escape(message)) as error:
        evaluate([sequence("MOT15", result)])
    assert error.value.path is not None and error.value.path.endswith(f"{result}.txt")
    assert error.value.line == line


def test_seven_column_and_mixed_rows_score_like_the_ten_column_file(tmp_path: Path) -> None:
    """TrackEval itself rejects files whose rows differ in length; we normalise them first."""
    rows = (RESULTS / "perfect.txt").read_text().splitlines()
    mixed = [row if k % 2 else ",".join(row.split(",")[:7]) for k, row in enumerate(rows)]
    path = tmp_path / "mixed.txt"
    path.write_text("\n".join(mixed) + "\n")
    staged = dataclasses.replace(sequence("MOT15", "perfect"), result_path=path)
    assert evaluate([staged]).combined == score("MOT15", "perfect")


def test_evaluate_folder_scores_sequences_with_results(tmp_path: Path) -> None:
    gt_root = tmp_path / "gt"
    shutil.copytree(FIXTURES / "mot15", gt_root)
    shutil.copytree(FIXTURES / "mot15" / "TOY15", gt_root / "OTHER")
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    shutil.copyfile(RESULTS / "id_switch.txt", results_dir / "TOY15.txt")
    shutil.copyfile(RESULTS / "perfect.txt", results_dir / "STRAY.txt")

    with pytest.warns(UserWarning) as record:
        report = evaluate_folder(gt_root, results_dir)
    messages = [str(warning.message) for warning in record]
    assert any("no result file" in m and "OTHER" in m for m in messages)
    assert any("ignored" in m and "STRAY.txt" in m for m in messages)
    assert list(report.per_sequence) == ["TOY15"]
    assert report.combined.idsw == 1


def test_evaluate_folder_without_any_result_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(EmtrackInputError, match="no result file"), pytest.warns(UserWarning):
        evaluate_folder(FIXTURES / "mot17", tmp_path)
    with pytest.raises(EmtrackInputError, match=r"no <seq>/gt/gt\.txt"):
        evaluate_folder(tmp_path, tmp_path)
