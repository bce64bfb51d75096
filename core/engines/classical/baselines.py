"""The trivial references every engine is compared against.

- extend: freeze frame (every new frame repeats the known frame next to it);
- bridge: a linear dissolve from A's last known frame to B's first;
- fill: spatial inpainting (OpenCV Telea) of each frame on its own, no temporal information.

An engine that does not beat these on the benchmark is not worth its cost.
"""
from __future__ import annotations

from typing import ClassVar, Optional

import numpy as np

from ...errors import InputError
from ...plan import FramePlan, TaskKind
from ..base import CancelFn, Engine, EngineResult, ProgressFn, check_cancel, no_progress
from . import _cv


class BaselineEngine(Engine):
    """Freeze frame, dissolve and per-frame inpainting.

    Args:
        inpaint_radius: Telea neighbourhood radius in pixels, for fill.
    """

    name: ClassVar[str] = "baseline"
    context_frames: ClassVar[int] = 1

    def __init__(self, inpaint_radius: int = 5):
        if not isinstance(inpaint_radius, int) or inpaint_radius < 1:
            raise InputError(f"engine option 'inpaint_radius' must be a whole number >= 1, "
                             f"got {inpaint_radius!r}")
        self.inpaint_radius = inpaint_radius

    def generate(self, plan: FramePlan, frames, masks, *, prompt: str | None = None, seed: int = 0,
                 frame_rate: float | None = None, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelFn] = None) -> EngineResult:
        self.check_plan(plan)
        _cv.check_window(plan, frames, masks)
        progress = progress or no_progress
        out = np.array(frames, dtype=np.float32, copy=True)
        if plan.kind is TaskKind.BRIDGE:
            a, b, targets = _cv.bridge_layout(plan)
            jobs = [(p, lambda t=t: _cv.dissolve(frames[a], frames[b], t)) for p, t in targets]
            method = "dissolve"
        elif plan.kind is TaskKind.FILL:
            hole = masks > _cv.HOLE_THRESHOLD
            jobs = [(p, lambda p=p: _cv.inpaint(frames[p], hole[p], self.inpaint_radius))
                    for p in _cv.fill_targets(plan, masks)]
            method = "inpainted"
        else:
            context, targets = _cv.extension_layout(plan)
            jobs = [(p, lambda: frames[context[-1]]) for p, _ in targets]
            method = "held"
        methods: list = [None] * len(plan)
        for i, (position, make) in enumerate(jobs):
            check_cancel(cancel)
            out[position] = make()
            methods[position] = method
            progress((i + 1) / len(jobs), f"{plan.kind.value}: frame {i + 1}/{len(jobs)}")
        return EngineResult(frames=out, methods=methods)
