"""Camera motion estimated from the tracks themselves (no images needed).

A panning or shaking camera shifts every object in the image by about the same amount between
two frames, which a per-track constant-velocity model cannot foresee: tracks that are matched
drift back through their Kalman update, but tracks that miss a detection keep the old image
position and are not found again. Each frame, the tracks that were matched in the previous
frame and again now give innovations ``y_i = z_i − ẑ_i`` (detection minus predicted position,
pixels, per image coordinate) with variance ``s_i`` (the prediction's position variance plus
the detection's, per coordinate): ``y_i = c + e_i``, ``c`` the camera's shift shared by all,
``e_i ~ N(0, s_i)``.

With a prior ``c ~ N(0, σ²)`` per coordinate, the posterior mean of ``c`` is
``m σ² / (σ² + v)``, where ``m`` is the precision-weighted mean of the innovations and
``v = 1 / Σ 1/s_i`` its variance, each coordinate its own (no gate against wrong matches: the
association network has accepted every pair, and a χ²₂ 99 % gate made no measurable
difference). ``σ²`` — how much
this camera moves between frames — is learned from the stream (empirical Bayes): an exponential
average, over ``time_constant_s`` seconds of frames, of ``|m|²/2 − v``, whose expectation is
``σ²`` (``|m|²/2`` averages the two coordinates, ``v`` their variances).
For a static camera the average stays near or below 0 and nothing is shifted; the more
the camera moves relative to the detector's noise, the closer the shift comes to ``m``.
"""

from __future__ import annotations

import math

import numpy as np

#: Fewest steady tracks that make an estimate.
MIN_TRACKS = 2


class CameraMotion:
    """Running empirical-Bayes estimate of the image shift between consecutive frames.

    Args:
        frame_rate: frames per second (turns the time constant into a per-frame weight).
        time_constant_s: seconds over which the camera's shift variance is averaged (> 0).
    """

    def __init__(self, frame_rate: float, time_constant_s: float) -> None:
        if not time_constant_s > 0:
            raise ValueError(f"time_constant_s must be > 0, got {time_constant_s}")
        self.weight = -math.expm1(-1.0 / (frame_rate * time_constant_s))
        self.variance = 0.0  # running E[|m|²/2 − v]: the shift variance per coordinate

    def shift(
        self, innovations: np.ndarray, variances: np.ndarray, steady: np.ndarray
    ) -> np.ndarray | None:
        """This frame's camera shift from the steadily tracked objects' innovations.

        Args:
            innovations: ``(K, 2)`` detection minus predicted ``[x_centre, y_bottom]``, pixels,
                of the tracks matched in this frame.
            variances: ``(K, 2)`` each innovation's variance per coordinate (pixels²).
            steady: ``(K,)`` bool, the tracks to learn from: those matched in the previous
                frame too (others may have been lost for a while or be new).

        Returns:
            ``(2,)`` the shift to add to every track's predicted position, or None when there
            is none to add (fewer than :data:`MIN_TRACKS` steady tracks, or a camera that
            has not been seen to move). The running variance learns from every frame with
            enough steady tracks, whether or not it then shifts.
        """
        # The mask as weights (no compaction) and scalars in Python: at a few dozen tracks
        # every array operation costs about a microsecond, whatever its size.
        if np.count_nonzero(steady) < MIN_TRACKS:
            return None
        precision = steady[:, None] / variances
        spread_x, spread_y = (1.0 / np.add.reduce(precision)).tolist()  # v per coordinate
        sum_x, sum_y = np.add.reduce(precision * innovations).tolist()
        mean_x, mean_y = sum_x * spread_x, sum_y * spread_y
        excess = 0.5 * (mean_x * mean_x + mean_y * mean_y - spread_x - spread_y)
        self.variance += self.weight * (excess - self.variance)
        if self.variance <= 0.0:
            return None
        return np.array(
            [
                mean_x * self.variance / (self.variance + spread_x),
                mean_y * self.variance / (self.variance + spread_y),
            ]
        )
