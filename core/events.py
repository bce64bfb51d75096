"""The sinks that carry a job's events, and the progress that turns stages into one fraction.

A running job reports through one :class:`EventSink`: each event is one of the
typed events of the worker protocol (:mod:`shotfill_plugin.protocol`, re-exported
here: :class:`StageEvent`, :class:`ProgressEvent`, :class:`FrameEvent`,
:class:`PreviewEvent`, :class:`PreviewFramesEvent`, :class:`WarningEvent`,
:class:`ResultEvent`, :class:`ErrorEvent`, :class:`DemoEvent`), whose
``to_dict()`` is its one JSON form. The worker writes those as JSON lines
(``--events jsonl``: :class:`JsonLinesSink`) that the panel and farm wrappers
read; people get a progress bar with an ETA on stderr (:class:`HumanSink`);
tests and in-process callers keep them in a list (:class:`ListSink`).
"""
from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, Protocol

from shotfill_plugin.protocol import (STAGE_WEIGHTS, STAGES, DemoEvent, ErrorEvent, FrameEvent, PreviewEvent,
                                      PreviewFrame, PreviewFramesEvent, PreviewRole, ProgressEvent, ResultEvent,
                                      StageEvent, WarningEvent, WorkerEvent)

__all__ = ["STAGES", "STAGE_WEIGHTS", "DemoEvent", "ErrorEvent", "FrameEvent", "PreviewEvent", "PreviewFrame",
           "PreviewFramesEvent", "PreviewRole", "ProgressEvent", "ResultEvent", "StageEvent", "WarningEvent",
           "WorkerEvent", "EventSink", "ListSink", "JsonLinesSink", "HumanSink", "Progress"]


class EventSink(Protocol):
    def emit(self, event: WorkerEvent) -> None: ...


class ListSink:
    """Keeps each event's JSON form (the dict the worker writes) in a list (tests, in-process callers)."""

    def __init__(self):
        self.events: list[dict] = []

    def emit(self, event: WorkerEvent) -> None:
        self.events.append(event.to_dict())

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]


class JsonLinesSink:
    """One JSON object per line, flushed at once (the worker protocol)."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def emit(self, event: WorkerEvent) -> None:
        line = json.dumps(event.to_dict(), default=str)
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

    def _bar(self, event: ProgressEvent) -> str:
        frac = max(0.0, min(1.0, float(event.fraction)))
        filled = int(round(frac * self.width))
        eta = event.eta_s
        eta_s = f" ETA {_fmt_seconds(eta)}" if eta is not None else ""
        return f"[{'#' * filled}{'.' * (self.width - filled)}] {frac * 100:5.1f}% {event.stage}{eta_s}"

    def emit(self, event: WorkerEvent) -> None:
        if isinstance(event, ProgressEvent):
            now = time.monotonic()
            if self.tty:
                self.stream.write("\r" + self._bar(event))
                self.stream.flush()
            elif now - self._last_line > 5.0 or event.fraction >= 1.0:
                self.stream.write(self._bar(event) + "\n")
                self._last_line = now
            return
        prefix = "\r" if self.tty else ""
        if isinstance(event, StageEvent):
            self.stream.write(f"{prefix}{event.stage}: {event.message}\n")
        elif isinstance(event, WarningEvent):
            self.stream.write(f"{prefix}warning: {event.message}\n")
        elif isinstance(event, ErrorEvent):
            self.stream.write(f"{prefix}error: {event.message}\n")
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
        self.sink.emit(StageEvent(stage, message))
        self.update(0.0)

    def update(self, fraction: float, message: str = "") -> None:
        fraction = max(0.0, min(1.0, fraction))
        total = self._done_before + STAGE_WEIGHTS[self.stage] * fraction
        elapsed = time.monotonic() - self.start
        eta = elapsed * (1.0 - total) / total if total > 0.02 else None
        self.sink.emit(ProgressEvent(self.stage, round(total, 4), None if eta is None else round(eta, 1),
                                     message))

    def finish(self) -> None:
        """The whole job is done: fraction 1.0, whatever stages it skipped."""
        self.sink.emit(ProgressEvent(self.stage, 1.0, 0.0))

    def callback(self):
        """A ``progress(fraction, message)`` function for engines."""
        return lambda fraction, message="": self.update(fraction, message)
