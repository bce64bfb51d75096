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

The package
-----------
=========================  =========================================================
:mod:`.bundle`             the bundle on disk: its layout, :class:`Bundle`, :class:`BundlePlan`
:mod:`.export`             :func:`export_bundle`: targets to jobs, job ids and seeds
:mod:`.template`           the job template, the parameter files and the README it writes
:mod:`.tasks`              Validate, Generate (:func:`run_task`), Publish, and :func:`run_local`
:mod:`.sink`               :class:`OpenJDSink`, the progress lines a runtime reads
:mod:`.executables`        the ``shotfill`` and ``openjd`` commands a bundle runs
=========================  =========================================================

The command line, ``shotfill farm ...``, is the cli package's ``farm`` module (``core/cli/farm.py``).
"""
from __future__ import annotations

from .bundle import (BUNDLE_VERSION, DEADLINE_VALUES_FILE, JOBS_DIR, MANIFEST_FILE, OPENJD_VALUES_FILE,
                     README_FILE, TEMPLATE_FILE, Bundle, BundlePlan, result_path)
from .executables import default_shotfill_command, openjd_command
from .export import CPU_ENGINES, DEFAULT_TIMEOUT_S, EXTEND_KINDS, derive_seed, export_bundle
from .sink import OpenJDSink
from .tasks import publish_bundle, run_local, run_task, validate_bundle
from .template import CANCEL_GRACE_S, STEP_TIMEOUT_S, write_bundle

__all__ = [
    "BUNDLE_VERSION",
    "CANCEL_GRACE_S",
    "CPU_ENGINES",
    "DEADLINE_VALUES_FILE",
    "DEFAULT_TIMEOUT_S",
    "EXTEND_KINDS",
    "JOBS_DIR",
    "MANIFEST_FILE",
    "OPENJD_VALUES_FILE",
    "README_FILE",
    "STEP_TIMEOUT_S",
    "TEMPLATE_FILE",
    "Bundle",
    "BundlePlan",
    "OpenJDSink",
    "default_shotfill_command",
    "derive_seed",
    "export_bundle",
    "openjd_command",
    "publish_bundle",
    "result_path",
    "run_local",
    "run_task",
    "validate_bundle",
    "write_bundle",
]
