"""Tests of the GPU proof benchmark (``bench/bench_gpu.py``) on the CPU: its smoke run, its refusal
without a GPU, the shapes of the real 480p x 81-frame run (built on the meta device) and the
hand-counted FLOPs against ``torch.utils.flop_counter.FlopCounterMode``."""
from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


@pytest.fixture(scope="module")
def bench_gpu(repo_root):
    """The script as a module (it imports ``bench_dit_forward`` from its own folder, as when run)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(repo_root / "bench"))
        yield importlib.import_module("bench_gpu")


def counted_flops(case) -> int:
    """FLOPs of one forward of ``case`` as FlopCounterMode counts them.

    On the CPU the fused attention kernel has no FLOP formula, so attention runs on the math
    backend, whose matmuls are counted.
    """
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        case.model(**case.step_inputs[0])
    return counter.get_total_flops()


def test_smoke_run_writes_every_field(repo_root, tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, str(repo_root / "bench" / "bench_gpu.py"), "--smoke", "--steps", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert results["device"].startswith("cpu")
    assert results["torch"] == torch.__version__
    assert {"date", "diffusers"} <= results.keys()
    assert results["dtype"] == "float32"
    assert results["picture"] == {"frames": 5, "height": 64, "width": 64}
    assert results["matmul_tflops"] > 0
    models = {entry["name"]: entry for entry in results["models"]}
    assert list(models) == ["wan-vace tiny", "dit tiny", "dit shipped"]
    # Wan VAE: 5 frames -> 2 latent frames, 64 / 8 = 8 -> 2 x 4 x 4 tokens of 2x2 patches;
    # ours: frame by frame, 64 / 4 = 16 -> 5 x 8 x 8 tokens (2x2 patches), 5 x 4 x 4 (the shipped 4x4)
    assert models["wan-vace tiny"]["latent_shape"] == [1, 16, 2, 8, 8]
    assert [entry["tokens"] for entry in models.values()] == [32, 320, 80]
    assert [entry["forwards_per_step"] for entry in models.values()] == [2, 1, 1]
    assert models["dit shipped"]["config"]["patch_size"] == [1, 4, 4]
    for entry in models.values():
        assert entry["params"] > 0 and entry["tflop_per_forward"] > 0
        assert entry["s_per_forward"] > 0 and entry["s_per_step"] > 0
        assert entry["achieved_tflops"] == pytest.approx(entry["tflop_per_forward"] / entry["s_per_forward"])
        assert entry["ratio_to_matmul"] == pytest.approx(entry["achieved_tflops"] / results["matmul_tflops"])
    assert models["dit tiny"]["s_per_step"] == models["dit tiny"]["s_per_forward"]
    assert "| wan-vace tiny | 0.1M | 32 |" in done.stdout


def test_without_cuda_it_exits_2_and_says_why(bench_gpu, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench_gpu.main(["--out", str(tmp_path / "gpu.json")]) == 2
    assert "no CUDA device: this benchmark needs a GPU (use --smoke to check the script on a CPU)" in (
        capsys.readouterr().err)
    assert not (tmp_path / "gpu.json").exists()


def test_a_cpu_device_is_refused_without_smoke(bench_gpu, capsys):
    assert bench_gpu.main(["--device", "cpu"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_steps_must_be_positive(bench_gpu, capsys):
    assert bench_gpu.main(["--smoke", "--steps", "0"]) == 2
    assert "--steps must be at least 1, got 0" in capsys.readouterr().err


def test_real_run_shapes_at_480p_81_frames(bench_gpu):
    """The GPU setup, built on the meta device: the inputs the brief names, the real 1.3B width."""
    setup, meta = bench_gpu.gpu_setup(), torch.device("meta")
    name, engine, config = setup.models[0]
    wan = bench_gpu.wan_vace_case(name, config, setup, meta)
    assert wan.latent_shape == (1, 16, 21, 60, 104)
    assert wan.tokens == 21 * 30 * 52
    cond, uncond = wan.step_inputs
    assert cond["control_hidden_states"].shape == (1, 96, 21, 60, 104)
    assert cond["encoder_hidden_states"].shape == uncond["encoder_hidden_states"].shape == (1, 512, 4096)
    assert cond["encoder_hidden_states"] is not uncond["encoder_hidden_states"]
    assert wan.model.config.num_attention_heads * wan.model.config.attention_head_dim == 1536
    assert len(wan.model.blocks) == 30 and len(wan.model.vace_blocks) == 15
    # bf16 except what from_pretrained keeps in float32
    assert wan.model.blocks[0].ffn.net[0].proj.weight.dtype == torch.bfloat16
    assert wan.model.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32
    assert wan.model.blocks[0].scale_shift_table.dtype == torch.float32

    name, engine, config = setup.models[1]
    assert name == "dit large" and config["hidden_size"] == 768
    dit = bench_gpu.dit_case(name, config, setup, meta)
    # our VAE: 81 latent frames, 480 x 832 / 4 (the shipped VAE's three levels); 2x2 patches
    assert dit.latent_shape == (1, 16, 81, 120, 208)
    assert dit.tokens == 81 * 60 * 104
    assert next(dit.model.parameters()).dtype == torch.bfloat16


def test_wan_vace_flops_match_the_flop_counter(bench_gpu):
    """Every matmul the analytic count names, and no other, is what torch counts (norms, rotary
    embedding, softmax, activations and modulations are elementwise: left out by both)."""
    setup = dataclasses.replace(bench_gpu.smoke_setup(), frames=9, height=64, width=96)
    config = {**bench_gpu.WAN_VACE_TINY, "num_layers": 4, "vace_layers": [0, 1, 3]}
    torch.manual_seed(0)
    case = bench_gpu.wan_vace_case("wan", config, setup, torch.device("cpu"))
    assert case.tokens == 3 * 4 * 6
    assert bench_gpu.wan_vace_flops(config, (3, 4, 6), setup.text_tokens) == case.flops_per_forward
    assert counted_flops(case) == pytest.approx(case.flops_per_forward, rel=1e-3)


def test_dit_flops_match_the_flop_counter(bench_gpu):
    setup = bench_gpu.smoke_setup()
    torch.manual_seed(0)
    for name, engine, config in setup.models[1:]:
        case = bench_gpu.dit_case(name, config, setup, torch.device("cpu"))
        assert counted_flops(case) == pytest.approx(case.flops_per_forward, rel=1e-3), name
