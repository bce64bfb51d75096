"""Seam scores: how visible each cut between the real plate and generated frames is.

:func:`seam_scores` measures each seam in the engines' working encoding: the jump across the
cut divided by the shot's own frame-to-frame change (about 1 is seamless, much more is a
visible jump). See :func:`shotfill.quality.metrics.seam_score`.
"""
from __future__ import annotations

import numpy as np

from ..plan import FramePlan, Role


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
