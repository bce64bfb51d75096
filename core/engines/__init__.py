"""Engine registry. Engines are imported lazily: asking for ``flow`` never imports torch."""
from __future__ import annotations

import importlib
import inspect

from ..errors import EngineUnavailableError, InputError, ShotfillError
from ..job import DEFAULT_ENGINE  # the job schema's default, listed with the engines
from .base import METHODS, Engine, EngineResult, check_cancel

#: name -> (module, class, one-line description)
ENGINES = {
    "dit": ("shotfill.engines.dit.engine", "DiTEngine",
            "the project's own video diffusion transformer (shipped checkpoint in resources/dit)"),
    "motion": ("shotfill.engines.motion", "MotionEngine",
               "the flow engine with the shipped RIFE: bridges chosen by a self-check, extensions that fade to a hold"),
    "flow": ("shotfill.engines.classical.flow", "FlowEngine",
             "classical optical flow (OpenCV DIS): extrapolate, interpolate, propagate"),
    "baseline": ("shotfill.engines.classical.baselines", "BaselineEngine",
                 "trivial references: freeze frame (extend), dissolve (bridge), spatial inpaint (fill)"),
    "wan-vace": ("shotfill.engines.pretrained.wan_vace", "WanVACEEngine",
                 "Wan2.1-VACE through diffusers, from a local model folder (`shotfill models`); GPU"),
    "ltx": ("shotfill.engines.pretrained.ltx", "LTXEngine",
            "LTX-Video through diffusers' LTXConditionPipeline, from a local model folder; GPU"),
}

#: name -> the known frames it wants on each side (its class's ``context_frames``), declared here so
#: a job's plan is built, and its sources checked, before the engine (torch, diffusers) is imported
CONTEXT_FRAMES = {"dit": 2, "motion": 4, "flow": 4, "baseline": 1, "wan-vace": 17, "ltx": 17}

#: engines that are designed but not built yet; asking for one is a clear error
PLANNED: dict[str, str] = {}

#: what each engine needs beyond the base install, for the error when it is missing
EXTRAS = {"dit": "dit", "motion": "dit", "wan-vace": "dit,pretrained", "ltx": "dit,pretrained"}


def available_engines() -> dict[str, str]:
    return {name: spec[2] for name, spec in ENGINES.items()}


def parse_option(text: str, where: str) -> tuple[str, object]:
    """``KEY=VALUE`` as ``(key, value)``: the value read as JSON when it parses (``8``, ``2.5``,
    ``false``), as text otherwise. ``where`` names the option in the error."""
    import json

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InputError(f"{where} {text!r}: expected KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def declared_context(name: str) -> int:
    """The context frames engine ``name`` wants, without importing it; an unknown name is the
    error :func:`get_engine` gives."""
    if name in CONTEXT_FRAMES:
        return CONTEXT_FRAMES[name]
    if name in ENGINES:
        raise ShotfillError(f"engine '{name}' is registered without its context frames (CONTEXT_FRAMES)")
    get_engine(name)                   # not registered: raises EngineUnavailableError naming it
    raise EngineUnavailableError(f"unknown engine '{name}'")


def get_engine(name: str, **options) -> Engine:
    if name in ENGINES:
        module, cls, _ = ENGINES[name]
        try:
            engine_class = getattr(importlib.import_module(module), cls)
        except ModuleNotFoundError as e:
            extra = EXTRAS.get(name)
            if extra is None or e.name is None or e.name.startswith("shotfill"):
                raise
            raise EngineUnavailableError(
                f"engine '{name}' needs the Python package '{e.name}', which is not installed: install "
                f"shotfill with its '{extra}' extra (in a checkout: pip install -c constraints.txt "
                f"torch==2.13.0 -e '.[{extra}]'), or choose --engine flow, which needs no model") from None
        accepted = inspect.signature(engine_class).parameters
        for option in options:
            if option not in accepted:
                known = ", ".join(p for p in accepted if p != "self") or "none"
                raise EngineUnavailableError(
                    f"engine '{name}' has no option '{option}' (its options: {known})")
        return engine_class(**options)
    if name in PLANNED:
        raise EngineUnavailableError(f"engine '{name}' does not work yet: {PLANNED[name]}")
    raise EngineUnavailableError(
        f"unknown engine '{name}' (choose from: {', '.join(sorted(ENGINES))})")


__all__ = ["CONTEXT_FRAMES", "METHODS", "Engine", "EngineResult", "available_engines", "check_cancel",
           "declared_context", "get_engine", "DEFAULT_ENGINE"]
