"""The stdout lines an Open Job Description runtime reads, as a job event sink.

``shotfill farm run-task`` and ``shotfill run --events openjd`` report through
:class:`OpenJDSink`; an Open Job Description runtime (``openjd run``, AWS Deadline
Cloud) reads its ``openjd_progress``, ``openjd_status`` and ``openjd_fail`` lines.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from typing import IO


class OpenJDSink:
    """Job events as the stdout lines an Open Job Description runtime reads.

    ``progress`` becomes ``openjd_progress: <percent>`` (printed when it moves by a whole
    percent, and at 100), ``stage`` becomes ``openjd_status: <stage>: <message>``, ``error``
    becomes ``openjd_fail: <message>``. Warnings, frames, previews and the result are plain log
    lines. Every message is kept to one line.
    """

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream or sys.stdout
        self._percent: float | None = None
        self._lock = threading.Lock()

    def emit(self, event) -> None:
        """``event`` is a worker event (:mod:`shotfill.events`); its lines follow its JSON form."""
        line = self._line(event.to_dict())
        if line is None:
            return
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def _line(self, event: dict) -> str | None:
        kind = event["event"]
        if kind == "progress":
            percent = round(100.0 * float(event["fraction"]), 1)
            last = self._percent
            if last is not None and (percent == last or (percent < last + 1.0 and percent < 100.0)):
                return None
            self._percent = percent
            return f"openjd_progress: {percent:.1f}"
        if kind == "stage":
            message = one_line(event.get("message", ""))
            return f"openjd_status: {event['stage']}" + (f": {message}" if message else "")
        if kind == "error":
            return f"openjd_fail: {one_line(event['message'])}"
        if kind == "warning":
            return f"warning: {one_line(event['message'])}"
        if kind == "frame":
            state = "kept (already written by this job)" if event.get("skipped") else "written"
            return f"frame {event['frame']}: {state}: {event['path']}"
        if kind == "preview":
            return f"preview: {event['path']}"
        if kind == "preview_frames":
            folder = os.path.dirname(event["frames"][0]["after"]) if event["frames"] else ""
            return f"preview frames: {len(event['frames'])} in {folder}"
        if kind == "result":
            return (f"done: {event['task']} with engine '{event['engine']}': {len(event['written'])} frames "
                    f"written, {len(event['skipped'])} kept: {event['output_pattern']}")
        return json.dumps(event, default=str)


def one_line(text: str) -> str:
    """``text`` on one line: every run of white space, line breaks included, one space."""
    return " ".join(str(text).split())
