"""The ``shotfill`` command line.

Every generating command builds a :class:`~shotfill.job.JobSpec` and runs the
same worker pipeline that the panel and farm tasks run (``shotfill run``).

Exit codes: 0 done, 2 bad input, 3 cancelled, 1 internal error.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

from .. import __version__
from ..errors import EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK, CancelledError, InputError, ShotfillError

EVENT_MODES = ("human", "jsonl", "openjd")
EDIT_SUFFIXES = {".otio", ".otioz", ".otiod", ".edl", ".xml", ".fcpxml", ".ale", ".aaf", ".kdenlive",
                 ".xges", ".ma", ".m3u8"}


def is_edit(path: str) -> bool:
    return Path(path.split("#", 1)[0]).suffix.lower() in EDIT_SUFFIXES


# ---------------------------------------------------------------------------
# cancel by signal
# ---------------------------------------------------------------------------
class CancelFlag:
    """Set by SIGINT/SIGTERM; the pipeline checks it at every step and frame write."""

    def __init__(self):
        self._event = threading.Event()

    def __call__(self) -> bool:
        return self._event.is_set()

    def set(self, *_):
        if self._event.is_set():        # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self._event.set()

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self.set)
            signal.signal(signal.SIGTERM, self.set)


# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------
def _sink(args):
    from ..events import HumanSink, JsonLinesSink

    if args.events == "openjd":
        from ..farm import OpenJDSink

        return OpenJDSink(sys.stdout)
    return JsonLinesSink(sys.stdout) if args.events == "jsonl" else HumanSink(sys.stderr)


def _run_spec(spec, args) -> int:
    from ..worker import run_job

    cancel = CancelFlag()
    cancel.install()
    sink = _sink(args)
    try:
        result = run_job(spec, sink, cancel=cancel)
    except ShotfillError as e:
        if args.events != "human":
            sink.emit({"event": "error", "message": str(e), "exit_code": e.exit_code})
        raise
    if args.events == "human":
        _print_result(result)
    return EXIT_OK


def _print_result(r) -> None:
    print(f"{r.task} with engine '{r.engine}': {len(r.written)} frames written, "
          f"{len(r.skipped)} already there")
    print(f"  frames:   {r.output_pattern}  ({min(r.frames)}-{max(r.frames)})")
    if r.new_edit:
        print(f"  edit:     {r.new_edit}")
    if r.contact_sheet:
        print(f"  preview:  {r.contact_sheet}")
    for k, v in r.seam_scores.items():
        print(f"  seam {k}: {v:.2f} (1 = as smooth as the shot itself)")
    for w in r.warnings:
        print(f"  warning:  {w}")


def _source_dict(path, args):
    d = {"path": path}
    if getattr(args, "colourspace_in", None):
        d["colourspace"] = args.colourspace_in
    return d


def _spec_from_args(args, task: str, extra: dict):
    from ..job import JobSpec

    d = {"task": task, "engine": args.engine, "seed": args.seed, "prompt": args.prompt or "",
         "engine_options": engine_options(args),
         "output": {"dir": args.out, "compression": args.compression, "preview": not args.no_preview}}
    if args.name:
        d["output"]["name"] = args.name
    if args.colourspace_out:
        d["output"]["colourspace"] = args.colourspace_out
    if args.context:
        d["context"] = args.context
    if args.job_id:
        d["job_id"] = args.job_id
    source = extra.pop("source", None)
    if source is not None and is_edit(source):
        if not args.target:
            raise InputError(f"{source} is an edit: say which target with --target ID "
                             f"(list them with: shotfill plan {source})")
        d["edit"] = {"path": str(Path(source).resolve()), "target": args.target,
                     "write_mode": args.write_mode}
        if args.rate:
            d["edit"]["rate"] = args.rate
        if args.export:
            d["edit"]["export"] = args.export
        extra.pop("source_b", None)
        extra.pop("mask", None)
    elif source is not None:
        if args.target:
            raise InputError(f"--target only applies to an edit, and {source} is not one")
        d["source"] = _source_dict(source, args)
    d.update({k: v for k, v in extra.items() if v is not None})
    d["output"]["dir"] = str(Path(args.out).resolve())
    return JobSpec.from_dict(d)


def engine_options(args) -> dict:
    """The engine's options from ``--model``, ``--manifest``, ``--memory``, ``--steps`` and ``--engine-option``.

    ``--engine-option KEY=VALUE`` values are read as JSON when they parse (``8``, ``2.5``, ``false``)
    and as text otherwise; the engine checks each name and value.
    """
    from ..engines import parse_option

    options = dict(parse_option(item, "--engine-option") for item in args.engine_option or [])
    for key in ("model", "manifest", "memory", "steps"):
        value = getattr(args, key, None)
        if value is not None:
            options[key] = str(Path(value).resolve()) if key == "manifest" else value
    if options.get("model") and Path(options["model"]).exists():  # a folder; a bare name is a manifest name
        options["model"] = str(Path(options["model"]).resolve())
    return options


def cmd_extend(args) -> int:
    task = "extend_backward" if args.backward else "extend_forward"
    return _run_spec(_spec_from_args(args, task, {"source": args.source, "frames": args.frames}), args)


def cmd_bridge(args) -> int:
    if is_edit(args.source):
        if args.source_b is not None:
            raise InputError("bridge EDIT --target ID takes no second source")
        extra = {"source": args.source, "frames": args.frames}
    else:
        if args.source_b is None:
            raise InputError("bridge needs two sources (A B), or an edit with --target")
        if args.frames is None:
            raise InputError("bridge A B needs --frames N (the gap to generate)")
        extra = {"source": args.source, "source_b": _source_dict(args.source_b, args), "frames": args.frames}
    return _run_spec(_spec_from_args(args, "bridge", extra), args)


def cmd_fill(args) -> int:
    extra = {"source": args.source}
    if not is_edit(args.source):
        if not args.mask:
            raise InputError("fill needs --mask MASK_SOURCE (1 = generate, 0 = keep)")
        extra["mask"] = {"path": args.mask}
    return _run_spec(_spec_from_args(args, "fill", extra), args)


def cmd_run(args) -> int:
    from ..job import JobSpec

    return _run_spec(JobSpec.load(args.job), args)


def cmd_plan(args) -> int:
    from .. import timeline as tl
    from ..plan import TaskKind

    timeline = tl.load_edit(args.edit, rate=args.rate)
    targets = tl.find_targets(timeline, edit_path=args.edit)
    if args.json:
        print(json.dumps({"edit": str(Path(args.edit).resolve()), "name": timeline.name,
                          "targets": [t.to_dict() for t in targets]}, indent=2, default=str))
        return EXIT_OK
    print(f"{args.edit}: {len(targets)} targets")
    for t in targets:
        d = t.to_dict()
        first = d.get("record_first_tc") or d.get("record_first")
        last = d.get("record_last_tc") or d.get("record_last")
        if t.frames is not None:
            frames = f"{t.frames} frames"
        else:
            handles = t.clip_a.handles_after if t.kind is TaskKind.EXTEND_FORWARD else t.clip_a.handles_before
            frames = f"N frames, {handles or 0} handles"
        clip = t.clip_a.clip_name if t.clip_a is not None else ""
        if t.clip_b is not None:
            clip += f" -> {t.clip_b.clip_name}"
        ready = "" if d.get("ready", True) else "  (media offline)"
        print(f"  {t.id:<16} {t.kind.value:<16} {first}-{last}  {frames:<22} {clip}{ready}")
    return EXIT_OK


def cmd_info(args) -> int:
    from .info import describe

    info = describe(args.path, rate=args.rate)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        from .info import format_info
        print(format_info(info))
    return EXIT_OK


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args.out, engine=args.engine, events=args.events, size=(args.width, args.height))


def cmd_eval(args) -> int:
    from ..quality import harness as evaluate

    return evaluate.main(args.rest)


def cmd_farm(args) -> int:
    from .. import farm

    return farm.main(args.rest)


def cmd_train(args) -> int:
    from ..training import train

    return train.main(args.rest)


def cmd_install_host(args) -> int:
    from shotfill_plugin import install

    return install.main(args.rest)


def cmd_engines(args) -> int:
    from ..engines import DEFAULT_ENGINE, PLANNED, available_engines

    for name, desc in available_engines().items():
        print(f"  {name:<10} {desc}" + (" (default)" if name == DEFAULT_ENGINE else ""))
    for name, desc in PLANNED.items():
        print(f"  {name:<10} {desc}")
    from ..engines.pretrained.base import MEMORY_MODES

    print("\n--memory modes (wan-vace, ltx):")
    for name, desc in MEMORY_MODES.items():
        print(f"  {name:<10} {desc}")
    return EXIT_OK


def cmd_publish(args) -> int:
    from ..timeline import publish

    results = []
    for p in args.results:
        try:
            results.append(json.loads(Path(p).read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"{p}: not a shotfill result file ({e})") from None
    out = publish(args.edit, results, mode=args.write_mode, rate=args.rate, export_format=args.export)
    print(out)
    return EXIT_OK


# ---------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------
def _generation_options(p: argparse.ArgumentParser, *, needs_out: bool = True) -> None:
    from ..engines import DEFAULT_ENGINE

    p.add_argument("--out", required=needs_out, metavar="DIR", help="output folder for the EXR frames")
    p.add_argument("--engine", default=DEFAULT_ENGINE, help=f"engine (default {DEFAULT_ENGINE}; see `shotfill engines`)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--prompt", default="", help="text prompt, for engines with text conditioning")
    p.add_argument("--context", type=int, help="known frames each side (default: the engine's)")
    engine_option_arguments(p)
    p.add_argument("--target", metavar="ID", help="with an EDIT source: the target id from `shotfill plan`")
    p.add_argument("--rate", type=float, help="frame rate for edits that need one (EDL)")
    p.add_argument("--write-mode", choices=("track", "replace"), default="track",
                   help="edit write-back: a new track (default) or in place of the gap")
    p.add_argument("--export", metavar="ADAPTER", help="also export the new edit with this OTIO adapter (e.g. cmx_3600)")
    p.add_argument("--name", help="output file name stem")
    p.add_argument("--compression", default="zip", help="EXR compression: zip (default), piz, dwaa, none, ...")
    p.add_argument("--colourspace-in", "--colorspace-in", dest="colourspace_in",
                   help="source colour space (default: EXR keeps its own, 8-bit is sRGB)")
    p.add_argument("--colourspace-out", "--colorspace-out", dest="colourspace_out",
                   help="output colour space (default: EXR sources keep theirs, others lin_rec709)")
    p.add_argument("--job-id", help="job id written into each frame (default: derived from the job)")
    p.add_argument("--no-preview", action="store_true", help="do not write the contact sheet")
    p.add_argument("--events", choices=EVENT_MODES, default="human",
                   help="jsonl: one JSON event per line on stdout (for the panel); openjd: Open Job Description progress lines")


def engine_option_arguments(p: argparse.ArgumentParser) -> None:
    """The options :func:`engine_options` reads, for every command that runs an engine."""
    p.add_argument("--model", help="model: a checkpoint folder (the same path on every farm worker), or a name "
                                   "from `shotfill models list` (default: the engine's)")
    p.add_argument("--manifest", metavar="FILE", help="model manifest other than the shipped one (wan-vace, ltx)")
    p.add_argument("--memory", help="GPU memory mode for wan-vace and ltx (see `shotfill engines`; default auto)")
    p.add_argument("--steps", type=int, help="denoising steps (model engines; default: the engine's)")
    p.add_argument("--engine-option", action="append", metavar="KEY=VALUE",
                   help="any other engine option, e.g. working_size=512 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shotfill",
        description="Generative shot extension, bridging and fill for EXR plates and edits.",
        epilog="Exit codes: 0 done, 2 bad input, 3 cancelled, 1 internal error.")
    parser.add_argument("--version", action="version", version=f"shotfill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="what an EXR, frame sequence, movie or edit holds")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")
    p.add_argument("--rate", type=float)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("plan", help="list the targets of an edit (gaps, heads, tails, fills)")
    p.add_argument("edit")
    p.add_argument("--json", action="store_true")
    p.add_argument("--rate", type=float)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("extend", help="extend a shot forward (or --backward) by N frames")
    p.add_argument("source", help="frame pattern (shot.####.exr), movie, folder of frames, or EDIT with --target")
    p.add_argument("--frames", type=int, required=True, help="frames to add")
    p.add_argument("--backward", action="store_true", help="extend before the first frame")
    _generation_options(p)
    p.set_defaults(func=cmd_extend)

    p = sub.add_parser("bridge", help="generate the frames between shot A's tail and shot B's head")
    p.add_argument("source", help="shot A (or an EDIT with --target)")
    p.add_argument("source_b", nargs="?", help="shot B")
    p.add_argument("--frames", type=int, help="frames in the gap (an edit's gap gives it)")
    _generation_options(p)
    p.set_defaults(func=cmd_bridge)

    p = sub.add_parser("fill", help="fill a masked region over a shot (mask: 1 = generate)")
    p.add_argument("source")
    p.add_argument("--mask", help="mask sequence: white / nonzero = fill")
    _generation_options(p)
    p.set_defaults(func=cmd_fill)

    p = sub.add_parser("run", help="run a job spec (the worker: panel and farm run this)")
    p.add_argument("job", help="job.json")
    p.add_argument("--events", choices=EVENT_MODES, default="human")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("publish", help="place finished results on a new version of an edit")
    p.add_argument("edit")
    p.add_argument("results", nargs="+", help="*.result.json files written by jobs")
    p.add_argument("--write-mode", choices=("track", "replace"), default="track")
    p.add_argument("--rate", type=float)
    p.add_argument("--export", metavar="ADAPTER")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("demo", help="make a sample edit and run the main job on it")
    p.add_argument("--out", default="shotfill-demo", help="output folder (default ./shotfill-demo)")
    p.add_argument("--engine", default=None, help="engine (default: the default engine)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--events", choices=EVENT_MODES, default="human")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("eval", help="quality harness on a footage folder (see `shotfill eval -h`)",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("farm", help="render-farm bundles (Open Job Description): export, run-local, ...",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_farm)

    p = sub.add_parser("train", help="train or fine-tune the dit engine's VAE and transformer",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("install-host", help="register the panel with Nuke or Resolve", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_install_host)

    p = sub.add_parser("engines", help="list the engines and the memory modes")
    p.set_defaults(func=cmd_engines)

    from .models import add_parser as add_models_parser

    add_models_parser(sub)
    return parser


#: subcommands whose own parser takes every argument after the name
DELEGATED = {"eval": cmd_eval, "farm": cmd_farm, "train": cmd_train, "install-host": cmd_install_host}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        args = argparse.Namespace(func=DELEGATED[argv[0]], rest=argv[1:])
    else:
        args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CancelledError:
        print("shotfill: cancelled; frames written so far are complete and a re-run resumes",
              file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print("shotfill: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except ShotfillError as e:
        print(f"shotfill: error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:             # `shotfill info x.exr | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:  # noqa: BLE001 - the boundary: one line, traceback on request
        return internal_error("shotfill", e)


def internal_error(prog: str, error: Exception) -> int:
    """Report an unexpected exception at a command boundary: one line, the traceback on request."""
    print(f"{prog}: internal error: {type(error).__name__}: {error}", file=sys.stderr)
    if os.environ.get("SHOTFILL_DEBUG"):
        traceback.print_exception(error)
    else:
        print("  (set SHOTFILL_DEBUG=1 for the traceback)", file=sys.stderr)
    return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
