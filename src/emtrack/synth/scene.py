"""Seeded synthetic street scenes: pedestrians walking under perspective, seen by a noisy detector.

A scene is simulated frame by frame; every frame is a handful of numpy operations over all
objects present (no Python loop over objects). The ground truth goes through the same detector
model as real ground truth (:mod:`emtrack.synth.noise`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from numbers import Real

import numpy as np

from emtrack.errors import EmtrackInputError
from emtrack.io import MotTable, SeqInfo
from emtrack.synth.noise import DetectionNoiseConfig, apply_detection_noise

__all__ = [
    "Scene",
    "SceneConfig",
    "default_training_scenes",
    "generate_scene",
]

# Births keep the expected population at ``mean_objects``: a rate that replaces the observed
# removals plus a pull towards the target with this time constant (seconds).
_POPULATION_RELAX_S = 2.0
# Speed factor relaxes to 0 (stopping) or 1 (walking on) with this time constant (seconds).
_STOP_RELAX_S = 0.5
# Camera jitter is an AR(1) offset with this correlation time (seconds).
_CAMERA_JITTER_TIME_S = 0.25
# Half-width of the heading spread of objects entering at a border (radians, around inwards).
_BORDER_HEADING_SPREAD = np.pi / 3
# Share of a box that must lie inside the image for the object to be in the gt.
_MIN_INSIDE_FRAC = 0.5
# Border births start with this share of the box outside the image.
_BORDER_OUTSIDE_FRAC = 0.4
# Relative weights of the borders through which objects enter: left, right, bottom, far end.
_BORDER_WEIGHTS = np.array([0.35, 0.35, 0.15, 0.15])


@dataclass(frozen=True)
class SceneConfig:
    """Knobs of a synthetic pedestrian scene; the defaults give a 1920x1080, 30 fps street.

    Geometry (image coordinates, y down): the horizon is at ``horizon_frac * image_height``;
    people walk on the ground between ``ground_top_frac * image_height`` (far end) and the
    bottom of the image. A person whose box bottom is at ``y`` is
    ``size * height_at_bottom_frac * image_height * (y - horizon) / (image_height - horizon)``
    pixels tall (``size`` is a per-person log-normal factor, std ``height_jitter``), and
    ``aspect_ratio`` (+- ``aspect_jitter``) times as wide.

    Motion: speeds are in body heights per second, so pixel speeds follow the perspective;
    vertical image motion is shrunk by ``vertical_speed_scale`` (ground-plane foreshortening).
    Each person has a preferred speed (uniform in ``speed_range_heights_per_s``, or in
    ``fast_speed_range_heights_per_s`` with probability ``fast_prob``), a heading whose turn
    rate is an Ornstein-Uhlenbeck process (std ``turn_rate_std_rad_per_s``, time constant
    ``turn_time_constant_s``), an Ornstein-Uhlenbeck velocity perturbation (std
    ``velocity_noise_heights_per_s``, time constant ``velocity_time_constant_s``) and stops
    (rate ``stop_rate_per_s``, mean duration ``stop_duration_s``, smooth deceleration).

    Population: ``mean_objects`` people present on average (the crowd density). At the start
    a Poisson number stand anywhere on the ground; later births enter through a border (left,
    right, bottom or the far end) with probability ``birth_at_border_prob``, else appear
    anywhere (doors, behind obstacles). People leave when more than half of the box is outside
    the image or past the far end, and vanish at random with rate ``death_rate_per_s``.

    ``camera_jitter`` (pixels) shakes the whole image: an AR(1) offset of the given stationary
    standard deviation and a 0.25 s correlation time. ``noise`` is the detector model.

    Attributes:
        num_frames: Number of frames.
        image_width: Image width (px).
        image_height: Image height (px).
        frame_rate: Frames per second.
        mean_objects: Expected number of people present per frame.
        birth_at_border_prob: Probability that a newborn enters through a border.
        death_rate_per_s: Hazard of vanishing in the middle of the image (1/s).
        speed_range_heights_per_s: (min, max) preferred walking speed, heights per second.
        fast_prob: Probability that a person is fast (running, cycling).
        fast_speed_range_heights_per_s: (min, max) speed of fast people, heights per second.
        turn_rate_std_rad_per_s: Stationary std of the turn rate (rad/s).
        turn_time_constant_s: Correlation time of the turn rate (s).
        velocity_noise_heights_per_s: Stationary std of the velocity perturbation.
        velocity_time_constant_s: Correlation time of the velocity perturbation (s).
        stop_rate_per_s: Rate at which a walking person stops (1/s).
        stop_duration_s: Mean duration of a stop (s).
        vertical_speed_scale: Factor on vertical image speed (foreshortening).
        horizon_frac: Horizon height as a fraction of the image height.
        ground_top_frac: Far end of the walkable ground, fraction of the image height.
        height_at_bottom_frac: Person height at the image bottom, fraction of image height.
        height_jitter: Std of the log of the per-person size factor.
        aspect_ratio: Mean box width / height.
        aspect_jitter: Std of the per-person aspect ratio.
        camera_jitter: Stationary std of the global image shift (px); 0 for a still camera.
        noise: The detector model applied to the ground truth.
    """

    num_frames: int = 600
    image_width: int = 1920
    image_height: int = 1080
    frame_rate: float = 30.0
    mean_objects: float = 20.0
    birth_at_border_prob: float = 0.7
    death_rate_per_s: float = 0.02
    speed_range_heights_per_s: tuple[float, float] = (0.3, 1.5)
    fast_prob: float = 0.05
    fast_speed_range_heights_per_s: tuple[float, float] = (1.5, 3.0)
    turn_rate_std_rad_per_s: float = 0.3
    turn_time_constant_s: float = 2.0
    velocity_noise_heights_per_s: float = 0.05
    velocity_time_constant_s: float = 1.0
    stop_rate_per_s: float = 0.02
    stop_duration_s: float = 3.0
    vertical_speed_scale: float = 0.5
    horizon_frac: float = 0.25
    ground_top_frac: float = 0.4
    height_at_bottom_frac: float = 0.35
    height_jitter: float = 0.08
    aspect_ratio: float = 0.41
    aspect_jitter: float = 0.05
    camera_jitter: float = 0.0
    noise: DetectionNoiseConfig = field(default_factory=DetectionNoiseConfig)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "noise":
                if not isinstance(value, DetectionNoiseConfig):
                    raise EmtrackInputError("SceneConfig.noise must be a DetectionNoiseConfig")
                continue
            values = value if isinstance(value, tuple) else (value,)
            if f.name.endswith("_range_heights_per_s") and len(values) != 2:
                raise EmtrackInputError(f"SceneConfig.{f.name} must be a (min, max) pair")
            for v in values:
                if isinstance(v, bool) or not isinstance(v, Real) or not np.isfinite(v):
                    raise EmtrackInputError(
                        f"SceneConfig.{f.name} must be a finite number, got {value!r}"
                    )
        for name in ("num_frames", "image_width", "image_height"):
            value = getattr(self, name)
            if value != int(value) or value < 1:
                raise EmtrackInputError(f"SceneConfig.{name} must be an integer >= 1, got {value}")
        positive = (
            "frame_rate",
            "turn_time_constant_s",
            "velocity_time_constant_s",
            "stop_duration_s",
            "height_at_bottom_frac",
            "aspect_ratio",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise EmtrackInputError(
                    f"SceneConfig.{name} must be > 0, got {getattr(self, name)}"
                )
        non_negative = (
            "mean_objects",
            "death_rate_per_s",
            "turn_rate_std_rad_per_s",
            "velocity_noise_heights_per_s",
            "stop_rate_per_s",
            "vertical_speed_scale",
            "height_jitter",
            "aspect_jitter",
            "camera_jitter",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise EmtrackInputError(
                    f"SceneConfig.{name} must be >= 0, got {getattr(self, name)}"
                )
        for name in ("birth_at_border_prob", "fast_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise EmtrackInputError(
                    f"SceneConfig.{name} must be in [0, 1], got {getattr(self, name)}"
                )
        for name in ("speed_range_heights_per_s", "fast_speed_range_heights_per_s"):
            low, high = getattr(self, name)
            if not 0.0 <= low <= high:
                raise EmtrackInputError(
                    f"SceneConfig.{name} must satisfy 0 <= min <= max, got {(low, high)}"
                )
        if not 0.0 <= self.horizon_frac < self.ground_top_frac < 1.0:
            raise EmtrackInputError(
                "SceneConfig needs 0 <= horizon_frac < ground_top_frac < 1, got "
                f"{self.horizon_frac} and {self.ground_top_frac}"
            )

    @property
    def frame_interval_s(self) -> float:
        """Seconds between two frames."""
        return 1.0 / self.frame_rate


@dataclass(frozen=True)
class Scene:
    """One synthetic sequence.

    Attributes:
        detections: Noisy detections; ``ids`` = true identity, -1 for false positives
            (training must ignore ids), ``scores`` in ``[0.1, 1]``.
        gt: True boxes of every object present and at least half inside the image, clipped to
            the image; ``ids`` >= 1, ``scores`` 1, ``classes`` 1, ``visibility`` =
            ``1 - IoA`` with the most occluding nearer object (larger box bottom).
        seqinfo: ``name="synth-<seed>"``, frame rate, length and image size.
        config: The configuration the scene was generated from.
    """

    detections: MotTable
    gt: MotTable
    seqinfo: SeqInfo
    config: SceneConfig | None = None


class _Perspective:
    """Person height as a function of the image row of the feet."""

    def __init__(self, config: SceneConfig) -> None:
        height = float(config.image_height)
        self.horizon = config.horizon_frac * height
        self.ground_top = config.ground_top_frac * height
        self.bottom = height
        self.slope = config.height_at_bottom_frac * height / (height - self.horizon)

    def height(self, y_bottom: np.ndarray, size: np.ndarray | float = 1.0) -> np.ndarray:
        """Box height (px) of people with feet at ``y_bottom`` (px) and size factors ``size``."""
        return size * self.slope * np.maximum(y_bottom - self.horizon, 1e-6)


_STATE_FIELDS = (
    "ids",
    "x",
    "y",
    "heading",
    "turn_rate",
    "speed",
    "velocity_noise",
    "stopped",
    "speed_factor",
    "size",
    "aspect",
)


def _spawn(
    count: int,
    config: SceneConfig,
    perspective: _Perspective,
    rng: np.random.Generator,
    first_id: int,
    initial: bool,
) -> dict[str, np.ndarray]:
    """Draw ``count`` new people (vectorised).

    Args:
        count: Number of people.
        config: Scene knobs.
        perspective: Height model.
        rng: Random generator.
        first_id: Id of the first one; the others follow.
        initial: People present at the start (anywhere, possibly stopped) rather than births.

    Returns:
        Arrays of the state fields, each ``(count,)`` (``velocity_noise`` ``(count, 2)``).
    """
    width = float(config.image_width)
    fast = rng.random(count) < config.fast_prob
    slow_lo, slow_hi = config.speed_range_heights_per_s
    fast_lo, fast_hi = config.fast_speed_range_heights_per_s
    speed = np.where(
        fast, rng.uniform(fast_lo, fast_hi, count), rng.uniform(slow_lo, slow_hi, count)
    )
    size = np.exp(config.height_jitter * rng.standard_normal(count))
    aspect = np.maximum(
        config.aspect_ratio + config.aspect_jitter * rng.standard_normal(count), 0.1
    )

    # Default: anywhere on the ground, any heading.
    x = rng.uniform(0.05 * width, 0.95 * width, count)
    y = rng.uniform(perspective.ground_top, perspective.bottom, count)
    heading = rng.uniform(-np.pi, np.pi, count)
    if not initial:
        at_border = rng.random(count) < config.birth_at_border_prob
        border = rng.choice(4, size=count, p=_BORDER_WEIGHTS / _BORDER_WEIGHTS.sum())
        spread = rng.uniform(-_BORDER_HEADING_SPREAD, _BORDER_HEADING_SPREAD, count)
        half_width = 0.5 * aspect * perspective.height(y, size)
        inset = (1.0 - 2.0 * _BORDER_OUTSIDE_FRAC) * half_width
        bottom_h = perspective.height(np.full(count, perspective.bottom), size)
        ground_span = perspective.bottom - perspective.ground_top
        # 0 left, 1 right, 2 bottom, 3 far end.
        b_x = np.select([border == 0, border == 1], [inset, width - inset], x)
        b_y = np.select(
            [border == 2, border == 3],
            [
                perspective.bottom + _BORDER_OUTSIDE_FRAC * bottom_h,
                perspective.ground_top + 0.02 * ground_span,
            ],
            y,
        )
        b_heading = np.choose(border, [0.0, np.pi, -0.5 * np.pi, 0.5 * np.pi]) + spread
        x = np.where(at_border, b_x, x)
        y = np.where(at_border, b_y, y)
        heading = np.where(at_border, b_heading, heading)

    if initial and config.stop_rate_per_s > 0:
        busy = config.stop_rate_per_s * config.stop_duration_s
        stopped = rng.random(count) < busy / (1.0 + busy)
    else:
        stopped = np.zeros(count, dtype=bool)
    turn_rate = config.turn_rate_std_rad_per_s * rng.standard_normal(count)
    velocity_noise = config.velocity_noise_heights_per_s * rng.standard_normal((count, 2))
    return {
        "ids": np.arange(first_id, first_id + count, dtype=np.int64),
        "x": x,
        "y": y,
        "heading": heading,
        "turn_rate": turn_rate,
        "speed": speed,
        "velocity_noise": velocity_noise,
        "stopped": stopped,
        "speed_factor": (~stopped).astype(np.float64),
        "size": size,
        "aspect": aspect,
    }


def _ou_step(
    value: np.ndarray, std: float, time_constant: float, dt: float, rng: np.random.Generator
) -> np.ndarray:
    """Exact Ornstein-Uhlenbeck update (mean 0, stationary std ``std``) over ``dt``."""
    decay = np.exp(-dt / time_constant)
    return value * decay + std * np.sqrt(1.0 - decay**2) * rng.standard_normal(value.shape)


def _occlusion_visibility(boxes: np.ndarray, y_bottom: np.ndarray) -> np.ndarray:
    """Visibility ``1 - max IoA`` of each box with the boxes nearer to the camera.

    Args:
        boxes: ``(n, 4)`` xyxy boxes of one frame.
        y_bottom: ``(n,)`` feet rows; larger means nearer.

    Returns:
        ``(n,)`` float64 in ``[0, 1]``.
    """
    if len(boxes) == 0:
        return np.zeros(0)
    inter_w = np.minimum(boxes[:, None, 2], boxes[None, :, 2]) - np.maximum(
        boxes[:, None, 0], boxes[None, :, 0]
    )
    inter_h = np.minimum(boxes[:, None, 3], boxes[None, :, 3]) - np.maximum(
        boxes[:, None, 1], boxes[None, :, 1]
    )
    inter = np.clip(inter_w, 0.0, None) * np.clip(inter_h, 0.0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    ioa = inter / area[:, None]
    ioa = np.where(y_bottom[None, :] > y_bottom[:, None], ioa, 0.0)
    return 1.0 - np.clip(ioa.max(axis=1), 0.0, 1.0)


def _resolve_seed(rng: np.random.Generator | int) -> int:
    """The scene seed: the int itself, or one drawn from the generator."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**32))
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer) or rng < 0:
        raise EmtrackInputError(f"rng must be a numpy Generator or a seed >= 0, got {rng!r}")
    return int(rng)


