"""Bridges on held-back real frames: RIFE in-betweens against the flow engine and the dissolve.

For each shot and bridge length N, the quality harness's bridge trial
(:func:`shotfill.quality.harness.make_trial`: N real frames hidden in the middle of the shot, 4
known frames on either side, the flow engine's context) is made three ways, and each result is
scored by :func:`shotfill.quality.harness.score` against the hidden frames:

- ``rife``: :class:`shotfill.engines.interpolate.RifeInterpolator` between A's last known frame
  and B's first, at each hidden frame's t (motion at ``--working-side``, warping at the trial's size);
- ``flow``: the ``flow`` engine's bridge (OpenCV DIS), as the harness runs it;
- ``baseline``: the dissolve.

Each trial also records the self-check that needs no truth (:meth:`RifeInterpolator.self_check`:
A's last and B's first known frames made from their neighbours across the gap) for RIFE, and the
same held-out cases made by the flow engine and by the dissolve, and which method the self-check
would choose (the highest PSNR on the held-out frames), with that choice's score on the hidden
frames. Written to ``bench/results/rife_bridge.json`` with the model's sha256; a table is printed.

    OMP_NUM_THREADS=1 python bench/bench_rife_bridge.py [--footage ../shared/data/footage]
        [--shots davis2016_blackswan,...] [--frames 4,12] [--max-side 480] [--working-side 960]
        [--out bench/results/rife_bridge.json]

``--smoke`` runs on a tiny synthetic pan (the tests use it).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FOOTAGE = ROOT.parent / "shared" / "data" / "footage"
DEFAULT_SHOTS = ("davis2016_blackswan", "davis2016_car-shadow", "propainter_bmx-trees", "sttn_schoolgirls",
                 "sam2_bedroom")
METHODS = ("rife", "flow", "baseline")


def rife_bridge(interpolator, trial, given: np.ndarray) -> tuple[np.ndarray, dict]:
    """The trial's window with its hidden frames made by RIFE, and the self-check of the gap."""
    plan = trial.plan
    generated = plan.generate_positions
    before = [p for p in plan.known_positions if p < generated[0]]
    after = [p for p in plan.known_positions if p > generated[-1]]
    a, b = before[-1], after[0]
    out = given.copy()
    for position, made in zip(generated, interpolator.interpolate_many(
            given[a], given[b], [(p - a) / (b - a) for p in generated])):
        out[position] = made.picture
    check = interpolator.self_check([given[p] for p in before], [given[p] for p in after], len(generated))
    return out, check.to_dict()


def flow_self_check(before: list[np.ndarray], after: list[np.ndarray], gap: int) -> float:
    """The flow engine's PSNR on the self-check's held-out cases (pooled), for comparison with RIFE's."""
    from shotfill.engines import get_engine
    from shotfill.engines.interpolate import psnr, self_check_cases
    from shotfill.plan import FramePlan

    engine = get_engine("flow")
    made, truth = [], []
    for case in self_check_cases(before, after, gap):
        span = gap + 2  # the held-out pair is one frame further apart than the gap's ends
        plan = FramePlan.bridge([0], [span], span - 1, context=1)
        frames = np.zeros((span + 1, *case.a.shape), np.float32)
        frames[0], frames[span] = case.a, case.b
        masks = np.zeros(frames.shape[:3], np.float32)
        masks[1:span] = 1.0
        made.append(engine.generate(plan, frames, masks).frames[round(case.t * span)])
        truth.append(case.truth)
    return psnr(np.stack(made), np.stack(truth))


def run_shot(shot_frames, n: int, engines: dict, interpolator, context: int) -> dict:
    """One bridge trial of ``n`` frames on a shot, made by every method; its scores and self-checks."""
    from shotfill.plan import TaskKind
    from shotfill.quality.harness import SEED, make_trial, score

    trial = make_trial(shot_frames, TaskKind.BRIDGE, n, context)
    hidden = trial.masks > 0
    given = np.where(hidden[..., None], 0.0, trial.truth).astype(np.float32)  # as the harness hides them
    row = {"shot": shot_frames.shot.name, "n": n, "size": list(shot_frames.size), "psnr": {}, "ssim": {},
           "seconds_per_frame": {}}
    for name, engine in engines.items():
        started = time.perf_counter()
        result = engine.generate(trial.plan, given, trial.masks.copy(), seed=SEED)
        row["seconds_per_frame"][name] = round((time.perf_counter() - started) / n, 4)
        scores = score(trial, np.where(hidden[..., None], result.frames, trial.truth))
        row["psnr"][name], row["ssim"][name] = scores["psnr"], scores["ssim"]
        if name == "flow":
            row["flow_info"] = {k: v for k, v in result.info.items() if k in ("bridge_flow_confidence", "fallback")}
    started = time.perf_counter()
    made, check = rife_bridge(interpolator, trial, given)
    row["seconds_per_frame"]["rife"] = round((time.perf_counter() - started) / n, 4)  # with its self-check
    scores = score(trial, np.where(hidden[..., None], made, trial.truth))
    row["psnr"]["rife"], row["ssim"]["rife"] = scores["psnr"], scores["ssim"]
    plan = trial.plan
    before = [given[p] for p in plan.known_positions if p < plan.generate_positions[0]]
    after = [given[p] for p in plan.known_positions if p > plan.generate_positions[-1]]
    row["self_check"] = {"rife": check, "flow_psnr": round(flow_self_check(before, after, n), 3),
                         "dissolve_psnr": check["dissolve_psnr"]}
    checks = {"rife": check["psnr"], "flow": row["self_check"]["flow_psnr"], "baseline": check["dissolve_psnr"]}
    row["chosen_by_self_check"] = max(checks, key=checks.get)
    row["best"] = max(row["psnr"], key=row["psnr"].get)
    return row


