"""The ``motion`` engine against the ``flow`` engine and the references, on the quality harness's own trials.

Every method gets the same trial (:func:`shotfill.quality.harness.make_trial`: the same shot, plan,
hidden frames and ``--context`` known frames), scored by :func:`shotfill.quality.harness.score`:

- **bridge** (``--bridge-frames``, 4 and 12): ``motion`` (the self-check chooses), each of its
  methods forced (``rife``, ``rife_blend``, ``flow``, ``dissolve``), the ``flow`` engine; with the
  self-check's scores and choice, and how RIFE's per-pixel confidence ranks its errors (mean
  error in the least and the most trusted third of the generated pixels);
- **extend forward** (``--extend-frames``, 24): ``motion``, ``motion`` with RIFE's flows for its
  velocity (``motion-rife-velocity``: :meth:`RifeInterpolator.flow` instead of DIS), the ``flow``
  engine, and the freeze frame: PSNR of frames 1-8 and 9-N, per frame, and the hindcast;
- **fill** (``--fill-frames``, 10): ``motion`` (the flow engine's propagation), the flow
  engine's propagation along RIFE's flows (``flow-rife-tracks``), the ``flow`` engine, and
  per-frame inpainting.

``--dit`` adds the ``dit`` engine twice, its first guess from the motion engine (``dit``) and
from the flow engine (``dit-flow-guess``): slow (about 0.5 s a frame).

Results go to ``bench/results/motion.json`` with RIFE's sha256, every option of the engines and
a table per task; shots are labelled ``tuned`` (the 7 harness shots settings were chosen on)
or ``untouched``.

    OMP_NUM_THREADS=1 python bench/bench_motion.py [--footage ../shared/data/footage] [--shots a,b]
        [--bridge-frames 4,12] [--extend-frames 24] [--fill-frames 10] [--context 4] [--dit]
        [--out bench/results/motion.json]

``--smoke`` runs on a tiny synthetic pan (the tests use it).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import inspect
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FOOTAGE = ROOT.parent / "shared" / "data" / "footage"
#: the README's 7 harness shots (the motion engine's tie margin, half-life, hold travel and reliability power
#: were chosen on these)
TUNED = ("bbb_480p_30s/shot1", "sam2_bedroom", "davis2016_blackswan", "davis2016_car-shadow", "propainter_bmx-trees",
         "sttn_schoolgirls", "davis2016_kite-surf")
UNTOUCHED = ("davis2016_drift-straight", "propainter_running_car", "sttn_dogs_jump")
#: frames of an extension scored apart: the first ones, and the rest (the issue's check: frames 9-24 vs freeze)
EARLY = 8


def options_of(engine) -> dict:
    """Every constructor option of ``engine`` with its value (defaults included)."""
    return {name: getattr(engine, name) for name in inspect.signature(type(engine)).parameters
            if hasattr(engine, name) and isinstance(getattr(engine, name), (int, float, str, bool, type(None)))}


def frame_psnrs(trial, frames: np.ndarray) -> list[float]:
    from shotfill.engines.interpolate import psnr

    return [psnr(frames[p], trial.truth[p]) for p in trial.plan.generate_positions]


def rife_velocity_engine():
    """The motion engine with RIFE's flows for its velocity and hindcast (a measurement, not an option)."""
    from shotfill.engines.motion import MotionEngine

    class RifeVelocity(MotionEngine):
        def _pair_flow(self, newer, older, newer_grey, older_grey):
            return self.rife.flow(newer, older, size=newer_grey.shape)

    return RifeVelocity()


@contextlib.contextmanager
def rife_tracks(interpolator):
    """The flow engine's fill with its tracks along RIFE's flows instead of DIS (patched for the ``with``)."""
    import cv2

    from shotfill.engines.classical import _cv
    from shotfill.engines.classical import flow as flow_module

    kernel = np.ones((3, 3), np.uint8)

    def estimate(cls, frames, holes, max_side, max_distance, progress, cancel):
        count, height, width = holes.shape
        size = _cv.flow_size(height, width, max_side)
        pictures, completed = [], []
        for frame, hole in zip(frames, holes):  # as the DIS tracks: holes pre-filled, flow completed around them
            small = cv2.dilate((_cv.resize(hole.astype(np.float32), size) > 0).astype(np.uint8), kernel)
            picture = _cv.resize(frame, size)
            pictures.append(_cv.inpaint(picture, small.astype(bool), 3) if small.any() else picture)
            completed.append(cv2.dilate(small, kernel, iterations=2).astype(bool))
        forward, backward, forward_ok, backward_ok = [], [], [], []
        for u in range(count - 1):
            ahead = _cv.inpaint(interpolator.flow(pictures[u], pictures[u + 1], size), completed[u], 3)
            back = _cv.inpaint(interpolator.flow(pictures[u + 1], pictures[u], size), completed[u + 1], 3)
            forward.append(ahead)
            backward.append(back)
            forward_ok.append(flow_module._trusted(ahead, back, completed[u]))
            backward_ok.append(flow_module._trusted(back, ahead, completed[u + 1]))
        return cls(forward, backward, forward_ok, backward_ok, (height, width), size, max_distance)

    with mock.patch.object(flow_module._Tracks, "estimate", classmethod(estimate)):
        yield


