"""``shotfill farm export|validate|run-task|publish|run-local``: render-farm bundles.

The bundles and their steps are :mod:`shotfill.farm`; this is their command line. Every
``farm`` command has its own error boundary: exit codes 0 done, 2 bad input, 3 cancelled,
1 internal error, and a failure of ``validate`` or ``publish`` also as an ``openjd_fail``
line on stdout (``run-task``'s event sink writes its own).
"""
from __future__ import annotations

import json
import sys

from ..errors import EXIT_CANCELLED, EXIT_OK, CancelledError, ShotfillError
from .common import edit_lookup_arguments, engine_option_arguments, engine_options, internal_error


def add_parser(sub) -> None:
    """Add ``farm`` and its commands to the tree."""
    from ..farm import DEFAULT_TIMEOUT_S
    from ..job import WRITE_MODES

    parser = sub.add_parser(
        "farm", help="render-farm bundles (Open Job Description): export, run-local, ...",
        description="Open Job Description job bundles for render farms.",
        epilog="Exit codes: 0 done, 2 bad input, 3 cancelled, 1 internal error.", own_errors=True)
    parser.set_defaults(func=cmd_farm)
    commands = parser.add_subparsers(dest="farm_command", required=True, metavar="COMMAND")

    p = commands.add_parser("export", help="write a job bundle for an edit's targets, or for one job.json")
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
    edit_lookup_arguments(p)
    p.add_argument("--write-mode", choices=WRITE_MODES, default="track")
    p.add_argument("--export", metavar="ADAPTER", help="also export the new edit with this OTIO adapter")
    p.add_argument("--shotfill-command", metavar="PATH",
                   help="the shotfill executable on the workers (default: this environment's)")

    p = commands.add_parser("validate", help="check every job of a bundle (the Validate step)")
    p.add_argument("bundle")

    p = commands.add_parser("run-task", help="run one target's job (a Generate task)")
    p.add_argument("bundle")
    p.add_argument("target")

    p = commands.add_parser("publish", help="write the new edit once every target succeeded (the Publish step)")
    p.add_argument("bundle")

    p = commands.add_parser("run-local", help="run the bundle on this machine with `openjd run`")
    p.add_argument("bundle")
    p.add_argument("--step", choices=("Validate", "Generate", "Publish"), help="run this step alone")
    p.add_argument("--target", metavar="ID", help="run this target's Generate task alone")
    p.add_argument("--shotfill-command", metavar="PATH", help="the shotfill executable to run")


def cmd_farm(args) -> int:
    """``shotfill farm COMMAND ...``, behind the farm's error boundary; returns the exit code."""
    from ..farm.sink import one_line

    try:
        return _COMMANDS[args.farm_command](args)
    except (CancelledError, KeyboardInterrupt):
        print("shotfill farm: cancelled; frames written so far are complete and a re-run resumes",
              file=sys.stderr)
        return EXIT_CANCELLED
    except ShotfillError as e:
        if args.farm_command in ("validate", "publish"):     # run-task's sink has said it already
            print(f"openjd_fail: {one_line(str(e).splitlines()[0])}", flush=True)
        print(f"shotfill farm: error: {e}", file=sys.stderr)
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - the boundary: one line, traceback on request
        return internal_error("shotfill farm", e)


def _export(args) -> int:
    from ..farm import MANIFEST_FILE, export_bundle

    bundle = export_bundle(args.source, args.out, targets=args.targets, extend_frames=args.extend_frames,
                           engine=args.engine, seed=args.seed, prompt=args.prompt, output_dir=args.output_dir,
                           gpu=args.gpu, timeout_s=args.timeout, rate=args.rate, write_mode=args.write_mode,
                           export_format=args.export, shotfill_command=args.shotfill_command,
                           engine_options=engine_options(args), timeline=args.timeline,
                           search_paths=args.search_path or ())
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    print(f"bundle: {bundle}")
    for target in manifest["targets"]:
        print(f"  {target:<24} {manifest['kinds'][target]}")
    for target, why in manifest["skipped"].items():
        print(f"  left out: {target} ({why})")
    print(f"run it here:      shotfill farm run-local {bundle}")
    print(f"Deadline Cloud:   deadline bundle submit {bundle}")
    return EXIT_OK


def _validate(args) -> int:
    from ..farm import validate_bundle

    validate_bundle(args.bundle, log=_print_flushed)
    return EXIT_OK


def _run_task(args) -> int:
    from ..farm import run_task
    from ..worker.cancel import CancelFlag

    cancel = CancelFlag()
    cancel.install()
    run_task(args.bundle, args.target, cancel=cancel)
    return EXIT_OK


def _publish(args) -> int:
    from ..farm import publish_bundle

    publish_bundle(args.bundle, log=_print_flushed)
    return EXIT_OK


def _run_local(args) -> int:
    from ..farm import run_local

    return run_local(args.bundle, step=args.step, target=args.target, shotfill_command=args.shotfill_command)


def _print_flushed(line: str) -> None:
    print(line, flush=True)


_COMMANDS = {"export": _export, "validate": _validate, "run-task": _run_task,
             "publish": _publish, "run-local": _run_local}
