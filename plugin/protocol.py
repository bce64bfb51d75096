"""The worker protocol: the events a shotfill job reports, and their one JSON form.

A worker (``shotfill run JOB.json --events jsonl``, and every command with
``--events jsonl``) writes one JSON object per line on stdout, each with an
``event`` field naming its kind:

====================  ==============================================================
``stage``             a stage starts: ``stage`` (one of :data:`STAGES`), ``message``
``progress``          ``stage``, ``fraction`` (0..1 over the whole job), ``eta_s`` (null until
                      it can be told), ``message`` (only when there is one)
``frame``             a frame was written or kept: ``frame``, ``path``, ``skipped``
``preview``           a preview image was written: ``path``
``preview_frames``    a small PNG of every frame of the window was written: ``frames``, a list
                      of ``position``, ``role`` (known, generate, fill), ``label`` (``a 1039``,
                      ``G 1041``, ``1005``), ``after`` (the picture; a fill's result) and
                      ``before`` (a fill's plate; null otherwise)
``warning``           ``message``
``result``            the job finished: the job's result, flat (``output_pattern``, ``frames``,
                      paths, timings, scores: what ``shotfill publish`` reads), with
                      ``frame_trust``: per written frame, ``frame``, ``trust`` (the engine's
                      mean confidence over the frame's new pixels, 0..1, null when the engine
                      gives none) and ``method`` (what the engine did: "interpolated",
                      "dissolve", "extrapolated", "held", ...; null where it left the frame)
``error``             the job failed: ``message``, ``exit_code``
``demo``              ``shotfill demo`` finished: ``new_edit``, ``contact_sheet``,
                      ``fill_psnr_db``, ``unfilled_psnr_db``, ``results``
====================  ==============================================================

Each kind is one frozen dataclass here: ``to_dict()`` is the object the worker
writes, ``from_dict()`` reads one back and raises :class:`ProtocolError`
naming the event and the field at fault. The engine (``shotfill.events``)
emits these classes and the host side (``shotfill_plugin.client``) parses
them, so the two cannot drift apart. The stage table and the worker's exit
codes live here for the same reason.

Standard library only: this module is copied into Nuke and Resolve with the
rest of the host-side package, and imported by the engine.
"""
from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any, ClassVar, Union

#: the worker's exit codes (``shotfill --help``; ``shotfill.errors`` maps its exceptions onto them)
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 3

#: the stages a job runs through, in order, and the share of the whole job each takes, so one
#: job-wide fraction (with an ETA) splits into per-stage bars
STAGE_WEIGHTS = {"prepare": 0.02, "read": 0.08, "generate": 0.7, "seam": 0.02, "write": 0.13,
                 "timeline": 0.02, "preview": 0.03}
STAGES = tuple(STAGE_WEIGHTS)

#: a written frame whose trust is below this is weak: the worker warns of a run of at least
#: :data:`LOW_TRUST_RUN` of them (every frame assessed, when the job has fewer), and the panel's
#: trust strip marks them. Measured with the flow engine's confidence on 24-frame extensions of six
#: real shots (854x480): the three whose frames fall more than 0.5 dB below a freeze frame, and one
#: that only matches it, drop below 0.2 for 8 to 22 frames; the two it follows well stay above 0.33
LOW_TRUST = 0.2
LOW_TRUST_RUN = 4


class ProtocolError(ValueError):
    """A worker line that looks like an event but is not a valid one."""


# ---------------------------------------------------------------------------
# checking fields
# ---------------------------------------------------------------------------
def _field(d: dict, key: str, kind, line: str, optional: bool = False, where: str = ""):
    """``d[key]`` if it is a ``kind``; ``where`` names the part of the event ``d`` is."""
    value = d.get(key)
    if value is None and optional:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise ProtocolError(f"worker event {where or repr(d.get('event'))} has no valid {key!r}: {line[:200]}")
    return value


def _line(d: dict, line: str | None) -> str:
    """The text errors quote: the worker's line, else the object as the worker would write it."""
    return json.dumps(d, default=str) if line is None else line


