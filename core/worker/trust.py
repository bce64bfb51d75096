"""How far each written frame can be trusted, and the warnings that say where it cannot.

Per written frame (:class:`~shotfill_plugin.protocol.FrameTrust`):

- ``trust``: the engine's mean ``confidence`` over the frame's generated pixels (mask > 0), 0..1
  (1: tracked to a real frame; 0: made up); None when the engine gives no confidence.
- ``method``: the engine's word for what it did there (:data:`shotfill.engines.METHODS`).

They travel in the job's result (``frame_trust``), in each EXR header (``shotfill.trust``,
``shotfill.method``) and, where they say the result is weak, as warnings:

- a dissolve: "bridge: fell back to a dissolve on frames 1013-1024: the shots do not follow one
  motion; the result is a cross-dissolve";
- a run of at least :data:`LOW_TRUST_RUN` frames (or every frame assessed, when fewer) whose trust
  is below :data:`LOW_TRUST`: "frames 1017-1024 of the extension: trust below 0.2 (the motion
  could not be followed)". Dissolve frames are left to the first warning.
"""
from __future__ import annotations

import re

from typing import Iterable

import numpy as np
from shotfill_plugin.protocol import LOW_TRUST, LOW_TRUST_RUN, FrameTrust, ProtocolError

from ..engines import METHODS, EngineResult
from ..errors import ShotfillError
from ..plan import FramePlan, TaskKind

__all__ = ["LOW_TRUST", "LOW_TRUST_RUN", "FrameTrust", "ProtocolError", "TRUST_ATTRIBUTE", "METHOD_ATTRIBUTE", "frame_trust",
           "from_attributes", "header_attributes", "trust_warnings"]

#: the EXR header attributes of every written frame (a float and a string; absent when None)
TRUST_ATTRIBUTE = "shotfill.trust"
METHOD_ATTRIBUTE = "shotfill.method"

#: the task as the warnings name it
_TASK_WORDS = {TaskKind.EXTEND_FORWARD: "extension", TaskKind.EXTEND_BACKWARD: "extension",
               TaskKind.BRIDGE: "bridge", TaskKind.FILL: "fill"}
#: why a frame made this way is weak, as a low-trust warning says it
_WEAK_BECAUSE = {
    "extrapolated": "the motion could not be followed",
    "held": "the motion could not be followed; the frames hold still",
    "interpolated": "the motion from one shot to the other could not be followed",
    "propagated": "the hidden pixels could not be found well in other frames",
    "propagated+inpainted": "the hidden pixels could not be found in other frames and were made up",
    "inpainted": "the hidden pixels were made up from their surroundings",
    "generated": "the pixels were made up by the model",
}


def frame_trust(plan: FramePlan, masks: np.ndarray, result: EngineResult, engine: str) -> list[FrameTrust]:
    """Each written position's trust and method, from the engine's ``confidence`` and ``methods``.

    An engine result whose ``confidence`` or ``methods`` do not fit the window is an engine bug,
    raised as a :class:`~shotfill.errors.ShotfillError` naming the engine.
    """
    confidence, methods = result.confidence, result.methods or [None] * len(plan)
    if len(methods) != len(plan):
        raise ShotfillError(f"engine '{engine}' gave {len(methods)} methods for a window of {len(plan)} frames")
    if confidence is not None:
        confidence = np.asarray(confidence)
        if confidence.shape != masks.shape:
            raise ShotfillError(f"engine '{engine}' returned confidence of shape {confidence.shape}, "
                                f"expected {masks.shape}")
    entries = []
    for position in plan.written_positions:
        method = methods[position]
        if method is not None and method not in METHODS:
            raise ShotfillError(f"engine '{engine}' named its method at position {position} {method!r}, "
                                f"not one of {', '.join(METHODS)}")
        new = masks[position] > 0
        trust = None
        if confidence is not None and new.any():
            values = confidence[position][new]
            mean = float(values.mean(dtype=np.float64))
            if not 0.0 <= mean <= 1.0:           # NaN fails this too
                raise ShotfillError(f"engine '{engine}' returned confidence outside 0..1 at position "
                                    f"{position} (mean {mean})")
            trust = round(mean, 3)
        entries.append(FrameTrust(plan.frames[position].output_frame, trust, method))
    return entries


