"""Seams: where generated frames meet the real plate.

Two jobs, both in the engines' working encoding:

- :func:`anchor_to_plate` colour-matches generated frames to the ORIGINAL
  plate frames next to them (never to earlier generated frames, so drift cannot
  compound across chained windows). A bridge is matched to A near A and to B
  near B, blended linearly across the gap.
- :func:`seam_scores` measures each seam: the jump across the cut divided by
  the shot's own frame-to-frame change (about 1 is seamless, much more is a
  visible jump). See :func:`shotfill.metrics.seam_score`.
"""
from __future__ import annotations

import numpy as np

from .plan import FramePlan, Role, TaskKind


def anchor_to_plate(plan: FramePlan, working: np.ndarray, result: np.ndarray,
                    masks: np.ndarray) -> np.ndarray:
    """Return ``result`` with generated frames colour-matched to the nearest plate frames.

    Frame by frame (:func:`shotfill.colour.colour_matcher`): one copy of ``result``, whatever the
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


def seam_scores(plan: FramePlan, working: np.ndarray, result: np.ndarray) -> dict[str, float]:
    """Seam score at every cut between a known and a generated frame.

    A cut with a single known frame on its side (an engine that reads one context frame)
    has no frame-to-frame change of the shot to compare with: it gets no score.
    """
    from .metrics import seam_score

    gen = set(plan.generate_positions)
    if not gen:
        return {}
    known = plan.known_positions
    scores = {}
    for p in range(len(plan) - 1):
        left, right = plan.frames[p].role, plan.frames[p + 1].role
        if left is Role.KNOWN and right is Role.GENERATE:
            name, real, generated = f"{plan.frames[p].source}_to_generated", p, p + 1
            side = [k for k in known if k <= p][-4:]
        elif left is Role.GENERATE and right is Role.KNOWN:
            name, real, generated = f"generated_to_{plan.frames[p + 1].source}", p + 1, p
            side = [k for k in known if k >= p + 1][:4]
        else:
            continue
        if len(side) >= 2:
            scores[name] = float(seam_score(working[real], result[generated], working[side]))
    return scores
