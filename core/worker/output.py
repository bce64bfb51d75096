"""What a job leaves on disk besides pixels: EXR windows and provenance, resume, the result file.

- :func:`output_windows` and :func:`crop_to_window`: each written frame keeps its source's data and
  display windows (a filled frame its own frame's; a generated one the known frame it continues).
- :func:`provenance`: the ``shotfill.*`` header attributes of every written frame.
- Resume: :func:`belongs_to_job` and :func:`job_frame_attributes` (a frame on disk is kept when it
  decodes whole and names this job; its header keeps what the run that wrote it said of it),
  :func:`remove_stale_temporaries` (what a killed writer left), :func:`previous_result`.
- :func:`write_result_file` (atomic) and :func:`placement_dict` (where the result goes on the edit).
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import uuid
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import MediaError, no_room_hint
from ..plan import Role, TaskKind
from .resolve import ResolvedJob


def output_windows(job: ResolvedJob) -> dict:
    """``{position: (data window, display window)}`` for every written position of the plan.

    A filled frame keeps its own source frame's windows; a generated frame takes those of the
    known frame of shot A it continues (A's last; for a backward extension, its first). Sources
    without windows (not EXR) give the full frame; a data window reaching outside the display
    window is written as the display window.
    """
    a = job.sources["a"]
    full = (0, 0, job.width - 1, job.height - 1)
    plan = job.plan
    if a.kind != "exr":
        return {p: (full, full) for p in plan.written_positions}
    known = [pf.source_frame for pf in plan.frames if pf.source == "a" and pf.role is Role.KNOWN]
    headers: dict[int, tuple] = {}

    def windows_of(frame: int) -> tuple:
        if frame not in headers:
            header = a.frame_header(frame)
            disp = tuple(header["display_window"])
            data = tuple(header["data_window"])
            inside = (data[0] >= disp[0] and data[1] >= disp[1] and data[2] <= disp[2] and data[3] <= disp[3])
            headers[frame] = ((data if inside else disp), disp)
        return headers[frame]

    out = {}
    for p in plan.written_positions:
        pf = plan.frames[p]
        if pf.role is Role.FILL:
            out[p] = windows_of(pf.source_frame)
        else:
            out[p] = windows_of(known[0] if job.kind is TaskKind.EXTEND_BACKWARD else known[-1])
    return out


def crop_to_window(pixels: np.ndarray, windows) -> np.ndarray:
    """The part of a display-window picture that ``windows`` (data, display) writes."""
    data, disp = windows
    x0, y0 = data[0] - disp[0], data[1] - disp[1]
    return pixels[y0:y0 + data[3] - data[1] + 1, x0:x0 + data[2] - data[0] + 1]


def provenance(job: ResolvedJob) -> dict:
    from ..io.colour import chromaticities

    spec = job.spec
    desc = job.engine.describe()
    src = spec.edit.path + "#" + spec.edit.target if spec.edit else spec.source.path
    attrs = {
        "shotfill.version": __version__,
        "shotfill.jobId": spec.id,
        "shotfill.task": job.kind.value,
        "shotfill.engine": desc.get("engine", job.engine.name),
        "shotfill.model": desc.get("model", ""),
        "shotfill.modelSha256": desc.get("model_sha256", ""),
        "shotfill.seed": int(spec.seed),
        "shotfill.prompt": spec.prompt,
        "shotfill.sourceClip": src,
        "shotfill.framePlan": job.plan.summary(),
        "shotfill.colourSpace": job.output_space,
    }
    chroma = chromaticities(job.output_space)
    if chroma is not None:
        attrs["chromaticities"] = tuple(float(c) for c in chroma)
    return attrs


def remove_stale_temporaries(job: ResolvedJob) -> None:
    """Remove temporary files left by a killed writer (``.NAME.####.exr.PID-XXXX.tmp``, the result
    file's and the contact sheet's beside them, the preview pictures' in ``preview/``).

    Temporaries of a process that is still writing (another attempt of the same farm task) are
    left alone: its rename is atomic and its frames are the same. "Still writing" is "holds a lock
    on the output name" (:mod:`.lock`): a killed writer holds none, even while it lingers as a
    zombie its dead parent never reaped (a farm task's worker in a container), or when its pid was
    given to another process since. A job without a lock falls back to asking whether the pid runs.
    """
    from .lock import live_pids

    writing = live_pids(job.out_dir, job.lock.name) if job.lock is not None else None
    pattern = f".{glob.escape(job.name)}.*.tmp"
    preview = job.out_dir / "preview"
    found = list(job.out_dir.glob(pattern))
    if preview.is_dir() and not preview.is_symlink():
        found += preview.glob(pattern)
    for tmp in found:
        pid = tmp.name.rsplit(".", 2)[-2].split("-", 1)[0]
        if not pid.isdigit():
            continue
        if (int(pid) not in writing) if writing is not None else not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def job_frame_attributes(path: Path, job_id: str) -> dict | None:
    """The header attributes of a frame on disk that counts as done (it decodes whole and its header
    names this job); None when it does not count (missing, damaged, another job's)."""
    from ..io.exr import read_exr

    if not path.exists():
        return None
    try:
        attributes = read_exr(path).attributes
    except MediaError:
        return None    # a damaged frame is written again
    return attributes if attributes.get("shotfill.jobId") == job_id else None


def belongs_to_job(path: Path, job_id: str) -> bool:
    """A frame on disk counts as done when it decodes whole and its header names this job."""
    return job_frame_attributes(path, job_id) is not None


def previous_result(job: ResolvedJob) -> dict:
    """The result file an earlier run of this same job left, or {}."""
    path = job.out_dir / f"{job.name}.result.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if data.get("job_id") == job.spec.id else {}


def write_result_file(job: ResolvedJob, result: dict) -> Path:
    """``<out>/NAME.result.json``, written atomically (what ``shotfill publish`` and a resumed run read).

    The temporary file beside it has a name nobody can guess and is created new (``O_EXCL``,
    ``O_NOFOLLOW``): never written through a link. MediaError (exit 2) naming the file when it
    cannot be written (disk full...); the temporary file is removed and the old result kept.
    """
    path = job.out_dir / f"{job.name}.result.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
    data = (json.dumps(result, indent=2, default=str) + "\n").encode()
    try:
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view):]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise MediaError(path, f"the result file cannot be written: {e.strerror or e}"
                               f"{no_room_hint(e)}; the frames written are whole") from None
    return path


def placement_dict(job: ResolvedJob) -> dict:
    """Where the result goes on the edit (:class:`shotfill.timeline.Placement` as JSON): the generated
    sequence at ``record_start``, with ``handles_before``/``handles_after`` real frames of the
    neighbouring clips' handles placed right before and after it."""
    frames = job.plan.output_frames
    before, after = job.handles
    return {
        "target_id": job.target.id,
        "directory": str(job.out_dir),
        "name_prefix": f"{job.name}.",
        "name_suffix": ".exr",
        "frame_zero_padding": job.spec.output.padding,
        "start_frame": min(frames),
        "end_frame": max(frames),
        "rate": job.rate,
        "record_start": {"value": job.record_start.value, "rate": job.record_start.rate},
        "handles_before": before,
        "handles_after": after,
        "metadata": {"job_id": job.spec.id, "engine": job.engine.name, "seed": job.spec.seed,
                     "task": job.kind.value, "prompt": job.spec.prompt, "frame_plan": job.plan.summary()},
    }