def header_attributes(entry: FrameTrust) -> dict:
    """The frame's ``shotfill.trust`` (Python float) and ``shotfill.method`` (str), each only when known."""
    attrs: dict = {}
    if entry.trust is not None:
        attrs[TRUST_ATTRIBUTE] = float(entry.trust)
    if entry.method is not None:
        attrs[METHOD_ATTRIBUTE] = str(entry.method)
    return attrs


def from_attributes(frame: int, attributes: dict) -> FrameTrust | None:
    """A frame's entry as an earlier run wrote it in the header; None when the header has neither
    attribute (a frame written before shotfill wrote them)."""
    if TRUST_ATTRIBUTE not in attributes and METHOD_ATTRIBUTE not in attributes:
        return None
    trust = attributes.get(TRUST_ATTRIBUTE)
    method = attributes.get(METHOD_ATTRIBUTE)
    return FrameTrust(int(frame), None if trust is None else round(float(trust), 3),
                      None if method is None else str(method))


#: how an engine words its own dissolve fallback: "bridge: fell back to a dissolve (WHY); ..."
_ENGINE_DISSOLVE = re.compile(r"^bridge: fell back to a dissolve \((?P<why>.*)\); [^()]*$")


def dissolve_reason(warning: str) -> str | None:
    """The reason in an engine's own dissolve warning (the motion engine's, and dit's from its
    guess), or None when ``warning`` is not one: the worker folds it into its own warning, which
    names the frames, so the user reads one line, not two."""
    match = _ENGINE_DISSOLVE.match(warning)
    return match.group("why") if match else None


def trust_warnings(kind: TaskKind, entries: list[FrameTrust], dissolve_reasons: Iterable[str] = ()) -> list[str]:
    """The warnings a job's frames call for: each dissolve run (with the engine's reasons for it,
    when it gave any), and each long run of low trust."""
    warnings = []
    because = "; ".join(dict.fromkeys(dissolve_reasons)) or "the shots do not follow one motion"
    for run in _runs(entries, lambda e: e.method == "dissolve"):
        frames = _span(run)
        if all(e.trust is None for e in run):     # an engine that follows no motion, by design
            warnings.append(f"bridge: frames {frames} are a cross-dissolve (the engine follows no motion)")
        else:
            warnings.append(f"bridge: fell back to a dissolve on frames {frames}: {because}; "
                            f"the result is a cross-dissolve")
    assessed = [e for e in entries if e.trust is not None and e.method != "dissolve"]
    shortest = min(LOW_TRUST_RUN, len(assessed)) or 1
    for run in _runs(entries, lambda e: e.is_low and e.method != "dissolve"):
        if len(run) < shortest:
            continue
        why = _WEAK_BECAUSE.get(_most_common(e.method for e in run) or "", "the engine is unsure of its picture")
        warnings.append(f"frames {_span(run)} of the {_TASK_WORDS[kind]}: trust below {LOW_TRUST:g} "
                        f"(lowest {min(e.trust for e in run):.2f}: {why})")
    return warnings


def _runs(entries: list[FrameTrust], inside) -> list[list[FrameTrust]]:
    """Runs of consecutive frames (consecutive numbers) for which ``inside(entry)`` holds."""
    runs: list[list[FrameTrust]] = []
    for entry in entries:
        if not inside(entry):
            continue
        if runs and runs[-1][-1].frame == entry.frame - 1:
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs


def _span(run: list[FrameTrust]) -> str:
    first, last = run[0].frame, run[-1].frame
    return str(first) if first == last else f"{first}-{last}"


def _most_common(words: Iterable[str | None]) -> str | None:
    counts: dict = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    return max(counts, key=counts.get) if counts else None
