"""What an export writes: the Open Job Description job template, its parameter files and the bundle README."""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from .. import __version__
from ..errors import InputError, MediaError
from .bundle import (BUNDLE_VERSION, DEADLINE_VALUES_FILE, JOBS_DIR, MANIFEST_FILE, OPENJD_VALUES_FILE,
                     README_FILE, TEMPLATE_FILE, BundlePlan)

#: timeout of the Validate and Publish tasks
STEP_TIMEOUT_S = 1800
#: seconds between the SIGTERM of a cancel and the kill
CANCEL_GRACE_S = 60


def _template(plan: BundlePlan, *, gpu: bool, timeout_s: int, command: str) -> dict:
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


def write_bundle(out_dir: Path, plan: BundlePlan, *, bundle_id: str, source: Path, gpu: bool, timeout_s: int,
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
        if plan.timeline is not None:
            manifest["timeline"] = plan.timeline
        if plan.search_paths:
            manifest["search_paths"] = list(plan.search_paths)
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


def _readme(bundle: Path, plan: BundlePlan, *, gpu: bool, timeout_s: int, command: str) -> str:
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

