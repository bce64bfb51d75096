"""bench/bench_dit_attention.py's helpers: FLOPs counted by hand, equal parameter counts, interleaved timing."""
from __future__ import annotations

import importlib
import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode


@pytest.fixture(scope="module")
def bench(repo_root):
    """The script as a module (it imports ``bench_dit_forward`` from its own folder, as when run)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(repo_root / "bench"))
        yield importlib.import_module("bench_dit_attention")


def counted(fn) -> int:
    """The matmul FLOPs torch's counter sees (it does not see the CPU attention kernel)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("attention", ["factorised", "full"])
def test_our_flops_by_hand_match_the_counter_and_the_window_sizes(bench, attention):
    small = {"hidden_size": 128, "num_layers": 4, "num_heads": 2, "attention": attention}
    model = bench.build_ours(**small)
    inputs = bench.ours_inputs(3, 8, 12)
    grid = bench.token_grid(bench.OURS["patch_size"], 3, 8, 12)  # (3, 4, 6): 72 tokens
    flops = bench.ours_flops({**bench.OURS, **small}, grid)
    assert flops["linear"] == counted(lambda: model(*inputs))
    windows = [24, 3, 24, 3] if attention == "factorised" else [72] * 4  # a frame's 4 x 6 tokens; 3 frames
    assert flops["attention"] == sum(4 * 72 * window * 128 for window in windows)


def test_wan_flops_by_hand_match_the_counter(bench):
    small = {"num_attention_heads": 2, "attention_head_dim": 64, "ffn_dim": 256, "num_layers": 2, "text_dim": 64}
    model = bench.build_wan(**small)
    latents, timestep, _ = bench.wan_inputs(3, 8, 12)
    text = torch.randn(1, bench.TEXT_TOKENS, 64)
    grid = bench.token_grid(bench.WAN["patch_size"], 3, 8, 12)
    flops = bench.wan_flops({**bench.WAN, **small}, grid)
    assert flops["linear"] == counted(lambda: model(latents, timestep, text))
    assert flops["attention"] == 2 * (4 * 72 * 72 * 128 + 4 * 72 * bench.TEXT_TOKENS * 128)


def test_the_two_models_have_equal_parameter_counts_and_the_sizes_their_token_counts(bench):
    with torch.device("meta"):
        ours, wan = bench.build_ours().num_parameters(), bench.build_wan().num_parameters()
    assert abs(ours - wan) / wan < 0.01 and 35e6 < ours < 45e6
    tokens = {name: math.prod(bench.token_grid(bench.OURS["patch_size"], t, h, w)) for name, t, h, w, _ in bench.SIZES}
    assert tokens == {"1k": 1024, "5k": 5120, "20k": 20480}


def test_timing_is_interleaved_and_keeps_each_best(bench):
    calls = []
    order = []
    best = bench.interleaved_best({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, warmup=True,
                                  record=order)
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert [name for name, _ in order] == ["a", "b"] * 3
    assert best["a"] == min(s for name, s in order if name == "a")
    sizes = [{"ours_s": 2.0, "wan_s": 6.0, "ours_gflop": 100.0, "wan_gflop": 600.0}]
    bench.summarise(sizes, matmul=100.0)
    assert sizes[0]["ratio_wan_over_ours"] == 3.0 and sizes[0]["ours_share_of_matmul"] == 0.5
