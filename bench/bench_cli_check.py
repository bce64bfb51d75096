"""The acceptance check of the default engine, through the command line only, on shots it was not tuned on.

For each shot, frames whose truth is known are hidden and made again by ``shotfill`` itself, as a
user would run it, for each engine in one run:

- ``shotfill bridge "SHOT#frames=A-C" "SHOT#frames=D-B" --frames N``: N = 4 and 12 frames in the
  middle of the shot are hidden and bridged;
- ``shotfill extend "SHOT#frames=A-B" --frames 24``: the shot's last 24 frames are hidden and
  generated after the frames before them; scored on all 24 and on frames 9-24 (where a freeze frame
  is the bar a graceful extension must stay near);
- ``shotfill bridge`` from one shot's tail to the head of the next shot in the list (two different
  shots, no truth): the run's warnings are kept, and the check is that it reports its dissolve.

The written EXR frames are read back, brought to the working encoding through their own
``shotfill.colourSpace`` and scored (PSNR) against the real frames. ``baseline`` is freeze frame
(extend) and dissolve (bridge). Unlike ``shotfill eval``, this goes through the whole pipeline:
media reading at plate size, colour conversion, colour anchoring, seams, EXR writing.

``--landed COMMIT`` adds a row ``landed``: the default engine of that commit of this repository
(``git archive``d into a temporary folder and put first on ``PYTHONPATH``, with its own resources),
run through its own command line on the same trials: the default a change must beat.

    python bench/bench_cli_check.py [--footage ../shared/data/footage] [--engines dit,baseline]
        [--landed 558b551] [--shots davis2016_drift-straight,propainter_running_car,sttn_dogs_jump]
        [--out bench/results/cli_check.json]

``--smoke`` runs two tiny procedural shots (the tests use it).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: shots of ../shared/data/footage that no dit setting was chosen on and no checkpoint was trained on
DEFAULT_SHOTS = ("davis2016_drift-straight", "propainter_running_car", "sttn_dogs_jump")
EXTEND_FRAMES = 24
BRIDGE_FRAMES = (4, 12)
#: extension frames scored apart: from here on a freeze frame is the bar (1-based, inclusive)
LATE_FROM = 9
#: frames of each shot used, from its start: 24 known frames before a 24-frame extension
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


def landed_tree(commit: str, folder: Path, repo: Path) -> dict:
    """``commit`` of the repository ``repo`` unpacked under ``folder``; the environment that runs its ``shotfill``."""
    tree = folder / "tree"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    path = folder / "path"
    path.mkdir()
    (path / "shotfill").symlink_to(tree / "core")
    (path / "shotfill_plugin").symlink_to(tree / "plugin")
    (tree / "core" / "resources").symlink_to(tree / "resources")   # shotfill.resources, as the wheel lays it
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH")]))
    return env


def run_cli(args: list[str], env: dict | None = None) -> tuple[list[Path], list[str]]:
    """``shotfill ARGS --events jsonl --no-preview``: the written frames, in frame order, and the warnings."""
    command = [sys.executable, "-m", "shotfill", *args, "--events", "jsonl", "--no-preview"]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    frames = sorted((e["frame"], e["path"]) for e in events if e.get("event") == "frame")
    warnings = [e.get("message", "") for e in events if e.get("event") == "warning"]
    return [Path(path) for _, path in frames], warnings


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


def read_truth(spec: str) -> dict:
    from shotfill.io.colour import ColourTransform
    from shotfill.io.media import open_source

    source = open_source(spec)
    try:
        frames = list(source.frames)[:SPAN]
        colour = ColourTransform(source.default_colourspace)
        return {f: colour.to_working(source.read(f)).astype(np.float32) for f in frames}
    finally:
        source.close()


def check_shot(spec: str, engines: dict, out: Path, next_spec: str | None = None) -> dict:
    """Bridge and extend one shot with every engine (``{row: (engine or None, env)}``): PSNR per task and row."""
    truth = read_truth(spec)
    frames = sorted(truth)
    first, last = frames[0], frames[-1]
    tasks = {}
    for n in BRIDGE_FRAMES:
        cut = frames[(len(frames) - n) // 2]
        tasks[f"bridge {n}"] = (["bridge", f"{spec}#frames={first}-{cut - 1}",
                                 f"{spec}#frames={cut + n}-{last}", "--frames", str(n)], range(cut, cut + n))
    tasks[f"extend_forward {EXTEND_FRAMES}"] = (
        ["extend", f"{spec}#frames={first}-{last - EXTEND_FRAMES}", "--frames", str(EXTEND_FRAMES)],
        range(last - EXTEND_FRAMES + 1, last + 1))
    if next_spec is not None:
        other = sorted(read_truth(next_spec))
        tasks["cut bridge 12"] = (["bridge", f"{spec}#frames={first}-{last}",
                                   f"{next_spec}#frames={other[0]}-{other[-1]}", "--frames", "12"], None)
    scores: dict = {}
    for task, (args, hidden) in tasks.items():
        for row, (engine, env) in engines.items():
            started = time.perf_counter()
            written, warnings = run_cli([*args, *(["--engine", engine] if engine else []),
                                         "--out", str(out / f"{task.replace(' ', '-')}-{row}")], env)
            cell = {"wall_s": round(time.perf_counter() - started, 2), "warnings": warnings}
            if hidden is None:
                cell["warns_dissolve"] = any("dissolve" in w for w in warnings)
            else:
                if len(written) != len(hidden):
                    raise SystemExit(f"{spec} {task} {row}: wrote {len(written)} frames, expected {len(hidden)}")
                real = [truth[f] for f in hidden]
                cell["psnr"] = round(psnr_of(written, real), 3)
                if task.startswith("extend"):
                    late = LATE_FROM - 1
                    cell[f"psnr_{LATE_FROM}_{EXTEND_FRAMES}"] = round(psnr_of(written[late:], real[late:]), 3)
            scores.setdefault(task, {})[row] = cell
    return scores


def smoke_shot(folder: Path) -> str:
    """A tiny procedural pan as a PNG sequence (for ``--smoke``)."""
    from PIL import Image

    from shotfill.synthetic import CameraMove, ShotSpec, render_shot

    folder.mkdir(parents=True, exist_ok=True)
    seed = 5 + sum(map(ord, folder.name))
    shot = render_shot(ShotSpec(seed=seed, width=96, height=64, frames=SPAN, camera=CameraMove.PAN, speed=0.01))
    for t, picture in enumerate(shot.frames):
        Image.fromarray((np.clip(picture, 0, 1) * 255 + 0.5).astype(np.uint8)).save(folder / f"f.{t:04d}.png")
    return str(folder)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", default="../shared/data/footage")
    parser.add_argument("--engines", default="dit,baseline",
                        help="engines run by this checkout's shotfill (rows named after them)")
    parser.add_argument("--landed", metavar="COMMIT", help="add a row 'landed': that commit's default engine")
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]),
                        help="the git repository --landed is taken from (default: this file's)")
    parser.add_argument("--shots", default=",".join(DEFAULT_SHOTS))
    parser.add_argument("--out", default="bench/results/cli_check.json")
    parser.add_argument("--smoke", action="store_true", help="two tiny procedural shots, to check the script")
    args = parser.parse_args(argv)
    results = {"settings": {"engines": args.engines, "landed": args.landed, "extend_frames": EXTEND_FRAMES,
                            "bridge_frames": list(BRIDGE_FRAMES), "late_from": LATE_FROM, "span": SPAN,
                            "date": time.strftime("%Y-%m-%d")}, "shots": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shotfill-check-") as tmp:
        engines = {e: (e, None) for e in args.engines.split(",") if e}
        if args.landed:
            engines["landed"] = (None, landed_tree(args.landed, Path(tmp) / "landed", Path(args.repo)))
        if args.smoke:
            specs = {name: smoke_shot(Path(tmp) / name) for name in ("procedural", "procedural_b")}
        else:
            footage = Path(args.footage)
            specs = {name: shot_spec(footage, name) for name in args.shots.split(",") if name}
        names = list(specs)
        for i, name in enumerate(names):
            following = specs[names[(i + 1) % len(names)]] if len(names) > 1 else None
            results["shots"][name] = check_shot(specs[name], engines, Path(tmp) / name.replace("/", "_"), following)
            print(name, json.dumps(results["shots"][name]), flush=True)
    means: dict = {}
    for shot in results["shots"].values():
        for task, by_row in shot.items():
            for row, cell in by_row.items():
                for key, value in cell.items():
                    if key.startswith("psnr") or key == "warns_dissolve":
                        means.setdefault(task, {}).setdefault(row, {}).setdefault(key, []).append(float(value))
    results["mean"] = {task: {row: {k: round(float(np.mean(v)), 3) for k, v in cells.items()}
                              for row, cells in by.items()} for task, by in means.items()}
    results["wall_s"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["mean"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
