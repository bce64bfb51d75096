"""Procedural camera footage: a small 2.5D landscape rendered through a moving camera.

Everything here is made by the project: no third-party image goes in. A shot is
a small 2.5D landscape seen through a moving pinhole camera:

- a sky (gradient, soft clouds from fractal value noise, sometimes the sun),
- distant mountains and nearer hills with noisy ridgelines (textured cards),
- a far belt of trees and a few nearer trees and bushes (textured cards),
- a ground plane with grass, dirt patches and sometimes a path (shaded per pixel,
  with a level of detail from the pixel's footprint, so it never shimmers),
- optionally a moving object (a rolling ball or a flapping bird),
- optionally a "rig": a light stand with a small box and a red LED, the kind of
  thing a compositor removes. Its mask is the exact coverage of its pixels.

Layers sit at real depths, so a camera move gives true parallax: for a pan the
near ground slides faster than the trees, which slide faster than the hills.
Pixels are scene-linear Rec.709 (float32 RGB); bright sky and clouds go above
1 and the sun's core reaches about 4, so EXR sources are realistically HDR.

World coordinates, in metres: x to the right, y down, z forward; the ground is
the plane y = 0. Image coordinates put pixel (row i, column j) at (x=j, y=i).

Camera moves (``ShotSpec.camera``), centred on the middle frame of the shot:

- ``pan``: the camera trucks sideways while yawing a little the same way;
- ``tilt``: the camera cranes up (or down) while tilting the same way;
- ``zoom``: the camera dollies forward (backward for a negative speed);
- ``orbit``: the camera arcs around a point 20 m ahead, turning to keep it centred.

``ShotSpec.speed`` is the motion, in image widths per frame, of a point on the
reference plane 20 m ahead (for ``zoom``, of such a point at the frame's left or
right edge; for ``orbit``, the pivot stays still and the sky moves this much).
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import math
from typing import Callable

import cv2
import numpy as np

from ..errors import InputError

#: distance (m) of the plane that ``ShotSpec.speed`` is measured on
REFERENCE_DEPTH = 20.0
#: the fastest move, in image widths per frame on the reference plane
MAX_SPEED = 0.05
#: the longest move over a whole shot, in image widths on the reference plane
MAX_TRAVEL = 1.0

_MOUNTAIN_DEPTH = 900.0    # m: where the mountains' card stands (z; the middle camera is at 0)
_NEAR_PLANE = 0.5          # m: cards closer than this to the camera are not drawn
_FAR_TREES_SPREAD = 3.0    # m: how far below its card's ground line a far tree may stand


class CameraMove(str, enum.Enum):
    """How the camera moves during a shot (see the module docstring)."""

    PAN = "pan"
    TILT = "tilt"
    ZOOM = "zoom"
    ORBIT = "orbit"


@dataclasses.dataclass(frozen=True)
class ShotSpec:
    """Everything that defines a procedural shot; the same spec renders the same pixels.

    ``seed`` picks the world (ridges, trees, sky, light), the lens, the horizon
    and the direction of a pan or orbit. ``speed`` is in image widths per frame
    on the 20 m reference plane (module docstring); a negative speed reverses
    the move (tilts go up and zooms go in for positive speeds). The whole move,
    ``abs(speed) * (frames - 1)``, is at most :data:`MAX_TRAVEL` image widths,
    which keeps turns well under 90 degrees and dollies short of the hills.
    ``with_object`` adds a rolling ball or a bird, ``with_rig`` a light stand
    to be removed.
    """

    seed: int
    width: int
    height: int
    frames: int
    camera: CameraMove | str = CameraMove.PAN
    speed: float = 0.004
    with_object: bool = True
    with_rig: bool = False

    def __post_init__(self) -> None:
        for name in ("seed", "width", "height", "frames"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise InputError(f"ShotSpec.{name}: expected an integer, got {value!r}")
        if self.seed < 0:
            raise InputError(f"ShotSpec.seed: must be >= 0, got {self.seed}")
        if self.width < 8 or self.height < 8:
            raise InputError(f"ShotSpec.width/height: must be at least 8 pixels, "
                             f"got {self.width}x{self.height}")
        if self.frames < 1:
            raise InputError(f"ShotSpec.frames: must be >= 1, got {self.frames}")
        try:
            object.__setattr__(self, "camera", CameraMove(self.camera))
        except ValueError:
            choices = ", ".join(m.value for m in CameraMove)
            raise InputError(f"ShotSpec.camera: {self.camera!r} is not one of {choices}") from None
        if not math.isfinite(self.speed) or abs(self.speed) > MAX_SPEED:
            raise InputError(f"ShotSpec.speed: must be finite and at most {MAX_SPEED} image "
                             f"widths per frame in size, got {self.speed!r}")
        if abs(self.speed) * (self.frames - 1) > MAX_TRAVEL:
            raise InputError(f"ShotSpec.speed: {self.speed} image widths per frame over "
                             f"{self.frames} frames moves more than {MAX_TRAVEL} image widths; "
                             f"use a lower speed or fewer frames")


@dataclasses.dataclass(frozen=True)
class FrameSample:
    """One rendered frame: the picture, the rig's mask and the picture without the rig.

    ``frame`` and ``clean`` are float32 ``(H, W, 3)`` scene-linear Rec.709;
    ``rig_mask`` is float32 ``(H, W)`` in {0, 1}, 1 where the rig covers any
    part of a pixel (1 = generate), all zeros for a shot without a rig. Outside
    the mask ``frame`` and ``clean`` are identical; without a rig they are the
    same array.
    """

    frame: np.ndarray
    rig_mask: np.ndarray
    clean: np.ndarray


@dataclasses.dataclass(frozen=True)
class ShotFrames:
    """A whole rendered shot: ``frames`` and ``clean`` (T, H, W, 3), ``rig_masks`` (T, H, W).

    For a shot without a rig, ``clean`` is the same array as ``frames``.
    """

    spec: ShotSpec
    frames: np.ndarray
    rig_masks: np.ndarray
    clean: np.ndarray


def render_frame(spec: ShotSpec, t: int) -> FrameSample:
    """Render frame ``t`` (0-based) of the shot ``spec``.

    The scene (textures, placements) is built once per spec and cached, so
    rendering a long shot frame by frame costs one build plus the per-frame work.
    """
    if not isinstance(t, (int, np.integer)) or not 0 <= t < spec.frames:
        raise InputError(f"frame index {t!r} is outside the shot's 0..{spec.frames - 1}")
    return _scene_for(spec).render(int(t))


def render_shot(spec: ShotSpec) -> ShotFrames:
    """Render every frame of ``spec``: pictures, rig masks and the clean plate."""
    scene = _scene_for(spec)
    shape = (spec.frames, spec.height, spec.width)
    frames = np.empty(shape + (3,), np.float32)
    masks = np.zeros(shape, np.float32)
    clean = np.empty(shape + (3,), np.float32) if spec.with_rig else frames
    for t in range(spec.frames):
        sample = scene.render(t)
        frames[t] = sample.frame
        if spec.with_rig:
            masks[t] = sample.rig_mask
            clean[t] = sample.clean
    return ShotFrames(spec=spec, frames=frames, rig_masks=masks, clean=clean)


# ---------------------------------------------------------------------------
# Noise
# ---------------------------------------------------------------------------

def _lattice_noise(table: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Value noise: random values on the integer lattice, smoothly interpolated.

    The lattice repeats with the table's shape, so a small table gives a
    seamlessly tiling texture. Returns float32 in about [-1, 1].
    """
    rows, cols = table.shape
    flat = table.ravel()
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    ix0 = x0.astype(np.int64) % cols
    iy0 = y0.astype(np.int64) % rows
    ix1 = (ix0 + 1) % cols
    iy1 = (iy0 + 1) % rows
    sx = fx * fx * (3.0 - 2.0 * fx)
    sy = fy * fy * (3.0 - 2.0 * fy)
    top = flat[iy0 * cols + ix0] * (1.0 - sx) + flat[iy0 * cols + ix1] * sx
    bottom = flat[iy1 * cols + ix0] * (1.0 - sx) + flat[iy1 * cols + ix1] * sx
    return top * (1.0 - sy) + bottom * sy


