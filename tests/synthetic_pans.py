"""Synthetic clips for the engine tests: a smooth random texture seen through a window that pans
at a constant integer velocity, so the true frames are known (``test_engines_flow.py``,
``test_engines_motion.py``)."""
from __future__ import annotations

import cv2
import numpy as np

from shotfill.plan import FramePlan

H, W = 64, 96
VX, VY = 3, 1


def texture(seed: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), 2.0)
    return ((image - image.min()) / (image.max() - image.min())).astype(np.float32)


def panning_clip(count: int, seed: int = 0, velocity: tuple[int, int] = (VX, VY)) -> np.ndarray:
    """``count`` frames (H, W) of a texture panned by ``velocity`` (x, y) pixels per frame (either sign)."""
    vx, vy = velocity
    big = texture(seed, H + abs(vy) * count + 2, W + abs(vx) * count + 2)
    x0 = 0 if vx >= 0 else abs(vx) * count
    y0 = 0 if vy >= 0 else abs(vy) * count
    return np.stack([big[y0 + vy * k:y0 + vy * k + H, x0 + vx * k:x0 + vx * k + W] for k in range(count)])


def window(plan: FramePlan, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The engine's input for ``plan``: generated positions zeroed, masks 1 there."""
    frames = truth.copy()
    masks = np.zeros(truth.shape[:3], np.float32)
    for p in plan.generate_positions:
        frames[p] = 0.0
        masks[p] = 1.0
    return frames, masks
