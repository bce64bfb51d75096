"""Colour matching: generated frames matched to real plate frames, and plate anchoring.

Colour matching (:func:`match_colour`) works in the sRGB-encoded domain
``E = R^-1(working)`` of :mod:`shotfill.io.colour`, which equals the working encoding below the
knee but is unbounded above it, so a correction can never push a highlight past the ceiling.

:func:`anchor_to_plate` matches generated frames (in the engines' working encoding) to the
ORIGINAL plate frames next to them, never to earlier generated frames, so drift cannot
compound across chained windows. A bridge is matched to A near A and to B near B, blended
linearly across the gap. The seam scores that measure the result are in
:mod:`shotfill.quality.seam`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..plan import FramePlan, TaskKind
from .colour import HALF_MAX, _ceiling, _roll_off, _unroll

MAX_MATCH_GAIN = 2.0
""":func:`match_colour` changes a channel's contrast by at most this factor (or its inverse)."""

_MATCH_SAMPLES = 1 << 18  # pixels per frame (at most) that the matching statistics look at


# ---------------------------------------------------------------------------
# matching generated frames to the plate
# ---------------------------------------------------------------------------
def _robust_stats(encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel median and interquartile range of ``(N, H, W, 3)`` pixels, pooled over N.

    Large frames are sampled on a regular grid of at most ``_MATCH_SAMPLES`` pixels each.
    """
    _, h, w, _ = encoded.shape
    stride = max(1, int(np.ceil(np.sqrt(h * w / _MATCH_SAMPLES))))
    samples = encoded[:, ::stride, ::stride].reshape(-1, 3)
    q1, median, q3 = np.quantile(samples, [0.25, 0.5, 0.75], axis=0).astype(np.float32)
    return median, q3 - q1  # float32, so the per-pixel arithmetic on whole frames stays float32


def match_colour(
    frames: np.ndarray, reference: np.ndarray, *, strength: np.ndarray | float = 1.0
) -> np.ndarray:
    """Match each frame's colour statistics to the reference plate's.

    A per-channel affine correction (a low-order grade) maps each frame's median
    onto the reference's and scales its spread (interquartile range) to the
    reference's, the gain bounded to ``[1 / MAX_MATCH_GAIN, MAX_MATCH_GAIN]``.
    Medians and quartiles ignore the outliers (a specular, a new object) that a
    mean and a standard deviation chase. The correction is computed and applied
    in the unbounded sRGB-encoded domain under the working curve's roll-off, so
    highlights stay below the ceiling. The result is blended with the input by
    ``strength``: 0 returns the frame unchanged, 1 the full match.

    Args:
        frames: ``(T, H, W, 3)`` generated frames in the working encoding.
        reference: ``(H, W, 3)`` or ``(K, H, W, 3)`` real plate frames in the
            working encoding; K frames are pooled. Its size may differ from the frames'.
        strength: a scalar, or one value per frame ``(T,)``, each in [0, 1].

    Returns:
        A new float32 ``(T, H, W, 3)`` array; the inputs are not modified.
    """
    frames = np.asarray(frames, dtype=np.float32)
    reference = np.asarray(reference, dtype=np.float32)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {frames.shape}")
    if reference.ndim == 3:
        reference = reference[None]
    if reference.ndim != 4 or reference.shape[-1] != 3:
        raise ValueError(f"reference must be (H, W, 3) or (K, H, W, 3), got {reference.shape}")
    weights = np.asarray(strength, dtype=np.float32)
    if weights.ndim == 0:
        weights = np.full(frames.shape[0], weights)
    if weights.shape != (frames.shape[0],):
        raise ValueError(f"strength must be a scalar or have shape ({frames.shape[0]},), got {weights.shape}")
    if np.any(weights < 0) or np.any(weights > 1):
        raise ValueError(f"strength must lie in [0, 1], got {strength}")

    match = colour_matcher(reference)
    out = np.empty_like(frames)
    for t, weight in enumerate(weights):
        if weight == 0:
            out[t] = frames[t]
            continue
        matched = match(frames[t])
        out[t] = matched if weight == 1 else frames[t] + weight * (matched - frames[t])
    return out


def colour_matcher(reference: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """:func:`match_colour` for one frame at a time: the reference's statistics are measured once,
    and the returned function maps an ``(H, W, 3)`` working-encoded frame to a new matched one
    (float32). Long plate-size jobs match frame by frame without copies of the whole run.

    ``reference``: ``(H, W, 3)`` or ``(K, H, W, 3)`` real plate frames in the working encoding.
    """
    reference = np.asarray(reference, dtype=np.float32)
    ceiling = _ceiling(HALF_MAX)
    ref_median, ref_spread = _robust_stats(_unroll(reference if reference.ndim == 4 else reference[None], ceiling))

    def match(frame: np.ndarray) -> np.ndarray:
        encoded = _unroll(frame, ceiling)
        median, spread = _robust_stats(encoded[None])
        gain = np.divide(ref_spread, spread, out=np.ones(3, np.float32), where=spread > 0)
        gain = np.clip(gain, 1.0 / MAX_MATCH_GAIN, MAX_MATCH_GAIN)
        return _roll_off(ref_median + (encoded - median) * gain)

    return match


# ---------------------------------------------------------------------------
# anchoring generated frames to the plate frames next to them
# ---------------------------------------------------------------------------
def anchor_to_plate(plan: FramePlan, working: np.ndarray, result: np.ndarray,
                    masks: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """Return ``result`` with generated frames colour-matched to the nearest plate frames.

    Frame by frame (:func:`colour_matcher`): one copy of ``result``, whatever the plate's size
    and the run's length, or none with ``in_place`` (``result`` itself is changed and returned:
    each frame's match reads only that frame, so the order is safe).
    """
    gen = plan.generate_positions
    if not gen or plan.kind is TaskKind.FILL:
        return result
    out = result if in_place else result.copy()
    known = plan.known_positions
    if plan.kind is TaskKind.BRIDGE:
        to_a = colour_matcher(working[[p for p in known if p < gen[0]]])
        to_b = colour_matcher(working[[p for p in known if p > gen[-1]]])
        for i, p in enumerate(gen):
            t = np.float32((i + 1.0) / (len(gen) + 1.0))
            out[p] = to_a(result[p]) * (1.0 - t) + to_b(result[p]) * t
    else:
        match = colour_matcher(working[known])
        for p in gen:
            out[p] = match(result[p])
    return out