def generate_scene(config: SceneConfig, rng: np.random.Generator | int) -> Scene:
    """Simulate one scene: trajectories, ground truth and noisy detections.

    With an int seed ``s`` the scene is named ``synth-<s>`` and depends only on ``(config,
    s)``. With a generator, a seed is drawn from it first, so ``generate_scene(config,
    int(name[6:]))`` rebuilds the same scene from its name.

    Args:
        config: Scene knobs.
        rng: Random generator or seed (no global random state is used).

    Returns:
        The scene; ``gt`` has ``(N, 4)`` boxes for the ``N`` (object, frame) pairs with the
        object at least half inside the image, ``detections`` the noisy stream derived from it.
    """
    if not isinstance(config, SceneConfig):
        raise EmtrackInputError(f"config must be a SceneConfig, got {type(config).__name__}")
    seed = _resolve_seed(rng)
    gen = np.random.default_rng(seed)
    width, height = float(config.image_width), float(config.image_height)
    dt = config.frame_interval_s
    perspective = _Perspective(config)

    # Removal-rate prior (1/s): crossing half the image at a typical speed, plus random deaths.
    typical_h = float(perspective.height(0.5 * (perspective.ground_top + perspective.bottom)))
    mean_speed = float(np.mean(config.speed_range_heights_per_s)) * typical_h
    removal_rate_prior = mean_speed / (0.5 * width) + config.death_rate_per_s
    prior_weight = 3.0
    removed_total = prior_weight
    object_seconds = prior_weight / removal_rate_prior

    state = _spawn(int(gen.poisson(config.mean_objects)), config, perspective, gen, 1, initial=True)
    next_id = 1 + len(state["ids"])
    camera_offset = config.camera_jitter * gen.standard_normal(2)
    camera_decay = np.exp(-dt / _CAMERA_JITTER_TIME_S)
    stop_prob = 1.0 - np.exp(-config.stop_rate_per_s * dt)
    go_prob = 1.0 - np.exp(-dt / config.stop_duration_s)
    death_prob = 1.0 - np.exp(-config.death_rate_per_s * dt)
    speed_relax = np.exp(-dt / _STOP_RELAX_S)

    out_frames: list[np.ndarray] = []
    out_ids: list[np.ndarray] = []
    out_boxes: list[np.ndarray] = []
    out_visibility: list[np.ndarray] = []
    for frame in range(1, config.num_frames + 1):
        if frame > 1:
            n = len(state["ids"])
            # Motion, all people at once.
            state["turn_rate"] = _ou_step(
                state["turn_rate"],
                config.turn_rate_std_rad_per_s,
                config.turn_time_constant_s,
                dt,
                gen,
            )
            state["heading"] = state["heading"] + state["turn_rate"] * dt
            state["velocity_noise"] = _ou_step(
                state["velocity_noise"],
                config.velocity_noise_heights_per_s,
                config.velocity_time_constant_s,
                dt,
                gen,
            )
            u = gen.random(n)
            stopped = state["stopped"]
            state["stopped"] = np.where(stopped, u >= go_prob, u < stop_prob)
            target = (~state["stopped"]).astype(np.float64)
            state["speed_factor"] = target + (state["speed_factor"] - target) * speed_relax
            direction = np.stack([np.cos(state["heading"]), np.sin(state["heading"])], axis=1)
            velocity = state["speed_factor"][:, None] * (
                state["speed"][:, None] * direction + state["velocity_noise"]
            )
            h = perspective.height(state["y"], state["size"])
            state["x"] = state["x"] + velocity[:, 0] * h * dt
            state["y"] = state["y"] + velocity[:, 1] * h * dt * config.vertical_speed_scale

            # Removals: out through a border, past the far end, or random death.
            h = perspective.height(state["y"], state["size"])
            leave = (
                (state["x"] < 0.0)
                | (state["x"] > width)
                | (state["y"] - _MIN_INSIDE_FRAC * h > height)
                | (state["y"] < perspective.ground_top)
                | (gen.random(n) < death_prob)
            )
            object_seconds += n * dt
            removed_total += int(leave.sum())
            if leave.any():
                state = {k: v[~leave] for k, v in state.items()}

            # Births: replace removals at the estimated rate, pulled towards the mean.
            n = len(state["ids"])
            rate = (removed_total / object_seconds) * config.mean_objects + (
                config.mean_objects - n
            ) / _POPULATION_RELAX_S
            births = int(gen.poisson(max(rate, 0.0) * dt))
            if births:
                born = _spawn(births, config, perspective, gen, next_id, initial=False)
                next_id += births
                state = {k: np.concatenate([state[k], born[k]]) for k in _STATE_FIELDS}
            camera_offset = camera_offset * camera_decay + config.camera_jitter * np.sqrt(
                1.0 - camera_decay**2
            ) * gen.standard_normal(2)

        # Observe: boxes, clipped to the image, kept when at least half inside.
        h = perspective.height(state["y"], state["size"])
        w = state["aspect"] * h
        cx = state["x"] + camera_offset[0]
        yb = state["y"] + camera_offset[1]
        boxes = np.stack([cx - 0.5 * w, yb - h, cx + 0.5 * w, yb], axis=1)
        clipped = np.clip(boxes, 0.0, [width, height, width, height])
        inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
        keep = (inside >= _MIN_INSIDE_FRAC * w * h) & (inside > 0)
        clipped = clipped[keep]
        out_frames.append(np.full(len(clipped), frame, dtype=np.int64))
        out_ids.append(state["ids"][keep])
        out_boxes.append(clipped)
        out_visibility.append(_occlusion_visibility(clipped, yb[keep]))

    frames = np.concatenate(out_frames)
    gt = MotTable.from_arrays(
        frames=frames,
        boxes_xyxy=np.concatenate(out_boxes).reshape(-1, 4),
        scores=np.ones(len(frames)),
        ids=np.concatenate(out_ids),
        classes=np.ones(len(frames), dtype=np.int64),
        visibility=np.concatenate(out_visibility),
    )

    def sample_fp_boxes(count: int, fp_rng: np.random.Generator) -> np.ndarray:
        """Plausible false positives: perspective-sized boxes anywhere on the ground."""
        y_b = fp_rng.uniform(perspective.ground_top, perspective.bottom, count)
        fp_h = perspective.height(y_b, np.exp(0.3 * fp_rng.standard_normal(count)))
        fp_aspect = np.clip(config.aspect_ratio + 0.15 * fp_rng.standard_normal(count), 0.2, 1.2)
        fp_w = fp_aspect * fp_h
        fp_cx = fp_rng.uniform(0.0, width, count)
        return np.stack([fp_cx - 0.5 * fp_w, y_b - fp_h, fp_cx + 0.5 * fp_w, y_b], axis=1)

    detections = apply_detection_noise(
        gt,
        config.noise,
        gen,
        num_frames=config.num_frames,
        extent_xyxy=np.array([0.0, 0.0, width, height]),
        fp_sampler=sample_fp_boxes,
    )
    seqinfo = SeqInfo(
        name=f"synth-{seed}",
        frame_rate=float(config.frame_rate),
        seq_length=int(config.num_frames),
        im_width=int(config.image_width),
        im_height=int(config.image_height),
    )
    return Scene(detections=detections, gt=gt, seqinfo=seqinfo, config=config)


