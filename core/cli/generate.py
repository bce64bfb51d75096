"""``shotfill extend``, ``bridge``, ``fill`` and ``run``: the commands that generate frames.

Every one builds a :class:`~shotfill.job.JobSpec` (``run`` reads one) and runs the same
worker pipeline that the panel and farm tasks run (:func:`~shotfill.worker.run_job`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import EXIT_OK, InputError, ShotfillError
from .common import EVENT_MODES, edit_lookup_arguments, engine_option_arguments, engine_options, sink_for


def add_parser(sub) -> None:
    """Add ``extend``, ``bridge``, ``fill`` and ``run`` to the tree."""
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
    if_exists_arguments(p, default=None)
    p.set_defaults(func=cmd_run)


def if_exists_arguments(p: argparse.ArgumentParser, *, default: str | None = "refuse") -> None:
    """``--overwrite`` / ``--version``: what to do with another job's frames under the output name
    (without either, the job refuses them: exit 2, naming that job). Neither changes the job id."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--overwrite", dest="if_exists", action="store_const", const="overwrite", default=default,
                   help="replace another job's frames in the output folder (its other frames of the "
                        "name are removed, so nothing mixed remains)")
    g.add_argument("--version", dest="if_exists", action="store_const", const="version",
                   help="keep another job's frames and write beside them as NAME_v2, NAME_v3... (the "
                        "first free name; a re-run resumes there)")


def _start_frame(text: str) -> int:
    """``--start-frame N``: a whole number 0 or more."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number 0 or more, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (frame numbers are never negative), got {n}")
    return n


def _generation_options(p: argparse.ArgumentParser, *, needs_out: bool = True) -> None:
    from ..engines import DEFAULT_ENGINE

    p.add_argument("--out", required=needs_out, metavar="DIR", help="output folder for the EXR frames")
    p.add_argument("--engine", default=DEFAULT_ENGINE, help=f"engine (default {DEFAULT_ENGINE}; see `shotfill engines`)")
    p.add_argument("--seed", type=int, default=0, help="random seed, 0..2147483647 (default 0)")
    p.add_argument("--prompt", default="", help="text prompt, for engines with text conditioning")
    p.add_argument("--context", type=_context_frames, metavar="N",
                   help="known frames each side, at least 1 (default: the engine's)")
    engine_option_arguments(p)
    p.add_argument("--target", metavar="ID", help="with an EDIT source: the target id from `shotfill plan`")
    p.add_argument("--rate", type=float, help="frame rate for edits that need one (EDL)")
    edit_lookup_arguments(p)
    p.add_argument("--write-mode", choices=("track", "replace"), default="track",
                   help="edit write-back: a new track (default) or in place of the gap")
    p.add_argument("--export", metavar="ADAPTER", help="also export the new edit with this OTIO adapter (e.g. cmx_3600)")
    p.add_argument("--name", help="output file name stem")
    p.add_argument("--start-frame", type=_start_frame, metavar="N",
                   help="number the new frames from N, e.g. 1001 (default: media continues its own numbers, "
                        "an edit target starts at 1001); a backward extension that would go below 0 needs it")
    if_exists_arguments(p)
    p.add_argument("--compression", default="zip", help="EXR compression: zip (default), piz, dwaa, none, ...")
    p.add_argument("--colourspace-in", "--colorspace-in", dest="colourspace_in",
                   help="source colour space, of an edit target's media too (default: EXR keeps its own, "
                        "8-bit is sRGB)")
    p.add_argument("--colourspace-out", "--colorspace-out", dest="colourspace_out",
                   help="output colour space (default: EXR sources keep theirs, others lin_rec709)")
    p.add_argument("--job-id", help="job id written into each frame (default: derived from the job)")
    p.add_argument("--no-preview", action="store_true", help="do not write the contact sheet")
    p.add_argument("--events", choices=EVENT_MODES, default="human",
                   help="jsonl: one JSON event per line on stdout (for the panel); openjd: Open Job Description progress lines")


def _context_frames(text: str) -> int:
    """``--context N``: a whole number of at least 1 (a plan needs a known frame on each side it
    continues; 0 is refused, never replaced by the engine's default)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (the known frames each side the engine "
                                         f"works from), got {n}; leave it out for the engine's default")
    return n


# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------
def cmd_extend(args) -> int:
    task = "extend_backward" if args.backward else "extend_forward"
    return _run_spec(_spec_from_args(args, task, {"source": args.source, "frames": args.frames}), args)


