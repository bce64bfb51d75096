"""Load: thirty small flow jobs back to back in one process keep its resident memory flat.

bench/bench_load.py measured (2026-12-07, 50 flow jobs on a 64x36 plate): RSS +0.001 MB per job after
the first, end / warm-up 1.00. A real leak of the job's pictures (a 64x36 window in float32 is about
0.2 MB per array, a job holds several) or of a per-job engine would exceed the bound here within
thirty jobs; the bound leaves room for the allocator's noise.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_load.py"
#: RSS the thirty jobs after the warm-up may add, MB (measured: under 1)
GROWTH_BOUND_MB = 20.0


def _bench():
    spec = importlib.util.spec_from_file_location("bench_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench()


def test_thirty_flow_jobs_in_one_process_keep_memory_flat(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH.parent))       # the bench's plate comes from its folder, as when run
    plate = bench.write_plate(tmp_path / "plate")
    began = time.monotonic()
    memory = bench.run_jobs(plate, tmp_path, engine="flow", count=31)
    seconds = time.monotonic() - began
    found = bench.growth(memory)
    assert found["jobs"] == 31
    assert found["growth_after_warmup_mb"] < GROWTH_BOUND_MB, found
    assert found["growth_per_job_mb"] < GROWTH_BOUND_MB / 30, found
    assert seconds < 60, f"31 tiny flow jobs took {seconds:.0f} s"
    assert not any(p.name.startswith("flow-") for p in tmp_path.iterdir())    # each job's folder removed


def test_a_kept_array_per_job_is_seen_as_growth():
    # the measurement itself: a "job" that keeps 40 MB each time reads as about 40 MB per job. In a fresh
    # interpreter, as the bench runs: late in a full test run the process's heap holds freed memory and
    # other threads' arenas, which blur a few MB either way.
    probe = textwrap.dedent(f"""
        import importlib.util, json
        import numpy as np
        spec = importlib.util.spec_from_file_location("bench_load", {str(BENCH)!r})
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        kept, memory = [], [bench.settled_rss()]
        for _ in range(6):
            kept.append(np.ones(40 * bench.MB, np.uint8))
            memory.append(bench.settled_rss())
        print(json.dumps({{k: float(v) for k, v in bench.growth(memory).items()
                          if isinstance(v, (int, float))}}))
    """)
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout.splitlines()[-1])
    assert 36.0 < found["growth_per_job_mb"] < 44.0, found
    assert found["end_to_warm"] > 1.0


def test_growth_reads_start_warmup_end_and_slope():
    mb = bench.MB
    found = bench.growth([100 * mb, 150 * mb, 151 * mb, 152 * mb, 153 * mb])
    assert (found["start_mb"], found["warm_mb"], found["end_mb"]) == (100.0, 150.0, 153.0)
    assert found["growth_per_job_mb"] == pytest.approx(1.0) and found["growth_after_warmup_mb"] == 3.0
    assert found["late_growth_per_job_mb"] == pytest.approx(1.0)
    # dit's shape: one more step on the second job, then flat: the second half says no leak
    stepped = bench.growth([96 * mb, 520 * mb, 538 * mb, 538 * mb, 538 * mb, 538 * mb])
    assert stepped["growth_per_job_mb"] > 3 and stepped["late_growth_per_job_mb"] == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        bench.growth([100 * mb, 150 * mb])
    two = bench.growth([100 * mb, 150 * mb, 152 * mb])      # --quick's 2 dit jobs: the late slope from 2 readings
    assert two["growth_per_job_mb"] == two["late_growth_per_job_mb"] == 2.0


def test_a_job_that_writes_too_few_frames_is_an_error(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH.parent))
    plate = bench.write_plate(tmp_path / "plate", frames=4)
    import shotfill.worker as worker

    real = worker.run_job

    def short(spec, *a, **k):
        result = real(spec, *a, **k)
        result.written = result.written[:-1]
        return result

    monkeypatch.setattr(worker, "run_job", short)
    with pytest.raises(RuntimeError, match="wrote 3 frames, not 4"):
        bench.run_jobs(plate, tmp_path, engine="flow", count=1)
