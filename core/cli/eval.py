"""``shotfill eval FOOTAGE_DIR``: the quality harness (:mod:`shotfill.quality.harness`) on a folder of shots.

Hides real frames of each shot, generates them with each engine (every engine given the same
trials: ``--context`` real frames each side), scores them against the truth, writes
``results.json`` and ``results.md`` and prints the Markdown table (headline means over the
untouched shots; see :mod:`shotfill.quality.labels`).
``bench/quality.py`` is the same command (:func:`main`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..errors import ShotfillError

DESCRIPTION = ("Quality benchmark: hide real frames of each shot, generate them "
               "with each engine, and score them against the truth.")


def add_parser(sub) -> None:
    """Add ``eval`` to the tree (its options are added when it runs: the harness imports OpenCV)."""
    p = sub.add_parser("eval", help="quality harness on a footage folder (see `shotfill eval -h`)",
                       description=DESCRIPTION, arguments=add_arguments, own_errors=True)
    p.set_defaults(func=cmd_eval)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``shotfill eval``."""
    from ..quality.harness import DEFAULT_CONTEXT, DEFAULT_ENGINES, DEFAULT_OUT, DEFAULT_TASKS
    from ..quality.rows import GUESS_ROW, NO_CHANGE_ROW

    def names(text: str) -> list[str]:
        return [s.strip() for s in text.split(",") if s.strip()]

    def counts(text: str) -> list[int]:
        try:
            return [int(s) for s in names(text)]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}")

    p.add_argument("footage", type=Path, help="folder of shots (see shotfill.quality.harness)")
    p.add_argument("--engines", type=names, default=list(DEFAULT_ENGINES),
                   help=f"engine rows to compare, comma separated (default: {','.join(DEFAULT_ENGINES)}); "
                        "NAME:KEY=VALUE sets an engine option, e.g. dit:strength=0.5; reference rows: "
                        f"{GUESS_ROW} (the dit engine's own first guess), {NO_CHANGE_ROW} (dit with the "
                        "model's change switched off)")
    p.add_argument("--tasks", type=names, default=[t.value for t in DEFAULT_TASKS],
                   help="tasks, comma separated (default: all of "
                        + ",".join(t.value for t in DEFAULT_TASKS) + ")")
    p.add_argument("--extend-frames", type=int, default=8, help="frames hidden by extend (default 8)")
    p.add_argument("--bridge-frames", type=counts, default=[4, 12],
                   help="gap lengths for bridge, comma separated (default 4,12)")
    p.add_argument("--fill-frames", type=int, default=10, help="frames in a fill window (default 10)")
    p.add_argument("--context", type=int, default=DEFAULT_CONTEXT,
                   help=f"real frames of context each trial gives every engine on each side of what it hides "
                        f"(default {DEFAULT_CONTEXT}: the flow engine's, the most any default engine asks for; "
                        "the same for every engine, so none wins by seeing more)")
    p.add_argument("--max-side", type=int, default=480,
                   help="scale frames down so their long side is at most this (default 480)")
    p.add_argument("--max-shots", type=int, default=None, help="evaluate only the first shots")
    p.add_argument("--shots", type=names, default=None, help="evaluate only these shots, comma separated")
    p.add_argument("--out", type=Path, default=Path(DEFAULT_OUT),
                   help=f"folder for results.json and results.md, or a .json path (default ./{DEFAULT_OUT})")


def cmd_eval(args, prog: str = "shotfill eval") -> int:
    """Run the benchmark, write the results and print the Markdown table."""
    from ..quality.harness import run

    def report(fraction: float, message: str) -> None:
        print(f"[{fraction * 100:5.1f}%] {message}", file=sys.stderr, flush=True)

    try:
        from ..worker.existing import check_out_folder

        check_out_folder(args.out.parent if args.out.suffix == ".json" else args.out,
                         "--out (a folder, or a .json path)")
        results = run(args.footage, engines=args.engines, tasks=args.tasks, extend_frames=args.extend_frames,
                      bridge_frames=args.bridge_frames, fill_frames=args.fill_frames, context=args.context,
                      max_side=args.max_side, max_shots=args.max_shots, shots=args.shots,
                      out=args.out, progress=report)
    except ShotfillError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return e.exit_code
    print(results.to_markdown(), end="")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "shotfill eval") -> int:
    """The harness as a command of its own (``bench/quality.py``), with the options of ``shotfill eval``."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    return cmd_eval(parser.parse_args(argv), prog=prog)
