"""Detectors whose scores are not probabilities: per-file rank normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from emtrack.io import MotTable
from emtrack.track import SCORE_NORMALISATIONS, TrackerConfig, normalised_scores, track_sequence
from emtrack.track.run import MIN_STARTING_SHARE
from test_tracker import _scene_tables


def test_scores_in_unit_range_are_kept_as_given() -> None:
    scores = np.array([0.2, 1.0, 0.0, 0.7])
    assert normalised_scores(scores) is scores
    np.testing.assert_array_equal(normalised_scores(scores * 100, "none"), scores * 100)


def test_raw_scores_become_their_rank_in_the_file() -> None:
    raw = np.array([12.0, -0.3, 95.0, 12.0, 40.0])
    ranks = normalised_scores(raw)
    # fraction of the file's detections scoring at most as high; ties share the rank
    np.testing.assert_allclose(ranks, [0.6, 0.2, 1.0, 0.6, 0.8])
    np.testing.assert_allclose(normalised_scores(raw, "rank"), ranks)
    # "rank" also ranks scores that are already in [0, 1]
    np.testing.assert_allclose(normalised_scores(np.array([0.9, 0.1]), "rank"), [1.0, 0.5])
    assert normalised_scores(np.zeros(0)).shape == (0,)
    # A file with one score for all (a detector writing 0 or -1 for "no score"): all used.
    np.testing.assert_array_equal(normalised_scores(np.zeros(4)), np.ones(4))
    np.testing.assert_array_equal(normalised_scores(np.full(3, -1.0)), np.ones(3))
    np.testing.assert_array_equal(normalised_scores(np.zeros(4), "none"), np.zeros(4))
    with pytest.raises(ValueError, match="score normalisation"):
        normalised_scores(raw, "zscore")
    with pytest.raises(ValueError, match="score_normalisation"):
        TrackerConfig(score_normalisation="zscore")
    assert TrackerConfig().score_normalisation == "auto" == SCORE_NORMALISATIONS[0]


@pytest.mark.parametrize("offline", [False, True])
def test_a_detector_with_raw_scores_tracks_as_its_ranks_do(offline: bool) -> None:
    """Scores x100 (an ACF-like detector): ``auto`` tracks exactly as ranks of the original
    scores do, writes the raw scores back, and differs from using the raw scores as given."""
    scene, dets = _scene_tables(3)
    raw = MotTable.from_arrays(dets.frames, dets.boxes_xyxy, dets.scores * 100.0 - 5.0)
    auto = track_sequence(raw, scene.seqinfo, offline=offline).result
    ranked = track_sequence(
        dets, scene.seqinfo, config=TrackerConfig(score_normalisation="rank"), offline=offline
    ).result
    np.testing.assert_array_equal(auto.frames, ranked.frames)
    np.testing.assert_array_equal(auto.ids, ranked.ids)
    np.testing.assert_array_equal(auto.boxes_xyxy, ranked.boxes_xyxy)
    # The result's score column holds the file's own scores (0 for offline gap fills).
    detected = auto.scores != 0
    assert detected.sum() > 0.5 * len(auto)
    # (offline boxes are smoothed, so look the scores up by frame)
    file_scores = set(zip(raw.frames.tolist(), raw.scores.tolist(), strict=True))
    reported = zip(auto.frames[detected].tolist(), auto.scores[detected].tolist(), strict=True)
    assert set(reported) <= file_scores
    as_given = track_sequence(
        raw, scene.seqinfo, config=TrackerConfig(score_normalisation="none"), offline=offline
    ).result
    assert len(as_given) != len(auto)


def test_a_file_without_real_scores_is_tracked() -> None:
    scene, dets = _scene_tables(4)
    for constant in (0.0, -1.0):
        flat = MotTable.from_arrays(dets.frames, dets.boxes_xyxy, np.full(len(dets), constant))
        result = track_sequence(flat, scene.seqinfo).result
        assert len(result) > 0.5 * len(dets)
        assert set(result.scores.tolist()) == {constant}
        none = TrackerConfig(score_normalisation="none")
        assert len(track_sequence(flat, scene.seqinfo, config=none).result) == 0


def test_scores_too_low_for_the_thresholds_are_ranked() -> None:
    """Scores in [0, 1] of which fewer than 5 % reach ``new_track_score`` are ranked by
    ``auto``: compared as given, almost no track could start."""
    assert MIN_STARTING_SHARE == 0.05
    below = np.linspace(0.1, 0.7, 100)  # none reaches 0.75
    np.testing.assert_allclose(normalised_scores(below), np.arange(1, 101) / 100)
    four = np.concatenate([below[:96], np.full(4, 0.8)])  # 4 % reach it: ranked
    assert normalised_scores(four) is not four
    five = np.concatenate([below[:95], np.full(5, 0.8)])  # 5 %: kept
    assert normalised_scores(five) is five
    # The threshold is the one the tracker will use.
    assert normalised_scores(below, new_track_score=0.65) is below  # 9 % reach 0.65
    assert normalised_scores(five, new_track_score=0.9) is not five
    # "none" never ranks.
    assert normalised_scores(below, "none") is below


@pytest.mark.parametrize("offline", [False, True])
def test_a_detector_scoring_below_the_thresholds_is_tracked(offline: bool) -> None:
    """Scores x0.6 (none reaches 0.75, a detector less confident than the thresholds expect):
    ``auto`` tracks exactly as the ranks of the original scores do, and the file's own
    scores go back into the result; as given, not a single track starts."""
    scene, dets = _scene_tables(5)
    low = MotTable.from_arrays(dets.frames, dets.boxes_xyxy, dets.scores * 0.6)
    assert low.scores.max() < TrackerConfig().new_track_score
    auto = track_sequence(low, scene.seqinfo, offline=offline).result
    ranked = track_sequence(
        dets, scene.seqinfo, config=TrackerConfig(score_normalisation="rank"), offline=offline
    ).result
    assert len(auto) > 0.5 * len(dets)
    np.testing.assert_array_equal(auto.ids, ranked.ids)
    np.testing.assert_array_equal(auto.boxes_xyxy, ranked.boxes_xyxy)
    detected = auto.scores != 0
    np.testing.assert_allclose(auto.scores[detected], ranked.scores[detected] * 0.6)
    as_given = track_sequence(
        low, scene.seqinfo, config=TrackerConfig(score_normalisation="none"), offline=offline
    ).result
    assert len(as_given) == 0
    # With a new_track_score its scores reach, the file is compared as given again.
    relaxed = TrackerConfig(new_track_score=0.5)
    relaxed_auto = track_sequence(low, scene.seqinfo, config=relaxed, offline=offline).result
    relaxed_none = track_sequence(
        low,
        scene.seqinfo,
        config=TrackerConfig(new_track_score=0.5, score_normalisation="none"),
        offline=offline,
    ).result
    assert len(relaxed_auto) > 0
    np.testing.assert_array_equal(relaxed_auto.ids, relaxed_none.ids)
    np.testing.assert_array_equal(relaxed_auto.boxes_xyxy, relaxed_none.boxes_xyxy)