# Frame rates and image sizes of public pedestrian sequences (MOT15/16/17/20, PETS, KITTI).
_TRAINING_FRAME_RATES = (7.0, 10.0, 14.0, 15.0, 20.0, 25.0, 30.0)
_TRAINING_RESOLUTIONS = (
    (640, 480),
    (768, 576),
    (960, 540),
    (1280, 720),
    (1280, 960),
    (1920, 1080),
)


def random_scene_config(rng: np.random.Generator, num_frames: int = 300) -> SceneConfig:
    """Draw one varied scene configuration (see :func:`default_training_scenes`).

    Args:
        rng: Random generator.
        num_frames: Frames per scene.

    Returns:
        A valid :class:`SceneConfig`.
    """
    width, height = _TRAINING_RESOLUTIONS[int(rng.integers(len(_TRAINING_RESOLUTIONS)))]
    horizon = float(rng.uniform(0.0, 0.4))
    noise = DetectionNoiseConfig(
        box_noise_frac=float(rng.uniform(0.02, 0.06)),
        miss_prob=float(rng.uniform(0.02, 0.25)),
        occluded_miss_prob=float(rng.uniform(0.6, 0.95)),
        burst_start_prob=float(rng.uniform(0.0, 0.03)),
        burst_mean_frames=float(rng.uniform(2.0, 15.0)),
        fp_per_frame=float(rng.uniform(0.0, 3.0)),
        fp_duplicate_frac=float(rng.uniform(0.1, 0.5)),
        true_low_score_prob=float(rng.uniform(0.02, 0.25)),
        occluded_low_score_prob=float(rng.uniform(0.3, 0.7)),
        fp_high_score_prob=float(rng.uniform(0.1, 0.4)),
    )
    return SceneConfig(
        num_frames=num_frames,
        image_width=width,
        image_height=height,
        frame_rate=float(rng.choice(_TRAINING_FRAME_RATES)),
        mean_objects=float(np.exp(rng.uniform(np.log(5.0), np.log(60.0)))),
        birth_at_border_prob=float(rng.uniform(0.5, 0.9)),
        fast_prob=float(rng.uniform(0.0, 0.1)),
        turn_rate_std_rad_per_s=float(rng.uniform(0.1, 0.6)),
        stop_rate_per_s=float(rng.uniform(0.0, 0.05)),
        horizon_frac=horizon,
        ground_top_frac=horizon + float(rng.uniform(0.1, 0.3)),
        height_at_bottom_frac=float(rng.uniform(0.2, 0.6)),
        camera_jitter=0.0 if rng.random() < 0.6 else float(rng.uniform(0.0, 0.005 * width)),
        noise=noise,
    )


