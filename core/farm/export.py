"""``shotfill farm export``: plan a bundle from an edit's targets or one job spec, and write it.

Each target's job gets an explicit job id (a hash of the bundle's settings and source and
the target) and a seed derived from the bundle's seed and the target, so retries and
re-exports reproduce the same frames (see :mod:`shotfill.farm`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..job import JOB_VERSION, WRITE_MODES, JobSpec
from ..plan import TaskKind
from .bundle import BundlePlan
from .executables import default_shotfill_command
from .template import write_bundle

#: engines that run well on a CPU (the shipped dit model is sized for one); every other engine asks the farm for a GPU
CPU_ENGINES = frozenset({"flow", "baseline", "dit"})
#: default timeout of one Generate task
DEFAULT_TIMEOUT_S = 4 * 3600

EXTEND_KINDS = (TaskKind.EXTEND_FORWARD, TaskKind.EXTEND_BACKWARD)


def derive_seed(seed: int, target: str) -> int:
    """The seed of one target's job: fixed by the bundle's seed and the target, so every
    retry of the task draws the same noise, and targets do not share it."""
    digest = hashlib.sha256(f"shotfill-seed/{seed}/{target}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _job_id(bundle_id: str, target: str) -> str:
    return hashlib.sha256(f"shotfill-job/{bundle_id}/{target}".encode()).hexdigest()[:16]


def export_bundle(source, out_dir, *, targets: Sequence[str] | None = None, extend_frames: int | None = None,
                  engine: str | None = None, seed: int | None = None, prompt: str | None = None,
                  output_dir=None, gpu: bool | None = None, timeout_s: int = DEFAULT_TIMEOUT_S,
                  rate: float | None = None, write_mode: str = "track", export_format: str | None = None,
                  shotfill_command: str | None = None, engine_options: dict | None = None,
                  timeline: str | int | None = None, search_paths: Sequence[str] = ()) -> Path:
    """Write an Open Job Description job bundle for an edit's targets, or for one job spec.

    ``source`` is an edit (every ready bridge and fill target by default; ``targets`` names
    the ones to run, extensions included, which need ``extend_frames``) or a ``job.json``
    (one target). ``engine``, ``seed`` and ``prompt`` default to the default engine (dit), 0
    and none for an edit, and to the job's own for a job spec. ``output_dir`` holds one folder
    per target (default: ``<edit folder>/<edit stem>_shotfill``; a job spec keeps its own
    output folder unless it is given). ``gpu`` asks the farm for a GPU for Generate tasks (default: for every engine
    but flow, baseline and dit, which run on a CPU). ``shotfill_command`` is the ``shotfill`` executable on the workers
    (default: this environment's console script). ``engine_options`` (``model``, ``memory``,
    ``steps``...) go into every target's job; a job spec's are updated with them. ``timeline``
    picks the timeline of an edit file holding several (name, or number from 1);
    ``search_paths`` are folders where offline media is relinked by file name, when the bundle
    is exported and in every target's job (``edit.search_paths``). Implausible bridges
    (:func:`shotfill.timeline.checks.implausible`) are left out unless named. Returns the
    bundle folder.
    """
    from ..engines import DEFAULT_ENGINE
    from ..timeline.paths import is_edit

    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise InputError(f"{source}: no such edit or job file")
    if write_mode not in WRITE_MODES:
        raise InputError(f"write mode must be one of {', '.join(WRITE_MODES)}, got {write_mode!r}")
    if not isinstance(timeout_s, int) or isinstance(timeout_s, bool) or timeout_s < 1:
        raise InputError(f"task timeout must be a whole number of seconds >= 1, got {timeout_s!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise InputError(f"seed must be a whole number >= 0, got {seed!r}")
    command = shotfill_command or default_shotfill_command()
    edit = is_edit(str(source))
    if edit:                    # an edit's defaults, spelled out so the bundle id does not depend on them
        engine, seed, prompt = engine or DEFAULT_ENGINE, seed or 0, prompt or ""
    elif targets is not None or extend_frames is not None or timeline is not None or search_paths:
        raise InputError(f"{source} is a job spec (one target): targets, extend frames, timeline and search "
                         "paths apply to edits only (a job spec says them in its edit field)")
    engine_options = dict(engine_options or {})
    settings = {"engine": engine, "engine_options": engine_options, "seed": seed, "prompt": prompt,
                "extend_frames": extend_frames,
                "output_dir": str(Path(output_dir).expanduser().resolve()) if output_dir else None,
                "rate": rate, "write_mode": write_mode, "export_format": export_format}
    search_paths = [str(Path(p).expanduser().resolve()) for p in search_paths or ()]
    if timeline is not None:            # only when set, so bundles exported before keep their ids
        settings["timeline"] = timeline
    if search_paths:
        settings["search_paths"] = search_paths
    identity = {"source": str(source), "content": _digest(source), "settings": settings}
    bundle_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    if edit:
        plan = _plan_edit(source, bundle_id, targets=targets, extend_frames=extend_frames, engine=engine,
                          engine_options=engine_options, seed=seed, prompt=prompt, output_dir=output_dir,
                          rate=rate, write_mode=write_mode, export_format=export_format,
                          timeline=timeline, search_paths=search_paths)
    else:
        plan = _plan_job_file(source, bundle_id, engine=engine, engine_options=engine_options, seed=seed,
                              prompt=prompt, output_dir=output_dir)
    engines = {spec.engine for spec in plan.jobs.values()}
    needs_gpu = gpu if gpu is not None else bool(engines - CPU_ENGINES)
    return write_bundle(Path(out_dir), plan, bundle_id=bundle_id, source=source, gpu=needs_gpu,
                        timeout_s=timeout_s, command=command)



def _plan_edit(edit: Path, bundle_id: str, *, targets, extend_frames, engine, engine_options, seed, prompt,
               output_dir, rate, write_mode, export_format, timeline=None, search_paths=()) -> BundlePlan:
    from .. import timeline as tl
    from ..timeline.checks import implausible

    if extend_frames is not None and (not isinstance(extend_frames, int) or isinstance(extend_frames, bool)
                                      or extend_frames < 1):
        raise InputError(f"extend frames must be a whole number >= 1, got {extend_frames!r}")
    loaded = tl.load_edit(edit, rate=rate, timeline=timeline, search_paths=search_paths)
    found = tl.find_targets(loaded, edit_path=edit)
    out_root = (Path(output_dir).expanduser().resolve() if output_dir
                else edit.parent / f"{edit.stem}_shotfill")

    def job_of(t) -> JobSpec:
        _check_target_id(t.id)
        if t.kind in EXTEND_KINDS and extend_frames is None:
            raise InputError(f"target '{t.id}' is an extension: say how many frames to add "
                             "(extend_frames, --extend-frames N)")
        d = {
            "version": JOB_VERSION,
            "job_id": _job_id(bundle_id, t.id),
            "edit": {"path": str(edit), "target": t.id, "rate": rate, "write_mode": write_mode,
                     "write_timeline": False,
                     **({"timeline": timeline} if timeline is not None else {}),
                     **({"search_paths": list(search_paths)} if search_paths else {})},
            "engine": engine,
            "engine_options": engine_options,
            "seed": derive_seed(seed, t.id),
            "prompt": prompt,
            "output": {"dir": str(out_root / t.id), "name": _safe_name(f"{edit.stem}_{t.id}")},
        }
        if t.kind in EXTEND_KINDS:
            d["frames"] = extend_frames
        return JobSpec.from_dict(d)

    jobs, kinds, skipped = {}, {}, {}
    if targets is None:
        for t in found:
            if t.kind in EXTEND_KINDS and extend_frames is None:
                continue
            if not t.ready:
                skipped[t.id] = "media offline" + ("" if search_paths else " (relink with --search-path DIR)")
                continue
            why = implausible(t)
            if why is not None:
                skipped[t.id] = f"implausible: {why} (name it with --target to run it)"
                continue
            spec = job_of(t)
            reason = _cannot_place(spec) if t.kind in EXTEND_KINDS else None
            if reason is not None:
                skipped[t.id] = reason
                continue
            jobs[t.id], kinds[t.id] = spec, t.kind.value
        if not jobs:
            why = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "it has no bridge or fill targets"
            raise InputError(f"{edit}: nothing to export ({why})")
    else:
        by_id = {t.id: t for t in found}
        if not targets:
            raise InputError("targets: name at least one target")
        if len(set(targets)) != len(targets):
            raise InputError(f"targets: a target is named twice ({', '.join(targets)})")
        for target_id in targets:
            if target_id not in by_id:
                raise InputError(f"{edit}: no target '{target_id}' (targets: {', '.join(by_id) or 'none'})")
            t = by_id[target_id]
            if not t.ready:
                raise InputError(f"{edit}: target '{t.id}': its media is not on disk")
            jobs[t.id], kinds[t.id] = job_of(t), t.kind.value
    return BundlePlan(name=edit.stem, jobs=jobs, kinds=kinds, edit=str(edit), write_mode=write_mode, rate=rate,
                      export_format=export_format, skipped=skipped, timeline=timeline,
                      search_paths=tuple(search_paths))


def _cannot_place(spec: JobSpec) -> str | None:
    """Why an extension picked by default cannot run or be placed on the edit, or None.

    The media may already hold the frames asked for (handles), or a head extension of the
    edit's first clip would start before the timeline does.
    """
    from ..worker import resolve

    try:
        job = resolve(spec)
    except InputError as e:
        return str(e)
    if job.record_start.value < 0:
        return f"it would start {-job.record_start.to_frames()} frames before the timeline's first frame"
    return None


def _plan_job_file(path: Path, bundle_id: str, *, engine, engine_options, seed, prompt, output_dir) -> BundlePlan:
    spec = JobSpec.load(path)
    d = spec.to_dict()
    if spec.edit is not None:
        target = spec.edit.target
        d["edit"] = {**d["edit"], "path": str(Path(spec.edit.path).expanduser().resolve()),
                     "write_timeline": False}
    else:
        target = _safe_name(spec.output.name or path.stem)
        for key in ("source", "source_b", "mask"):
            if key in d:
                d[key]["path"] = _absolute_media_path(d[key]["path"])
    _check_target_id(target)
    out = Path(output_dir) if output_dir else Path(spec.output.dir)
    d["output"] = {**d["output"], "dir": str(out.expanduser().resolve()),
                   "name": spec.output.name or (_safe_name(f"{Path(spec.edit.path).stem}_{target}")
                                                if spec.edit is not None else target)}
    d["job_id"] = _job_id(bundle_id, target)
    d["seed"] = derive_seed(spec.seed if seed is None else seed, target)
    if engine is not None:
        d["engine"] = engine
    d["engine_options"] = {**d.get("engine_options", {}), **engine_options}
    if prompt is not None:
        d["prompt"] = prompt
    job = JobSpec.from_dict(d)
    kind = job.task.value if job.task is not None else "edit target"
    edit = job.edit
    return BundlePlan(name=path.stem, jobs={target: job}, kinds={target: kind},
                 edit=edit.path if edit is not None else None,
                 write_mode=edit.write_mode if edit is not None else "track",
                 rate=edit.rate if edit is not None else None,
                 export_format=edit.export if edit is not None else None, skipped={},
                 timeline=edit.timeline if edit is not None else None,
                 search_paths=edit.search_paths if edit is not None else ())


def _absolute_media_path(path: str) -> str:
    """A media path made absolute; a ``#frames=A-B`` suffix and frame-pattern characters are kept."""
    text, hash_, rest = path.partition("#frames=")
    return str(Path(text).expanduser().absolute()) + hash_ + rest


def _check_target_id(target: str) -> None:
    if not target or target.startswith(".") or any(c in target for c in "/\\:*?\"<>|") or len(target) > 200:
        raise InputError(f"target id {target!r} cannot name a job file (no path separators or "
                         "special characters, at most 200 characters)")


def _safe_name(text: str) -> str:
    """A file name stem of letters, digits, ``-`` and ``_``."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text).strip("_") or "shotfill"


def _digest(path: Path) -> str:
    """SHA-256 of a file, or of every file of a folder (``.otiod``), so an edited edit gets new job ids."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()

