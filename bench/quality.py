"""Quality benchmark: every engine against the truth on a folder of real shots.

Hides real frames of each shot (extend forward and backward, bridge, fill),
generates them with each engine and scores them (PSNR, SSIM, flicker, seam
score, time per frame). Writes the cells as JSON and a Markdown table beside it,
and prints the table. The same command as ``shotfill eval`` (:mod:`shotfill.cli.eval`); the
harness is :mod:`shotfill.quality.harness`.

    python bench/quality.py /work/shared/data/footage --engines flow,baseline --out results.json
"""
import sys

from shotfill.cli.eval import main

if __name__ == "__main__":
    sys.exit(main(prog="bench/quality.py"))
