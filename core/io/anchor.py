"""Plate anchoring: generated frames colour-matched to the real plate frames next to them.

:func:`anchor_to_plate` matches generated frames (in the engines' working encoding) to the
ORIGINAL plate frames next to them, never to earlier generated frames, so drift cannot
compound across chained windows. A bridge is matched to A near A and to B near B, blended
linearly across the gap. The seam scores that measure the result are in
:mod:`shotfill.quality.seam`.
"""
from __future__ import annotations

import numpy as np

from ..plan import FramePlan, TaskKind


def anchor_to_plate(plan: FramePlan, working: np.ndarray, result: np.ndarray,
                    masks: np.ndarray) -> np.ndarray:
    """Return ``result`` with generated frames colour-matched to the nearest plate frames.

    Frame by frame (:func:`shotfill.io.colour.colour_matcher`): one copy of ``result``, whatever the
    plate's size and the run's length.
    """
    from .colour import colour_matcher

    gen = plan.generate_positions
    if not gen or plan.kind is TaskKind.FILL:
        return result
    out = result.copy()
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
