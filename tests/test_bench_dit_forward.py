"""bench/bench_dit_forward.py measures the shipped checkpoint itself (``--model``), in the engine's shape."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shotfill.engines.dit.engine import SHIPPED_MODEL


@pytest.mark.skipif(not (SHIPPED_MODEL / "manifest.json").is_file(), reason="no shipped checkpoint in resources/dit")
def test_the_forward_benchmark_measures_the_shipped_checkpoint(repo_root, tmp_path):
    out = tmp_path / "forward.json"
    done = subprocess.run([sys.executable, str(repo_root / "bench" / "bench_dit_forward.py"), "--model",
                           str(SHIPPED_MODEL), "--repeats", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    engine_window, training = results["shapes"]
    # 256 x 144 working pictures, 4x VAE, 4x4 patches: 16 frames x 9 x 16 tokens, 4 samples in one batch
    assert engine_window["batch"] == 4 and engine_window["tokens_per_sample"] == 16 * 9 * 16
    assert training["batch"] == 8
    for shape in results["shapes"]:
        assert shape["forward_gflop"] > 0 and 0 < shape["ratio_to_matmul"] < 1.5
    assert results["matmul_gflops"] > 0 and results["train_step_s"] > 0
