"""Extend a plate with the Python API: one job spec, the same worker the command line runs.

    python examples/extend_a_plate.py PLATE OUT_DIR [--frames 8] [--engine dit|flow|...]

PLATE is a frame pattern (``plate.####.exr``), a movie or a folder of frames.
Prints each written frame as the worker reports it, then where the frames are.
"""
from __future__ import annotations

import argparse
import sys

from shotfill.engines import DEFAULT_ENGINE
from shotfill.errors import ShotfillError
from shotfill.events import FrameEvent, WarningEvent
from shotfill.job import JobSpec
from shotfill.worker import run_job


class PrintFrames:
    """An event sink: shows written frames; every event is a typed event of ``shotfill.events``."""

    def emit(self, event) -> None:
        if isinstance(event, FrameEvent):
            print(f"  frame {event.frame}: {event.path}")
        elif isinstance(event, WarningEvent):
            print(f"  warning: {event.message}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plate")
    parser.add_argument("out_dir")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--engine", default=DEFAULT_ENGINE)
    args = parser.parse_args(argv)
    spec = JobSpec.from_dict({
        "task": "extend_forward",
        "source": {"path": args.plate},
        "frames": args.frames,
        "engine": args.engine,
        "output": {"dir": args.out_dir},
    })
    try:
        result = run_job(spec, PrintFrames())
    except ShotfillError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"{len(result.written)} new frames: {result.output_pattern}")
    print(f"contact sheet: {result.contact_sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
