"""Score calibration fitted to each input, without labels: P(real object | detector score).

Detectors write scores on scales of their own: probabilities, logits, raw classifier values,
a few distinct values (0/1), or one value for all. The tracker's thresholds
(``TrackerConfig.high_score``, ``low_score``, ``new_track_score``) and its score-scaled
measurement noise instead compare the *probability that a detection is a real object*, which
:func:`fit_score_calibration` estimates from the input itself.

The model (a latent-class mixture, fitted by EM): a first, score-agnostic tracking pass links
the detections into tracks (:func:`~emtrack.track.fit.fit_sequence`); every track is either a
real object or clutter. A track of class ``c`` has a length drawn from a geometric law with
mean ``1 / (1 - g_c)`` and scores drawn independently from a distribution ``θ_c`` over score
bins (deciles of the input's scores, or its distinct values when there are few). Real objects
persist; clutter (false positives, duplicate boxes, fragments) is shorter-lived, and often
scores low — but no score scale is assumed of a given detector: EM fits ``π`` (the share of
real tracks), ``θ_c`` and ``g_c`` to the input, and the class of the longer-lived tracks is
taken as the real one. A 2-class mixture with
several conditionally independent scores per track is identified without labels.

The calibration of a score bin is then the expected share of its detections that lie on real
tracks, made non-decreasing in the score (isotonic regression, weighted by the bin's counts),
and every score gets its bin's probability. Bins are bounded by scores of the input itself,
so only the order of the scores counts: logits, probabilities or any increasing map of the
same scores get the same calibration. A detector whose scores say nothing (one value for
all) has every detection count as confident; the tracks' own evidence decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import isotonic_regression

#: Score bins of the mixture: deciles of the input's scores (or its distinct values if fewer).
NUM_BINS = 10
#: EM iterations of the mixture (it converges in a few dozen on every input seen).
EM_ITERATIONS = 100
#: Pseudo-count added to every bin of each class's score distribution (keeps logs finite).
_PSEUDO_COUNT = 0.5


@dataclass(frozen=True)
class ScoreCalibration:
    """A monotone map from raw scores to the probability that a detection is a real object.

    Attributes:
        edges: ``(B - 1,)`` increasing raw scores bounding the bins: a score is in bin ``b``
            when ``b`` edges are at or below it.
        probabilities: ``(B,)`` non-decreasing probabilities of the bins, in ``[0, 1]``.
        real_share: the fitted share of the first pass's tracks that are real objects.
        real_mean_length: mean length (detections) of a real track; ``clutter_mean_length``
            the same for clutter.
        mixture: the fitted mixture's parameters ``(π, θ_real, θ_clutter, g_real,
            g_clutter)`` (see the module docstring); None when none was fitted.
    """

    edges: np.ndarray
    probabilities: np.ndarray
    real_share: float = 1.0
    real_mean_length: float = 1.0
    clutter_mean_length: float = 1.0
    mixture: tuple[float, np.ndarray, np.ndarray, float, float] | None = None

    def track_log_odds(self, scores: list[np.ndarray]) -> np.ndarray | None:
        """The log odds that each track is a real object rather than clutter, under the
        fitted mixture: its prior share, its detections' scores and its length (the E step
        of :func:`fit_score_calibration`, for any tracks).

        Args:
            scores: per track, the raw scores ``(L,)`` of its ``L >= 1`` detections.

        Returns:
            ``(K,)`` log odds (positive: real is the likelier class); None when no mixture was
            fitted (:attr:`mixture` None).
        """
        if self.mixture is None:
            return None
        if not scores:
            return np.zeros(0)
        lengths = np.array([len(raw) for raw in scores], dtype=np.int64)
        bins = np.searchsorted(self.edges, np.concatenate(scores).astype(float), side="right")
        counts = np.zeros((len(scores), len(self.edges) + 1))
        np.add.at(counts, (np.repeat(np.arange(len(scores)), lengths), bins), 1.0)
        return -_log_clutter_odds(counts, lengths.astype(float), self.mixture)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Probabilities ``(N,)`` of raw scores ``(N,)``."""
        bins = np.searchsorted(self.edges, np.asarray(scores, dtype=float), side="right")
        return self.probabilities[bins]

    def describe(self) -> str:
        """One line for ``emtrack track -v``: each bin's lower edge and probability."""
        lowers = ["min", *(f"{edge:.3g}" for edge in self.edges)]
        pairs = ", ".join(
            f"{low}: {p:.2f}" for low, p in zip(lowers, self.probabilities, strict=True)
        )
        return (
            f"score calibration (score -> P(real)): {pairs}; real tracks {self.real_share:.0%}"
            f" (mean length {self.real_mean_length:.0f}, clutter {self.clutter_mean_length:.1f})"
        )


def constant_calibration() -> ScoreCalibration:
    """Every detection counts as confident (P(real) = 1), for inputs with no detections."""
    return ScoreCalibration(np.zeros(0), np.ones(1))


