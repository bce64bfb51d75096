"""OpenCV helpers shared by the classical engines (:mod:`.flow`, :mod:`.baselines`).

Conventions used throughout:

- Pictures are float32 ``(H, W, 3)`` in the working encoding; optical flow runs
  on 8-bit grey copies at a reduced *flow size* (long side at most the
  engine's ``flow_max_side``, 960 by default), and displacement fields are
  upsampled back to the plate.
- A *displacement field* ``d`` is float32 ``(h, w, 2)`` holding ``(dx, dy)`` in
  pixels. :func:`estimate_flow` returns ``d`` with ``src(x) ~ dst(x + d(x))``,
  which is exactly the field that :func:`warp` needs to pull ``dst`` onto
  ``src``'s grid (backward warping).
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from ...errors import InputError
from ...plan import FramePlan, Role, TaskKind

#: pixels with a mask value above this are "to generate" (the pipeline blends soft masks itself)
HOLE_THRESHOLD = 0.0
#: float values are inpainted on this scale (see :func:`inpaint`)
TELEA_SCALE = 255.0


# -- input checks and plan layout ------------------------------------------------


def check_window(plan: FramePlan, frames: np.ndarray, masks: np.ndarray) -> None:
    """Check that ``frames`` and ``masks`` describe the plan's window."""
    frames = np.asarray(frames)
    masks = np.asarray(masks)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"frames: expected shape (T, H, W, 3), got {frames.shape}")
    if frames.shape[0] != len(plan):
        raise InputError(f"frames: the plan has {len(plan)} positions, got {frames.shape[0]} frames")
    if masks.shape != frames.shape[:3]:
        raise InputError(f"masks: expected shape {frames.shape[:3]}, got {masks.shape}")
    if frames.dtype != np.float32 or masks.dtype != np.float32:
        raise InputError(f"frames and masks must be float32, got {frames.dtype} and {masks.dtype}")


def extension_layout(plan: FramePlan) -> tuple[list[int], list[tuple[int, int]]]:
    """Context and targets of an extension, oriented so that time runs away from the clip.

    Returns ``(context, targets)``: ``context`` lists the known positions next
    to the generated ones, farthest first and the *anchor* (the known frame
    touching the generated ones) last; ``targets`` lists ``(position, steps)``
    with ``steps`` the distance in frames from the anchor. Extending backward
    is the mirror image of extending forward, so both engines handle one case.
    """
    generated = plan.generate_positions
    if not generated:
        raise InputError(f"{plan.kind.value} plan has no frame to generate")
    if plan.kind is TaskKind.EXTEND_FORWARD:
        context = [p for p in plan.known_positions if p < generated[0]]
        if not context:
            raise InputError("extend_forward plan has no known frame before the generated ones")
        anchor = context[-1]
        return context, [(p, p - anchor) for p in generated]
    context = [p for p in plan.known_positions if p > generated[-1]][::-1]
    if not context:
        raise InputError("extend_backward plan has no known frame after the generated ones")
    anchor = context[-1]
    return context, [(p, anchor - p) for p in generated]


def bridge_layout(plan: FramePlan) -> tuple[int, int, list[tuple[int, float]]]:
    """``(a, b, targets)``: A's last known position, B's first, and ``(position, t)`` with t in (0, 1)."""
    generated = plan.generate_positions
    if not generated:
        raise InputError("bridge plan has no frame to generate")
    before = [p for p in plan.known_positions if p < generated[0]]
    after = [p for p in plan.known_positions if p > generated[-1]]
    if not before or not after:
        raise InputError("bridge plan needs known frames on both sides of the generated ones")
    a, b = before[-1], after[0]
    return a, b, [(p, (p - a) / (b - a)) for p in generated]


def fill_targets(plan: FramePlan, masks: np.ndarray) -> list[int]:
    """Fill positions whose mask asks for at least one pixel."""
    return [p for p in plan.positions(Role.FILL) if (masks[p] > HOLE_THRESHOLD).any()]


# -- pixels -----------------------------------------------------------------------


def to_grey8(image: np.ndarray) -> np.ndarray:
    """8-bit luma of a working-encoding picture (values outside [0, 1] are clipped)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.clip(grey * 255.0 + 0.5, 0, 255).astype(np.uint8)


def dissolve(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Linear cross-fade: ``a`` at t = 0, ``b`` at t = 1."""
    return ((1.0 - t) * a + t * b).astype(np.float32)


