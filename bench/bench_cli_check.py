"""The acceptance check of the dit engine, through the command line only, on shots it was not tuned on.

For each shot, frames whose truth is known are hidden and made again by ``shotfill`` itself, as a
user would run it, for each engine in one run:

- ``shotfill extend "SHOT#frames=A-B" --frames 8 --engine E``: the shot's last 8 frames are hidden
  and generated after the frames before them;
- ``shotfill bridge "SHOT#frames=A-C" "SHOT#frames=D-B" --frames 12 --engine E``: 12 frames in
  the middle of the shot are hidden and bridged.

The written EXR frames are read back, brought to the working encoding through their own
``shotfill.colourSpace`` and scored (PSNR) against the real frames. ``baseline`` is freeze frame
(extend) and dissolve (bridge). Unlike ``shotfill eval``, this goes through the whole pipeline:
media reading at plate size, colour conversion, colour anchoring, seams, EXR writing.

    python bench/bench_cli_check.py [--footage ../shared/data/footage] [--engines dit,flow,baseline]
        [--shots davis2016_drift-straight,propainter_running_car,sttn_dogs_jump]
        [--out bench/results/cli_check.json]

``--smoke`` runs one tiny procedural shot (the tests use it).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: shots of ../shared/data/footage that no dit setting was chosen on and no checkpoint was trained on
DEFAULT_SHOTS = ("davis2016_drift-straight", "propainter_running_car", "sttn_dogs_jump")
EXTEND_FRAMES = 8
BRIDGE_FRAMES = 12
#: frames of each shot used, from its start: enough context either side of a 12-frame gap
SPAN = 48


def shot_spec(footage: Path, name: str) -> str:
    """The source spec ``shotfill`` reads for a shot folder: its frames/ folder or its one movie."""
    from shotfill.io.media import MOVIE_SUFFIXES

    folder = footage / name
    if (folder / "frames").is_dir():
        return str(folder / "frames")
    movies = sorted(p for p in folder.iterdir() if p.suffix.lower() in MOVIE_SUFFIXES)
    if len(movies) != 1:
        raise SystemExit(f"{folder}: expected a frames/ folder or one movie")
    return str(movies[0])


def run_cli(args: list[str]) -> list[Path]:
    """``shotfill ARGS --events jsonl --no-preview``; the written frames, in frame order."""
    command = [sys.executable, "-m", "shotfill", *args, "--events", "jsonl", "--no-preview"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    frames = sorted((e["frame"], e["path"]) for e in events if e.get("event") == "frame")
    return [Path(path) for _, path in frames]


def psnr_of(written: list[Path], truth: list[np.ndarray]) -> float:
    """PSNR (working encoding) of the written EXR frames against the real ones."""
    from shotfill.io.colour import ColourTransform
    from shotfill.io.exr import read_exr
    from shotfill.quality.metrics import psnr

    got = []
    for path in written:
        image = read_exr(path)
        got.append(ColourTransform(str(image.attributes["shotfill.colourSpace"])).to_working(image.display_rgb()))
    return float(psnr(np.stack(got), np.stack(truth)))


def check_shot(spec: str, engines: list[str], out: Path) -> dict:
    """Extend and bridge one shot with every engine; PSNR per task and engine."""
    from shotfill.io.colour import ColourTransform
    from shotfill.io.media import open_source

    source = open_source(spec)
    try:
        frames = list(source.frames)[:SPAN]
        colour = ColourTransform(source.default_colourspace)
        truth = {f: colour.to_working(source.read(f)).astype(np.float32) for f in frames}
    finally:
        source.close()
    first, last = frames[0], frames[-1]
    cut = frames[(len(frames) - BRIDGE_FRAMES) // 2]
    tasks = {
        "extend_forward 8": (["extend", f"{spec}#frames={first}-{last - EXTEND_FRAMES}", "--frames",
                              str(EXTEND_FRAMES)], range(last - EXTEND_FRAMES + 1, last + 1)),
        "bridge 12": (["bridge", f"{spec}#frames={first}-{cut - 1}", f"{spec}#frames={cut + BRIDGE_FRAMES}-{last}",
                       "--frames", str(BRIDGE_FRAMES)], range(cut, cut + BRIDGE_FRAMES)),
    }
    scores: dict = {}
    for task, (args, hidden) in tasks.items():
        for engine in engines:
            started = time.perf_counter()
            written = run_cli([*args, "--engine", engine, "--out", str(out / f"{task.split()[0]}-{engine}")])
            if len(written) != len(hidden):
                raise SystemExit(f"{spec} {task} {engine}: wrote {len(written)} frames, expected {len(hidden)}")
            scores.setdefault(task, {})[engine] = {
                "psnr": round(psnr_of(written, [truth[f] for f in hidden]), 3),
                "wall_s": round(time.perf_counter() - started, 2)}
    return scores


def smoke_shot(folder: Path) -> str:
    """A tiny procedural pan as a PNG sequence (for ``--smoke``)."""
    from PIL import Image

    from shotfill.synthetic import CameraMove, ShotSpec, render_shot

    folder.mkdir(parents=True, exist_ok=True)
    shot = render_shot(ShotSpec(seed=5, width=96, height=64, frames=SPAN, camera=CameraMove.PAN, speed=0.01))
    for t, picture in enumerate(shot.frames):
        Image.fromarray((np.clip(picture, 0, 1) * 255 + 0.5).astype(np.uint8)).save(folder / f"f.{t:04d}.png")
    return str(folder)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", default="../shared/data/footage")
    parser.add_argument("--engines", default="dit,flow,baseline")
    parser.add_argument("--shots", default=",".join(DEFAULT_SHOTS))
    parser.add_argument("--out", default="bench/results/cli_check.json")
    parser.add_argument("--smoke", action="store_true", help="one tiny procedural shot, to check the script")
    args = parser.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    results = {"settings": {"engines": engines, "extend_frames": EXTEND_FRAMES, "bridge_frames": BRIDGE_FRAMES,
                            "span": SPAN, "date": time.strftime("%Y-%m-%d")}, "shots": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shotfill-check-") as tmp:
        if args.smoke:
            specs = {"procedural": smoke_shot(Path(tmp) / "shot")}
        else:
            footage = Path(args.footage)
            specs = {name: shot_spec(footage, name) for name in args.shots.split(",") if name}
        for name, spec in specs.items():
            results["shots"][name] = check_shot(spec, engines, Path(tmp) / name.replace("/", "_"))
            print(name, json.dumps(results["shots"][name]), flush=True)
    means: dict = {}
    for shot in results["shots"].values():
        for task, by_engine in shot.items():
            for engine, score in by_engine.items():
                means.setdefault(task, {}).setdefault(engine, []).append(score["psnr"])
    results["mean_psnr"] = {task: {e: round(float(np.mean(v)), 3) for e, v in by.items()} for task, by in means.items()}
    results["wall_s"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["mean_psnr"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