def dit_engines() -> dict:
    """The dit engine with the motion engine's first guess (its default), and with the flow engine's."""
    from shotfill.engines import get_engine, working
    from shotfill.engines.dit.engine import DiTEngine

    dit = get_engine("dit")
    if "guess" in inspect.signature(DiTEngine).parameters:  # the engine's own option, when it has one
        return {"dit": dit, "dit-flow-guess": get_engine("dit", guess="flow")}

    class FlowGuess:
        """``dit`` whose first guess is the flow engine's (``working.plate_flow(engine="flow")``)."""

        def generate(self, *args, **kwargs):
            import shotfill.engines.dit.engine as dit_module

            with mock.patch.object(dit_module, "plate_flow", functools.partial(working.plate_flow, engine="flow")):
                return dit.generate(*args, **kwargs)

    return {"dit": dit, "dit-flow-guess": FlowGuess()}


def run_trial(name: str, engine, trial, wrap=None) -> tuple[dict, object]:
    from shotfill.quality.harness import SEED, score

    hidden = trial.masks > 0
    given = np.where(hidden[..., None], 0.0, trial.truth).astype(np.float32)
    started = time.perf_counter()
    with (wrap() if wrap is not None else contextlib.nullcontext()):
        result = engine.generate(trial.plan, given, trial.masks.copy(), seed=SEED)
    seconds = time.perf_counter() - started
    frames = np.where(hidden[..., None], result.frames, trial.truth)
    scores = score(trial, frames)
    cell = {"psnr": scores["psnr"], "ssim": scores["ssim"], "seam_error": scores["seam_error"],
            "seconds_per_frame": round(seconds / len(trial.plan.written_positions), 4)}
    if trial.task.value.startswith("extend"):
        per_frame = frame_psnrs(trial, frames)
        cell["psnr_frames"] = [round(p, 3) for p in per_frame]
        cell[f"psnr_1_{EARLY}"] = float(np.mean(per_frame[:EARLY]))
        if len(per_frame) > EARLY:
            cell[f"psnr_{EARLY + 1}_{len(per_frame)}"] = float(np.mean(per_frame[EARLY:]))
    if result.warnings:
        cell["warnings"] = list(result.warnings)
    return cell, result


def confidence_ranking(trial, result) -> dict:
    """Mean error of the least and the most trusted third of the generated pixels, and their correlation."""
    positions = trial.plan.generate_positions
    error = np.abs(result.frames[positions] - trial.truth[positions]).mean(-1).ravel()
    trust = result.confidence[positions].ravel()
    low, high = np.quantile(trust, [1 / 3, 2 / 3])
    return {"error_least_trusted": round(float(error[trust <= low].mean()), 4),
            "error_most_trusted": round(float(error[trust >= high].mean()), 4),
            "correlation": round(float(np.corrcoef(error, trust)[0, 1]), 3), "mean": round(float(trust.mean()), 4)}


