"""The three steps of a bundle's job (Validate, one Generate task per target, Publish), and a local run.

Each is what ``shotfill farm validate``, ``run-task`` and ``publish`` run on a worker;
:func:`run_local` runs the whole bundle on this machine with ``openjd run``.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import IO, Callable, Optional

from ..errors import InputError, MediaError, ShotfillError
from ..plan import Role
from .bundle import OPENJD_VALUES_FILE, TEMPLATE_FILE, Bundle, result_path
from .executables import openjd_command
from .sink import OpenJDSink, one_line


def validate_bundle(path, *, log: Callable[[str], None] = print) -> None:
    """Resolve every job of a bundle, as the Generate tasks will; raise InputError naming
    every target that cannot run (media, frame ranges, engine, output folder, write-back)."""
    from ..worker import resolve

    bundle = Bundle.load(path)
    problems: list[str] = []
    resolved = []
    for i, target in enumerate(bundle.targets):
        try:
            job = resolve(bundle.job(target))
            _check_frames_on_disk(job)
            _check_writable(job.out_dir)
        except ShotfillError as e:
            problems.append(f"{target}: {e}")
            log(f"{target}: cannot run: {one_line(str(e))}")
        else:
            resolved.append(job)
            log(f"{target}: ok: {job.plan.summary()} -> {job.pattern}")
        log(f"openjd_progress: {100.0 * (i + 1) / (len(bundle.targets) + 1):.1f}")
    if bundle.edit is not None and not problems:
        try:
            _check_write_back(bundle, resolved)
        except ShotfillError as e:
            problems.append(f"timeline write-back: {e}")
        else:
            log(f"timeline write-back: ok: a new version of {bundle.edit} ({bundle.write_mode} mode)")
    if problems:
        raise InputError(f"bundle {bundle.path}: {len(problems)} problem(s); no task was run:\n  "
                         + "\n  ".join(problems))
    log("openjd_progress: 100.0")


def _check_frames_on_disk(job) -> None:
    """Every frame (and mask) the plan reads is on disk and its header reads."""
    for pf in job.plan.frames:
        if pf.role is Role.GENERATE:
            continue
        job.sources[pf.source].frame_header(pf.source_frame)
        if pf.role is Role.FILL:
            job.mask_source.frame_header(pf.source_frame)


def _check_writable(folder: Path) -> None:
    probe = folder / f".shotfill-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise MediaError(folder, f"the folder cannot be written: {e.strerror or e}") from None


def _check_write_back(bundle: Bundle, jobs: list) -> None:
    """Place every target on a throwaway copy of the edit, as Publish will."""
    from ..timeline import publish
    from ..worker import placement_dict

    _check_writable(Path(bundle.edit).parent)
    results = [{"job_id": job.spec.id, "placement": placement_dict(job)} for job in jobs]
    with tempfile.TemporaryDirectory(prefix="shotfill-validate-") as scratch:
        publish(bundle.edit, results, mode=bundle.write_mode, rate=bundle.rate, timeline=bundle.timeline,
                search_paths=bundle.search_paths, export_format=bundle.export_format,
                out_path=Path(scratch) / f"{Path(bundle.edit).stem}.otio")


def run_task(path, target: str, *, stream: IO[str] | None = None,
             cancel: Optional[Callable[[], bool]] = None):
    """Run one target's job with Open Job Description progress lines; return its JobResult."""
    from ..events import ErrorEvent
    from ..worker import run_job

    sink = OpenJDSink(stream)
    try:
        spec = Bundle.load(path).job(target)
        return run_job(spec, sink, cancel=cancel)
    except ShotfillError as e:
        sink.emit(ErrorEvent(str(e), e.exit_code))
        raise


def publish_bundle(path, *, log: Callable[[str], None] = print) -> Path | None:
    """Write the new version of the bundle's edit from every target's result; return its path.

    Refuses (InputError) when a target has no result, or a result written by another job
    (an earlier bundle with other settings), naming each. Returns None for a bundle without
    an edit, after checking its results.
    """
    from ..timeline import publish

    bundle = Bundle.load(path)
    results, problems = [], []
    for target in bundle.targets:
        spec = bundle.job(target)
        where = result_path(spec)
        try:
            result = json.loads(where.read_text())
        except FileNotFoundError:
            problems.append(f"{target}: no result ({where}): its Generate task has not succeeded")
            continue
        except (OSError, json.JSONDecodeError) as e:
            problems.append(f"{target}: {where} cannot be read: {e}")
            continue
        if result.get("job_id") != spec.id:
            problems.append(f"{target}: {where} was written by job {result.get('job_id')}, not this "
                            f"bundle's {spec.id}: run its Generate task again")
            continue
        results.append(result)
        log(f"{target}: {len(result['frames'])} frames: {result['output_pattern']}")
    if problems:
        raise InputError(f"bundle {bundle.path}: not publishing, {len(problems)} of {len(bundle.targets)} "
                         "target(s) missing:\n  " + "\n  ".join(problems))
    if bundle.edit is None:
        log("every result is there; the bundle has no edit to write back")
        return None
    new_edit = publish(bundle.edit, results, mode=bundle.write_mode, rate=bundle.rate,
                       export_format=bundle.export_format, timeline=bundle.timeline,
                       search_paths=bundle.search_paths)
    log(f"new edit: {new_edit}")
    return new_edit


def run_local(path, *, step: str | None = None, target: str | None = None,
              shotfill_command: str | None = None) -> int:
    """Run the bundle with ``openjd run`` on this machine (every step in order, or one step, or
    one target's Generate task); return openjd's exit code (non-zero when a step failed)."""
    bundle = Bundle.load(path)
    if target is not None:
        bundle.job(target)              # a clear error for a target the bundle lacks
        if step not in (None, "Generate"):
            raise InputError(f"a target is a task of the Generate step, not of {step}")
        step = "Generate"
    cmd = [openjd_command(), "run", str(bundle.path / TEMPLATE_FILE),
           "--job-param", f"file://{bundle.path / OPENJD_VALUES_FILE}"]
    if shotfill_command:
        cmd += ["--job-param", f"ShotfillCommand={shotfill_command}"]
    if step is not None:
        cmd += ["--step", step]
    if target is not None:
        cmd += ["--task-param", f"Target={target}"]
    return subprocess.run(cmd).returncode

