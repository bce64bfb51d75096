"""Time a 24-frame extension of a 1920x1080 EXR plate, end to end, engine by engine, in one run.

Renders a procedural plate (:mod:`shotfill.synthetic.render`, 16 frames, scene-linear EXR) once, then runs
``shotfill extend PLATE --frames 24 --engine E --events jsonl`` as a user would, for each engine,
in a fresh output folder, and keeps the ``result`` event's stage timings (read, generate, seam,
write, preview) with the engine's own breakdown (``generate.encode``, ``generate.flow``,
``generate.denoise``... for ``dit``).
Each engine's wall time is also given as a ratio to the first engine's (``flow``, the baseline)
in the same run, since these machines are noisy.

    python bench/bench_extend_1080p.py [--engines flow,dit] [--size 1920x1080] [--frames 24]
                                       [--out bench/results/extend_1080p.json]

``--smoke`` runs a 128x72 plate and 4 frames (the tests use it).
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def render_plate(folder: Path, width: int, height: int, frames: int, *, seed: int = 3,
                 dtype=np.float32) -> str:
    """A procedural pan, written as ``plate.####.exr`` (``dtype``: float32, or float16 for half
    float); returns the sequence pattern."""
    from shotfill.io.colour import ColourTransform
    from shotfill.io.exr import write_exr
    from shotfill.synthetic import CameraMove, ShotSpec, render_shot

    shot = render_shot(ShotSpec(seed=seed, width=width, height=height, frames=frames, camera=CameraMove.PAN,
                                speed=0.01))
    linear = ColourTransform("lin_rec709")
    folder.mkdir(parents=True, exist_ok=True)
    for t, picture in enumerate(shot.frames):
        write_exr(folder / f"plate.{1001 + t:04d}.exr", linear.from_working(picture).astype(dtype))
    return str(folder / "plate.####.exr")


def run_extend(plate: str, engine: str, frames: int, out: Path) -> dict:
    """One ``shotfill extend`` in a subprocess; its wall time and its ``result`` event."""
    command = [sys.executable, "-m", "shotfill", "extend", plate, "--frames", str(frames), "--engine", engine,
               "--out", str(out), "--events", "jsonl"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    result = next(e for e in events if e.get("event") == "result")
    return {"wall_s": round(wall, 2), "timings": result.get("timings", {})}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="flow,dit")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--plate-frames", type=int, default=16)
    parser.add_argument("--out", default="bench/results/extend_1080p.json")
    parser.add_argument("--smoke", action="store_true", help="a tiny plate, to check the script")
    args = parser.parse_args(argv)
    width, height = (int(n) for n in args.size.lower().split("x"))
    frames, plate_frames = args.frames, args.plate_frames
    if args.smoke:
        width, height, frames, plate_frames = 128, 72, 4, 4
    engines = [e for e in args.engines.split(",") if e]

    results = {"settings": {"size": [width, height], "frames": frames, "plate_frames": plate_frames,
                            "engines": engines, "machine": platform.processor() or platform.machine(),
                            "date": time.strftime("%Y-%m-%d")}, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="shotfill-bench-") as tmp:
        plate = render_plate(Path(tmp) / "plate", width, height, plate_frames)
        for engine in engines:
            results["runs"][engine] = run_extend(plate, engine, frames, Path(tmp) / f"out-{engine}")
            print(f"{engine}: {results['runs'][engine]['wall_s']} s", flush=True)
    first = results["runs"][engines[0]]["wall_s"]
    for engine in engines:
        results["runs"][engine]["ratio_to_" + engines[0]] = round(results["runs"][engine]["wall_s"] / first, 2)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["runs"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