# ---------------------------------------------------------------------------
# the events
# ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StageEvent:
    """A stage starts (prepare, read, generate, seam, write, timeline, preview)."""

    kind: ClassVar[str] = "stage"

    stage: str
    message: str = ""

    def to_dict(self) -> dict:
        return {"event": self.kind, "stage": self.stage, "message": self.message}

    @classmethod
    def from_dict(cls, d: dict, line: str | None = None) -> StageEvent:
        line = _line(d, line)
        return cls(_field(d, "stage", str, line), d.get("message") or "")


@dataclasses.dataclass(frozen=True)
class ProgressEvent:
    """``fraction`` is over the whole job (0..1); ``eta_s`` is None until it can be told."""

    kind: ClassVar[str] = "progress"

    stage: str
    fraction: float
    eta_s: float | None = None
    message: str = ""

    def to_dict(self) -> dict:
        d = {"event": self.kind, "stage": self.stage, "fraction": self.fraction, "eta_s": self.eta_s}
        if self.message:
            d["message"] = self.message
        return d

    @classmethod
    def from_dict(cls, d: dict, line: str | None = None) -> ProgressEvent:
        line = _line(d, line)
        return cls(_field(d, "stage", str, line), _field(d, "fraction", float, line),
                   _field(d, "eta_s", float, line, optional=True), d.get("message") or "")


@dataclasses.dataclass(frozen=True)
class FrameEvent:
    """A frame was written (or found already written by this job: ``skipped``)."""

    kind: ClassVar[str] = "frame"

    frame: int
    path: str
    skipped: bool

    def to_dict(self) -> dict:
        return {"event": self.kind, "frame": self.frame, "path": self.path, "skipped": self.skipped}

    @classmethod
    def from_dict(cls, d: dict, line: str | None = None) -> FrameEvent:
        line = _line(d, line)
        return cls(_field(d, "frame", int, line), _field(d, "path", str, line), _field(d, "skipped", bool, line))


@dataclasses.dataclass(frozen=True)
class PreviewEvent:
    """A preview picture was written: the contact sheet around each seam (PNG)."""

    kind: ClassVar[str] = "preview"

    path: str

    def to_dict(self) -> dict:
        return {"event": self.kind, "path": self.path}

    @classmethod
    def from_dict(cls, d: dict, line: str | None = None) -> PreviewEvent:
        return cls(_field(d, "path", str, _line(d, line)))


class PreviewRole(enum.Enum):
    """What a frame of the window is (the engine's plan roles)."""

    KNOWN = "known"          # a real frame, context for the engine, never written
    GENERATE = "generate"    # a whole new frame
    FILL = "fill"            # a real frame whose masked pixels are new


@dataclasses.dataclass(frozen=True)
class PreviewFrame:
    """One frame of the window as a small PNG: ``after`` is the picture (a fill's result),
    ``before`` a fill's plate (None for known and generated frames)."""

    position: int
    role: PreviewRole
    label: str                # as an editor reads it: "a 1039", "G 1041", "1005"
    after: str
    before: str | None = None

    @property
    def is_new(self) -> bool:
        """Whether the picture holds generated pixels (outlined in the preview)."""
        return self.role is not PreviewRole.KNOWN

    def to_dict(self) -> dict:
        return {"position": self.position, "role": self.role.value, "label": self.label,
                "after": self.after, "before": self.before}

    @classmethod
    def from_dict(cls, entry: Any, line: str | None = None, where: str = "'preview_frames'") -> PreviewFrame:
        """One entry of a ``preview_frames`` event; ``where`` names it in errors."""
        line = _line(entry, line)
        if not isinstance(entry, dict):
            raise ProtocolError(f"worker event {where} is not an object: {line[:200]}")
        try:
            role = PreviewRole(entry.get("role"))
        except ValueError:
            raise ProtocolError(f"worker event {where} has no valid 'role': {line[:200]}") from None
        return cls(_field(entry, "position", int, line, where=where), role,
                   _field(entry, "label", str, line, where=where),
                   _field(entry, "after", str, line, where=where),
                   _field(entry, "before", str, line, optional=True, where=where))


