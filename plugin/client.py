"""The job client: runs the shotfill engine out of process and reads what it says.

The host side never imports the engine (torch, numpy, OpenEXR, OTIO). It talks
to the same worker the command line and the farm run::

    shotfill run JOB.json --events jsonl      one JSON object per line on stdout
    shotfill plan EDIT --json                 the edit's targets, once
    shotfill publish EDIT RESULT.json...      results placed on a new version of the edit

:class:`JobClient` starts the worker with ``QProcess`` (the host's UI keeps
running), turns each line into a typed event (:class:`StageEvent`,
:class:`ProgressEvent`, ... and finally :class:`JobFinished`), and cancels by
SIGTERM: the worker stops at the next frame and exits with code 3 (a worker
that has not stopped after :data:`CANCEL_GRACE_S` is killed; on Windows, where
``terminate`` cannot reach a console program, that is how it stops). One-shot
commands (:func:`plan`, :func:`publish`, :func:`engines`) run as plain
subprocesses.

The engine command comes from, in order: the ``SHOTFILL_ENGINE_COMMAND``
environment variable (``/opt/shotfill/venv/bin/shotfill`` or
``"/opt/shotfill/venv/bin/python -m shotfill"``), the ``engine.json`` that
``shotfill install-host`` writes next to this package, the ``shotfill`` script
beside the running Python (the standalone app in the engine's environment), or
``shotfill`` on PATH.

The events, their parser (:func:`parse_event`), the stage table and the exit
codes are the worker protocol's (:mod:`shotfill_plugin.protocol`, the module
the engine emits them with); they are re-exported here.
"""
from __future__ import annotations

import collections
import dataclasses
import enum
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Union

from . import paths
from .protocol import (EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK, STAGE_WEIGHTS, STAGES, DemoEvent,
                       ErrorEvent, FrameEvent, OutputLine, PreviewEvent, PreviewFrame, PreviewFramesEvent, PreviewRole,
                       ProgressEvent, ProtocolError, ResultEvent, StageEvent, WarningEvent, WorkerEvent, parse_event)
from .qt import QtCore, Signal

__all__ = [
    # the worker protocol, re-exported
    "EXIT_OK", "EXIT_INTERNAL", "EXIT_BAD_INPUT", "EXIT_CANCELLED", "STAGE_WEIGHTS", "STAGES", "ProtocolError",
    "StageEvent", "ProgressEvent", "FrameEvent", "PreviewEvent", "PreviewRole", "PreviewFrame", "PreviewFramesEvent",
    "WarningEvent", "ResultEvent", "ErrorEvent", "DemoEvent", "OutputLine", "WorkerEvent", "parse_event",
    # the client
    "ENGINE_ENV", "CANCEL_GRACE_S", "ClientError", "EngineNotFoundError", "WorkerError", "engine_command",
    "JobStatus", "JobFinished", "Event", "JobClient", "run_engine", "plan", "plan_args", "publish", "engines",
    "SEARCH_PATH_FLAG", "search_path_args",
]

ENGINE_ENV = "SHOTFILL_ENGINE_COMMAND"
#: the engine's flag naming a folder to relink offline media from (``shotfill plan``; a job carries
#: the folders as ``edit.search_paths``)
SEARCH_PATH_FLAG = "--search-path"

#: seconds a cancelled worker gets to stop at its next frame before it is killed
CANCEL_GRACE_S = 10.0
#: stderr lines kept to explain a failure
_STDERR_TAIL = 20
_SETUP_HINT = (f"set {ENGINE_ENV} to the engine's `shotfill` command (for example "
               f"\"/path/to/venv/bin/python -m shotfill\"), or run `shotfill install-host`")


class ClientError(Exception):
    """The engine could not be run, or said something the panel cannot use."""


class EngineNotFoundError(ClientError):
    """No engine command is configured, or the configured one does not exist."""


class WorkerError(ClientError):
    """A one-shot engine command failed; ``exit_code`` is the worker's."""

    def __init__(self, message: str, exit_code: int | None):
        super().__init__(message)
        self.exit_code = exit_code


# ---------------------------------------------------------------------------
# the engine command
# ---------------------------------------------------------------------------
def engine_command(environ: dict | None = None) -> list[str]:
    """The command that starts the engine, as an argument list."""
    environ = os.environ if environ is None else environ
    configured = environ.get(ENGINE_ENV, "").strip()
    if configured:
        return shlex.split(configured, posix=os.name != "nt")
    try:
        configured_list = paths.read_engine_config().get("command")
    except ValueError as e:
        raise EngineNotFoundError(str(e)) from None
    if configured_list:
        return configured_list
    found = (shutil.which("shotfill", path=str(Path(sys.executable).parent))
             or shutil.which("shotfill"))
    if found is None:
        raise EngineNotFoundError(f"the shotfill engine was not found: {_SETUP_HINT}")
    return [found]


