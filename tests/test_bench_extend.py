"""bench/bench_extend_1080p.py runs end to end on a tiny plate (--smoke), through the real CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_extend_1080p.py"


def test_the_extension_benchmark_writes_its_results(tmp_path):
    out = tmp_path / "extend.json"
    done = subprocess.run([sys.executable, str(BENCH), "--smoke", "--engines", "flow,baseline", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert results["settings"]["size"] == [128, 72] and set(results["runs"]) == {"flow", "baseline"}
    assert results["runs"]["flow"]["ratio_to_flow"] == 1.0
    for run in results["runs"].values():
        assert run["wall_s"] > 0 and {"read", "generate", "write"} <= set(run["timings"])
