"""Render-farm batch: Open Job Description job bundles that run on one machine or on a farm.

A studio that outgrows one workstation runs the same jobs on its farm, through the farm's own
scheduler. ``shotfill farm export`` turns an edit (or one ``job.json``) into an
`Open Job Description <https://github.com/OpenJobDescription/openjd-specifications>`_ job
bundle: the open job-template format AWS Deadline Cloud runs, and that ``openjd run`` runs on
one machine.

Making a bundle
---------------
::

    shotfill farm export cut_v3.otio --out cut_v3_farm                  # every ready bridge and fill
    shotfill farm export cut_v3.otio --out cut_v3_farm --target V1.gap1 --target V1.clip2.tail \\
        --extend-frames 12 --engine flow --seed 7 --output-dir /show/sh010/shotfill
    shotfill farm export job.json --out job_farm                        # one job spec, one task

By default an edit gives every bridge and fill target whose media is on disk, and with
``--extend-frames N`` every head and tail extension too, except those that cannot be placed
(the media's handles already hold N frames, or a head would start before the timeline): the
export lists what it left out and why. ``--target`` picks targets by hand. Frames go to
``OUTPUT_DIR/<target>/`` (default: ``<edit folder>/<edit stem>_shotfill/``).

The bundle folder::

    template.yaml             the job template (specification jobtemplate-2023-09)
    parameter_values.yaml     job parameter values, in the form ``deadline bundle submit`` reads
    openjd_params.json        the same values, in the form ``openjd run --job-param file://`` reads
                              (not ``parameter_values.json``: Deadline refuses a bundle holding
                              both ``parameter_values.json`` and ``parameter_values.yaml``)
    bundle.json               what the bundle holds: edit, targets, write-back options
    jobs/<target>.json        one shotfill job spec per target, absolute paths
    README.md                 these commands, filled in for this bundle

The job has three steps:

1. **Validate** (CPU, one task): resolves every job: media and masks on disk for every frame
   read, frame ranges, the engine, output folders writable, and a dry run of the timeline
   write-back (placements that overlap, or start before the timeline's first frame). A bad
   input fails here, once, with a message naming the target and the file or frame, and not
   on every retry of a GPU task.
2. **Generate** (one task per target; task parameter ``Target``): ``shotfill farm run-task
   BUNDLE TARGET``, the same worker as ``shotfill run BUNDLE/jobs/TARGET.json``. An extension
   or a bridge is one unit (one window of chained frames) and is never split. Host
   requirements ask for a GPU (``amount.worker.gpu`` >= 1) when the engine is generative;
   ``flow`` and ``baseline`` run anywhere. Each task has a timeout, and a cancel sends
   SIGTERM first (the worker stops at the next frame) and kills only after a grace period.
3. **Publish** (CPU, one task, after every Generate task): checks that every target has a
   result written by this bundle's job, then writes the new version of the edit once
   (``<edit>.shotfill.otio``, ``.v2``... never overwriting).

Long masked fills are not split into frame chunks yet: a fill is one task too.

Running it on this machine
--------------------------
::

    shotfill farm run-local cut_v3_farm                       # all steps, in order
    shotfill farm run-local cut_v3_farm --target V1.gap1      # one Generate task alone
    # the same, by hand:
    openjd run cut_v3_farm/template.yaml --job-param file://cut_v3_farm/openjd_params.json
    openjd run cut_v3_farm/template.yaml --job-param file://cut_v3_farm/openjd_params.json \\
        --step Generate --task-param Target=V1.gap1

``run-local`` stops at the first failing step and exits non-zero (a local run ignores host
requirements, so a GPU step also runs on a CPU machine, slowly).

Submitting it to AWS Deadline Cloud
-----------------------------------
::

    deadline bundle submit cut_v3_farm                    # reads template.yaml and parameter_values.yaml
    deadline bundle submit cut_v3_farm -p ShotfillCommand=/opt/shotfill/bin/shotfill

``ShotfillCommand`` is the ``shotfill`` executable on the workers; it defaults to the console
script of the environment that exported the bundle, which is right for workers that share it.
Workers must see the media, the output folders and the edit at the paths written in
``jobs/*.json`` (shared storage with the same mount points); the bundle folder itself is a job
input (``BundleDir``, data flow IN), so job attachments carry it.

A farm without Open Job Description
-----------------------------------
Any scheduler runs the same three commands (the bundle's README lists them with its targets)::

    shotfill farm validate BUNDLE                # once, first
    shotfill farm run-task BUNDLE V1.gap1        # one task per target, in any order or at once
    shotfill farm publish BUNDLE                 # once, after every task succeeded

Exit codes: 0 done, 2 bad input, 3 cancelled, 1 internal error. Progress goes to stdout as
``openjd_progress: <percent>`` and ``openjd_status: <stage>: <message>`` lines and a failure as
``openjd_fail: <message>``, the lines an Open Job Description runtime reads; other farms can
parse them or ignore them. ``shotfill run BUNDLE/jobs/TARGET.json --events jsonl`` runs the same
job with JSON-lines events instead.

Retries are safe
----------------
Every job spec carries an explicit ``job_id``, a hash of the bundle (source edit and its
content, engine, seed, prompt, frame count, output folder, write-back options) and the target,
and a seed derived from the bundle's seed and the target, so a retry reproduces the same frames.
A re-run keeps every frame whose header names the job and which decodes whole, and writes only
the rest; frames are written to a temporary file and renamed, so two attempts of one task running
at once (some farms overlap them) write the same frames and never leave a partial one. Exporting
again with the same settings and an unchanged edit gives the same job ids, so the new bundle
resumes the old frames; changing any of them gives new ids, and old frames are written over.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import uuid
from pathlib import Path
from typing import IO, Callable, Optional, Sequence

from .. import __version__
from ..errors import (EXIT_CANCELLED, EXIT_OK, CancelledError, InputError, MediaError,
                     ShotfillError)
from ..job import JOB_VERSION, WRITE_MODES, JobSpec
from ..plan import Role, TaskKind

#: bundle layout version written into ``bundle.json``
BUNDLE_VERSION = 1
TEMPLATE_FILE = "template.yaml"
DEADLINE_VALUES_FILE = "parameter_values.yaml"
OPENJD_VALUES_FILE = "openjd_params.json"
MANIFEST_FILE = "bundle.json"
README_FILE = "README.md"
JOBS_DIR = "jobs"

#: engines that run well on a CPU (the shipped dit model is sized for one); every other engine asks the farm for a GPU
CPU_ENGINES = frozenset({"flow", "baseline", "dit"})
#: default timeout of one Generate task
DEFAULT_TIMEOUT_S = 4 * 3600
#: timeout of the Validate and Publish tasks
STEP_TIMEOUT_S = 1800
#: seconds between the SIGTERM of a cancel and the kill
CANCEL_GRACE_S = 60

EXTEND_KINDS = (TaskKind.EXTEND_FORWARD, TaskKind.EXTEND_BACKWARD)


# ---------------------------------------------------------------------------
# progress lines an Open Job Description runtime reads
# ---------------------------------------------------------------------------
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

    def emit(self, event: dict) -> None:
        line = self._line(event)
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
            message = _one_line(event.get("message", ""))
            return f"openjd_status: {event['stage']}" + (f": {message}" if message else "")
        if kind == "error":
            return f"openjd_fail: {_one_line(event['message'])}"
        if kind == "warning":
            return f"warning: {_one_line(event['message'])}"
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


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ---------------------------------------------------------------------------
# the bundle on disk
# ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Bundle:
    """A job bundle written by :func:`export_bundle`, as its ``bundle.json`` describes it.

    ``edit`` is the edit Publish writes a new version of (None for a bundle made from a job
    spec with plain sources: Publish then only checks the results).
    """

    path: Path
    edit: str | None
    targets: tuple[str, ...]
    write_mode: str
    rate: float | None
    export_format: str | None

    @classmethod
    def load(cls, path) -> "Bundle":
        path = Path(path).expanduser().resolve()
        manifest = path / MANIFEST_FILE
        try:
            data = json.loads(manifest.read_text())
        except FileNotFoundError:
            raise InputError(f"{path}: not a shotfill farm bundle (no {MANIFEST_FILE}; "
                             "make one with `shotfill farm export`)") from None
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"{manifest}: cannot be read: {e}") from None
        version = data.get("shotfill_bundle")
        if version != BUNDLE_VERSION:
            raise InputError(f"{manifest}: bundle version {version!r}; this shotfill reads version "
                             f"{BUNDLE_VERSION} (export the bundle again)")
        return cls(path=path, edit=data["edit"], targets=tuple(data["targets"]), write_mode=data["write_mode"],
                   rate=data["rate"], export_format=data["export_format"])

    def job_path(self, target: str) -> Path:
        return self.path / JOBS_DIR / f"{target}.json"

    def job(self, target: str) -> JobSpec:
        """The job spec of ``target``; InputError when the bundle has no such target."""
        if target not in self.targets:
            raise InputError(f"{self.path}: no target '{target}' in this bundle "
                             f"(targets: {', '.join(self.targets)})")
        return JobSpec.load(self.job_path(target))


def result_path(spec: JobSpec) -> Path:
    """Where the worker writes the result of a bundle's job (its output name is always set)."""
    return Path(spec.output.dir) / f"{spec.output.name}.result.json"