def summarise(rows: list[dict]) -> dict:
    summary = {}
    for n in sorted({r["n"] for r in rows}):
        mine = [r for r in rows if r["n"] == n]
        entry = {"shots": len(mine)}
        for method in METHODS:
            entry[f"psnr_{method}"] = round(float(np.mean([r["psnr"][method] for r in mine])), 3)
        entry["psnr_chosen_by_self_check"] = round(float(np.mean(
            [r["psnr"][r["chosen_by_self_check"]] for r in mine])), 3)
        entry["psnr_best_per_shot"] = round(float(np.mean([r["psnr"][r["best"]] for r in mine])), 3)
        entry["rife_beats_flow"] = f"{sum(r['psnr']['rife'] > r['psnr']['flow'] for r in mine)}/{len(mine)}"
        entry["self_check_chose_best"] = f"{sum(r['chosen_by_self_check'] == r['best'] for r in mine)}/{len(mine)}"
        summary[f"bridge N={n}"] = entry
    return summary


def table(rows: list[dict], summary: dict) -> str:
    header = ("| shot | N | rife dB | flow dB | dissolve dB | rife - flow | self-check rife / flow / dissolve dB "
              "| chosen | best |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p, c = r["psnr"], r["self_check"]
        lines.append(f"| {r['shot']} | {r['n']} | {p['rife']:.2f} | {p['flow']:.2f} | {p['baseline']:.2f} | "
                     f"{p['rife'] - p['flow']:+.2f} | {c['rife']['psnr']:.2f} / {c['flow_psnr']:.2f} / "
                     f"{c['dissolve_psnr']:.2f} | {r['chosen_by_self_check']} | {r['best']} |")
    for name, s in summary.items():
        lines.append(f"| **mean** | {name.split('=')[1]} | {s['psnr_rife']:.2f} | {s['psnr_flow']:.2f} | "
                     f"{s['psnr_baseline']:.2f} | {s['psnr_rife'] - s['psnr_flow']:+.2f} | | "
                     f"{s['psnr_chosen_by_self_check']:.2f} | {s['psnr_best_per_shot']:.2f} |")
    return "\n".join(lines)


def smoke_footage(folder: Path) -> str:
    """A synthetic 96x64 pan of a smooth random texture (20 PNG frames, 2 px a frame); returns its shot name."""
    rng = np.random.default_rng(7)
    texture = cv2.GaussianBlur(rng.random((64, 96 + 2 * 20, 3)).astype(np.float32), (0, 0), 1.5)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    frames = folder / "smoke_pan" / "frames"
    frames.mkdir(parents=True)
    for t in range(20):
        cv2.imwrite(str(frames / f"{t:05d}.png"), (texture[:, 2 * t:2 * t + 96] * 255 + 0.5).astype(np.uint8))
    return "smoke_pan"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", type=Path, default=DEFAULT_FOOTAGE)
    parser.add_argument("--shots", default=",".join(DEFAULT_SHOTS))
    parser.add_argument("--frames", default="4,12", help="bridge lengths, comma-separated")
    parser.add_argument("--max-side", type=int, default=480, help="the trials' long side (the harness's default)")
    parser.add_argument("--working-side", type=int, default=960, help="RIFE's motion is estimated at this long side")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "rife_bridge.json")
    parser.add_argument("--smoke", action="store_true", help="a tiny synthetic pan, to check the script")
    args = parser.parse_args(argv)

    from shotfill.engines import get_engine
    from shotfill.engines.interpolate import RifeInterpolator
    from shotfill.quality.harness import DEFAULT_CONTEXT, ShotFrames, discover_shots

    frames = [int(n) for n in args.frames.split(",") if n]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shotfill-rife-") as tmp:
        footage, wanted = args.footage, [s for s in args.shots.split(",") if s]
        if args.smoke:
            footage, wanted, frames = Path(tmp), [smoke_footage(Path(tmp))], [4]
        found, _ = discover_shots(footage)
        by_name = {s.name: s for s in found}
        unknown = [s for s in wanted if s not in by_name]
        if unknown:
            raise SystemExit(f"{footage}: no shot named {', '.join(unknown)}")
        engines = {"flow": get_engine("flow"), "baseline": get_engine("baseline")}
        context = DEFAULT_CONTEXT  # the harness's trials: 4, as before (the flow engine's)
        interpolator = RifeInterpolator(working_side=args.working_side)
        rows = []
        for name in wanted:
            with ShotFrames(by_name[name], args.max_side) as shot_frames:
                for n in frames:
                    rows.append(run_shot(shot_frames, n, engines, interpolator, context))
                    print(f"{name} N={n}: " + ", ".join(f"{k} {v:.2f}" for k, v in rows[-1]["psnr"].items()),
                          file=sys.stderr, flush=True)
    summary = summarise(rows)
    results = {
        "settings": {"footage": str(footage) if not args.smoke else "smoke", "shots": wanted, "frames": frames,
                     "max_side": args.max_side, "working_side": args.working_side, "context": context,
                     "machine": platform.processor() or platform.machine(), "date": time.strftime("%Y-%m-%d"),
                     "wall_seconds": round(time.perf_counter() - started, 1)},
        "model": interpolator.describe(),
        "summary": summary,
        "trials": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    print(table(rows, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