def default_training_scenes(
    num_scenes: int, rng: np.random.Generator | int, num_frames: int = 300
) -> list[Scene]:
    """A varied set of scenes, so a model trained on them generalises across sequences.

    Each scene draws its own configuration: crowd density log-uniform in 5-60 people, frame
    rate in {7, 10, 14, 15, 20, 25, 30} fps, image size from 640x480 to 1920x1080, camera
    height (horizon 0-40 % of the image, people 20-60 % of the image height at the bottom),
    turning, stops and fast people, camera jitter (40 % of scenes, up to 0.5 % of the width),
    and detector noise: box noise 2-6 % of the height, miss probability 0.02-0.25 (0.6-0.95
    when occluded), bursts (start 0-3 %, 2-15 frames), 0-3 false positives per frame, and the
    share of low scores.

    Args:
        num_scenes: Number of scenes.
        rng: Random generator or seed.
        num_frames: Frames per scene.

    Returns:
        ``num_scenes`` scenes with distinct seeds (``seqinfo.name``).
    """
    if num_scenes < 0:
        raise EmtrackInputError(f"num_scenes must be >= 0, got {num_scenes}")
    gen = np.random.default_rng(rng)
    scenes: list[Scene] = []
    for _ in range(num_scenes):
        config = random_scene_config(gen, num_frames=num_frames)
        scenes.append(generate_scene(config, gen))
    return scenes


def with_noise(config: SceneConfig, **noise_fields: float | bool) -> SceneConfig:
    """Copy of ``config`` with some fields of its detector model replaced.

    Args:
        config: Scene knobs.
        **noise_fields: Fields of :class:`DetectionNoiseConfig`.

    Returns:
        The new configuration.
    """
    return replace(config, noise=replace(config.noise, **noise_fields))
