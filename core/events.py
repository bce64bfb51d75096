"""Typed job events, and the sinks that carry them.

A running job reports through one :class:`EventSink`. The worker writes JSON
lines (``--events jsonl``) that the panel and farm wrappers read; people get a
progress bar with an ETA on stderr. Every event is a flat JSON object with an
``event`` field:

====================  ==============================================================
``stage``             a stage starts: ``stage`` (read, generate, write, timeline, ...), ``message``
``progress``          ``stage``, ``fraction`` (0..1 over the whole job), ``eta_s``
``frame``             a frame was written or kept: ``frame``, ``path``, ``skipped``
``preview``           a preview image was written: ``path``
``preview_frames``    a small PNG of every frame of the window was written: ``frames``, a list
                      of ``position``, ``role`` (known, generate, fill), ``label`` (``a 1039``,
                      ``G 1041``, ``1005``), ``after`` (the picture; a fill's result) and
                      ``before`` (a fill's plate; null otherwise)
``warning``           ``message``
``result``            the job finished: output frames, paths, timings, scores
``error``             the job failed: ``message``, ``exit_code``
====================  ==============================================================
"""
from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, Protocol

STAGES = ("prepare", "read", "generate", "seam", "write", "timeline", "preview")
#: share of the whole job each stage takes, for one progress fraction and ETA
STAGE_WEIGHTS = {"prepare": 0.02, "read": 0.08, "generate": 0.7, "seam": 0.02, "write": 0.13,
                 "timeline": 0.02, "preview": 0.03}


class EventSink(Protocol):
    def emit(self, event: dict) -> None: ...


class ListSink:
    """Keeps events in a list (tests, in-process callers)."""

    def __init__(self):
        self.events: list[dict] = []

    def emit(self, event: dict) -> None:
        self.events.append(event)

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]


class JsonLinesSink:
    """One JSON object per line, flushed at once (the worker protocol)."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def emit(self, event: dict) -> None:
        line = json.dumps(event, default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


class HumanSink:
    """A progress bar with ETA on a terminal, stage lines and warnings."""

    def __init__(self, stream: IO[str] | None = None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_line = 0.0

    def _bar(self, event: dict) -> str:
        frac = max(0.0, min(1.0, float(event.get("fraction", 0.0))))
        filled = int(round(frac * self.width))
        eta = event.get("eta_s")
        eta_s = f" ETA {_fmt_seconds(eta)}" if eta is not None else ""
        return f"[{'#' * filled}{'.' * (self.width - filled)}] {frac * 100:5.1f}% {event.get('stage', '')}{eta_s}"

    def emit(self, event: dict) -> None:
        kind = event["event"]
        if kind == "progress":
            now = time.monotonic()
            if self.tty:
                self.stream.write("\r" + self._bar(event))
                self.stream.flush()
            elif now - self._last_line > 5.0 or event.get("fraction", 0) >= 1.0:
                self.stream.write(self._bar(event) + "\n")
                self._last_line = now
            return
        prefix = "\r" if self.tty else ""
        if kind == "stage":
            self.stream.write(f"{prefix}{event['stage']}: {event.get('message', '')}\n")
        elif kind == "warning":
            self.stream.write(f"{prefix}warning: {event['message']}\n")
        elif kind == "error":
            self.stream.write(f"{prefix}error: {event['message']}\n")
        self.stream.flush()


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Progress:
    """Turns per-stage fractions into one job fraction with an ETA, and emits events."""

    def __init__(self, sink: EventSink):
        self.sink = sink
        self.start = time.monotonic()
        self.stage = "prepare"
        self._done_before = 0.0

    def begin(self, stage: str, message: str = "") -> None:
        order = list(STAGE_WEIGHTS)
        self._done_before = sum(STAGE_WEIGHTS[s] for s in order[: order.index(stage)])
        self.stage = stage
        self.sink.emit({"event": "stage", "stage": stage, "message": message})
        self.update(0.0)

    def update(self, fraction: float, message: str = "") -> None:
        fraction = max(0.0, min(1.0, fraction))
        total = self._done_before + STAGE_WEIGHTS[self.stage] * fraction
        elapsed = time.monotonic() - self.start
        eta = elapsed * (1.0 - total) / total if total > 0.02 else None
        event = {"event": "progress", "stage": self.stage, "fraction": round(total, 4),
                 "eta_s": None if eta is None else round(eta, 1)}
        if message:
            event["message"] = message
        self.sink.emit(event)

    def finish(self) -> None:
        """The whole job is done: fraction 1.0, whatever stages it skipped."""
        self.sink.emit({"event": "progress", "stage": self.stage, "fraction": 1.0, "eta_s": 0.0})

    def callback(self):
        """A ``progress(fraction, message)`` function for engines."""
        return lambda fraction, message="": self.update(fraction, message)
