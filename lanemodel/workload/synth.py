"""Synthetic road frames written in the real TuSimple lane data set format.

The real TuSimple images cannot be downloaded here, so training and
evaluation run on generated frames that follow the TuSimple layout exactly:

* JPEG frames of 1280x720 RGB at ``clips/<split>/<clip>/20.jpg``;
* one JSON object per line in ``label_data.json`` / ``test_label.json``::

      {"lanes": [[x, ...], ...], "h_samples": [160, ..., 710],
       "raw_file": "clips/synth/00000/20.jpg"}

  where each lane has one integer x per ``h_samples`` row and ``-2`` marks
  "no point on this row".

Each frame is a perspective road: sky above a horizon row, a darker road
surface below, a vanishing point near the image centre and 2 to 4 lane lines
(mostly 4) converging to it, optionally gently curved, painted white or
yellow, solid or dashed, getting wider toward the bottom.  Road texture,
global brightness changes, soft shadow blobs and pixel noise keep the task
from being trivial, while the lines stay clearly visible after the strong
down-scaling a small CPU model uses (e.g. to 64x160 or 144x400).

The label of a lane is the x of the painted line's centre at each
``H_SAMPLES`` row, rounded to an int; dashed lanes are labelled on their
gaps too, as TuSimple annotators do.

Everything is deterministic: ``synth_frame`` draws only from the generator
it is given. Writing a whole data set is ``synthset.write_synthetic_dataset``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = [
    "H_SAMPLES",
    "IMAGE_WIDTH",
    "IMAGE_HEIGHT",
    "JPEG_QUALITY",
    "NO_POINT",
    "SynthLane",
    "SynthScene",
    "sample_scene",
    "render_scene",
    "synth_frame",
]

IMAGE_WIDTH = 1280
IMAGE_HEIGHT = 720
#: The 56 label rows of TuSimple's 720p clips: 160, 170, ..., 710.
H_SAMPLES: tuple[int, ...] = tuple(range(160, 711, 10))
#: TuSimple's marker for "this lane has no point on this row".
NO_POINT = -2
#: Fixed JPEG quality so that the same pixels always encode to the same bytes.
JPEG_QUALITY = 90


# Vertical step (pixels) of the polygon segments a lane line is drawn with.
_DRAW_STEP = 2
# Dash cycles shorter than this many rows are painted solid.
_MIN_DASH_PERIOD = 10.0


@dataclass(frozen=True)
class SynthLane:
    """One painted lane line of a synthetic frame.

    The centre line is ``x(y) = vp_x + (x_bottom - vp_x) * t + curve * (1 - t)**2``
    with ``t = (y - horizon) / (IMAGE_HEIGHT - horizon)`` (shared road
    geometry, see :class:`SynthScene`); it is visible from ``start_y`` down
    to the bottom edge.
    """

    x_bottom: float
    start_y: float
    color: tuple[int, int, int]
    dashed: bool
    dash_scale: float = 1.0  # dash cycles per unit of depth 1/t
    dash_phase: float = 0.0
    dash_duty: float = 0.5  # painted fraction of each cycle

    def is_painted(self, y: float, scene: SynthScene) -> bool:
        """Whether row ``y`` of this lane carries paint (False in dash gaps)."""
        if y < self.start_y:
            return False
        if not self.dashed:
            return True
        t = scene.depth_t(y)
        if t <= 0:
            return False
        # Far away the dash cycle shrinks below a few rows; a camera blurs it
        # into a continuous thin line, so paint it solid there (no aliasing).
        period_rows = (IMAGE_HEIGHT - scene.horizon) * t * t / self.dash_scale
        if period_rows < _MIN_DASH_PERIOD:
            return True
        return ((self.dash_scale / t + self.dash_phase) % 1.0) < self.dash_duty


@dataclass(frozen=True)
class SynthScene:
    """Geometry and appearance parameters of one synthetic frame."""

    horizon: float  # row of the horizon (= vanishing point y)
    vp_x: float  # x of the vanishing point
    curve: float  # quadratic curvature term, pixels of shift at the horizon
    line_width_top: float  # painted width at the horizon, pixels
    line_width_bottom: float  # painted width at the bottom edge, pixels
    lanes: tuple[SynthLane, ...]  # sorted left to right
    road_left_bottom: float  # road edge x at the bottom edge
    road_right_bottom: float
    sky_top: tuple[int, int, int]
    sky_bottom: tuple[int, int, int]
    roadside: tuple[int, int, int]
    road: tuple[int, int, int]

    def depth_t(self, y: float) -> float:
        """0 at the horizon, 1 at the bottom edge (linear in rows)."""
        return (y - self.horizon) / (IMAGE_HEIGHT - self.horizon)

    def x_at(self, x_bottom: float, y: float) -> float:
        """x of the road curve that meets the bottom edge at ``x_bottom``."""
        t = self.depth_t(y)
        return self.vp_x + (x_bottom - self.vp_x) * t + self.curve * (1.0 - t) ** 2

    def lane_x(self, lane: SynthLane, y: float) -> float:
        return self.x_at(lane.x_bottom, y)

    def line_width(self, y: float) -> float:
        t = max(0.0, self.depth_t(y))
        return self.line_width_top + (self.line_width_bottom - self.line_width_top) * t

    def labels(self) -> list[list[int]]:
        """TuSimple lane labels: one int x per ``H_SAMPLES`` row, -2 = no point."""
        out: list[list[int]] = []
        for lane in self.lanes:
            row: list[int] = []
            for y in H_SAMPLES:
                if y < lane.start_y:
                    row.append(NO_POINT)
                    continue
                x = int(round(self.lane_x(lane, y)))
                row.append(x if 0 <= x <= IMAGE_WIDTH - 1 else NO_POINT)
            out.append(row)
        return out


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _rgb(values) -> tuple[int, int, int]:
    return tuple(int(np.clip(round(float(v)), 0, 255)) for v in values)  # type: ignore[return-value]


def sample_scene(rng: np.random.Generator) -> SynthScene:
    """Draw the random geometry and colours of one frame (no pixels yet)."""
    _check_rng(rng)
    horizon = float(rng.uniform(200.0, 280.0))
    vp_x = IMAGE_WIDTH / 2 + float(rng.uniform(-100.0, 100.0))
    curve = float(rng.uniform(-140.0, 140.0)) if rng.random() < 0.5 else 0.0

    # Lane spacing at the bottom edge and where the ego lane sits.
    spacing = float(rng.uniform(480.0, 780.0))
    centre = vp_x + float(rng.uniform(-0.2, 0.2)) * spacing
    n_lanes = int(rng.choice([4, 3, 2], p=[0.7, 0.2, 0.1]))
    offsets = [-1.5, -0.5, 0.5, 1.5]
    if n_lanes == 3:
        offsets.remove(-1.5 if rng.random() < 0.5 else 1.5)
    elif n_lanes == 2:
        offsets = [-0.5, 0.5]

    # Visible start: the horizon plus a small gap, slightly different per lane.
    gap = float(rng.uniform(12.0, 40.0))
    lanes = []
    for off in offsets:
        x_bottom = centre + off * spacing + float(rng.uniform(-0.04, 0.04)) * spacing
        # Yellow is typical for the outermost left line, rarer elsewhere.
        yellow = rng.random() < (0.45 if off == offsets[0] else 0.12)
        if yellow:
            color = _rgb(rng.uniform([215, 170, 10], [255, 215, 80]))
        else:
            grey = rng.uniform(205, 255)
            color = _rgb([grey + rng.uniform(-8, 8) for _ in range(3)])
        # Inner lines are mostly dashed, outer (road-edge) lines mostly solid.
        dashed = bool(rng.random() < (0.65 if abs(off) < 1 else 0.3))
        lanes.append(
            SynthLane(
                x_bottom=x_bottom,
                start_y=horizon + gap + float(rng.uniform(0.0, 25.0)),
                color=color,
                dashed=dashed,
                dash_scale=float(rng.uniform(1.0, 2.2)),
                dash_phase=float(rng.uniform(0.0, 1.0)),
                dash_duty=float(rng.uniform(0.4, 0.65)),
            )
        )
    lanes.sort(key=lambda lane: lane.x_bottom)

    margin = float(rng.uniform(0.25, 0.7)) * spacing
    sky_top = rng.uniform([60, 90, 140], [170, 190, 240])
    sky_bottom = np.clip(sky_top + rng.uniform(30, 80), 0, 255)
    road_grey = rng.uniform(55, 110)
    road = [road_grey + rng.uniform(-6, 6) for _ in range(3)]
    roadside_kind = int(rng.integers(3))
    if roadside_kind == 0:  # grass
        roadside = rng.uniform([40, 80, 30], [90, 140, 70])
    elif roadside_kind == 1:  # dry soil
        roadside = rng.uniform([110, 95, 60], [160, 140, 100])
    else:  # concrete / gravel
        g = rng.uniform(100, 150)
        roadside = [g, g, g - rng.uniform(0, 15)]
    return SynthScene(
        horizon=horizon,
        vp_x=vp_x,
        curve=curve,
        line_width_top=float(rng.uniform(1.5, 3.0)),
        line_width_bottom=float(rng.uniform(16.0, 30.0)),
        lanes=tuple(lanes),
        road_left_bottom=lanes[0].x_bottom - margin,
        road_right_bottom=lanes[-1].x_bottom + margin,
        sky_top=_rgb(sky_top),
        sky_bottom=_rgb(sky_bottom),
        roadside=_rgb(roadside),
        road=_rgb(road),
    )


def _upsampled_field(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Smooth random field in [-1, 1] of the image size from a coarse grid."""
    coarse = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    img = Image.fromarray(coarse).resize(
        (IMAGE_WIDTH, IMAGE_HEIGHT), Image.Resampling.BILINEAR
    )
    return np.asarray(img, dtype=np.float32)