@dataclasses.dataclass(frozen=True)
class PreviewFramesEvent:
    """A small PNG of every frame of the window was written, in window order."""

    kind: ClassVar[str] = "preview_frames"

    frames: tuple[PreviewFrame, ...]

    def to_dict(self) -> dict:
        return {"event": self.kind, "frames": [f.to_dict() for f in self.frames]}

    @classmethod
    def from_dict(cls, d: dict, line: str | None = None) -> PreviewFramesEvent:
        line = _line(d, line)
        return cls(tuple(PreviewFrame.from_dict(entry, line, where=f"'preview_frames' (frame {index})")
                         for index, entry in enumerate(_field(d, "frames", list, line))))

    @classmethod
    def from_entries(cls, entries: list[dict]) -> PreviewFramesEvent:
        """The event for a list of entries in their JSON form (a job result's ``preview_frames``)."""
        return cls.from_dict({"event": cls.kind, "frames": entries})


@dataclasses.dataclass(frozen=True)
class WarningEvent:
    """Something the user should know; the job goes on."""

    kind: ClassVar[str] = "warning"

    message: str

    def to_dict(self) -> dict:
        return {"event": self.kind, "message": self.message}

    @classmethod
    def from_dict(cls, d: dict, line: str | None = None) -> WarningEvent:
        return cls(_field(d, "message", str, _line(d, line)))


@dataclasses.dataclass(frozen=True)
class FrameTrust:
    """How far one written frame can be trusted, and what the engine did to make it.

    ``trust``: the engine's mean confidence (0..1) over the frame's generated pixels (1: tracked
    to a real frame; 0: made up); None when the engine gives no confidence, or generated nothing
    in the frame. ``method``: what the engine did, in a word ("interpolated", "dissolve",
    "extrapolated", "held", "propagated", "inpainted", "propagated+inpainted", "generated");
    None where it left the frame as it was (a fill frame whose mask is empty).
    """

    frame: int
    trust: float | None = None
    method: str | None = None

    @property
    def is_low(self) -> bool:
        """Whether the frame's trust is below :data:`LOW_TRUST`."""
        return self.trust is not None and self.trust < LOW_TRUST

    def to_dict(self) -> dict:
        return {"frame": self.frame, "trust": self.trust, "method": self.method}

    @classmethod
    def from_dict(cls, entry: Any, line: str | None = None, where: str = "'result' (frame_trust)") -> FrameTrust:
        """One entry of a result's ``frame_trust``; ``where`` names it in errors."""
        line = _line(entry, line)
        if not isinstance(entry, dict):
            raise ProtocolError(f"worker event {where} is not an object: {line[:200]}")
        trust = _field(entry, "trust", float, line, optional=True, where=where)
        if trust is not None and not 0.0 <= trust <= 1.0:
            raise ProtocolError(f"worker event {where} has no valid 'trust' (0..1): {line[:200]}")
        return cls(_field(entry, "frame", int, line, where=where), trust,
                   _field(entry, "method", str, line, optional=True, where=where))


def trust_summary(entries) -> tuple[float, float] | None:
    """``(mean, lowest)`` trust over the frames that have one (None: no frame has one)."""
    values = [e.trust for e in entries if e.trust is not None]
    return (sum(values) / len(values), min(values)) if values else None


