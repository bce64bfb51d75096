"""Quality benchmark: every engine against the truth on a folder of real shots.

Hides real frames of each shot (extend forward and backward, bridge, fill),
generates them with each engine and scores them (PSNR, SSIM, flicker, seam
score, time per frame). Writes the cells as JSON and a Markdown table beside it,
and prints the table. The same harness as ``shotfill eval``; see
:mod:`shotfill.quality.harness`.

    python bench/quality.py /work/shared/data/footage --engines flow,baseline --out results.json
"""
import sys

from shotfill.quality import harness as evaluate

if __name__ == "__main__":
    sys.exit(evaluate.main(prog="bench/quality.py"))