def render_scene(scene: SynthScene, rng: np.random.Generator) -> Image.Image:
    """Paint ``scene`` into a 1280x720 RGB image (random texture from ``rng``)."""
    _check_rng(rng)
    W, H = IMAGE_WIDTH, IMAGE_HEIGHT
    hz = scene.horizon
    hz_row = int(np.ceil(hz))

    # Background: sky gradient above the horizon, roadside colour below.
    base = np.empty((H, W, 3), dtype=np.uint8)
    a = np.linspace(0.0, 1.0, hz_row, dtype=np.float32)[:, None]
    sky = (1 - a) * np.asarray(scene.sky_top, np.float32) + a * np.asarray(
        scene.sky_bottom, np.float32
    )
    base[:hz_row] = np.clip(sky, 0, 255).astype(np.uint8)[:, None, :]
    base[hz_row:] = np.asarray(scene.roadside, np.uint8)
    img = Image.fromarray(base)
    draw = ImageDraw.Draw(img)

    # Optional tree line / buildings silhouette just above the horizon.
    if rng.random() < 0.6:
        n = int(rng.integers(12, 40))
        xs = np.linspace(-20, W + 20, n)
        heights = rng.uniform(5, 45, size=n)
        shade = _rgb(np.asarray(scene.roadside) * rng.uniform(0.35, 0.7))
        poly = [(float(x), hz - float(h)) for x, h in zip(xs, heights)]
        poly += [(W + 20.0, hz + 1.0), (-20.0, hz + 1.0)]
        draw.polygon(poly, fill=shade)

    # Road surface between the two road edges, following the same curve.
    ys = np.arange(hz, H + _DRAW_STEP, _DRAW_STEP, dtype=np.float64)
    ys[-1] = H + 1
    left = [(scene.x_at(scene.road_left_bottom, y), y) for y in ys]
    right = [(scene.x_at(scene.road_right_bottom, y), y) for y in ys[::-1]]
    draw.polygon(left + right, fill=scene.road)

    # Lane lines: a quad per segment, width growing toward the bottom.
    for lane in scene.lanes:
        y0 = lane.start_y
        while y0 < H:
            y1 = min(y0 + _DRAW_STEP, H + 1.0)
            if lane.is_painted((y0 + y1) / 2, scene):
                x0, x1 = scene.lane_x(lane, y0), scene.lane_x(lane, y1)
                w0, w1 = scene.line_width(y0) / 2, scene.line_width(y1) / 2
                draw.polygon(
                    [(x0 - w0, y0), (x0 + w0, y0), (x1 + w1, y1), (x1 - w1, y1)],
                    fill=lane.color,
                )
            y0 = y1

    # Photometric variation: road texture, soft shadows, brightness, noise.
    # out = (paint + texture) * gain + noise, computed mostly on (H, W) planes.
    ground = np.zeros((H, 1), dtype=np.float32)
    ground[hz_row:] = 1.0
    texture = _upsampled_field(rng, (36, 64)) * (float(rng.uniform(4.0, 14.0)) * ground)

    gain = np.full((H, W), float(rng.uniform(0.7, 1.2)), dtype=np.float32)
    # Gentle left-right lighting gradient.
    gain *= 1.0 + float(rng.uniform(-0.15, 0.15)) * np.linspace(-1, 1, W, dtype=np.float32)[None, :]
    n_shadows = int(rng.integers(0, 5))
    if n_shadows:
        small_w, small_h = W // 8, H // 8
        mask = Image.new("L", (small_w, small_h), 0)
        mdraw = ImageDraw.Draw(mask)
        for _ in range(n_shadows):
            cx = rng.uniform(0, small_w)
            cy = rng.uniform(hz / 8, small_h)
            rx = rng.uniform(4, 30)
            ry = rng.uniform(2, 10)
            mdraw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=int(rng.integers(80, 160)))
        mask = mask.filter(ImageFilter.GaussianBlur(1.5)).resize((W, H), Image.Resampling.BILINEAR)
        gain *= 1.0 - (np.asarray(mask, dtype=np.float32) / 255.0) * ground

    sigma = float(rng.uniform(3.0, 10.0))
    offset = texture * gain
    offset += rng.standard_normal((H, W), dtype=np.float32) * sigma
    offset += 0.5  # round to nearest on the final cast
    arr = np.asarray(img, dtype=np.float32)
    arr *= gain[:, :, None]
    arr += offset[:, :, None]
    np.clip(arr, 0.0, 255.0, out=arr)
    return Image.fromarray(arr.astype(np.uint8))


def synth_frame(rng: np.random.Generator) -> tuple[Image.Image, list[list[int]]]:
    """One synthetic 1280x720 RGB road frame and its TuSimple lane labels.

    The labels are a list of lanes, left to right, each with one int x per
    ``H_SAMPLES`` row (-2 = no point there).
    """
    scene = sample_scene(rng)
    return render_scene(scene, rng), scene.labels()