def cmd_bridge(args) -> int:
    from ..timeline.paths import is_edit

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
    from ..timeline.paths import is_edit

    extra = {"source": args.source}
    if not is_edit(args.source):
        if not args.mask:
            raise InputError("fill needs --mask MASK_SOURCE (1 = generate, 0 = keep)")
        extra["mask"] = {"path": args.mask}
    return _run_spec(_spec_from_args(args, "fill", extra), args)


def cmd_run(args) -> int:
    import dataclasses

    from ..job import JobSpec

    spec = JobSpec.load(args.job)
    if args.if_exists is not None:         # the command line's choice over the job file's (same job id)
        spec = dataclasses.replace(spec, output=dataclasses.replace(spec.output, if_exists=args.if_exists))
    return _run_spec(spec, args)


# ---------------------------------------------------------------------------
# the job spec from the options, and its run
# ---------------------------------------------------------------------------
def _run_spec(spec, args) -> int:
    from ..events import ErrorEvent
    from ..worker import run_job
    from ..worker.cancel import CancelFlag

    cancel = CancelFlag()
    cancel.install()
    sink = sink_for(args.events)
    try:
        result = run_job(spec, sink, cancel=cancel)
    except ShotfillError as e:
        if args.events != "human":
            sink.emit(ErrorEvent(str(e), e.exit_code))
        raise
    if args.events == "human":
        _print_result(result)
    return EXIT_OK


def _print_result(r) -> None:
    """The result as people read it. The seam score says how smooth the cut is, not how good the
    frames beyond it are: the frames' trust is printed beside it."""
    print(f"{r.task} with engine '{r.engine}': {len(r.written)} frames written, "
          f"{len(r.skipped)} already there")
    print(f"  frames:   {r.output_pattern}  ({min(r.frames)}-{max(r.frames)})")
    if r.new_edit:
        print(f"  edit:     {r.new_edit}")
    if r.contact_sheet:
        print(f"  preview:  {r.contact_sheet}")
    trust = _trust_line(r.trust_entries())
    for k, v in r.seam_scores.items():
        print(f"  seam {k}: {v:.2f} (1 = as smooth as the shot itself, at the cut only)")
    print(f"  trust:    {trust}")
    for w in r.warnings:
        print(f"  warning:  {w}")


def _trust_line(entries) -> str:
    """``0.62 mean, 0.08 lowest (1 = tracked to real frames, 0 = made up); 6 below 0.2; 12 extrapolated``."""
    from shotfill_plugin.protocol import LOW_TRUST, trust_summary

    methods: dict = {}
    for e in entries:
        if e.method is not None:
            methods[e.method] = methods.get(e.method, 0) + 1
    done = ", ".join(f"{n} {m}" for m, n in methods.items()) or "nothing generated"
    summary = trust_summary(entries)
    if summary is None:
        return f"not given by the engine; {done}"
    low = sum(e.is_low for e in entries)
    weak = f"; {low} below {LOW_TRUST:g}" if low else ""
    return f"{summary[0]:.2f} mean, {summary[1]:.2f} lowest (1 = tracked to real frames, 0 = made up){weak}; {done}"


def _source_dict(path, args):
    d = {"path": path}
    if getattr(args, "colourspace_in", None):
        d["colourspace"] = args.colourspace_in
    return d


def _spec_from_args(args, task: str, extra: dict):
    from ..job import JobSpec
    from ..timeline.paths import is_edit

    d = {"task": task, "engine": args.engine, "seed": args.seed, "prompt": args.prompt or "",
         "engine_options": engine_options(args),
         "output": {"dir": args.out, "compression": args.compression, "preview": not args.no_preview}}
    if args.name is not None:          # --name "" is refused by the spec, not ignored
        d["output"]["name"] = args.name
    if args.start_frame is not None:
        d["output"]["start_frame"] = args.start_frame
    if args.if_exists != "refuse":
        d["output"]["if_exists"] = args.if_exists
    if args.colourspace_out:
        d["output"]["colourspace"] = args.colourspace_out
    if args.context is not None:
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
        if getattr(args, "colourspace_in", None):
            d["edit"]["colourspace"] = args.colourspace_in
        if args.rate:
            d["edit"]["rate"] = args.rate
        if args.export:
            d["edit"]["export"] = args.export
        if args.timeline:
            d["edit"]["timeline"] = args.timeline
        if args.search_path:
            d["edit"]["search_paths"] = [str(Path(p).resolve()) for p in args.search_path]
        extra.pop("source_b", None)
        extra.pop("mask", None)
    elif source is not None:
        if args.target:
            raise InputError(f"--target only applies to an edit, and {source} is not one")
        d["source"] = _source_dict(source, args)
    d.update({k: v for k, v in extra.items() if v is not None})
    d["output"]["dir"] = str(Path(args.out).resolve())
    return JobSpec.from_dict(d)
