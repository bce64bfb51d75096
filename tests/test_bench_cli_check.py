"""bench/bench_cli_check.py runs end to end on tiny procedural shots (--smoke), through the real CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_cli_check.py"


def test_the_cli_check_scores_every_engine_on_hidden_frames(tmp_path):
    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, str(BENCH), "--smoke", "--engines", "flow,baseline", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert set(results["shots"]) == {"procedural", "procedural_b"}
    scores = results["shots"]["procedural"]
    assert set(scores) == {"bridge 4", "bridge 12", "extend_forward 24", "cut bridge 12"}
    for task, cells in scores.items():
        assert set(cells) == {"flow", "baseline"}
        if task != "cut bridge 12":
            assert all(c["psnr"] > 12 for c in cells.values())
    extend = scores["extend_forward 24"]
    assert all("psnr_9_24" in c for c in extend.values())
    # a steady pan: following the motion beats freezing the last frame
    assert extend["flow"]["psnr"] > extend["baseline"]["psnr"]
    # two different shots: the dissolve says what it is
    assert scores["cut bridge 12"]["baseline"]["warns_dissolve"] is True
    assert set(results["mean"]) == set(scores)
