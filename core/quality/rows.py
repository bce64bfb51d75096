"""The harness's engine rows: an engine from a spec string, the reference rows, and each row's record.

A row is named by a spec, ``NAME`` or ``NAME:KEY=VALUE:KEY=VALUE`` (``dit:strength=0.5``; values
are JSON or text). ``NAME`` is a registry engine (``shotfill engines``) or one of the harness's
reference rows, which measure what the ``dit`` engine owes to its model:

``dit-guess``       the dit engine's own first guess: whatever
                    :func:`shotfill.engines.working.plate_flow` returns on the trial, at plate
                    size (the picture the model refines and, with the ``correction`` output, the
                    base the model's change is added to). ``dit`` minus this row is the model's
                    own share.
``dit-no-change``   the dit engine with the model's change switched off (its option
                    :data:`NO_CHANGE_OPTION` set to false; the row's other options go to the
                    engine). A dit engine without that option is an error naming it.

:func:`row_record` is what the results file keeps of a row: its name, spec, the registry engine
it runs, every option (as resolved by the engine, defaults included) and the engine's
``describe()`` (model id and checksum).
"""
from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import math
from pathlib import Path
from typing import ClassVar, Optional

from ..engines import ENGINES, Engine, EngineResult, get_engine, parse_option
from ..engines import working
from ..engines.base import CancelFn, ProgressFn
from ..errors import EngineUnavailableError
from ..plan import FramePlan

#: the reference row of the dit engine's own first guess
GUESS_ROW = "dit-guess"
#: the reference row of the dit engine with the model's change switched off
NO_CHANGE_ROW = "dit-no-change"
#: the dit engine option that switches the model's change off (false: off)
NO_CHANGE_OPTION = "model_change"
#: the registry engine whose model the reference rows measure
MODEL_ENGINE = "dit"
#: reference row -> what it measures, for the results file and the table
REFERENCES = {
    GUESS_ROW: "the dit engine's own first guess (shotfill.engines.working.plate_flow, at plate size)",
    NO_CHANGE_ROW: f"the dit engine with the model's change switched off ({NO_CHANGE_OPTION}=false)",
}


@dataclasses.dataclass
class Row:
    """One engine row of a run: its spec, its name, the registry engine it runs and the engine."""

    spec: str
    name: str
    registry: Optional[str]     # the registry engine it runs; None for dit-guess (no registry engine)
    given: dict                 # the spec's options
    engine: Engine

    @property
    def measures_model(self) -> bool:
        """Whether the row runs the dit engine (its PSNR minus the guess row's is the model's share)."""
        return self.registry == MODEL_ENGINE


class GuessEngine(Engine):
    """The ``dit-guess`` row: the dit engine's first guess, :func:`shotfill.engines.working.plate_flow`.

    Looked up at each call, so the row always measures the guess the dit engine uses. Options are
    passed on to ``plate_flow`` as keywords, where it takes any.
    """

    name: ClassVar[str] = GUESS_ROW
    context_frames: ClassVar[int] = 0  # asks for none: the trial decides (and the harness gives every row the same)

    def __init__(self, **options):
        accepted = [p.name for p in inspect.signature(working.plate_flow).parameters.values()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY]
        for option in options:
            if option not in accepted:
                raise EngineUnavailableError(f"row '{GUESS_ROW}' has no option '{option}' (its options: "
                                             f"{', '.join(accepted) or 'none'})")
        self.options = dict(options)

    def describe(self) -> dict:
        return {"engine": GUESS_ROW, "model": "shotfill.engines.working.plate_flow (the dit engine's first guess)",
                "model_sha256": ""}

    def generate(self, plan: FramePlan, frames, masks, *, prompt: str | None = None, seed: int = 0,
                 frame_rate: float | None = None, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelFn] = None) -> EngineResult:
        self.check_plan(plan)
        guess = working.plate_flow(plan, frames, masks, cancel, **self.options)
        return EngineResult(frames=guess.frames, confidence=guess.confidence, info=dict(guess.info),
                            methods=list(getattr(guess, "methods", None) or []))


def engine_class(name: str) -> type:
    """The class of registry engine ``name`` (imports its module)."""
    module, cls, _ = ENGINES[name]
    return getattr(importlib.import_module(module), cls)


def parse_spec(spec: str) -> tuple[str, dict]:
    """``(name, options)`` of ``NAME:KEY=VALUE:...``."""
    name, *pairs = spec.split(":")
    return name, dict(parse_option(pair, f"engine {spec!r}: option") for pair in pairs)


def load_row(spec: str) -> Row:
    """The row of ``spec``: a registry engine, or a reference row (see the module docstring)."""
    name, options = parse_spec(spec)
    if name == GUESS_ROW:
        return Row(spec, name, None, options, GuessEngine(**options))
    if name == NO_CHANGE_ROW:
        if NO_CHANGE_OPTION in options:
            raise EngineUnavailableError(f"row '{NO_CHANGE_ROW}' sets {NO_CHANGE_OPTION} itself; "
                                         f"use '{MODEL_ENGINE}:{NO_CHANGE_OPTION}=...' for another value")
        try:
            accepted = inspect.signature(engine_class(MODEL_ENGINE)).parameters
        except ModuleNotFoundError:
            get_engine(MODEL_ENGINE)  # raises the registry's error, naming the missing package
            raise
        if NO_CHANGE_OPTION not in accepted:
            raise EngineUnavailableError(
                f"row '{NO_CHANGE_ROW}' needs the {MODEL_ENGINE} engine option '{NO_CHANGE_OPTION}' (false: the "
                f"model's change switched off), which this {MODEL_ENGINE} engine does not have (its options: "
                f"{', '.join(p for p in accepted if p != 'self')}); leave the row out of --engines until it does")
        engine = get_engine(MODEL_ENGINE, **options, **{NO_CHANGE_OPTION: False})
        return Row(spec, name, MODEL_ENGINE, {**options, NO_CHANGE_OPTION: False}, engine)
    return Row(spec, name, name, options, get_engine(name, **options))


def resolved_options(row: Row) -> dict:
    """Every option of the row's engine as the engine resolved it (defaults included): the engine's
    attribute of that name where it keeps one (a manifest's default strength, say), else the value
    given, else the signature's default. JSON-safe."""
    if row.registry is None:
        signature = inspect.signature(working.plate_flow)
        params = [p for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    else:
        params = [p for p in inspect.signature(type(row.engine)).parameters.values()
                  if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    options = {}
    for p in params:
        if hasattr(row.engine, p.name) and not callable(getattr(row.engine, p.name)):
            value = getattr(row.engine, p.name)
        elif p.name in row.given:
            value = row.given[p.name]
        else:
            value = None if p.default is inspect.Parameter.empty else p.default
        options[p.name] = json_safe(value)
    return options


def row_record(row: Row) -> dict:
    """What the results file keeps of a row (see the module docstring)."""
    return {
        "row": row.name,
        "spec": row.spec,
        "engine": row.registry,
        "reference": REFERENCES.get(row.name),
        "options": resolved_options(row),
        "given": json_safe(row.given),
        "describe": json_safe(row.engine.describe()),
        "own_context_frames": row.engine.context_frames if row.registry is not None else None,
    }


def json_safe(value):
    """``value`` with enums as their values, paths as text, numpy scalars as numbers and arrays as
    their shape (``"array(3, 4)"``), infinities and NaN as None; dicts, lists and tuples converted item by item."""
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # numpy scalar or array
        if getattr(value, "ndim", 0) == 0:
            return json_safe(value.item())
        return f"array{tuple(value.shape)}"
    return str(value)