def inpaint(image: np.ndarray, hole: np.ndarray, radius: int) -> np.ndarray:
    """Telea inpainting of the ``hole`` (bool ``(H, W)``) of a float32 ``(H, W, C)`` array.

    Works on float32 channels (no 8-bit rounding, values above 1 survive) and
    only on the hole's bounding box plus a margin, which is what Telea reads.
    OpenCV's Telea adds a gradient term of about one unit whatever the
    values' range (harmless on 0..255, ruinous on 0..1), so channels are
    processed scaled by :data:`TELEA_SCALE`.
    """
    out = image.copy()
    if not hole.any():
        return out
    ys, xs = np.nonzero(hole)
    margin = radius + 2
    y0, y1 = max(ys.min() - margin, 0), min(ys.max() + margin + 1, hole.shape[0])
    x0, x1 = max(xs.min() - margin, 0), min(xs.max() + margin + 1, hole.shape[1])
    inside = hole[y0:y1, x0:x1]
    for c in range(image.shape[-1]):
        channel = np.ascontiguousarray(image[y0:y1, x0:x1, c]) * TELEA_SCALE
        filled = cv2.inpaint(channel, inside.astype(np.uint8), radius, cv2.INPAINT_TELEA) / TELEA_SCALE
        out[y0:y1, x0:x1, c][inside] = filled[inside]
    return out


# -- flow and warping ---------------------------------------------------------------


def flow_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """``(h, w)`` at which to estimate flow: the plate scaled so its long side is at most ``max_side``."""
    scale = min(1.0, max_side / max(height, width))
    return max(round(height * scale), 1), max(round(width * scale), 1)


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average ``image`` down (or bilinear up) to ``size = (h, w)``."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    shrink = h < image.shape[0]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def estimate_flow(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """DIS optical flow (OpenCV, medium preset) from 8-bit grey ``src`` to ``dst``.

    Returns ``d`` (float32 ``(h, w, 2)``) with ``src(x) ~ dst(x + d(x))``.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(src, dst, None)


@functools.lru_cache(maxsize=4)
def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Read-only float32 ``(x, y)`` coordinate planes of an image."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    xs.flags.writeable = False
    ys.flags.writeable = False
    return xs, ys


def sample(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, *,
           border: int = cv2.BORDER_REPLICATE, border_value: float = 0.0) -> np.ndarray:
    """Bilinear look-up ``image[map_y, map_x]`` (maps of any shape, in ``image``'s pixels)."""
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=border,
                     borderValue=(border_value,) * 4)


def warp(image: np.ndarray, field: np.ndarray, *, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Backward warp: ``out(y) = image(y + field(y))``; outside the picture, edges
    replicated (or zeros with ``border=cv2.BORDER_CONSTANT``)."""
    xs, ys = pixel_grid(*field.shape[:2])
    return sample(image, xs + field[..., 0], ys + field[..., 1], border=border)


def upsample_field(field: np.ndarray, height: int, width: int) -> np.ndarray:
    """A displacement field at flow size brought to ``(height, width)``, vectors rescaled."""
    h, w = field.shape[:2]
    if (h, w) == (height, width):
        return field
    up = cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR)
    up[..., 0] *= width / w
    up[..., 1] *= height / h
    return up


def forward_backward_error(forward: np.ndarray, backward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward-backward consistency of a flow pair, on ``forward``'s grid.

    Returns ``(error2, tolerance2)``: the squared length of
    ``forward(x) + backward(x + forward(x))`` and the tolerance it is judged
    against, ``0.01 (|forward|^2 + |backward|^2) + 0.5`` (Sundaram, Brox and
    Keutzer 2010), in flow-size pixels squared.
    """
    back = warp(backward, forward)
    error2 = length2(forward + back)
    tolerance2 = 0.01 * (length2(forward) + length2(back)) + 0.5
    return error2, tolerance2


def length2(field: np.ndarray) -> np.ndarray:
    """Squared length of each vector of a displacement field."""
    return field[..., 0] ** 2 + field[..., 1] ** 2


def inside(xs: np.ndarray, ys: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bool: which points ``(xs, ys)`` lie inside a ``(height, width)`` picture."""
    return (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)


def landed_inside(field: np.ndarray) -> np.ndarray:
    """Bool ``(h, w)``: where ``x + field(x)`` is inside the picture."""
    h, w = field.shape[:2]
    xs, ys = pixel_grid(h, w)
    return inside(xs + field[..., 0], ys + field[..., 1], h, w)
