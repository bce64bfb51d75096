"""Picture-quality metrics for generated frames.

Every function takes float32 pictures in the engines' working encoding
(display-referred, about [0, 1]; see :mod:`shotfill.io.colour`): one image is
``(H, W, 3)`` (or ``(H, W)`` for a single channel), a run of frames is
``(T, H, W, 3)``. Masks follow the shotfill convention, **1 = generate,
0 = keep**; where a metric takes a mask it measures only the pixels with
``mask > 0``, which is where an engine wrote something new.

- :func:`psnr`: peak signal-to-noise ratio against the truth, in dB (higher is better).
- :func:`ssim`: structural similarity on luma, 11x11 Gaussian window (higher is better, 1 = same).
- :func:`temporal_consistency`: flicker, the mean absolute second temporal
  difference of a run of frames (lower is steadier).
- :func:`seam_score`: the jump across a seam in units of the shot's own
  frame-to-frame change (about 1 = seamless, much more = a visible jump).
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from ..errors import InputError

#: SSIM constants of Wang et al. (2004): 11x11 Gaussian window, sigma 1.5
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

#: ITU-R BT.601 luma weights, the usual choice for SSIM on RGB pictures
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)

#: smallest "typical frame-to-frame change" :func:`seam_score` divides by
#: (a quarter of an 8-bit code value), so a still shot does not divide by zero
SEAM_FLOOR = 1e-3


def psnr(a: np.ndarray, b: np.ndarray, *, mask: np.ndarray | None = None,
         peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio of ``a`` against ``b``, in dB.

    ``a`` and ``b`` have the same shape: one image ``(H, W, C)``, a run
    ``(T, H, W, C)``, or single-channel pictures. With ``mask`` (the shape of
    the pictures without the channel axis) only pixels where ``mask > 0``
    count. Identical pictures give ``inf``.
    """
    a, b = _pair(a, b)
    diff = a - b
    if mask is not None:
        diff = diff[_select(mask, a)]
    mse = float(np.mean(np.square(diff, dtype=np.float64)))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def ssim(a: np.ndarray, b: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Structural similarity of two images, on luma.

    The standard Gaussian-window SSIM (window 11x11, sigma 1.5, K1 = 0.01,
    K2 = 0.03, dynamic range 1). RGB images ``(H, W, 3)`` are reduced to
    BT.601 luma first; ``(H, W)`` images are used as they are. Without a mask
    the result is the mean of the SSIM map; with ``mask`` ``(H, W)`` it is the
    mean over the pixels where ``mask > 0``.
    """
    a, b = _pair(a, b)
    x, y = _luma(a), _luma(b)

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA)

    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    if mask is not None:
        ssim_map = ssim_map[_select(mask, x)]
    return float(np.mean(ssim_map, dtype=np.float64))


def temporal_consistency(frames: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Flicker of a run of frames: the mean absolute second temporal difference.

    For each inner frame ``t`` it measures ``|f[t+1] - 2 f[t] + f[t-1]|``, the
    part of the change that is not a steady fade, averaged over pixels,
    channels and frames. Lower is steadier; a frozen or steadily fading run
    scores 0, and real footage scores above 0 wherever things move, so compare
    a generated run with the true run of the same shot.

    ``frames`` is ``(T, H, W, C)`` or ``(T, H, W)`` with ``T >= 3``. With
    ``mask`` ``(T, H, W)``, a pixel counts at frame ``t`` when it is masked in
    any of ``t - 1``, ``t``, ``t + 1``.
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim not in (3, 4) or frames.shape[0] < 3:
        raise InputError(
            f"temporal consistency needs at least 3 frames (T, H, W[, C]), got shape {frames.shape}")
    second = np.abs(frames[2:] - 2.0 * frames[1:-1] + frames[:-2])
    if mask is None:
        return float(np.mean(second, dtype=np.float64))
    mask = np.asarray(mask)
    if mask.shape != frames.shape[:3]:
        raise InputError(f"mask shape {mask.shape} does not match frames {frames.shape[:3]}")
    hit = mask > 0
    around = hit[2:] | hit[1:-1] | hit[:-2]
    if not around.any():
        raise InputError("the mask selects no pixels")
    return float(np.mean(second[around], dtype=np.float64))


def seam_score(before: np.ndarray, after: np.ndarray, shot_frames: Sequence[np.ndarray] | np.ndarray,
               *, floor: float = SEAM_FLOOR) -> float:
    """How visible the seam between two consecutive frames is.

    The jump across the seam, ``mean |after - before|``, divided by the shot's
    typical frame-to-frame change: the median over consecutive pairs of
    ``shot_frames`` of their mean absolute difference, floored at ``floor``.
    About 1 means the seam changes as much as any other pair of frames of the
    shot; much more than 1 is a visible jump.
    """
    before, after = _pair(before, after)
    shot = np.asarray(shot_frames, dtype=np.float32)
    if shot.shape[0] < 2 or shot.shape[1:] != before.shape:
        raise InputError(
            f"seam score needs at least 2 shot frames shaped like {before.shape}, got {shot.shape}")
    axes = tuple(range(1, shot.ndim))
    steps = np.mean(np.abs(shot[1:] - shot[:-1]), axis=axes, dtype=np.float64)
    typical = max(float(np.median(steps)), floor)
    jump = float(np.mean(np.abs(after - before), dtype=np.float64))
    return jump / typical


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.shape != b.shape:
        raise InputError(f"cannot compare pictures of shapes {a.shape} and {b.shape}")
    return a, b


def _luma(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[2] == 3:
        return np.ascontiguousarray(img @ LUMA_WEIGHTS)
    raise InputError(f"SSIM needs an (H, W) or (H, W, 3) image, got shape {img.shape}")


def _select(mask: np.ndarray, pictures: np.ndarray) -> np.ndarray:
    """Boolean index of the masked pixels: ``mask`` is ``pictures``' shape, or it without channels."""
    mask = np.asarray(mask)
    if mask.shape not in (pictures.shape, pictures.shape[:-1]):
        raise InputError(f"mask shape {mask.shape} does not match pictures {pictures.shape}")
    hit = mask > 0
    if not hit.any():
        raise InputError("the mask selects no pixels")
    return hit