# ---------------------------------------------------------------------------
# events: the worker's (``protocol``), and the ones the client adds
# ---------------------------------------------------------------------------
class JobStatus(enum.Enum):
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class JobFinished:
    """The worker process ended; ``message`` says how, in words."""

    status: JobStatus
    message: str
    exit_code: int | None = None


#: what ``JobClient.event`` carries: a worker event, a line that is not one, or the end of the process
Event = Union[WorkerEvent, OutputLine, JobFinished]


# ---------------------------------------------------------------------------
# the worker process
# ---------------------------------------------------------------------------
class JobClient(QtCore.QObject):
    """Runs one job at a time in a worker process and emits its events.

    ``event`` carries every :data:`Event`; the last one of each job is a
    :class:`JobFinished`. Nothing here blocks: the host's event loop keeps
    running while the worker does.
    """

    event = Signal(object)

    def __init__(self, command: list[str] | None = None, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self._command = command
        self._process: QtCore.QProcess | None = None
        self._stdout = b""
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self._error: ErrorEvent | None = None
        self._result: ResultEvent | None = None
        self._cancelled = False
        self._command_shown = ""
        self._kill_timer = QtCore.QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill)

    def is_running(self) -> bool:
        return self._process is not None

    def start(self, job: dict, job_path: str | os.PathLike) -> None:
        """Write ``job`` to ``job_path`` and start ``shotfill run job_path --events jsonl``."""
        if self._process is not None:
            raise ClientError("a job is already running in this client")
        job_path = Path(job_path)
        job_path.parent.mkdir(parents=True, exist_ok=True)
        job_path.write_text(json.dumps(job, indent=2) + "\n")
        self._stdout = b""
        self._stderr.clear()
        self._error = self._result = None
        self._cancelled = False
        try:
            command = self._command or engine_command()
        except EngineNotFoundError as e:
            self.event.emit(JobFinished(JobStatus.FAILED, str(e)))
            return
        process = QtCore.QProcess(self)
        process.setProgram(command[0])
        process.setArguments([*command[1:], "run", str(job_path), "--events", "jsonl"])
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.errorOccurred.connect(self._process_error)
        process.finished.connect(self._finished)
        self._process = process
        self._command_shown = " ".join(command)
        process.start()

    def cancel(self) -> None:
        """Ask the worker to stop (SIGTERM); it is killed if it has not stopped in time."""
        if self._process is None:
            return
        self._cancelled = True
        self._process.terminate()
        self._kill_timer.start(int(CANCEL_GRACE_S * 1000))

    # -- process signals ------------------------------------------------------
    def _read_stdout(self) -> None:
        self._stdout += bytes(self._process.readAllStandardOutput())
        *lines, self._stdout = self._stdout.split(b"\n")
        for raw in lines:
            self._emit_line(raw.decode("utf-8", "replace"))

    def _emit_line(self, line: str) -> None:
        if not line.strip():
            return
        try:
            event = parse_event(line)
        except ProtocolError as e:
            event = WarningEvent(str(e))
        if isinstance(event, ErrorEvent):
            self._error = event
        elif isinstance(event, ResultEvent):
            self._result = event
        self.event.emit(event)

    def _read_stderr(self) -> None:
        text = bytes(self._process.readAllStandardError()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self._stderr.append(line.rstrip())
                self.event.emit(OutputLine(line.rstrip(), "stderr"))

    def _process_error(self, error) -> None:
        if error == QtCore.QProcess.FailedToStart:
            self._done(JobFinished(JobStatus.FAILED, f"cannot start the shotfill engine "
                                   f"`{self._command_shown}`: {self._process.errorString()}; {_SETUP_HINT}"))

    def _finished(self, exit_code: int, exit_status) -> None:
        if self._process is None:           # already reported (failed to start)
            return
        self._read_stdout()
        if self._stdout.strip():
            self._emit_line(self._stdout.decode("utf-8", "replace"))
            self._stdout = b""
        self._read_stderr()
        self._done(self._finish_event(exit_code, exit_status == QtCore.QProcess.CrashExit))

    def _finish_event(self, exit_code: int, crashed: bool) -> JobFinished:
        tail = "\n".join(self._stderr)
        if self._cancelled and (crashed or exit_code == EXIT_CANCELLED):
            return JobFinished(JobStatus.CANCELLED, "cancelled: the frames written so far are "
                               "complete, and running the same take again resumes", exit_code)
        if crashed:
            return JobFinished(JobStatus.FAILED, "the worker stopped unexpectedly (it crashed or was "
                               f"killed){': ' + tail if tail else ''}", None)
        if exit_code == EXIT_OK:
            if self._result is None:
                return JobFinished(JobStatus.FAILED, "the worker finished without a result; "
                                   f"is `{self._command_shown}` the shotfill engine?", exit_code)
            return JobFinished(JobStatus.DONE, f"done: {len(self._result.frames)} frames in "
                               f"{self._result.output_pattern}", exit_code)
        if exit_code == EXIT_CANCELLED:
            return JobFinished(JobStatus.CANCELLED, "the worker was stopped from outside the panel",
                               exit_code)
        reason = self._error.message if self._error is not None else (tail or "no message")
        if exit_code == EXIT_BAD_INPUT:
            return JobFinished(JobStatus.FAILED, f"the job was refused: {reason}", exit_code)
        if exit_code == EXIT_INTERNAL:
            return JobFinished(JobStatus.FAILED, f"the worker failed: {reason}", exit_code)
        return JobFinished(JobStatus.FAILED, f"the worker exited with code {exit_code}: {reason}",
                           exit_code)

    def _done(self, finished: JobFinished) -> None:
        self._kill_timer.stop()
        process, self._process = self._process, None
        process.deleteLater()
        self.event.emit(finished)

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()


# ---------------------------------------------------------------------------
# one-shot commands
# ---------------------------------------------------------------------------
def run_engine(args: list[str], *, command: list[str] | None = None, timeout: float = 300.0) -> str:
    """Run ``shotfill ARGS`` to the end and return its stdout; failures raise :class:`ClientError`."""
    command = command or engine_command()
    try:
        proc = subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise EngineNotFoundError(f"the shotfill engine `{command[0]}` does not exist: {_SETUP_HINT}") from None
    except PermissionError:
        raise EngineNotFoundError(f"the shotfill engine `{command[0]}` cannot be run: {_SETUP_HINT}") from None
    except subprocess.TimeoutExpired:
        raise WorkerError(f"`shotfill {' '.join(args[:1])}` took longer than {timeout:.0f} s", None) from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"exit code {proc.returncode}"
        for prefix in ("shotfill: ", "error: "):      # the CLI's "shotfill: error: ..." form
            reason = reason[len(prefix):] if reason.startswith(prefix) else reason
        raise WorkerError(reason, proc.returncode)
    return proc.stdout


def search_path_args(folders) -> list[str]:
    """``--search-path DIR`` for each folder: where the engine relinks offline media from."""
    return [arg for folder in folders for arg in (SEARCH_PATH_FLAG, str(folder))]


def plan_args(edit: str, *, rate: float | None = None, search_paths=()) -> list[str]:
    """The arguments of ``shotfill plan EDIT --json`` (``--rate``, ``--search-path`` where set)."""
    args = ["plan", str(edit), "--json"]
    if rate is not None:
        args += ["--rate", str(rate)]
    return args + search_path_args(search_paths)


def plan(edit: str, *, rate: float | None = None, search_paths=(), command: list[str] | None = None) -> dict:
    """The targets of an edit: ``shotfill plan EDIT --json`` parsed (its ``tracks`` too, where given)."""
    out = run_engine(plan_args(edit, rate=rate, search_paths=search_paths), command=command)
    try:
        data = json.loads(out)
    except ValueError:
        raise ClientError(f"`shotfill plan` printed something that is not JSON: {out[:200]!r}") from None
    if not isinstance(data, dict) or not isinstance(data.get("targets"), list):
        raise ClientError("`shotfill plan --json` gave no target list")
    return data


def publish(edit: str, result_files: list[str], *, write_mode: str = "track",
            command: list[str] | None = None) -> str:
    """Place finished results on a new version of ``edit``; returns the new edit's path."""
    out = run_engine(["publish", str(edit), *map(str, result_files), "--write-mode", write_mode],
                     command=command)
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    if not lines:
        raise ClientError("`shotfill publish` did not say where it wrote the new edit")
    return lines[-1]


def engines(command: list[str] | None = None) -> list[tuple[str, str]]:
    """``(name, description)`` for each engine ``shotfill engines`` lists (its first block of lines;
    the memory modes follow after a blank line)."""
    out = run_engine(["engines"], command=command)
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 1)
        if not parts:
            break
        rows.append((parts[0], parts[1].strip() if len(parts) > 1 else ""))
    return rows