def run_shot(shot_frames, tasks: list, engines: dict, context: int, with_dit: bool) -> list[dict]:
    from shotfill.errors import InputError
    from shotfill.plan import TaskKind
    from shotfill.quality.harness import make_trial

    rows = []
    name = shot_frames.shot.name
    label = "tuned" if name in TUNED else "untouched"
    for task, n in tasks:
        try:
            trial = make_trial(shot_frames, task, n, context)
        except InputError as e:
            rows.append({"shot": name, "task": task.value, "n": n, "skipped": str(e)})
            continue
        row = {"shot": name, "label": label, "task": task.value, "n": n, "size": list(shot_frames.size), "cells": {}}
        if task is TaskKind.BRIDGE:
            makers = {"motion": engines["motion"], **{m: engines[f"motion-{m}"] for m in ("rife", "rife_blend")},
                      "flow": engines["flow"], "dissolve": engines["baseline"]}
        elif task is TaskKind.FILL:
            makers = {"motion": engines["motion"], "flow-rife-tracks": engines["flow"], "flow": engines["flow"],
                      "inpaint": engines["baseline"]}
        else:
            makers = {"motion": engines["motion"], "motion-rife-velocity": engines["motion-rife-velocity"],
                      "flow": engines["flow"], "freeze": engines["baseline"]}
        if with_dit:
            makers.update(engines["dit"])
        for method, engine in makers.items():
            wrap = functools.partial(rife_tracks, engines["motion"].rife) if method == "flow-rife-tracks" else None
            cell, result = run_trial(method, engine, trial, wrap)
            row["cells"][method] = cell
            if method == "motion":
                row["motion_info"] = result.info
            if method == "rife" and task is TaskKind.BRIDGE:
                row["rife_confidence"] = confidence_ranking(trial, result)
            if method in ("motion", "motion-rife-velocity") and task is not TaskKind.BRIDGE and "extend" in result.info:
                row.setdefault("hindcast", {})[method] = result.info["extend"]["hindcast"]
        best = max(row["cells"], key=lambda m: row["cells"][m]["psnr"])
        row["best"] = best
        rows.append(row)
        print(f"{name} {task.value} N={n}: " + ", ".join(f"{m} {c['psnr']:.2f}" for m, c in row["cells"].items()),
              file=sys.stderr, flush=True)
    return rows


def summarise(rows: list[dict]) -> dict:
    summary = {}
    done = [r for r in rows if "cells" in r]
    for key in sorted({(r["task"], r["n"]) for r in done}):
        mine = [r for r in done if (r["task"], r["n"]) == key]
        methods = list(mine[0]["cells"])
        entry: dict = {"shots": len(mine)}
        for group, members in (("all", mine), ("tuned", [r for r in mine if r["label"] == "tuned"]),
                               ("untouched", [r for r in mine if r["label"] == "untouched"])):
            if members:
                entry[group] = {m: round(float(np.mean([r["cells"][m]["psnr"] for r in members])), 3) for m in methods}
        reference = "freeze" if key[0].startswith("extend") else "flow"
        entry[f"motion_minus_{reference}"] = {
            r["shot"]: round(r["cells"]["motion"]["psnr"] - r["cells"][reference]["psnr"], 3) for r in mine}
        if key[0].startswith("extend"):
            late = [k for k in mine[0]["cells"]["motion"] if k.startswith(f"psnr_{EARLY + 1}_")]
            if late:
                entry["late_minus_freeze"] = {
                    m: {r["shot"]: round(r["cells"][m][late[0]] - r["cells"]["freeze"][late[0]], 3) for r in mine}
                    for m in methods if m != "freeze"}
                entry["late_minus_freeze_mean"] = {m: round(float(np.mean(list(v.values()))), 3)
                                                   for m, v in entry["late_minus_freeze"].items()}
                entry["early_minus_freeze_mean"] = {
                    m: round(float(np.mean([r["cells"][m][f"psnr_1_{EARLY}"] - r["cells"]["freeze"][f"psnr_1_{EARLY}"]
                                            for r in mine])), 3) for m in methods if m != "freeze"}
        if key[0] == "bridge":
            entry["chosen"] = {r["shot"]: r["motion_info"]["bridge"]["chosen"] for r in mine}
            own = ("rife", "rife_blend", "flow", "dissolve")
            right = sum(r["motion_info"]["bridge"]["chosen"] == max(own, key=lambda m, r=r: r["cells"][m]["psnr"])
                        for r in mine)
            entry["chose_best_of_its_methods"] = f"{right}/{len(mine)}"
        summary[f"{key[0]} N={key[1]}"] = entry
    return summary


def table(summary: dict) -> str:
    lines = []
    for name, entry in summary.items():
        methods = list(entry["all"])
        lines.append(f"\n{name} ({entry['shots']} shots)")
        lines.append("| group | " + " | ".join(methods) + " |")
        lines.append("|---|" + "---|" * len(methods))
        for group in ("all", "tuned", "untouched"):
            if group in entry:
                lines.append(f"| {group} | " + " | ".join(f"{entry[group][m]:.2f}" for m in methods) + " |")
        if "late_minus_freeze_mean" in entry:
            lines.append("frames 9-N minus freeze (mean): " + ", ".join(
                f"{m} {v:+.2f}" for m, v in entry["late_minus_freeze_mean"].items()))
            lines.append("  worst shot: " + ", ".join(
                f"{m} {min(v.values()):+.2f}" for m, v in entry["late_minus_freeze"].items()))
    return "\n".join(lines)