@dataclasses.dataclass(frozen=True)
class ResultEvent:
    """The job finished; ``result`` is the worker's result (what ``shotfill publish`` reads),
    written flat into the event's object."""

    kind: ClassVar[str] = "result"

    result: dict

    @property
    def output_pattern(self) -> str:
        return self.result["output_pattern"]

    @property
    def frames(self) -> list[int]:
        return list(self.result["frames"])

    @property
    def contact_sheet(self) -> str | None:
        return self.result.get("contact_sheet")

    @property
    def frame_trust(self) -> tuple[FrameTrust, ...]:
        """Each written frame's trust and method, in frame order (empty from a worker that sends none)."""
        return _frame_trust(self.result.get("frame_trust"), None)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Everything the job warned of (the ``warning`` events it sent, in order)."""
        return tuple(self.result.get("warnings") or ())

    def to_dict(self) -> dict:
        return {"event": self.kind, **self.result}

    @classmethod
    def from_dict(cls, d: dict, line: str | None = None) -> ResultEvent:
        line = _line(d, line)
        _field(d, "output_pattern", str, line)
        _field(d, "frames", list, line)
        _field(d, "warnings", list, line, optional=True)
        _frame_trust(d.get("frame_trust"), line)
        return cls({k: v for k, v in d.items() if k not in ("event", "exit_code")})


def _frame_trust(entries: Any, line: str | None) -> tuple[FrameTrust, ...]:
    """A result's ``frame_trust`` as typed entries (checked; ``line`` is quoted in errors)."""
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise ProtocolError(f"worker event 'result' has no valid 'frame_trust': {(line or '')[:200]}")
    return tuple(FrameTrust.from_dict(entry, line, where=f"'result' (frame_trust {index})")
                 for index, entry in enumerate(entries))


@dataclasses.dataclass(frozen=True)
class ErrorEvent:
    """The job failed; the worker exits with ``exit_code`` next."""

    kind: ClassVar[str] = "error"

    message: str
    exit_code: int

    def to_dict(self) -> dict:
        return {"event": self.kind, "message": self.message, "exit_code": self.exit_code}

    @classmethod
    def from_dict(cls, d: dict, line: str | None = None) -> ErrorEvent:
        line = _line(d, line)
        return cls(_field(d, "message", str, line), _field(d, "exit_code", int, line))


@dataclasses.dataclass(frozen=True)
class DemoEvent:
    """``shotfill demo`` finished: the new edit, the stacked contact sheet, the fill's PSNR
    against the clean render (and the unfilled plate's), and each job's result."""

    kind: ClassVar[str] = "demo"

    new_edit: str
    contact_sheet: str
    fill_psnr_db: float
    unfilled_psnr_db: float
    results: list

    def to_dict(self) -> dict:
        return {"event": self.kind, "new_edit": self.new_edit, "contact_sheet": self.contact_sheet,
                "fill_psnr_db": self.fill_psnr_db, "unfilled_psnr_db": self.unfilled_psnr_db,
                "results": self.results}

    @classmethod
    def from_dict(cls, d: dict, line: str | None = None) -> DemoEvent:
        line = _line(d, line)
        return cls(_field(d, "new_edit", str, line), _field(d, "contact_sheet", str, line),
                   _field(d, "fill_psnr_db", float, line), _field(d, "unfilled_psnr_db", float, line),
                   _field(d, "results", list, line))


@dataclasses.dataclass(frozen=True)
class OutputLine:
    """A line that is not an event: library chatter on stdout, or a stderr line."""

    text: str
    stream: str = "stdout"


WorkerEvent = Union[StageEvent, ProgressEvent, FrameEvent, PreviewEvent, PreviewFramesEvent, WarningEvent,
                    ResultEvent, ErrorEvent, DemoEvent]
#: each event class by its ``event`` name
EVENTS: dict[str, type] = {cls.kind: cls for cls in (StageEvent, ProgressEvent, FrameEvent, PreviewEvent,
                                                     PreviewFramesEvent, WarningEvent, ResultEvent,
                                                     ErrorEvent, DemoEvent)}


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------
def event_from_dict(d: dict, line: str | None = None) -> WorkerEvent:
    """An event's JSON form as its typed event; an unknown ``event`` raises :class:`ProtocolError`."""
    kind = d["event"]
    cls = EVENTS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown worker event {kind!r}: {_line(d, line)[:200]}")
    return cls.from_dict(d, line)


def parse_event(line: str) -> WorkerEvent | OutputLine:
    """One worker stdout line as a typed event.

    A line that is not a JSON object with an ``event`` field is an
    :class:`OutputLine`; a known event with missing or mistyped fields, or an
    unknown event name, raises :class:`ProtocolError`.
    """
    text = line.strip()
    try:
        d = json.loads(text)
    except ValueError:
        return OutputLine(text)
    if not isinstance(d, dict) or "event" not in d:
        return OutputLine(text)
    return event_from_dict(d, text)