def derive_seed(seed: int, target: str) -> int:
    """The seed of one target's job: fixed by the bundle's seed and the target, so every
    retry of the task draws the same noise, and targets do not share it."""
    digest = hashlib.sha256(f"shotfill-seed/{seed}/{target}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _job_id(bundle_id: str, target: str) -> str:
    return hashlib.sha256(f"shotfill-job/{bundle_id}/{target}".encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------
def export_bundle(source, out_dir, *, targets: Sequence[str] | None = None, extend_frames: int | None = None,
                  engine: str | None = None, seed: int | None = None, prompt: str | None = None,
                  output_dir=None, gpu: bool | None = None, timeout_s: int = DEFAULT_TIMEOUT_S,
                  rate: float | None = None, write_mode: str = "track", export_format: str | None = None,
                  shotfill_command: str | None = None, engine_options: dict | None = None) -> Path:
    """Write an Open Job Description job bundle for an edit's targets, or for one job spec.

    ``source`` is an edit (every ready bridge and fill target by default; ``targets`` names
    the ones to run, extensions included, which need ``extend_frames``) or a ``job.json``
    (one target). ``engine``, ``seed`` and ``prompt`` default to the default engine (dit), 0
    and none for an edit, and to the job's own for a job spec. ``output_dir`` holds one folder
    per target (default: ``<edit folder>/<edit stem>_shotfill``; a job spec keeps its own
    output folder unless it is given). ``gpu`` asks the farm for a GPU for Generate tasks (default: for every engine
    but flow, baseline and dit, which run on a CPU). ``shotfill_command`` is the ``shotfill`` executable on the workers
    (default: this environment's console script). ``engine_options`` (``model``, ``memory``,
    ``steps``...) go into every target's job; a job spec's are updated with them. Returns the
    bundle folder.
    """
    from ..cli import is_edit
    from ..engines import DEFAULT_ENGINE

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
    elif targets is not None or extend_frames is not None:
        raise InputError(f"{source} is a job spec (one target): targets and extend frames apply to edits only")
    engine_options = dict(engine_options or {})
    settings = {"engine": engine, "engine_options": engine_options, "seed": seed, "prompt": prompt,
                "extend_frames": extend_frames,
                "output_dir": str(Path(output_dir).expanduser().resolve()) if output_dir else None,
                "rate": rate, "write_mode": write_mode, "export_format": export_format}
    identity = {"source": str(source), "content": _digest(source), "settings": settings}
    bundle_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    if edit:
        plan = _plan_edit(source, bundle_id, targets=targets, extend_frames=extend_frames, engine=engine,
                          engine_options=engine_options, seed=seed, prompt=prompt, output_dir=output_dir,
                          rate=rate, write_mode=write_mode, export_format=export_format)
    else:
        plan = _plan_job_file(source, bundle_id, engine=engine, engine_options=engine_options, seed=seed,
                              prompt=prompt, output_dir=output_dir)
    engines = {spec.engine for spec in plan.jobs.values()}
    needs_gpu = gpu if gpu is not None else bool(engines - CPU_ENGINES)
    return _write_bundle(Path(out_dir), plan, bundle_id=bundle_id, source=source, gpu=needs_gpu,
                         timeout_s=timeout_s, command=command)


@dataclasses.dataclass
class _Plan:
    """What a bundle will hold: one job spec per target, and the write-back options."""

    name: str
    jobs: dict                      # target id -> JobSpec
    kinds: dict                     # target id -> TaskKind value (for the README)
    edit: str | None
    write_mode: str
    rate: float | None
    export_format: str | None
    skipped: dict                   # target id -> why it was left out


def _plan_edit(edit: Path, bundle_id: str, *, targets, extend_frames, engine, engine_options, seed, prompt,
               output_dir, rate, write_mode, export_format) -> _Plan:
    from .. import timeline as tl

    if extend_frames is not None and (not isinstance(extend_frames, int) or isinstance(extend_frames, bool)
                                      or extend_frames < 1):
        raise InputError(f"extend frames must be a whole number >= 1, got {extend_frames!r}")
    found = tl.find_targets(tl.load_edit(edit, rate=rate), edit_path=edit)
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
                     "write_timeline": False},
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
                skipped[t.id] = "media offline"
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
    return _Plan(name=edit.stem, jobs=jobs, kinds=kinds, edit=str(edit), write_mode=write_mode, rate=rate,
                 export_format=export_format, skipped=skipped)


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


def _plan_job_file(path: Path, bundle_id: str, *, engine, engine_options, seed, prompt, output_dir) -> _Plan:
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
    return _Plan(name=path.stem, jobs={target: job}, kinds={target: kind},
                 edit=edit.path if edit is not None else None,
                 write_mode=edit.write_mode if edit is not None else "track",
                 rate=edit.rate if edit is not None else None,
                 export_format=edit.export if edit is not None else None, skipped={})


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


def _console_script(name: str) -> str | None:
    """Absolute path of console script ``name``: this environment's first, else on PATH; or None."""
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (name, f"{name}.exe"):
        if (scripts / candidate).is_file():
            return str(scripts / candidate)
    found = shutil.which(name)
    return None if found is None else str(Path(found).absolute())


def default_shotfill_command() -> str:
    """The ``shotfill`` console script of this environment (what farm tasks run by default)."""
    found = _console_script("shotfill")
    if found is None:
        scripts = Path(sysconfig.get_path("scripts"))
        raise InputError(f"no `shotfill` console script in {scripts} or on PATH: install shotfill "
                         "(pip install -e .) or name the command the workers run (--shotfill-command)")
    return found


def _template(plan: _Plan, *, gpu: bool, timeout_s: int, command: str) -> dict:
    """The Open Job Description job template (jobtemplate-2023-09) of a bundle."""

    def action(args: list[str], timeout: int) -> dict:
        return {"command": "{{Param.ShotfillCommand}}", "args": ["farm", *args], "timeout": timeout,
                "cancelation": {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": CANCEL_GRACE_S}}

    generate = {
        "name": "Generate",
        "description": "One task per target: the shotfill worker writes its EXR frames, resuming "
                       "from frames this job already wrote.",
        "dependencies": [{"dependsOn": "Validate"}],
        "parameterSpace": {"taskParameterDefinitions": [
            {"name": "Target", "type": "STRING", "range": list(plan.jobs)}]},
        "script": {"actions": {"onRun": action(
            ["run-task", "{{Param.BundleDir}}", "{{Task.Param.Target}}"], timeout_s)}},
    }
    if gpu:
        generate["hostRequirements"] = {"amounts": [{"name": "amount.worker.gpu", "min": 1}]}
    return {
        "specificationVersion": "jobtemplate-2023-09",
        "name": f"shotfill {plan.name}"[:128],
        "description": f"shotfill {__version__}: {len(plan.jobs)} target(s) of {plan.name}: "
                       f"{', '.join(plan.jobs)}"[:2048],
        "parameterDefinitions": [
            {"name": "BundleDir", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "IN", "default": ".",
             "description": "This bundle's folder (jobs/ holds one shotfill job spec per target)."},
            {"name": "ShotfillCommand", "type": "STRING", "minLength": 1, "default": command,
             "description": "The shotfill executable on the workers (the console script of an "
                            "environment with shotfill installed)."},
        ],
        "steps": [
            {"name": "Validate",
             "description": "Resolve every job once (media, frame ranges, engine, output folders, "
                            "timeline write-back), before any GPU task starts.",
             "script": {"actions": {"onRun": action(["validate", "{{Param.BundleDir}}"], STEP_TIMEOUT_S)}}},
            generate,
            {"name": "Publish",
             "description": "After every target succeeded: write the new version of the edit.",
             "dependencies": [{"dependsOn": "Generate"}],
             "script": {"actions": {"onRun": action(["publish", "{{Param.BundleDir}}"], STEP_TIMEOUT_S)}}},
        ],
    }


def _write_bundle(out_dir: Path, plan: _Plan, *, bundle_id: str, source: Path, gpu: bool, timeout_s: int,
                  command: str) -> Path:
    """Write the bundle in a staging folder beside ``out_dir``, then move it into place.

    ``out_dir`` must be absent, empty, or an earlier shotfill bundle (which is replaced).
    """
    import yaml

    out_dir = out_dir.expanduser().resolve()
    if out_dir.exists():
        if not out_dir.is_dir():
            raise InputError(f"{out_dir}: exists and is not a folder")
        if any(out_dir.iterdir()) and not (out_dir / MANIFEST_FILE).is_file():
            raise InputError(f"{out_dir}: the folder is not empty and is not a shotfill farm bundle; "
                             "choose another --out")
    staging = out_dir.parent / f".{out_dir.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"
    try:
        staging.mkdir(parents=True)         # the umask's permissions: farm workers read the bundle
    except OSError as e:
        raise MediaError(out_dir.parent, f"cannot write the bundle there: {e.strerror or e}") from None
    try:
        (staging / JOBS_DIR).mkdir()
        for target, spec in plan.jobs.items():
            spec.save(staging / JOBS_DIR / f"{target}.json")
        manifest = {
            "shotfill_bundle": BUNDLE_VERSION, "shotfill_version": __version__, "bundle_id": bundle_id,
            "source": str(source), "edit": plan.edit, "targets": list(plan.jobs), "kinds": plan.kinds,
            "write_mode": plan.write_mode, "rate": plan.rate, "export_format": plan.export_format,
            "gpu": gpu, "timeout_s": timeout_s, "skipped": plan.skipped,
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        template = _template(plan, gpu=gpu, timeout_s=timeout_s, command=command)
        (staging / TEMPLATE_FILE).write_text(yaml.safe_dump(template, sort_keys=False, width=100))
        values = {"ShotfillCommand": command}
        (staging / OPENJD_VALUES_FILE).write_text(json.dumps(values, indent=2) + "\n")
        (staging / DEADLINE_VALUES_FILE).write_text(yaml.safe_dump(
            {"parameterValues": [{"name": k, "value": v} for k, v in values.items()]}, sort_keys=False))
        readme = _readme(out_dir, plan, gpu=gpu, timeout_s=timeout_s, command=command)
        (staging / README_FILE).write_text(readme)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _readme(bundle: Path, plan: _Plan, *, gpu: bool, timeout_s: int, command: str) -> str:
    rows = "\n".join(f"    {t:<24} {plan.kinds[t]:<16} {s.output.dir}/{s.output.name}."
                     f"{'#' * s.output.padding}.exr" for t, s in plan.jobs.items())
    skipped = "".join(f"\nLeft out: {t} ({why})." for t, why in plan.skipped.items())
    first = next(iter(plan.jobs))
    publish = (f"writes the new version of {plan.edit}" if plan.edit
               else "checks every result (this bundle has no edit to write back)")
    return f"""# shotfill farm bundle: {plan.name}

Written by shotfill {__version__}. One Generate task per target:

{rows}
{skipped}
Steps: Validate (CPU, once) -> Generate ({'GPU' if gpu else 'CPU'}, timeout {timeout_s} s per task)
-> Publish (CPU, once, after every target succeeded: {publish}).

Run it on this machine (Open Job Description CLI, `pip install openjd-cli`):

    shotfill farm run-local {bundle}
    shotfill farm run-local {bundle} --target {first}
    openjd run {bundle}/{TEMPLATE_FILE} --job-param file://{bundle}/{OPENJD_VALUES_FILE}

Submit it to AWS Deadline Cloud (reads {TEMPLATE_FILE} and {DEADLINE_VALUES_FILE}):

    deadline bundle submit {bundle}
    deadline bundle submit {bundle} -p ShotfillCommand=/path/to/shotfill/on/the/workers

Any other farm: run the same commands, one task per target, in this order:

    {command} farm validate {bundle}
    {command} farm run-task {bundle} TARGET
    {command} farm publish {bundle}

Workers must see the media, the output folders and the edit at the absolute paths written in
{JOBS_DIR}/*.json. A retried or doubled task resumes from the frames its job already wrote and
reproduces the same frames (fixed job id and seed per target).
"""


# ---------------------------------------------------------------------------
# the three steps
# ---------------------------------------------------------------------------
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
            log(f"{target}: cannot run: {_one_line(str(e))}")
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
        publish(bundle.edit, results, mode=bundle.write_mode, rate=bundle.rate,
                export_format=bundle.export_format, out_path=Path(scratch) / f"{Path(bundle.edit).stem}.otio")


def run_task(path, target: str, *, stream: IO[str] | None = None,
             cancel: Optional[Callable[[], bool]] = None):
    """Run one target's job with Open Job Description progress lines; return its JobResult."""
    from ..worker import run_job

    sink = OpenJDSink(stream)
    try:
        spec = Bundle.load(path).job(target)
        return run_job(spec, sink, cancel=cancel)
    except ShotfillError as e:
        sink.emit({"event": "error", "message": str(e), "exit_code": e.exit_code})
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
                       export_format=bundle.export_format)
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
    cmd = [_openjd_command(), "run", str(bundle.path / TEMPLATE_FILE),
           "--job-param", f"file://{bundle.path / OPENJD_VALUES_FILE}"]
    if shotfill_command:
        cmd += ["--job-param", f"ShotfillCommand={shotfill_command}"]
    if step is not None:
        cmd += ["--step", step]
    if target is not None:
        cmd += ["--task-param", f"Target={target}"]
    return subprocess.run(cmd).returncode


def _openjd_command() -> str:
    found = _console_script("openjd")
    if found is None:
        raise InputError("the Open Job Description CLI is not installed (pip install 'shotfill[farm]' "
                         "or pip install openjd-cli)")
    return found


# ---------------------------------------------------------------------------
# command line: `shotfill farm ...`
# ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from ..cli import engine_option_arguments

    parser = argparse.ArgumentParser(
        prog="shotfill farm", description="Open Job Description job bundles for render farms.",
        epilog="Exit codes: 0 done, 2 bad input, 3 cancelled, 1 internal error.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("export", help="write a job bundle for an edit's targets, or for one job.json")
    p.add_argument("source", help="an edit (.otio, .edl, ...) or a job.json")
    p.add_argument("--out", required=True, metavar="BUNDLE", help="bundle folder to write")
    p.add_argument("--target", action="append", dest="targets", metavar="ID",
                   help="a target to run (repeat; default: every ready bridge and fill)")
    p.add_argument("--extend-frames", type=int, metavar="N", help="frames to add for extension targets")
    p.add_argument("--engine", help="engine (default dit; a job.json keeps its own)")
    p.add_argument("--seed", type=int, help="the bundle's seed; each target's is derived from it (default 0)")
    p.add_argument("--prompt", help="text prompt, for engines with text conditioning")
    engine_option_arguments(p)
    p.add_argument("--output-dir", metavar="DIR",
                   help="frames go to DIR/<target>/ (default: next to the edit)")
    gpu = p.add_mutually_exclusive_group()
    gpu.add_argument("--gpu", dest="gpu", action="store_true", default=None, help="ask the farm for a GPU")
    gpu.add_argument("--no-gpu", dest="gpu", action="store_false", help="never ask for a GPU")
    p.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"seconds one Generate task may run (default {DEFAULT_TIMEOUT_S})")
    p.add_argument("--rate", type=float, help="frame rate for edits that need one (EDL)")
    p.add_argument("--write-mode", choices=WRITE_MODES, default="track")
    p.add_argument("--export", metavar="ADAPTER", help="also export the new edit with this OTIO adapter")
    p.add_argument("--shotfill-command", metavar="PATH",
                   help="the shotfill executable on the workers (default: this environment's)")

    p = sub.add_parser("validate", help="check every job of a bundle (the Validate step)")
    p.add_argument("bundle")

    p = sub.add_parser("run-task", help="run one target's job (a Generate task)")
    p.add_argument("bundle")
    p.add_argument("target")

    p = sub.add_parser("publish", help="write the new edit once every target succeeded (the Publish step)")
    p.add_argument("bundle")

    p = sub.add_parser("run-local", help="run the bundle on this machine with `openjd run`")
    p.add_argument("bundle")
    p.add_argument("--step", choices=("Validate", "Generate", "Publish"), help="run this step alone")
    p.add_argument("--target", metavar="ID", help="run this target's Generate task alone")
    p.add_argument("--shotfill-command", metavar="PATH", help="the shotfill executable to run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``shotfill farm ...``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (CancelledError, KeyboardInterrupt):
        print("shotfill farm: cancelled; frames written so far are complete and a re-run resumes",
              file=sys.stderr)
        return EXIT_CANCELLED
    except ShotfillError as e:
        if args.command in ("validate", "publish"):     # run-task's sink has said it already
            print(f"openjd_fail: {_one_line(str(e).splitlines()[0])}", flush=True)
        print(f"shotfill farm: error: {e}", file=sys.stderr)
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - the boundary: one line, traceback on request
        from ..cli import internal_error

        return internal_error("shotfill farm", e)


def _cmd_export(args) -> int:
    from ..cli import engine_options

    bundle = export_bundle(args.source, args.out, targets=args.targets, extend_frames=args.extend_frames,
                           engine=args.engine, seed=args.seed, prompt=args.prompt, output_dir=args.output_dir,
                           gpu=args.gpu, timeout_s=args.timeout, rate=args.rate, write_mode=args.write_mode,
                           export_format=args.export, shotfill_command=args.shotfill_command,
                           engine_options=engine_options(args))
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    print(f"bundle: {bundle}")
    for target in manifest["targets"]:
        print(f"  {target:<24} {manifest['kinds'][target]}")
    for target, why in manifest["skipped"].items():
        print(f"  left out: {target} ({why})")
    print(f"run it here:      shotfill farm run-local {bundle}")
    print(f"Deadline Cloud:   deadline bundle submit {bundle}")
    return EXIT_OK


def _cmd_validate(args) -> int:
    validate_bundle(args.bundle, log=_print_flushed)
    return EXIT_OK


def _cmd_run_task(args) -> int:
    from ..cli import CancelFlag

    cancel = CancelFlag()
    cancel.install()
    run_task(args.bundle, args.target, cancel=cancel)
    return EXIT_OK


def _cmd_publish(args) -> int:
    publish_bundle(args.bundle, log=_print_flushed)
    return EXIT_OK


def _cmd_run_local(args) -> int:
    return run_local(args.bundle, step=args.step, target=args.target, shotfill_command=args.shotfill_command)


def _print_flushed(line: str) -> None:
    print(line, flush=True)


_COMMANDS = {"export": _cmd_export, "validate": _cmd_validate, "run-task": _cmd_run_task,
             "publish": _cmd_publish, "run-local": _cmd_run_local}


if __name__ == "__main__":  # pragma: no cover - `python -m shotfill.farm`
    sys.exit(main())