def score_bin_edges(scores: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """Increasing edges ``(B - 1,)`` of at most ``num_bins`` score bins, all scores of the input.

    Its distinct values (each its own bin) when there are at most ``num_bins`` of them, else
    its deciles (fewer when deciles coincide, e.g. many equal scores); every bin holds at
    least one score.
    """
    distinct = np.unique(scores)
    if len(distinct) <= num_bins:
        return distinct[1:]
    levels = np.linspace(0.0, 1.0, num_bins + 1)[1:-1]
    edges = np.unique(np.quantile(scores, levels, method="higher"))
    return edges[edges > distinct[0]]


def fit_score_calibration(
    scores: np.ndarray, track_ids: np.ndarray, num_bins: int = NUM_BINS
) -> ScoreCalibration:
    """Fit :class:`ScoreCalibration` to an input's scores and a first pass's tracks.

    Args:
        scores: ``(N,)`` raw scores of every detection of the input.
        track_ids: ``(N,)`` the track each detection was linked to by a score-agnostic first
            pass (any integers; a detection on no track gets an id of its own).
        num_bins: score bins of the mixture (see :func:`score_bins`).

    Returns:
        The calibration (see the module docstring for the model).
    """
    scores = np.asarray(scores, dtype=float)
    if len(scores) == 0:
        return constant_calibration()
    edges = score_bin_edges(scores, num_bins)
    bins = np.searchsorted(edges, scores, side="right")
    num_used = len(edges) + 1
    _, track = np.unique(np.asarray(track_ids), return_inverse=True)
    counts = np.zeros((int(track.max()) + 1, num_used))
    np.add.at(counts, (track, bins), 1.0)
    # Tracks in a canonical order, so that the floating-point sums of EM do not depend on
    # the order of the input's rows.
    counts = counts[np.lexsort(counts.T[::-1])]
    lengths = counts.sum(1)
    if num_used == 1 or len(lengths) < 2 or lengths.max() < 2:
        # One score for all, one track, or no track that persists says nothing against any
        # detection: all count as confident, and the tracks' own evidence decides.
        return ScoreCalibration(edges, np.ones(num_used), 1.0, float(lengths.mean()))
    responsibility = _initial_responsibility(counts, lengths)
    for _ in range(EM_ITERATIONS):
        params = _m_step(counts, lengths, responsibility)
        responsibility = _e_step(counts, lengths, params)
    share, theta_real, theta_clutter, g_real, g_clutter = _m_step(counts, lengths, responsibility)
    real = responsibility[:, None] * counts
    with np.errstate(invalid="ignore", divide="ignore"):
        per_bin = real.sum(0) / counts.sum(0)
    # Label switching: "real" is the class of the longer-lived tracks (objects persist;
    # clutter comes and goes), or where both live as long, the one that scores higher.
    positions = np.arange(num_used)
    if (g_real, theta_real @ positions) < (g_clutter, theta_clutter @ positions):
        per_bin = 1.0 - per_bin
        share = 1.0 - share
        g_real, g_clutter = g_clutter, g_real
        theta_real, theta_clutter = theta_clutter, theta_real
    probabilities = isotonic_regression(per_bin, weights=counts.sum(0)).x
    return ScoreCalibration(
        edges,
        np.clip(probabilities, 0.0, 1.0),
        float(share),
        1.0 / (1.0 - g_real),
        1.0 / (1.0 - g_clutter),
        (float(share), theta_real, theta_clutter, g_real, g_clutter),
    )


def _initial_responsibility(counts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Start EM with tracks of at least 3 detections and above-median mean bin as real."""
    mean_bin = (counts @ np.arange(counts.shape[1])) / lengths
    likely = (mean_bin >= np.median(mean_bin)) & (lengths >= 3)
    return np.where(likely, 0.9, 0.1)


def _m_step(
    counts: np.ndarray, lengths: np.ndarray, responsibility: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray, float, float]:
    """``(π, θ_real, θ_clutter, g_real, g_clutter)`` given each track's P(real)."""
    share = float(np.clip(responsibility.mean(), 1e-6, 1 - 1e-6))
    thetas = []
    stops = []
    for weight in (responsibility, 1.0 - responsibility):
        theta = weight @ counts + _PSEUDO_COUNT
        thetas.append(theta / theta.sum())
        # Geometric length law: P(n) = (1 - g) g^(n - 1), g = 1 - (tracks / detections).
        tracks, detections = weight.sum() + 1e-9, weight @ lengths + 1e-9
        stops.append(float(np.clip(1.0 - tracks / detections, 1e-6, 1 - 1e-6)))
    return share, thetas[0], thetas[1], stops[0], stops[1]


def _e_step(
    counts: np.ndarray,
    lengths: np.ndarray,
    params: tuple[float, np.ndarray, np.ndarray, float, float],
) -> np.ndarray:
    """Each track's P(real) given the mixture's parameters."""
    return 1.0 / (1.0 + np.exp(np.clip(_log_clutter_odds(counts, lengths, params), -50.0, 50.0)))


def _log_clutter_odds(
    counts: np.ndarray,
    lengths: np.ndarray,
    params: tuple[float, np.ndarray, np.ndarray, float, float],
) -> np.ndarray:
    """Each track's log odds of clutter against a real object: tracks' bin counts ``(K, B)``
    and lengths ``(K,)`` under the mixture ``(π, θ_real, θ_clutter, g_real, g_clutter)``."""
    share, theta_real, theta_clutter, g_real, g_clutter = params
    log_real = (
        np.log(share)
        + counts @ np.log(theta_real)
        + np.log1p(-g_real)
        + (lengths - 1) * np.log(g_real)
    )
    log_clutter = (
        np.log1p(-share)
        + counts @ np.log(theta_clutter)
        + np.log1p(-g_clutter)
        + (lengths - 1) * np.log(g_clutter)
    )
    return log_clutter - log_real