class _Noise:
    """Fractal value noise over the plane, seeded; the same point always gives the same value."""

    def __init__(self, rng: np.random.Generator):
        self.table = rng.uniform(-1.0, 1.0, (256, 256)).astype(np.float32)

    def __call__(self, x, y) -> np.ndarray:
        return _lattice_noise(self.table, np.asarray(x, np.float64), np.asarray(y, np.float64))

    def fbm(self, x, y, octaves: int, *, footprint: np.ndarray | float | None = None,
            gain: float = 0.5) -> np.ndarray:
        """Sum of ``octaves`` octaves (frequency doubling), normalised to about [-1, 1].

        With ``footprint`` (the size of a sample in the same units as x and y)
        octaves too fine to be sampled fade out instead of aliasing.
        """
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        total = np.zeros(np.broadcast(x, y).shape, np.float32)
        amplitude, frequency, norm = 1.0, 1.0, 0.0
        for octave in range(octaves):
            # offset each octave so they do not share lattice points
            value = self(x * frequency + 17.31 * octave, y * frequency - 31.7 * octave)
            if footprint is not None:
                value = value * _octave_weight(frequency, footprint)
            total += np.float32(amplitude) * value
            norm += amplitude
            amplitude *= gain
            frequency *= 2.0
        return total / np.float32(norm)


def _octave_weight(frequency: float, footprint) -> np.ndarray | float:
    """1 while a wavelength spans 4+ samples, fading to 0 at 2 samples."""
    samples_per_wave = 1.0 / (frequency * np.maximum(footprint, 1e-9))
    return np.clip(samples_per_wave * 0.5 - 1.0, 0.0, 1.0).astype(np.float32)


def _tile_texture(rng: np.random.Generator, size: int = 256, cells: int = 4,
                  octaves: int = 3) -> np.ndarray:
    """A seamlessly tiling float32 (size, size) fractal noise texture, about [-1, 1]."""
    coords = (np.arange(size) + 0.5) / size
    x, y = np.meshgrid(coords, coords)
    total = np.zeros((size, size), np.float32)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        n = cells * 2 ** octave
        table = rng.uniform(-1.0, 1.0, (n, n)).astype(np.float32)
        total += np.float32(amplitude) * _lattice_noise(table, x * n, y * n)
        norm += amplitude
        amplitude *= 0.5
    return total / np.float32(norm)


