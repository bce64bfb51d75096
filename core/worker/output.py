"""What a job leaves on disk besides pixels: EXR windows and provenance, resume, the result file.

- :func:`output_windows` and :func:`crop_to_window`: written frames keep the source's data and
  display windows.
- :func:`provenance`: the ``shotfill.*`` header attributes of every written frame.
- Resume: :func:`belongs_to_job` (a frame on disk is kept when it decodes whole and names this
  job), :func:`remove_stale_temporaries` (what a killed writer left), :func:`previous_result`.
- :func:`write_result_file` (atomic) and :func:`placement_dict` (where the result goes on the edit).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import MediaError
from ..plan import TaskKind
from .resolve import ResolvedJob


def output_windows(job: ResolvedJob):
    """(data window, display window) for written frames: the source's where it has them."""
    a = job.sources["a"]
    full = (0, 0, job.width - 1, job.height - 1)
    if a.kind != "exr":
        return full, full
    known = [pf.source_frame for pf in job.plan.frames if pf.source == "a"]
    header = a.frame_header(known[-1] if job.kind is not TaskKind.EXTEND_BACKWARD else known[0])
    disp = tuple(header["display_window"])
    data = tuple(header["data_window"])
    inside = (data[0] >= disp[0] and data[1] >= disp[1] and data[2] <= disp[2] and data[3] <= disp[3])
    return (data if inside else disp), disp


def crop_to_window(pixels: np.ndarray, job: ResolvedJob, windows) -> np.ndarray:
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
    """Remove temporary files left by a killed writer (``.NAME.####.exr.PID-XXXX.tmp``).

    Temporaries of a process that is still alive (another attempt of the same farm task)
    are left alone: its rename is atomic and its frames are the same.
    """
    for tmp in job.out_dir.glob(f".{job.name}.*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def belongs_to_job(path: Path, job_id: str) -> bool:
    """A frame on disk counts as done when it decodes whole and its header names this job."""
    from ..io.exr import read_exr

    if not path.exists():
        return False
    try:
        return read_exr(path).attributes.get("shotfill.jobId") == job_id
    except MediaError:
        return False   # a damaged frame is written again


def previous_result(job: ResolvedJob) -> dict:
    """The result file an earlier run of this same job left, or {}."""
    path = job.out_dir / f"{job.name}.result.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if data.get("job_id") == job.spec.id else {}


def write_result_file(job: ResolvedJob, result: dict) -> Path:
    """``<out>/NAME.result.json``, written atomically (what ``shotfill publish`` and a resumed run read)."""
    path = job.out_dir / f"{job.name}.result.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def placement_dict(job: ResolvedJob) -> dict:
    frames = job.plan.output_frames
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
        "metadata": {"job_id": job.spec.id, "engine": job.engine.name, "seed": job.spec.seed,
                     "task": job.kind.value, "prompt": job.spec.prompt, "frame_plan": job.plan.summary()},
    }
