"""Quality benchmark: every engine against the truth on a folder of real shots.

Hides real frames of each shot (extend forward and backward, bridge, fill),
generates them with each engine and scores them (PSNR, SSIM, flicker, seam
score, time per frame). Every engine gets the same trials (``--context``, default 4 real
frames each side); the default rows are dit, its two references (``dit-guess``: its own
first guess; ``dit-no-change``: the model's change switched off), flow and the baseline.
Writes the cells as JSON (with every row's options and model checksum, every shot's label:
training, tuned or untouched) and a Markdown table beside it whose headline means are over the
untouched shots, and prints the table. The same command as ``shotfill eval``
(:mod:`shotfill.cli.eval`); the harness is :mod:`shotfill.quality.harness`.

    python bench/quality.py /work/shared/data/footage --engines flow,baseline --out results.json
"""
import sys

from shotfill.cli.eval import main

if __name__ == "__main__":
    sys.exit(main(prog="bench/quality.py"))