def smoke_footage(folder: Path) -> str:
    """A synthetic 96x64 pan of a smooth random texture (36 PNG frames, 2 px a frame); returns its shot name."""
    import cv2

    rng = np.random.default_rng(7)
    texture = cv2.GaussianBlur(rng.random((64, 96 + 2 * 36, 3)).astype(np.float32), (0, 0), 1.5)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    frames = folder / "smoke_pan" / "frames"
    frames.mkdir(parents=True)
    for t in range(36):
        cv2.imwrite(str(frames / f"{t:05d}.png"), (texture[:, 2 * t:2 * t + 96] * 255 + 0.5).astype(np.uint8))
    return "smoke_pan"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", type=Path, default=DEFAULT_FOOTAGE)
    parser.add_argument("--shots", default=",".join(TUNED + UNTOUCHED))
    parser.add_argument("--bridge-frames", default="4,12")
    parser.add_argument("--extend-frames", type=int, default=24)
    parser.add_argument("--fill-frames", type=int, default=10)
    parser.add_argument("--tasks", default="bridge,extend_forward,fill")
    parser.add_argument("--context", type=int, default=4, help="known frames on each side of every trial, every method")
    parser.add_argument("--max-side", type=int, default=480, help="the trials' long side (the harness's default)")
    parser.add_argument("--dit", action="store_true", help="add the dit engine with each first guess (slow)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "motion.json")
    parser.add_argument("--smoke", action="store_true", help="a tiny synthetic pan, to check the script")
    args = parser.parse_args(argv)

    from shotfill.engines import get_engine
    from shotfill.plan import TaskKind
    from shotfill.quality.harness import ShotFrames, discover_shots

    wanted_tasks = [t for t in args.tasks.split(",") if t]
    tasks = []
    for task in wanted_tasks:
        kind = TaskKind(task)
        if kind is TaskKind.BRIDGE:
            tasks += [(kind, int(n)) for n in args.bridge_frames.split(",") if n]
        elif kind is TaskKind.FILL:
            tasks.append((kind, args.fill_frames))
        else:
            tasks.append((kind, args.extend_frames))
    started = time.perf_counter()
    engines = {"motion": get_engine("motion"), "flow": get_engine("flow"), "baseline": get_engine("baseline"),
               "motion-rife": get_engine("motion", bridge="rife"),
               "motion-rife_blend": get_engine("motion", bridge="rife_blend"),
               "motion-rife-velocity": rife_velocity_engine()}
    if args.dit:
        engines["dit"] = dit_engines()
    with tempfile.TemporaryDirectory(prefix="shotfill-motion-") as tmp:
        footage, wanted = args.footage, [s for s in args.shots.split(",") if s]
        if args.smoke:
            footage, wanted = Path(tmp), [smoke_footage(Path(tmp))]
            tasks = [(TaskKind.BRIDGE, 4), (TaskKind.EXTEND_FORWARD, 12), (TaskKind.FILL, 6)]
        found, _ = discover_shots(footage)
        by_name = {s.name: s for s in found}
        unknown = [s for s in wanted if s not in by_name]
        if unknown:
            raise SystemExit(f"{footage}: no shot named {', '.join(unknown)}")
        rows = []
        for name in wanted:
            with ShotFrames(by_name[name], args.max_side) as shot_frames:
                rows.extend(run_shot(shot_frames, tasks, engines, args.context, args.dit))
    summary = summarise(rows)
    results = {
        "settings": {"footage": "smoke" if args.smoke else str(footage), "shots": wanted,
                     "labels": {s: "tuned" if s in TUNED else "untouched" for s in wanted},
                     "tasks": [[t.value, n] for t, n in tasks], "context": args.context, "max_side": args.max_side,
                     "dit": args.dit, "machine": platform.processor() or platform.machine(),
                     "date": time.strftime("%Y-%m-%d"), "wall_seconds": round(time.perf_counter() - started, 1)},
        "models": {"motion": engines["motion"].describe(), "flow": engines["flow"].describe(),
                   **({"dit": engines["dit"]["dit"].describe()} if args.dit else {})},
        "options": {"motion": options_of(engines["motion"]), "flow": options_of(engines["flow"])},
        "summary": summary,
        "trials": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")
    print(table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
