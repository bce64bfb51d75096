"""bench/bench_cli_check.py runs end to end on a tiny procedural shot (--smoke), through the real CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_cli_check.py"


def test_the_cli_check_scores_every_engine_on_hidden_frames(tmp_path):
    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, str(BENCH), "--smoke", "--engines", "flow,baseline", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    scores = results["shots"]["procedural"]
    assert set(scores) == {"extend_forward 8", "bridge 12"}
    for task in scores.values():
        assert set(task) == {"flow", "baseline"} and all(s["psnr"] > 15 for s in task.values())
    # a steady pan: following the motion beats freezing the last frame
    assert scores["extend_forward 8"]["flow"]["psnr"] > scores["extend_forward 8"]["baseline"]["psnr"]
    assert set(results["mean_psnr"]) == {"extend_forward 8", "bridge 12"}
