"""The main job end to end, stage by stage, ``dit`` against ``flow`` in one run.

The main job is the README's: the bridge of the sample edit
(:func:`shotfill.synthetic.sample_edit.make_sample_edit`, 640x360, the gap between shots A and B)
run through :func:`shotfill.worker.run_job` as ``shotfill run`` runs it, the new edit written.
Each engine runs in its own fresh interpreter (so ``dit``'s engine load includes importing torch,
as a worker's first job does), twice: ``cold`` (the first job of the process) and ``warm`` (the
same job again into a new folder). The stages are timed by wrapping the worker's stage functions
from outside (nothing in ``shotfill.worker`` is changed):

=============  ============================================================================
resolve        ``shotfill.worker.run.resolve`` less the engine load: spec, edit target, plan
engine load    ``shotfill.worker.resolve.get_engine``: import and build the engine
read           ``shotfill.worker.run._read_window``: known frames to the working encoding
generate       the engine's ``generate``
seam           ``shotfill.io.matching.anchor_to_plate`` and ``shotfill.quality.seam.seam_scores``
write          ``shotfill.io.exr.write_exr``: the EXR frames
publish        ``shotfill.worker.run.publish``: the new version of the edit
preview        ``shotfill.worker.run.write_contact_sheet`` and ``write_preview_frames``
other          the job's wall time less all of the above
=============  ============================================================================

``ratio_dit_to_flow`` is dit's seconds over flow's, per stage and in total, for the cold and the warm job.

    python bench/bench_main_job.py [--engines flow,dit] [--size 640x360] [--out bench/results/main_job.json]

``--quick`` runs a 160x90 sample edit.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

STAGES = ("resolve", "engine load", "read", "generate", "seam", "write", "publish", "preview", "other")


class StageClock:
    """Seconds spent in each wrapped function, summed by stage name; :meth:`wrap` patches an attribute, :meth:`restore` undoes every patch."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._patched: list[tuple[object, str, object]] = []

    def timed(self, stage: str, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start
        return wrapper

    def wrap(self, owner, name: str, stage: str) -> None:
        real = getattr(owner, name)
        self._patched.append((owner, name, real))
        setattr(owner, name, self.timed(stage, real))

    def restore(self) -> None:
        while self._patched:
            owner, name, real = self._patched.pop()
            setattr(owner, name, real)


@contextlib.contextmanager
def worker_stages(clock: StageClock):
    """The worker's stage functions wrapped by ``clock`` (the engine's ``generate`` too, on each engine built)."""
    # by module name: the package ``shotfill.worker`` exports a function ``resolve`` that hides its module
    exr, matching, seam, resolve, run = (importlib.import_module(f"shotfill.{name}") for name in (
        "io.exr", "io.matching", "quality.seam", "worker.resolve", "worker.run"))
    real_get_engine = resolve.get_engine

    def get_engine(*args, **kwargs):
        start = time.perf_counter()
        try:
            engine = real_get_engine(*args, **kwargs)
        finally:
            clock.seconds["engine load"] += time.perf_counter() - start
        engine.generate = clock.timed("generate", engine.generate)
        return engine

    clock._patched.append((resolve, "get_engine", real_get_engine))
    resolve.get_engine = get_engine
    clock.wrap(run, "resolve", "resolve")
    clock.wrap(run, "_read_window", "read")
    clock.wrap(matching, "anchor_to_plate", "seam")
    clock.wrap(seam, "seam_scores", "seam")
    clock.wrap(exr, "write_exr", "write")
    clock.wrap(run, "publish", "publish")
    clock.wrap(run, "write_contact_sheet", "preview")
    clock.wrap(run, "write_preview_frames", "preview")
    try:
        yield clock
    finally:
        clock.restore()


def stage_table(seconds: dict[str, float], wall: float) -> dict[str, float]:
    """The clock's sums as :data:`STAGES` (resolve less the engine load it contains; other = the rest of ``wall``)."""
    out = {stage: seconds.get(stage, 0.0) for stage in STAGES}
    out["resolve"] -= out["engine load"]
    out["other"] = wall - sum(v for k, v in out.items() if k != "other")
    out["total"] = wall
    return {k: round(v, 3) for k, v in out.items()}


def bridge_spec(sample, out: Path, engine: str):
    """The main job: the sample edit's bridge target, the new edit written."""
    from shotfill.job import EditSpec, JobSpec, OutputSpec, TaskKind
    from shotfill.timeline import find_targets, load_edit

    targets = find_targets(load_edit(sample.edit), edit_path=sample.edit)
    target = next(t for t in targets if t.kind is TaskKind.BRIDGE)
    return JobSpec(edit=EditSpec(path=str(sample.edit), target=target.id), engine=engine,
                   output=OutputSpec(dir=str(out)))


def timed_job(spec) -> dict:
    """One :func:`run_job` with its stages clocked."""
    from shotfill.worker import run_job

    clock = StageClock()
    with worker_stages(clock):
        start = time.perf_counter()
        result = run_job(spec)
        wall = time.perf_counter() - start
    return {"stages": stage_table(clock.seconds, wall), "written": len(result.written),
            "new_edit": result.new_edit is not None}


def one_engine(engine: str, width: int, height: int) -> dict:
    """The cold and the warm main job of ``engine`` in this process, on a fresh sample edit."""
    from shotfill.synthetic.sample_edit import make_sample_edit

    with tempfile.TemporaryDirectory(prefix=f"shotfill-main-{engine}-") as tmp:
        sample = make_sample_edit(Path(tmp) / "edit", width=width, height=height)
        cold = timed_job(bridge_spec(sample, Path(tmp) / "cold", engine))
        warm = timed_job(bridge_spec(sample, Path(tmp) / "warm", engine))
    return {"cold": cold, "warm": warm}


def ratios(runs: dict, engine: str, baseline: str) -> dict:
    """``engine``'s seconds over ``baseline``'s, per stage, for the cold and the warm job (None where the baseline's is 0)."""
    out = {}
    for when in ("cold", "warm"):
        a, b = runs[engine][when]["stages"], runs[baseline][when]["stages"]
        out[when] = {k: (round(a[k] / b[k], 2) if b[k] > 0.0005 else None) for k in a}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="flow,dit")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--quick", action="store_true", help="a 160x90 sample edit")
    parser.add_argument("--one", help=argparse.SUPPRESS)      # the child: one engine, JSON on stdout
    parser.add_argument("--out", default="bench/results/main_job.json")
    args = parser.parse_args(argv)
    width, height = (160, 90) if args.quick else (int(n) for n in args.size.lower().split("x"))
    if args.one:
        print(json.dumps(one_engine(args.one, width, height)))
        return 0

    began = time.perf_counter()
    engines = [e for e in args.engines.split(",") if e]
    runs = {}
    for engine in engines:
        done = subprocess.run([sys.executable, __file__, "--one", engine, "--size", f"{width}x{height}"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"the main job with engine {engine} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        runs[engine] = json.loads(done.stdout.strip().splitlines()[-1])
        stages = runs[engine]["cold"]["stages"]
        print(f"{engine}: cold {stages['total']} s, warm {runs[engine]['warm']['stages']['total']} s  "
              + ", ".join(f"{k} {v}" for k, v in stages.items() if k != "total"), flush=True)
    results = {"settings": {"size": [width, height], "job": "the sample edit's bridge (run_job, new edit written)",
                            "engines": engines, "date": time.strftime("%Y-%m-%d"),
                            "bench_s": round(time.perf_counter() - began, 1)}, "runs": runs}
    if "flow" in runs and "dit" in runs:
        results["ratio_dit_to_flow"] = ratios(runs, "dit", "flow")
        print("dit / flow:", json.dumps(results["ratio_dit_to_flow"]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