def _smoothstep(edge0, edge1, x) -> np.ndarray:
    t = np.clip((np.asarray(x, np.float32) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _rgb(*values: float) -> np.ndarray:
    return np.array(values, np.float32)


# ---------------------------------------------------------------------------
# Camera
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Camera:
    """A pinhole camera: position (m), yaw (right positive), pitch (up positive), focal (px)."""

    position: np.ndarray
    yaw: float
    pitch: float
    focal: float
    width: int
    height: int

    @functools.cached_property
    def rotation(self) -> np.ndarray:
        """World-to-camera rotation."""
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        yaw = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
        pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
        return (yaw @ pitch).T

    @functools.cached_property
    def intrinsics(self) -> np.ndarray:
        return np.array([[self.focal, 0.0, (self.width - 1) / 2.0],
                         [0.0, self.focal, (self.height - 1) / 2.0],
                         [0.0, 0.0, 1.0]])

    @property
    def forward(self) -> np.ndarray:
        return self.rotation[2]

    @functools.cached_property
    def _ray_matrix(self) -> np.ndarray:
        return (self.rotation.T @ np.linalg.inv(self.intrinsics)).astype(np.float32)

    def rays(self, xs, ys) -> np.ndarray:
        """World directions (..., 3) through image points (broadcast together), float32;
        the camera-space depth of every direction is 1."""
        m = self._ray_matrix
        xs = np.asarray(xs, np.float32)[..., None]
        ys = np.asarray(ys, np.float32)[..., None]
        return xs * m[:, 0] + ys * m[:, 1] + m[:, 2]

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image coordinates (N, 2) and camera-space depths (N,) of world points (N, 3)."""
        camera_points = (np.asarray(points, np.float64) - self.position) @ self.rotation.T
        depth = camera_points[:, 2]
        image = camera_points @ self.intrinsics.T
        return image[:, :2] / depth[:, None], depth


@dataclasses.dataclass(frozen=True)
class _CameraPath:
    """The camera of every frame: a linear move centred on the shot's middle frame."""

    move: CameraMove
    frames: int
    focal: float
    width: int
    height: int
    height_above_ground: float
    pitch: float
    velocity: np.ndarray      # m per frame
    yaw_rate: float           # rad per frame
    pitch_rate: float         # rad per frame

    def at(self, t: float) -> _Camera:
        tau = t - (self.frames - 1) / 2.0
        if self.move is CameraMove.ORBIT:
            angle = self.yaw_rate * tau
            position = np.array([-REFERENCE_DEPTH * math.sin(angle), -self.height_above_ground,
                                 REFERENCE_DEPTH * (1.0 - math.cos(angle))])
        else:
            position = np.array([0.0, -self.height_above_ground, 0.0]) + self.velocity * tau
        return _Camera(position=position, yaw=self.yaw_rate * tau,
                       pitch=self.pitch + self.pitch_rate * tau, focal=self.focal,
                       width=self.width, height=self.height)

    def sample_times(self) -> np.ndarray:
        """Frames that bound what the shot sees (the moves are monotonic)."""
        return np.unique(np.linspace(0, self.frames - 1, min(self.frames, 9)))


def _make_camera_path(spec: ShotSpec, rng: np.random.Generator) -> _CameraPath:
    hfov = math.radians(rng.uniform(52.0, 64.0))
    focal = (spec.width / 2.0) / math.tan(hfov / 2.0)
    horizon_row = spec.height * rng.uniform(0.52, 0.64)
    pitch = math.atan((horizon_row - (spec.height - 1) / 2.0) / focal)
    direction = rng.choice([-1.0, 1.0])
    screen_speed = spec.speed * spec.width          # px per frame on the reference plane
    half = (spec.frames - 1) / 2.0
    height = 1.7
    velocity = np.zeros(3)
    yaw_rate = pitch_rate = 0.0
    if spec.camera is CameraMove.PAN:
        # 80% of the motion from trucking, 20% from turning the same way
        velocity[0] = direction * 0.8 * screen_speed * REFERENCE_DEPTH / focal
        yaw_rate = direction * 0.2 * screen_speed / focal
    elif spec.camera is CameraMove.TILT:
        # craning up makes the scene sink in frame, and so does tilting up
        velocity[1] = -0.6 * screen_speed * REFERENCE_DEPTH / focal
        pitch_rate = 0.4 * screen_speed / focal
        height = max(height, 0.6 + abs(velocity[1]) * half)
    elif spec.camera is CameraMove.ZOOM:
        velocity[2] = 2.0 * spec.speed * REFERENCE_DEPTH
    else:
        yaw_rate = direction * screen_speed / focal
    return _CameraPath(move=spec.camera, frames=spec.frames, focal=focal, width=spec.width,
                       height=spec.height, height_above_ground=height, pitch=pitch,
                       velocity=velocity, yaw_rate=yaw_rate, pitch_rate=pitch_rate)


def _screen_samples(width: int, height: int, n: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """A grid of image points covering the frame and a margin around it."""
    xs, ys = np.meshgrid(np.linspace(-2.0, width + 1.0, n), np.linspace(-2.0, height + 1.0, n))
    return xs.ravel(), ys.ravel()


# ---------------------------------------------------------------------------
# Light and atmosphere
# ---------------------------------------------------------------------------

_MOODS = {
    "clear": dict(zenith=(0.10, 0.22, 0.55), horizon=(0.80, 0.90, 1.10), sun=(1.0, 0.95, 0.88),
                  sun_power=2.4, visibility=2500.0, cloud_cover=0.25),
    "hazy": dict(zenith=(0.28, 0.36, 0.55), horizon=(1.05, 1.05, 1.05), sun=(1.0, 0.93, 0.82),
                 sun_power=1.8, visibility=1000.0, cloud_cover=0.45),
    "golden": dict(zenith=(0.14, 0.20, 0.42), horizon=(1.30, 0.90, 0.60), sun=(1.0, 0.70, 0.42),
                   sun_power=2.0, visibility=1500.0, cloud_cover=0.35),
}


@dataclasses.dataclass(frozen=True)
class _Light:
    """Sun and sky: direction to the sun (unit, world), colours, haze."""

    sun_direction: np.ndarray
    sun_colour: np.ndarray       # irradiance of the sun on a surface facing it
    ambient: np.ndarray          # irradiance from the sky on an upward surface
    zenith: np.ndarray
    horizon: np.ndarray
    visibility: float            # m: haze transmittance is exp(-distance / visibility)
    cloud_cover: float
    sun_in_sky: bool             # the sun disc is drawn (it may still be hidden by ridges)

    @property
    def haze(self) -> np.ndarray:
        return self.horizon * np.float32(0.85)

    def shade(self, albedo: np.ndarray, normal: np.ndarray) -> np.ndarray:
        """Lambert shading of ``albedo`` (..., 3) with unit normals (..., 3)."""
        return albedo * self.irradiance(normal)

    def irradiance(self, normal: np.ndarray) -> np.ndarray:
        """Light (..., 3) falling on surfaces with unit normals (..., 3): sun and sky."""
        normal = np.asarray(normal, np.float32)
        direct = np.clip(normal @ self.sun_direction.astype(np.float32), 0.0, None)[..., None]
        up = np.clip(-normal[..., 1:2], 0.0, 1.0)
        return direct * self.sun_colour + (0.45 + 0.55 * up) * self.ambient

    def aerial(self, radiance: np.ndarray, distance) -> np.ndarray:
        """Haze: blend towards the horizon colour with distance (m)."""
        distance = np.asarray(distance, np.float32)
        transmittance = np.exp(-distance / np.float32(self.visibility))[..., None]
        return radiance * transmittance + self.haze * (1.0 - transmittance)


def _make_light(rng: np.random.Generator, path: _CameraPath) -> _Light:
    mood = _MOODS[rng.choice(list(_MOODS))]
    middle = path.at((path.frames - 1) / 2.0)
    sun_in_sky = bool(rng.random() < 0.5)
    if sun_in_sky:
        # somewhere in the upper part of the middle frame, above the horizon
        horizon_row = (path.height - 1) / 2.0 + path.focal * math.tan(path.pitch)
        x = rng.uniform(0.15, 0.85) * path.width
        y = horizon_row - rng.uniform(0.12, 0.45) * horizon_row
        direction = middle.rays(np.array([x]), np.array([y]))[0]
    else:
        azimuth = rng.choice([-1.0, 1.0]) * rng.uniform(0.7, 2.8)
        elevation = rng.uniform(0.15, 0.6)
        direction = np.array([math.sin(azimuth) * math.cos(elevation), -math.sin(elevation),
                              math.cos(azimuth) * math.cos(elevation)])
    direction = direction / np.linalg.norm(direction)
    sun = _rgb(*mood["sun"])
    zenith, horizon = _rgb(*mood["zenith"]), _rgb(*mood["horizon"])
    return _Light(sun_direction=direction, sun_colour=sun * np.float32(mood["sun_power"]),
                  ambient=(zenith + horizon) * np.float32(0.35), zenith=zenith, horizon=horizon,
                  visibility=mood["visibility"], cloud_cover=mood["cloud_cover"],
                  sun_in_sky=sun_in_sky)


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------

def _over(canvas: np.ndarray, premultiplied: np.ndarray) -> None:
    """Composite premultiplied RGBA (H, W, 4) over ``canvas`` (H, W, 3), in place."""
    canvas *= _three(1.0 - premultiplied[..., 3])
    canvas += premultiplied[..., :3]


def _three(plane: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W, 3) float32, the plane in every channel.

    Multiplying by this is several times faster than numpy's (H, W, 1) broadcast.
    """
    plane = np.ascontiguousarray(plane, np.float32)
    return cv2.merge([plane, plane, plane])


@dataclasses.dataclass
class _Card:
    """A premultiplied RGBA texture on a plane facing the camera's rest direction.

    Texel (u, v) lies at world (x0 + u s, y0 + v s, depth). A card with
    ``depth=None`` is at infinity: texel (u, v) is the direction
    (x0 + u s, y0 + v s, 1), which is how the sky is mapped.
    """

    depth: float | None
    x0: float
    y0: float
    texel: float
    texture: np.ndarray

    def draw(self, canvas: np.ndarray, camera: _Camera, t: float) -> None:
        s = self.texel
        if self.depth is None:
            plane = np.array([[s, 0.0, self.x0], [0.0, s, self.y0], [0.0, 0.0, 1.0]])
        else:
            c = camera.position
            if self.depth - c[2] < _NEAR_PLANE:
                return   # the camera has come too close to (or past) this card
            plane = np.array([[s, 0.0, self.x0 - c[0]], [0.0, s, self.y0 - c[1]],
                              [0.0, 0.0, self.depth - c[2]]])
        # Every pixel's ray heads towards +z (turns stay well under 90 degrees), so it meets
        # the card in front of the camera and the inverse homography finds the right texel.
        # Warp only into the card's bounding box on screen, when all its corners are in front.
        rows, cols = self.texture.shape[:2]
        corners = np.array([[0, 0, 1], [cols, 0, 1], [0, rows, 1], [cols, rows, 1]], float)
        projected = (corners @ plane.T) @ camera.rotation.T
        c0, r0, c1, r1 = 0, 0, camera.width, camera.height
        if projected[:, 2].min() > 0.0:
            image = projected @ camera.intrinsics.T
            image = image[:, :2] / image[:, 2:3]
            c0, r0 = np.maximum(np.floor(image.min(axis=0)).astype(int) - 1, 0)
            c1, r1 = np.minimum(np.ceil(image.max(axis=0)).astype(int) + 2, [c1, r1])
            if c1 <= c0 or r1 <= r0:
                return
        to_box = np.array([[1.0, 0.0, -c0], [0.0, 1.0, -r0], [0.0, 0.0, 1.0]])
        homography = to_box @ camera.intrinsics @ camera.rotation @ plane
        warped = cv2.warpPerspective(self.texture, homography, (int(c1 - c0), int(r1 - r0)),
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                     borderValue=(0.0, 0.0, 0.0, 0.0))
        if warped.shape[-1] == 3:   # the opaque sky
            canvas[r0:r1, c0:c1] = warped
        else:
            _over(canvas[r0:r1, c0:c1], warped)


def _card_bounds(path: _CameraPath, depth: float | None):
    """The (x0, x1, y0, y1) region of a card that the shot sees, and the texels per unit
    needed for a texel to be no larger than a pixel; None when the card is never seen."""
    xs, ys = _screen_samples(path.width, path.height)
    points, density = [], 0.0
    for t in path.sample_times():
        camera = path.at(t)
        rays = camera.rays(xs, ys)
        if depth is None:
            hits = rays[:, :2] / rays[:, 2:3]
            density = max(density, camera.focal)
        else:
            distance = depth - camera.position[2]
            if distance < _NEAR_PLANE:
                continue
            hits = camera.position[:2] + rays[:, :2] * (distance / rays[:, 2:3])
            density = max(density, camera.focal / distance)
        points.append(hits)
    if not points:
        return None
    points = np.concatenate(points)
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return x0, x1, y0, y1, density


def _build_card(path: _CameraPath, depth: float | None, top: float, bottom: float,
                paint: Callable[[np.ndarray, np.ndarray, float], np.ndarray],
                density_scale: float = 1.0) -> _Card | None:
    """Paint the part of a card that the shot sees, between world heights ``top`` and
    ``bottom`` (y grows downwards). ``paint(x, y, texel)`` gets the texel centres as a
    (1, W) and an (H, 1) array and returns (H, W, 4) premultiplied RGBA or (H, W, 3)."""
    bounds = _card_bounds(path, depth)
    if bounds is None:
        return None
    x0, x1, y0, y1, density = bounds
    texel = 1.0 / (density * density_scale)
    y0, y1 = max(y0, top), min(y1, bottom)
    if y1 <= y0:
        return None
    margin = 2 * texel
    x0, y0 = x0 - margin, y0 - margin
    cols = int(math.ceil((x1 - x0) / texel)) + 3
    rows = int(math.ceil((y1 - y0) / texel)) + 3
    x = (x0 + texel * np.arange(cols))[None, :]
    y = (y0 + texel * np.arange(rows))[:, None]
    texture = np.ascontiguousarray(paint(x, y, texel), np.float32)
    return _Card(depth=depth, x0=x0, y0=y0, texel=texel, texture=texture)


# ---------------------------------------------------------------------------
# Painting the world
# ---------------------------------------------------------------------------

class _World:
    """The seeded content of a shot: what every layer looks like, anywhere."""

    def __init__(self, seed: int, light: _Light, rng: np.random.Generator):
        self.seed = seed
        self.light = light
        self.noise = _Noise(rng)
        self.hills_depth = rng.uniform(160.0, 220.0)
        self.far_trees_depth = rng.uniform(90.0, 130.0)
        self.near_trees_depth = rng.uniform(18.0, 30.0)
        self.mountain_height = rng.uniform(0.06, 0.13)      # rad above the horizon
        self.hill_height = rng.uniform(0.025, 0.045)
        self.snow_line = rng.uniform(0.55, 0.8)
        self.grass = [_rgb(0.075, 0.13, 0.035), _rgb(0.15, 0.16, 0.06)]
        self.dirt = _rgb(0.20, 0.15, 0.09)
        self.ground_tiles = [(_tile_texture(rng), size) for size in (256.0, 32.0, 4.0, 0.5)]
        self.path_offset = rng.uniform(-6.0, 6.0) if rng.random() < 0.5 else None
        self.path_phase = rng.uniform(0.0, 2.0 * math.pi)

    # -- sky ----------------------------------------------------------------
    def paint_sky(self, p: np.ndarray, q: np.ndarray, texel: float) -> np.ndarray:
        """Sky radiance for directions (p, q, 1): gradient, clouds, sun."""
        light = self.light
        elevation = np.arctan2(-q, np.sqrt(1.0 + p * p)).astype(np.float32)
        blend = (1.0 - np.exp(-np.clip(elevation, 0.0, None) / 0.35))[..., None]
        sky = light.horizon * (1.0 - blend) + light.zenith * blend
        direction = np.stack(np.broadcast_arrays(p, q, np.ones_like(p)), axis=-1)
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        cos_sun = np.clip(direction @ light.sun_direction, -1.0, 1.0).astype(np.float32)
        angle = np.arccos(cos_sun)
        sun_glow = 0.5 * np.exp(-angle / 0.06) + 0.35 * np.exp(-angle / 0.35)
        sky = sky * (1.0 + sun_glow[..., None])
        # clouds on a ceiling: (p, q) -> (p / h, 1 / h) with h the height above the horizon
        h = np.clip(-q, 0.02, None)
        cx, cz = 1.5 * p / h, 1.5 / h
        footprint = texel * 1.5 / (h * h)
        shape = self.noise.fbm(cx, cz + 50.0, 6, footprint=footprint)
        threshold = 0.6 - 0.3 * light.cloud_cover     # about that fraction of the sky
        cover = _smoothstep(threshold, threshold + 0.15, shape * 0.5 + 0.5)
        cover *= _smoothstep(0.0, 0.12, elevation) * 0.9
        lit = 0.65 + 0.6 * self.noise.fbm(cx + 3.1, cz + 49.0, 3) + 1.2 * np.exp(-angle / 0.4)
        cloud = light.horizon * np.clip(lit, 0.3, None)[..., None] * 1.4
        sky = sky * (1.0 - cover[..., None]) + cloud * cover[..., None]
        if light.sun_in_sky:
            disc = _smoothstep(0.016, 0.009, angle) * (1.0 - 0.8 * cover)
            sky = sky + (2.2 * disc)[..., None] * light.sun_colour / light.sun_colour.max()
        return sky.astype(np.float32)

    # -- distant ridges -----------------------------------------------------
    def paint_mountains(self, x: np.ndarray, y: np.ndarray, texel: float) -> np.ndarray:
        d = _MOUNTAIN_DEPTH
        ax, ay, at = x / d, -y / d, texel / d          # angles; ay is elevation
        ridge = 1.0 - np.abs(self.noise.fbm(ax * 9.0 + 100.0, 3.7, 6, footprint=at * 9.0))
        ridge = self.mountain_height * (0.25 + 0.75 * ridge ** 2)
        coverage = np.clip((ridge - ay) / at + 0.5, 0.0, 1.0)
        rock = self.noise.fbm(ax * 40.0, ay * 40.0, 5, footprint=at * 40.0)
        # facets: mostly facing up and towards the camera, turned sideways by the rock's slope
        normal = np.empty(rock.shape + (3,), np.float32)
        normal[..., 0] = np.clip(np.gradient(rock, axis=1) / (at * 40.0) * 0.02, -0.8, 0.8)
        normal[..., 1] = -0.55
        normal[..., 2] = -0.8
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        albedo = _rgb(0.10, 0.10, 0.11) * (0.8 + 0.4 * rock[..., None])
        snow = _smoothstep(self.snow_line, self.snow_line + 0.1,
                           ay / self.mountain_height + 0.3 * rock)
        albedo = albedo * (1.0 - snow[..., None]) + _rgb(0.7, 0.72, 0.78) * snow[..., None]
        # mountains are kilometres away, whatever the card's depth: keep them half visible
        radiance = self.light.aerial(self.light.shade(albedo, normal), 0.7 * self.light.visibility)
        return _premultiply(radiance, coverage)

    def paint_hills(self, x: np.ndarray, y: np.ndarray, texel: float) -> np.ndarray:
        d = self.hills_depth
        ax, ay, at = x / d, -y / d, texel / d
        ridge = self.hill_height * (0.45 + 0.55 * self.noise.fbm(ax * 6.0 + 40.0, 9.1, 5,
                                                                  footprint=at * 6.0))
        coverage = np.clip((ridge - ay) / at + 0.5, 0.0, 1.0)
        fields = self.noise.fbm(ax * 30.0 + 7.0, ay * 90.0, 4, footprint=at * 90.0)
        woods = _smoothstep(0.1, 0.3, self.noise.fbm(ax * 18.0 - 5.0, ay * 50.0, 4,
                                                     footprint=at * 50.0))
        albedo = (_rgb(0.07, 0.10, 0.035) * (1.0 + 0.5 * fields[..., None])
                  * (1.0 - 0.55 * woods[..., None]))
        normal = np.broadcast_to(_unit(0.0, -0.7, -0.7), albedo.shape)
        radiance = self.light.aerial(self.light.shade(albedo, normal), d)
        return _premultiply(radiance, coverage)

    # -- trees --------------------------------------------------------------
    def paint_far_trees(self, x, y, texel):
        return self._paint_trees(x, y, texel, self.far_trees_depth, cell=4.0, presence=0.8,
                                 heights=(5.0, 11.0), spread=_FAR_TREES_SPREAD,
                                 undergrowth=3.0, layer=1)

    def paint_near_trees(self, x, y, texel):
        return self._paint_trees(x, y, texel, self.near_trees_depth, cell=11.0, presence=0.45,
                                 heights=(5.0, 12.0), spread=0.0, undergrowth=0.0, layer=2)

    def _paint_trees(self, x, y, texel, depth, *, cell, presence, heights, spread,
                     undergrowth, layer):
        """Trees placed one per world cell (so the same seed gives the same forest at
        any size or length of shot), in groves, painted back to front onto a card.

        ``spread`` (m) lowers each tree's foot by up to that much below the card's
        ground line, so a belt of trees on one card reads as a forest edge with
        depth rather than a row. ``undergrowth`` (m) is the height of a bushy band
        along the ground line."""
        rgba = np.zeros((y.shape[0], x.shape[1], 4), np.float32)
        if undergrowth:
            top = undergrowth * (0.2 + 0.8 * _smoothstep(
                -0.4, 0.4, self.noise.fbm(x * 0.08 + 11.0 * layer, 0.5, 5)))
            coverage = np.clip((y + top) / texel + 0.5, 0.0, 1.0) * (y < texel)
            leaf = self.noise.fbm(x * 1.3, y * 1.3, 3)
            albedo = _rgb(0.05, 0.08, 0.03) * (0.8 + 0.5 * leaf[..., None])
            normal = np.broadcast_to(_unit(0.0, -0.5, -0.85), albedo.shape)
            rgba = _premultiply(self.light.aerial(self.light.shade(albedo, normal), depth),
                                coverage)
        trees = []
        first, last = int(math.floor(x[0, 0] / cell)) - 2, int(math.ceil(x[0, -1] / cell)) + 2
        for index in range(first, last + 1):
            rng = np.random.default_rng([self.seed, layer, index + 2 ** 31])
            grove = float(self.noise(index * cell * 0.02 + 70.0 * layer, 5.5))
            if rng.random() < presence * (1.0 + grove):
                trees.append(_Tree.random(rng, (index + rng.uniform(0.15, 0.85)) * cell,
                                          heights, spread))
        for tree in sorted(trees, key=lambda tree: tree.foot):     # back to front
            tree.paint(rgba, x, y, texel, self.noise, self.light, depth)
        return rgba

    # -- ground -------------------------------------------------------------
    def shade_ground(self, x: np.ndarray, z: np.ndarray, distance: np.ndarray,
                     footprint: np.ndarray) -> np.ndarray:
        """Ground radiance at world points (x, 0, z) seen from ``distance`` m with
        ``footprint`` m per pixel; detail finer than the footprint fades out."""
        bands = []
        for tile, size in self.ground_tiles:
            scale = np.float32(256.0 / size)
            u, v = x * scale, z * scale
            u -= np.floor(u * np.float32(1 / 256)) * np.float32(256.0)   # wrap to the tile
            v -= np.floor(v * np.float32(1 / 256)) * np.float32(256.0)
            value = cv2.remap(tile, u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
            # the tile's finest wavelength is size / 16
            bands.append(value * _octave_weight(16.0 / size, footprint))
        macro, meso, micro, fine = bands
        grass_mix = _smoothstep(-0.35, 0.45, macro + 0.4 * meso)
        dirt = _smoothstep(0.35, 0.55, meso + 0.3 * micro)
        if self.path_offset is not None:
            centre = self.path_offset + 3.0 * np.sin(z / np.float32(17.0) + self.path_phase)
            half_width = 0.8 + 0.25 * micro
            dirt = np.maximum(dirt, np.clip((half_width - np.abs(x - centre)) / footprint
                                            + 0.5, 0.0, 1.0))
        brightness = 1.0 + 0.5 * micro + 0.9 * fine
        irradiance = self.light.irradiance(_unit(0.0, -1.0, 0.0))
        transmittance = np.exp(-distance / np.float32(self.light.visibility))
        channels = []
        for c in range(3):      # per channel: (H, W) arithmetic is fast, (H, W, 3) is not
            albedo = self.grass[0][c] * (1.0 - grass_mix) + self.grass[1][c] * grass_mix
            albedo = (albedo * (1.0 - dirt) + self.dirt[c] * dirt) * brightness
            haze = self.light.haze[c]
            channels.append(albedo * (irradiance[c] * transmittance) + haze * (1.0 - transmittance))
        return cv2.merge([c.astype(np.float32) for c in channels])


def _unit(*values: float) -> np.ndarray:
    v = _rgb(*values)
    return v / np.linalg.norm(v)


def _premultiply(rgb: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """(H, W, 3) colour and (H, W) coverage -> premultiplied (H, W, 4)."""
    coverage = np.ascontiguousarray(np.broadcast_to(coverage, rgb.shape[:2]), np.float32)
    rgb = np.ascontiguousarray(rgb, np.float32) * _three(coverage)
    return cv2.merge([rgb, coverage])


@dataclasses.dataclass(frozen=True)
class _Tree:
    """A tree on a card: a trunk and a crown of leafy blobs or a cone.

    It stands at ``x`` (m) with its foot ``foot`` m below the card's ground line.
    """

    x: float
    foot: float
    height: float
    conifer: bool
    blobs: tuple[tuple[float, float, float], ...]    # (dx, height, radius) of crown blobs
    green: tuple[float, float, float]

    @classmethod
    def random(cls, rng: np.random.Generator, x: float, heights: tuple[float, float],
               spread: float) -> "_Tree":
        height = rng.uniform(*heights)
        conifer = bool(rng.random() < 0.35)
        radius = height * rng.uniform(0.22, 0.32)
        blobs = tuple(
            (rng.normal(0.0, radius * 0.45), height - radius * rng.uniform(0.8, 1.6),
             radius * rng.uniform(0.55, 0.85))
            for _ in range(int(rng.integers(3, 7))))
        green = (rng.uniform(0.035, 0.06), rng.uniform(0.07, 0.11), rng.uniform(0.02, 0.04))
        return cls(x=x, foot=rng.uniform(0.0, spread), height=height, conifer=conifer,
                   blobs=blobs, green=green)

    def paint(self, rgba, x, y, texel, noise: _Noise, light: _Light, depth: float) -> None:
        width = self.height * 0.45
        cols = np.nonzero((x[0] > self.x - width) & (x[0] < self.x + width))[0]
        rows = np.nonzero((y[:, 0] > self.foot - self.height * 1.05)
                          & (y[:, 0] < self.foot + texel))[0]
        if cols.size == 0 or rows.size == 0:
            return
        region = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        px = x[:, region[1]] - self.x
        py = self.foot - y[region[0], :]            # height above the tree's foot
        leaf = noise.fbm(px * 1.4 + 31.0 * self.x, py * 1.4, 3)
        if self.conifer:
            half = self.height * 0.2 * np.clip((self.height - py) / (self.height * 0.8), 0, 1)
            tiers = 1.0 - 0.3 * np.abs(np.sin(py * 2.2))
            field = half * tiers * (1.0 + 0.3 * leaf) - np.abs(px)
            field = np.where(py > self.height * 0.12, field, -1.0)
            nx = np.clip(px / np.maximum(half, 1e-3), -1.0, 1.0)
            ny = np.full_like(field, -0.4)
            albedo_scale = 0.75
        else:
            field = np.full(np.broadcast(px, py).shape, -1e9, np.float32)
            nx = np.zeros_like(field)
            ny = np.zeros_like(field)
            for dx, cy, r in self.blobs:
                sx, sy = (px - dx) / r, (py - cy) / r
                inside = 1.0 - (sx * sx + sy * sy)
                better = inside * r > field
                field = np.where(better, inside * r, field)
                nx = np.where(better, sx, nx)
                ny = np.where(better, -sy, ny)
            field = field + 0.45 * leaf * (self.height * 0.08)
            albedo_scale = 1.0
        nz = -np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.05, 1.0))
        normal = np.stack([nx, ny, nz], axis=-1).astype(np.float32)
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        crown = np.clip(field / texel + 0.5, 0.0, 1.0)
        trunk = np.clip((self.height * 0.025 + 0.1 - np.abs(px)) / texel + 0.5, 0.0, 1.0)
        trunk = trunk * ((py < self.height * 0.6) & (py > 0.0))
        albedo = _rgb(*self.green) * albedo_scale * (0.7 + 0.6 * leaf[..., None])
        # leaves in the crown's shadowed gaps are darker
        albedo = albedo * (0.6 + 0.4 * _smoothstep(-0.3, 0.2, leaf))[..., None]
        radiance = light.aerial(light.shade(albedo, normal), depth)
        bark = light.aerial(light.ambient * _rgb(0.05, 0.035, 0.025), depth)
        tree = _premultiply(np.broadcast_to(bark, radiance.shape), trunk)
        _over_rgba(tree, _premultiply(radiance, crown))
        _over_rgba(rgba[region], tree)


def _over_rgba(under: np.ndarray, over: np.ndarray) -> None:
    """Composite premultiplied RGBA ``over`` onto premultiplied RGBA ``under``, in place."""
    under *= 1.0 - over[..., 3:4]
    under += over


# ---------------------------------------------------------------------------
# Ground, objects and rig: drawn per frame
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class _Ground:
    """The part ``near < z <= far`` of the ground plane y = 0, shaded per pixel with a
    level of detail from each pixel's footprint.

    The ground is split at the cards that stand on it (the hills), so that each
    part is drawn in its place between them, far to near.
    """

    world: _World
    near: float
    far: float

    @property
    def depth(self) -> float:
        """Drawn right after the card at its far edge, before anything nearer."""
        return self.far - 1e-3

    def draw(self, canvas: np.ndarray, camera: _Camera, t: float) -> None:
        h, w = canvas.shape[:2]
        band = self._rows(camera, h, w)
        if band is None:
            return
        rays = camera.rays(np.arange(w)[None, :], np.arange(band.start, band.stop)[:, None])
        # rays have a camera-space depth of 1, so ``reach`` is the depth of their hit
        reach = np.float32(-camera.position[1]) / rays[..., 1]
        x = np.float32(camera.position[0]) + rays[..., 0] * reach
        z = np.float32(camera.position[2]) + rays[..., 2] * reach
        ray_length = np.sqrt(np.einsum("...i,...i->...", rays, rays))
        distance = reach * ray_length
        grazing = rays[..., 1] / ray_length
        across = distance / np.float32(camera.focal)   # m per pixel across the line of sight
        along = across / grazing                        # m per pixel along the ground
        coverage = (np.clip((self.far - z) / along + 0.5, 0.0, 1.0)
                    * np.clip((z - self.near) / along + 0.5, 0.0, 1.0))
        radiance = self.world.shade_ground(x, z, distance, across / np.sqrt(grazing))
        _over(canvas[band], _premultiply(radiance, coverage))

    def _rows(self, camera: _Camera, h: int, w: int) -> slice | None:
        """The image rows that see this part of the ground (plus one either side).

        The camera does not roll, so a row's rays all dip by the same amount and
        meet the ground at one depth; the hit's z varies linearly along the row.
        """
        ends = camera.rays(np.array([[0.0, w - 1.0]]), np.arange(h)[:, None])   # (H, 2, 3)
        dip = ends[:, 0, 1]
        reach = np.float32(-camera.position[1]) / np.where(dip > 1e-6, dip, np.inf)
        z = camera.position[2] + ends[..., 2] * reach[:, None]
        seen = (dip > 1e-6) & (z.max(axis=1) > self.near) & (z.min(axis=1) < self.far)
        rows = np.nonzero(seen)[0]
        if rows.size == 0:
            return None
        first = max(rows[0] - 1, int(np.argmax(dip > 1e-6)))
        return slice(first, min(rows[-1] + 2, h))


def _linear_track(path: _CameraPath, depth: float, start: tuple[float, float],
                  end: tuple[float, float]) -> Callable[[float], np.ndarray]:
    """World positions (x, y, z) of something moving at a constant velocity on the plane
    ``depth`` m ahead of the middle camera, seen at image point ``start`` (column and row
    as fractions of the frame) in the first frame and at ``end`` in the last."""
    z = path.at((path.frames - 1) / 2.0).position[2] + depth

    def place(t: float, point: tuple[float, float]) -> np.ndarray:
        camera = path.at(t)
        ray = camera.rays(np.array([point[0] * (path.width - 1)]),
                          np.array([point[1] * (path.height - 1)]))[0]
        return camera.position + ray * ((z - camera.position[2]) / ray[2])

    first, last = place(0, start), place(path.frames - 1, end)

    def at(t: float) -> np.ndarray:
        s = t / (path.frames - 1) if path.frames > 1 else 0.5
        return first + (last - first) * s

    return at


class _Ball:
    """A ball rolling across the ground, with a soft contact shadow."""

    def __init__(self, rng: np.random.Generator, path: _CameraPath, light: _Light):
        self.radius = rng.uniform(0.25, 0.35)
        self.depth = rng.uniform(9.0, 13.0)
        start = rng.uniform(0.12, 0.3)
        if rng.random() < 0.5:
            start = 1.0 - start
        self.track = _linear_track(path, self.depth, (start, 0.8), (1.0 - start, 0.8))
        self.colour = [_rgb(0.45, 0.04, 0.03), _rgb(0.05, 0.12, 0.45),
                       _rgb(0.55, 0.40, 0.03)][int(rng.integers(3))]
        self.light = light

    def draw(self, canvas: np.ndarray, camera: _Camera, t: float) -> None:
        x, _, z = self.track(t)
        centre = np.array([x, -self.radius, z])
        image, depth = camera.project(centre[None])
        if depth[0] < _NEAR_PLANE:
            return
        r_px = camera.focal * self.radius / depth[0]
        box = _box(canvas, image[0], 2.2 * r_px + 2)
        if box is None:
            return
        (r0, r1), (c0, c1) = box
        ys, xs = np.mgrid[r0:r1, c0:c1].astype(np.float64)
        rays = camera.rays(xs.ravel(), ys.ravel())
        region = canvas[r0:r1, c0:c1]
        # contact shadow on the ground
        down = rays[:, 1] > 1e-6
        reach = np.where(down, -camera.position[1] / np.where(down, rays[:, 1], 1.0), np.inf)
        gx = camera.position[0] + rays[:, 0] * reach - x
        gz = camera.position[2] + rays[:, 2] * reach - z
        shadow = 0.65 * np.exp(-(gx * gx + 3.0 * gz * gz) / (self.radius * self.radius * 1.2))
        region *= (1.0 - np.where(down, shadow, 0.0).reshape(region.shape[:2]))[..., None]
        # the sphere: ray-sphere intersection, coverage from the ray's miss distance
        direction = rays / np.linalg.norm(rays, axis=1, keepdims=True)
        to_centre = centre - camera.position
        along = direction @ to_centre
        miss = np.sqrt(np.clip(to_centre @ to_centre - along * along, 0.0, None))
        coverage = np.clip((self.radius - miss) * camera.focal / depth[0] + 0.5, 0.0, 1.0)
        hit = along - np.sqrt(np.clip(self.radius ** 2 - miss * miss, 0.0, None))
        normal = (camera.position + direction * hit[:, None] - centre) / self.radius
        roll = -(x / self.radius)
        spun_x = normal[:, 0] * math.cos(roll) - normal[:, 1] * math.sin(roll)
        stripe = _smoothstep(0.22, 0.16, np.abs(spun_x))[:, None]
        albedo = self.colour * (1.0 - stripe) + _rgb(0.6, 0.6, 0.58) * stripe
        normal32 = normal.astype(np.float32)
        radiance = self.light.shade(albedo, normal32)
        glint = np.clip(normal32 @ _halfway(self.light.sun_direction, -direction.mean(0)), 0, 1)
        radiance = radiance + (glint ** 60 * 1.5)[:, None] * self.light.sun_colour
        layer = _premultiply(radiance.reshape(region.shape), coverage.reshape(region.shape[:2]))
        _over(region, layer)


def _halfway(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    v = a / np.linalg.norm(a) + b / np.linalg.norm(b)
    return (v / np.linalg.norm(v)).astype(np.float32)


class _Bird:
    """A dark bird flapping across the sky."""

    def __init__(self, rng: np.random.Generator, path: _CameraPath):
        self.depth = rng.uniform(30.0, 45.0)
        self.span = rng.uniform(0.9, 1.4)
        self.period = rng.uniform(6.0, 9.0)        # frames per wing beat
        self.phase = rng.uniform(0.0, 2.0 * math.pi)
        horizon = 0.5 + path.focal * math.tan(path.pitch) / path.height
        start = (rng.uniform(0.05, 0.2), horizon * rng.uniform(0.3, 0.7))
        end = (1.0 - start[0], start[1] * rng.uniform(0.7, 1.3))
        if rng.random() < 0.5:
            start, end = end, start
        self.track = _linear_track(path, self.depth, start, end)
        self.heading = 1.0 if start[0] < 0.5 else -1.0

    def draw(self, canvas: np.ndarray, camera: _Camera, t: float) -> None:
        x, y, z = self.track(t)
        flap = math.sin(2.0 * math.pi * t / self.period + self.phase)
        s, h = self.span / 2.0, self.heading
        outline = np.array([                                                   # (x, up) in m
            (-0.28 * h, 0.0), (-0.1 * h, 0.05), (0.0, 0.0),                    # tail to body
            (0.18 * s, 0.08 + 0.35 * s * flap), (s, 0.05 + 0.7 * s * flap),    # one wing
            (0.25 * s, -0.03), (0.2 * h, -0.02), (0.3 * h, 0.01),              # head
            (-0.25 * s, -0.03), (-s, 0.05 + 0.7 * s * flap),                   # other wing
            (-0.18 * s, 0.08 + 0.35 * s * flap)])
        points = np.column_stack([x + outline[:, 0], y - outline[:, 1],
                                  np.full(len(outline), z)])
        image, depth = camera.project(points)
        if depth.min() < _NEAR_PLANE:
            return
        coverage = _polygon_coverage(canvas.shape[:2], [image])
        if coverage is None:
            return
        (r0, r1, c0, c1), alpha = coverage
        region = canvas[r0:r1, c0:c1]
        _over(region, _premultiply(np.broadcast_to(_rgb(0.015, 0.014, 0.016), region.shape),
                                   alpha))


def _box(canvas: np.ndarray, centre: np.ndarray, half: float):
    """Row and column ranges of a square around ``centre`` clipped to the canvas."""
    h, w = canvas.shape[:2]
    r0, r1 = int(max(0, math.floor(centre[1] - half))), int(min(h, math.ceil(centre[1] + half)))
    c0, c1 = int(max(0, math.floor(centre[0] - half))), int(min(w, math.ceil(centre[0] + half)))
    if r1 <= r0 or c1 <= c0:
        return None
    return (r0, r1), (c0, c1)


def _polygon_coverage(shape: tuple[int, int], polygons: list[np.ndarray]):
    """Anti-aliased coverage of filled polygons (image coordinates), cropped to their
    bounding box: ((r0, r1, c0, c1), float32 coverage in [0, 1]), or None when off-frame."""
    points = np.concatenate(polygons)
    h, w = shape
    c0, r0 = np.floor(points.min(axis=0)).astype(int) - 1
    c1, r1 = np.ceil(points.max(axis=0)).astype(int) + 2
    c0, r0, c1, r1 = max(c0, 0), max(r0, 0), min(c1, w), min(r1, h)
    if c1 <= c0 or r1 <= r0:
        return None
    canvas = np.zeros((r1 - r0, c1 - c0), np.uint8)
    shift = 4
    for polygon in polygons:
        fixed = np.round((polygon - [c0, r0]) * (1 << shift)).astype(np.int32)
        cv2.fillPoly(canvas, [fixed], 255, lineType=cv2.LINE_AA, shift=shift)
    return (r0, r1, c0, c1), canvas.astype(np.float32) / 255.0


class _Rig:
    """A light stand: tripod legs, a pole and a box with a red LED, standing on the ground.

    Drawn after everything else (it is the nearest thing in the scene), so its
    coverage is exactly the region a fill has to regenerate. It casts no shadow.
    """

    def __init__(self, rng: np.random.Generator, path: _CameraPath, light: _Light):
        depth = rng.uniform(5.0, 8.0)
        middle = path.at((path.frames - 1) / 2.0)
        column = rng.uniform(0.3, 0.7) * (path.width - 1)
        ray = middle.rays(np.array([column]), np.array([path.height * 0.75]))[0]
        z = middle.position[2] + depth
        self.base = np.array([middle.position[0] + ray[0] * depth / ray[2], 0.0, z])
        self.height = rng.uniform(1.2, 1.7)
        self.box = np.array([rng.uniform(0.22, 0.32), rng.uniform(0.14, 0.2), 0.16])
        self.light = light

    def coverage(self, camera: _Camera, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Premultiplied RGB (H, W, 3) and coverage (H, W) of the rig in this frame."""
        rgb = np.zeros(shape + (3,), np.float32)
        alpha = np.zeros(shape, np.float32)
        hub = self.base + [0.0, -0.55, 0.0]
        top = self.base + [0.0, -self.height, 0.0]
        metal = self.light.shade(_rgb(0.05, 0.05, 0.055), _unit(0.0, -0.3, -1.0))
        for angle in (0.3, 2.4, 4.5):
            foot = self.base + [0.5 * math.cos(angle), 0.0, 0.5 * math.sin(angle)]
            self._beam(rgb, alpha, camera, foot, hub, 0.018, metal * 0.8)
        self._beam(rgb, alpha, camera, self.base + [0, -0.45, 0], top, 0.03, metal * 1.3)
        w, h, d = self.box / 2.0
        centre = top + [0.0, -h, 0.0]
        faces = [  # (corners as offsets from the centre, albedo), the front last
            ([(-w, -h, -d), (w, -h, -d), (w, -h, d), (-w, -h, d)], _rgb(0.12, 0.12, 0.12)),
            ([(w, -h, -d), (w, -h, d), (w, h, d), (w, h, -d)], _rgb(0.04, 0.04, 0.045)),
            ([(-w, -h, -d), (-w, -h, d), (-w, h, d), (-w, h, -d)], _rgb(0.04, 0.04, 0.045)),
            ([(-w, -h, -d), (w, -h, -d), (w, h, -d), (-w, h, -d)], _rgb(0.06, 0.06, 0.065)),
        ]
        normals = [(0, -1, 0), (1, 0, 0), (-1, 0, 0), (0, 0, -1)]
        for (corners, albedo), normal in zip(faces, normals):
            corners = centre + np.array(corners, float)
            if np.dot(corners.mean(0) - camera.position, normal) >= 0:
                continue   # faces away from the camera
            colour = self.light.shade(albedo, _unit(*normal))
            self._polygon(rgb, alpha, camera, corners, colour)
        led = centre + [w * 0.6, -h * 0.5, -d - 0.001]
        circle = [led + [0.012 * math.cos(a), 0.012 * math.sin(a), 0.0]
                  for a in np.linspace(0, 2 * math.pi, 12, endpoint=False)]
        self._polygon(rgb, alpha, camera, np.array(circle), _rgb(3.0, 0.25, 0.12))
        return rgb, alpha

    def _beam(self, rgb, alpha, camera, a, b, width, colour) -> None:
        image, depth = camera.project(np.array([a, b]))
        if depth.min() < _NEAR_PLANE:
            return
        along = image[1] - image[0]
        side = np.array([-along[1], along[0]]) / max(np.linalg.norm(along), 1e-9)
        half = camera.focal * width / 2.0 / depth
        quad = np.array([image[0] + side * half[0], image[1] + side * half[1],
                         image[1] - side * half[1], image[0] - side * half[0]])
        self._paint(rgb, alpha, quad, colour)

    def _polygon(self, rgb, alpha, camera, corners, colour) -> None:
        image, depth = camera.project(corners)
        if depth.min() < _NEAR_PLANE:
            return
        self._paint(rgb, alpha, image, colour)

    @staticmethod
    def _paint(rgb, alpha, polygon, colour) -> None:
        coverage = _polygon_coverage(alpha.shape, [polygon])
        if coverage is None:
            return
        (r0, r1, c0, c1), a = coverage
        rgb[r0:r1, c0:c1] = rgb[r0:r1, c0:c1] * (1.0 - a[..., None]) + colour * a[..., None]
        alpha[r0:r1, c0:c1] = alpha[r0:r1, c0:c1] * (1.0 - a) + a


# ---------------------------------------------------------------------------
# The scene
# ---------------------------------------------------------------------------

class _Scene:
    """A built shot: cards painted for what the camera will see, objects placed."""

    def __init__(self, spec: ShotSpec):
        self.spec = spec
        streams = np.random.SeedSequence([spec.seed, 0x5C3E]).spawn(5)
        camera_rng, light_rng, world_rng, object_rng, rig_rng = (
            np.random.default_rng(s) for s in streams)
        self.path = _make_camera_path(spec, camera_rng)
        self.light = _make_light(light_rng, self.path)
        world = _World(spec.seed, self.light, world_rng)
        self.sky = _build_card(self.path, None, -np.inf, np.inf, world.paint_sky,
                               density_scale=0.5)
        far_trees, near_trees = world.far_trees_depth, world.near_trees_depth
        cards = [  # (depth, top and bottom in world y, paint)
            (_MOUNTAIN_DEPTH, -_MOUNTAIN_DEPTH * math.tan(world.mountain_height), 0.0,
             world.paint_mountains),
            (world.hills_depth, -world.hills_depth * math.tan(world.hill_height), 0.0,
             world.paint_hills),
            (far_trees, -12.0, _FAR_TREES_SPREAD, world.paint_far_trees),
            (near_trees, -13.0, 0.0, world.paint_near_trees),
        ]
        # everything drawn after the sky, sorted far to near
        self.layers: list[_Card | _Ground | _Ball | _Bird] = [
            card for card in (_build_card(self.path, depth, top, bottom, paint)
                              for depth, top, bottom, paint in cards)
            if card is not None]
        self.layers.append(_Ground(world, near=world.hills_depth, far=_MOUNTAIN_DEPTH))
        self.layers.append(_Ground(world, near=-math.inf, far=world.hills_depth))
        if spec.with_object:
            self.layers.append(_Ball(object_rng, self.path, self.light)
                               if object_rng.random() < 0.5 else _Bird(object_rng, self.path))
        self.layers.sort(key=lambda layer: -layer.depth)
        self.rig = _Rig(rig_rng, self.path, self.light) if spec.with_rig else None

    def render(self, t: int) -> FrameSample:
        camera = self.path.at(t)
        shape = (self.spec.height, self.spec.width)
        canvas = np.zeros(shape + (3,), np.float32)
        self.sky.draw(canvas, camera, t)
        for layer in self.layers:
            layer.draw(canvas, camera, t)
        if self.rig is None:
            return FrameSample(frame=canvas, rig_mask=np.zeros(shape, np.float32), clean=canvas)
        rgb, alpha = self.rig.coverage(camera, shape)
        frame = canvas * _three(1.0 - alpha) + rgb
        mask = (alpha > 0.0).astype(np.float32)
        return FrameSample(frame=frame, rig_mask=mask, clean=canvas)


@functools.lru_cache(maxsize=4)
def _scene_for(spec: ShotSpec) -> _Scene:
    return _Scene(spec)

