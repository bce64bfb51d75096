"""Load: small jobs back to back in one worker process, and its resident memory from the first to the last.

A panel's worker and a farm node run job after job in one process, so anything a job leaves
behind (a cache keyed by job, arrays kept by an event sink, a model never freed) grows with every
job until the node runs out. This runs ``count`` small extensions of a tiny procedural plate through
:func:`shotfill.worker.run_job` (the worker's own entry point), each with its own seed and output
folder (removed after the job), and reads the process's resident memory (RSS, after a garbage
collection) at start, after the first job (the warm-up: imports, the engine's first allocations)
and after every job. Growth per job is the least-squares slope over the jobs after the warm-up
(and, ``late_growth_per_job_mb``, over the second half of them: torch's allocator may step once
more on the second job and then stay flat, which is not a leak), and ``end / warm`` is the ratio
the run reports: 1.0 when nothing is kept.

    python bench/bench_load.py [--flow-jobs 50] [--dit-jobs 5] [--out bench/results/load.json]

``--quick`` runs 10 flow jobs and 2 dit jobs.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MB = 1024 * 1024


def rss_bytes() -> int:
    """This process's resident set size now, in bytes (``/proc/self/statm`` on Linux, psutil elsewhere)."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    import psutil                        # not Linux: psutil must be installed

    return psutil.Process().memory_info().rss


def settled_rss() -> int:
    """RSS after a full garbage collection (what a leak keeps; not what the collector has yet to free)."""
    gc.collect()
    return rss_bytes()


def write_plate(folder: Path, *, width: int = 64, height: int = 36, frames: int = 6, seed: int = 5) -> str:
    """A small procedural pan as half-float EXR frames ``plate.1001.exr``...; returns the pattern."""
    from bench_extend_1080p import render_plate  # from this folder, as when run

    return render_plate(folder, width, height, frames, seed=seed, dtype=np.float16)


def extend_spec(plate: str, out: Path, *, engine: str, seed: int, frames: int = 4):
    """The job spec of a ``frames``-frame extension of ``plate`` into ``out``."""
    from shotfill.job import JobSpec, OutputSpec, SourceSpec, TaskKind

    return JobSpec(task=TaskKind.EXTEND_FORWARD, source=SourceSpec(plate), frames=frames, engine=engine,
                   seed=seed, output=OutputSpec(dir=str(out)))


def run_jobs(plate: str, work: Path, *, engine: str, count: int, frames: int = 4,
             on_job=None) -> list[int]:
    """``count`` extensions of ``plate`` with ``engine``, one after another in this process; the settled
    RSS before the first and after each (``count + 1`` values, bytes). Each job's folder is removed after it."""
    from shotfill.worker import run_job

    memory = [settled_rss()]
    for i in range(count):
        out = work / f"{engine}-{i:03d}"
        result = run_job(extend_spec(plate, out, engine=engine, seed=i, frames=frames))
        if len(result.written) != frames:
            raise RuntimeError(f"job {i} ({engine}) wrote {len(result.written)} frames, not {frames}")
        del result
        shutil.rmtree(out)
        memory.append(settled_rss())
        if on_job is not None:
            on_job(i, memory[-1])
    return memory


def growth(memory: list[int], warmup: int = 1) -> dict:
    """What :func:`run_jobs`' readings say: MB at start, after ``warmup`` jobs and at the end, the
    slope per job over the jobs after the warm-up (least squares, MB/job) and end / warm."""
    if len(memory) < warmup + 2:
        raise ValueError(f"{len(memory) - 1} jobs: at least {warmup + 1} are needed for a growth after the warm-up")
    after = np.asarray(memory[warmup:], np.float64) / MB
    slope = float(np.polyfit(np.arange(len(after)), after, 1)[0])
    # the second half (two readings at least): a step while the allocator settles is not a leak
    late = after[(len(after) - 1) // 2:]
    late_slope = float(np.polyfit(np.arange(len(late)), late, 1)[0])
    return {"jobs": len(memory) - 1, "start_mb": round(memory[0] / MB, 1), "warm_mb": round(after[0], 1),
            "end_mb": round(after[-1], 1), "growth_after_warmup_mb": round(after[-1] - after[0], 1),
            "growth_per_job_mb": round(slope, 3), "late_growth_per_job_mb": round(late_slope, 3),
            "end_to_warm": round(after[-1] / after[0], 3), "peak_mb": round(after.max(), 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flow-jobs", type=int, default=50)
    parser.add_argument("--dit-jobs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=4, help="frames each job generates")
    parser.add_argument("--quick", action="store_true", help="10 flow jobs, 2 dit jobs")
    parser.add_argument("--out", default="bench/results/load.json")
    args = parser.parse_args(argv)
    counts = {"flow": 10, "dit": 2} if args.quick else {"flow": args.flow_jobs, "dit": args.dit_jobs}
    counts = {engine: n for engine, n in counts.items() if n > 0}

    results = {"settings": {"plate": [64, 36, 6], "frames": args.frames, "jobs": counts,
                            "date": time.strftime("%Y-%m-%d")}, "engines": {}}
    with tempfile.TemporaryDirectory(prefix="shotfill-load-") as tmp:
        plate = write_plate(Path(tmp) / "plate")
        for engine, count in counts.items():        # flow first: its figures are not raised by torch's
            began = time.perf_counter()
            memory = run_jobs(plate, Path(tmp), engine=engine, count=count, frames=args.frames)
            row = growth(memory)
            row["wall_s"] = round(time.perf_counter() - began, 1)
            row["s_per_job"] = round(row["wall_s"] / count, 3)
            row["rss_mb"] = [round(m / MB, 1) for m in memory]
            results["engines"][engine] = row
            print(f"{engine}: {count} jobs in {row['wall_s']} s; RSS start {row['start_mb']} MB, warm "
                  f"{row['warm_mb']}, end {row['end_mb']} ({row['growth_per_job_mb']:+} MB/job, second half "
                  f"{row['late_growth_per_job_mb']:+}, "
                  f"end/warm {row['end_to_warm']})", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
