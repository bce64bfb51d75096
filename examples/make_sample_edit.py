"""Build shotfill's sample edit: three procedural shots, a mask, and an OTIO timeline.

    python examples/make_sample_edit.py OUT_DIR [--width 640] [--height 360] [--rate 24] [--seed 0]

Everything is made by the project (no third-party pictures). The edit has a bridge
target (a gap between two shots with handles), extend targets, and a fill target
(a light stand with its mask); ``OUT_DIR/truth`` holds the shot without the stand,
to score a fill against. See :func:`shotfill.synthetic.make_sample_edit`.
"""
from __future__ import annotations

import argparse
import sys

from shotfill.errors import ShotfillError
from shotfill.synthetic import make_sample_edit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="folder to write the edit, media/ and truth/ into")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--rate", type=float, default=24.0, help="frames per second")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        sample = make_sample_edit(args.out_dir, width=args.width, height=args.height,
                                  rate=args.rate, seed=args.seed)
    except ShotfillError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"edit:  {sample.edit}")
    print(f"media: {sample.media_dir}")
    print(f"truth: {sample.truth_dir}")
    for shot in sample.shots:
        line = (f"  {shot.name}: {shot.media.name} frames {shot.available[0]}-{shot.available[1]}, "
                f"clip uses {shot.used[0]}-{shot.used[1]}")
        if shot.mask is not None:
            line += f", mask {shot.mask.name}, truth {shot.truth.name}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
