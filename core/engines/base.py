"""The engine interface every engine implements.

``generate(plan, frames, masks, ...)`` receives the whole plan window:

- ``frames``: float32 array ``(T, H, W, 3)`` in the engines' working space
  (display-referred, about [0, 1]; see :mod:`shotfill.io.colour`). Positions the
  plan generates hold zeros.
- ``masks``: float32 array ``(T, H, W)``, **1 = generate, 0 = keep**. Known
  positions are all 0, generated positions all 1, fill positions carry the
  region to fill.

It returns an :class:`EngineResult`: ``frames``, a float32 array ``(T, H, W, 3)``
holding the engine's picture for every position, with the engine's per-pixel
``confidence`` in it where the engine can tell, what it measured and chose
(``info``) and what it had to change to run the plan (``warnings``). The worker
only takes the engine's values where the mask is > 0 and copies original pixels
everywhere else, so known pixels stay bit-exact. An engine keeps no state from
one call to the next that a caller reads back.

``frame_rate`` is the timeline's (or the source's) frame rate, for the engines
whose model takes one; None when it is not known.

``progress(fraction, message)`` is called with 0..1; ``cancel()`` returns True
when the job must stop, and engines call :func:`check_cancel` at every step.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import TYPE_CHECKING, Callable, ClassVar, Optional

if TYPE_CHECKING:  # the registry stays importable without numpy's start-up cost (`shotfill --help`)
    import numpy as np

from ..errors import CancelledError, InputError
from ..plan import FramePlan, TaskKind

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]


def check_cancel(cancel: Optional[CancelFn]) -> None:
    if cancel is not None and cancel():
        raise CancelledError("cancelled")


def no_progress(fraction: float, message: str = "") -> None:  # pragma: no cover - trivial
    pass


@dataclasses.dataclass
class EngineResult:
    """What an engine returns for one plan window."""

    #: ``(T, H, W, 3)`` float32: the engine's picture for every position of the window
    frames: np.ndarray
    #: ``(T, H, W)`` float32 in [0, 1]: the engine's trust in each pixel of its result (1: taken from or
    #: tracked to a real frame; 0: made up), or None when the engine does not say
    confidence: Optional[np.ndarray] = None
    #: what the engine measured and chose (working size, windows, fallbacks, ``timings`` of its stages...)
    info: dict = dataclasses.field(default_factory=dict)
    #: what it had to change to run the plan (frames rounded to the model's count...), for the job's events
    warnings: list = dataclasses.field(default_factory=list)
    #: what the engine did at each position of the window, in a word or two (see :data:`METHODS`);
    #: None at positions it did not touch (known frames, a fill frame whose mask is empty)
    methods: list = dataclasses.field(default_factory=list)


#: the words engines use in :attr:`EngineResult.methods`
METHODS = {
    "extrapolated": "the motion of the frames before continued",
    "held": "a known frame repeated (freeze frame)",
    "interpolated": "in-between of the frames on both sides, along their motion",
    "dissolve": "a cross-dissolve of the frames on both sides (no motion followed)",
    "propagated": "hidden pixels taken from other frames along their motion",
    "inpainted": "hidden pixels made up from the pixels around them in the same frame",
    "propagated+inpainted": "some hidden pixels taken from other frames, the rest made up around them",
    "generated": "made by a generative model",
}


class Engine(abc.ABC):
    #: registry name, e.g. "flow"
    name: ClassVar[str]
    #: task kinds this engine can do
    supports: ClassVar[frozenset] = frozenset(TaskKind)
    #: known frames it wants on each side of what it generates
    context_frames: ClassVar[int] = 8
    #: whether a text prompt changes what it does
    uses_prompt: ClassVar[bool] = False

    def describe(self) -> dict:
        """Provenance for EXR headers: engine name, model id and checksum."""
        return {"engine": self.name, "model": "", "model_sha256": ""}

    def check_plan(self, plan: FramePlan) -> None:
        if plan.kind not in self.supports:
            kinds = ", ".join(sorted(k.value for k in self.supports))
            raise InputError(f"engine '{self.name}' cannot do {plan.kind.value} (it does: {kinds})")

    @abc.abstractmethod
    def generate(self, plan: FramePlan, frames, masks, *, prompt: str | None = None, seed: int = 0,
                 frame_rate: float | None = None, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelFn] = None) -> EngineResult:
        """Return the engine's result for the whole window (see the module docstring)."""
