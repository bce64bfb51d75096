"""Factorised spacetime attention against full attention: the shotfill DiT against diffusers' Wan transformer.

Measures, in float32 on this machine's CPU, in one run:

- the shotfill transformer with ``attention="factorised"`` (blocks alternating spatial attention
  within each frame and temporal attention across frames at each position) against diffusers'
  ``WanTransformer3DModel`` (full spacetime attention, text cross-attention) at **equal parameter
  count** (about 40M each: 512 wide, 64-wide heads; ours 12 blocks with a 4x MLP, Wan 9 blocks with
  its cross-attention and a 2048-wide FFN; both counts are printed and saved) and **equal token
  count** (the same latents, 1x2x2 patches for both) at about 1k, 5k and 20k tokens;
- one denoising forward each, interleaved (ours, Wan, ours, Wan, ...) and the best of each kept, so
  that other work on a shared machine slows both alike;
- the machine's matmul rate (``torch.mm`` of two 2048 x 2048 matrices) before, between and after
  the sizes, the best kept (a disturbed measurement can only make our share look worse).

FLOPs are counted by hand from the configs (:func:`ours_flops`, :func:`wan_flops`): every linear
layer ``2 * rows * in * out``, attention ``4 * queries * keys * width`` (QK^T and AV), for ours
over each window (a frame's ``H' * W'`` tokens, a position's ``T'`` tokens), for Wan over all
tokens and over the text tokens; the timestep and text embeddings too. The linear part equals what
``torch.utils.flop_counter`` counts (tests/test_bench_dit_attention.py checks it; the counter does not
see CPU attention). Norms, rotary, GELU and
modulation count nothing: they are what the share loses to. The results: seconds per forward,
the ratio Wan / ours and our GFLOP/s as a share of the matmul rate, per size, to
``bench/results/dit_attention.json``. The issue's bars: ratio >= 3 at about 20k tokens and a share
>= 75% at every size.

    python bench/bench_dit_attention.py [--quick] [--out FILE]

A full run takes a few minutes (one Wan forward at 20k tokens is about a minute here); ``--quick``
runs the 1k and 5k sizes with fewer repeats.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path
from typing import Callable

import torch

from bench_dit_forward import matmul_gflops  # the ceiling, measured as the forward bench measures it

from shotfill.models.transformer_shotfill import ShotfillTransformer3DModel

RESULTS = Path(__file__).resolve().parent / "results" / "dit_attention.json"
CHANNELS = 16
#: the square matmul that measures this machine's ceiling, and its best-of runs
MATMUL_SIZE, MATMUL_REPEATS = 2048, 5
TEXT_TOKENS = 64  # Wan's text embedding length here (real Wan prompts pad to 512: more cross-attention)

#: the shotfill transformer's config (factorised attention), about 40M parameters
OURS = {"in_channels": CHANNELS, "patch_size": (1, 2, 2), "hidden_size": 512, "num_layers": 12, "num_heads": 8,
        "mlp_ratio": 4.0, "rope_axes_dim": (16, 24, 24), "attention": "factorised"}
#: diffusers' Wan transformer at the same width and about the same parameter count
WAN = {"patch_size": (1, 2, 2), "num_attention_heads": 8, "attention_head_dim": 64, "in_channels": CHANNELS,
       "out_channels": CHANNELS, "text_dim": 512, "freq_dim": 256, "ffn_dim": 2048, "num_layers": 9}

#: (name, latent frames, latent height, latent width, repeats); tokens = frames * height/2 * width/2
SIZES = (("1k", 4, 32, 32, 5), ("5k", 5, 64, 64, 3), ("20k", 20, 64, 64, 2))
QUICK_SIZES = (("1k", 4, 32, 32, 2), ("5k", 5, 64, 64, 1))


def build_ours(**overrides) -> ShotfillTransformer3DModel:
    torch.manual_seed(0)
    return ShotfillTransformer3DModel(**{**OURS, **overrides}).eval()


def build_wan(**overrides):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    return WanTransformer3DModel(**{**WAN, **overrides}).eval()


def token_grid(patch_size, frames: int, height: int, width: int) -> tuple[int, int, int]:
    """Latent (frames, height, width) -> the token grid (T', H', W')."""
    pt, ph, pw = patch_size
    return frames // pt, height // ph, width // pw


def ours_flops(config, grid: tuple[int, int, int]) -> dict[str, float]:
    """FLOPs of one forward of the shotfill transformer (batch 1) on ``grid``, counted by hand:
    ``{"linear": ..., "attention": ...}`` (the matmuls of linear layers; QK^T and AV)."""
    tokens, width = math.prod(grid), config["hidden_size"]
    patch, mlp = math.prod(config["patch_size"]), int(config["hidden_size"] * config["mlp_ratio"])
    inputs = (3 if config.get("guide") else 2) * config["in_channels"] + 1
    per_token = 2 * inputs * patch * width + 2 * width * config["in_channels"] * patch  # patch embed, output
    linear = 2 * (width * 3 * width + width * width + 2 * width * mlp)  # qkv, out, mlp (per token, per block)
    windows = {"full": [tokens] * config["num_layers"],
               "factorised": [grid[1] * grid[2] if index % 2 == 0 else grid[0]
                              for index in range(config["num_layers"])]}[config.get("attention", "full")]
    freq = config.get("freq_dim", 256)
    per_sample = 2 * (freq * width + width * width + width * 6 * width + width * 2 * width)  # timestep, adaLN
    return {"linear": tokens * (per_token + config["num_layers"] * linear) + per_sample,
            "attention": sum(4 * tokens * window * width for window in windows)}


def wan_flops(config, grid: tuple[int, int, int], text_tokens: int = TEXT_TOKENS) -> dict[str, float]:
    """FLOPs of one forward of diffusers' Wan transformer (batch 1) on ``grid``, counted by hand:
    ``{"linear": ..., "attention": ...}`` as :func:`ours_flops`."""
    tokens = math.prod(grid)
    width = config["num_attention_heads"] * config["attention_head_dim"]
    patch = math.prod(config["patch_size"])
    per_token = 2 * config["in_channels"] * patch * width + 2 * width * config["out_channels"] * patch
    # per block: self-attention q, k, v, out; cross-attention q, out over the video, k, v over the text; FFN
    block_linear = (tokens * (2 * 4 * width * width + 2 * 2 * width * width + 2 * 2 * width * config["ffn_dim"])
                    + text_tokens * 2 * 2 * width * width)
    block_attention = 4 * tokens * tokens * width + 4 * tokens * text_tokens * width
    text = text_tokens * 2 * (config["text_dim"] * width + width * width)  # the text embedder's two layers
    per_sample = 2 * (config["freq_dim"] * width + width * width + width * 6 * width)  # timestep, projection
    return {"linear": tokens * per_token + config["num_layers"] * block_linear + text + per_sample,
            "attention": config["num_layers"] * block_attention}


def ours_inputs(frames: int, height: int, width: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(1, CHANNELS, frames, height, width, generator=generator)
    mask = torch.zeros(1, 1, frames, height, width)
    mask[:, :, frames // 2:] = 1  # extend forward: the first half known
    return latents, latents.clone(), mask, torch.full((1,), 500.0)


def wan_inputs(frames: int, height: int, width: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(1, CHANNELS, frames, height, width, generator=generator)
    text = torch.randn(1, TEXT_TOKENS, WAN["text_dim"], generator=generator)
    return latents, torch.full((1,), 500.0), text


def interleaved_best(fns: dict[str, Callable[[], object]], repeats: int, warmup: bool,
                     record: list | None = None) -> dict[str, float]:
    """Best seconds of each of ``fns`` over ``repeats`` rounds, run in turn (A, B, A, B, ...);
    ``warmup`` runs each once first, untimed. ``record`` gets ``(name, seconds)`` in run order."""
    if warmup:
        for fn in fns.values():
            fn()
    best = {name: math.inf for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            seconds = time.perf_counter() - start
            best[name] = min(best[name], seconds)
            if record is not None:
                record.append((name, seconds))
    return best


def summarise(sizes: list[dict], matmul: float) -> None:
    """Add each size's ratio and our share of the (best) matmul rate, in place."""
    for entry in sizes:
        entry["ratio_wan_over_ours"] = round(entry["wan_s"] / entry["ours_s"], 2)
        entry["ours_gflops"] = round(entry["ours_gflop"] / entry["ours_s"], 1)
        entry["wan_gflops"] = round(entry["wan_gflop"] / entry["wan_s"], 1)
        entry["ours_share_of_matmul"] = round(entry["ours_gflops"] / matmul, 3)
        entry["wan_share_of_matmul"] = round(entry["wan_gflops"] / matmul, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 1k and 5k sizes, fewer repeats")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    started = time.monotonic()

    ours, wan = build_ours(), build_wan()
    counts = {"ours": ours.num_parameters(), "wan": wan.num_parameters()}
    print(f"parameters: ours {counts['ours'] / 1e6:.2f}M (factorised attention), "
          f"Wan {counts['wan'] / 1e6:.2f}M (full attention); {torch.get_num_threads()} threads")
    matmuls = [matmul_gflops(MATMUL_SIZE, MATMUL_REPEATS)]
    print(f"fp32 matmul: {matmuls[0]:.1f} GFLOP/s")
    sizes = []
    for name, frames, height, width, repeats in (QUICK_SIZES if args.quick else SIZES):
        grid = token_grid(OURS["patch_size"], frames, height, width)
        ours_args, wan_args = ours_inputs(frames, height, width), wan_inputs(frames, height, width)

        def run_ours():
            with torch.no_grad():
                return ours(*ours_args).sample

        def run_wan():
            with torch.no_grad():
                return wan(*wan_args).sample

        # the largest size skips the warm-up: a Wan forward there is a minute, and the best of two is warm
        order = []
        best = interleaved_best({"ours": run_ours, "wan": run_wan}, repeats, warmup=math.prod(grid) < 10_000,
                                record=order)
        entry = {"name": name, "latent": [frames, height, width], "tokens": math.prod(grid), "grid": list(grid),
                 "repeats": repeats, "ours_s": round(best["ours"], 4), "wan_s": round(best["wan"], 4),
                 "ours_gflop": round(sum(ours_flops(OURS, grid).values()) / 1e9, 2),
                 "ours_attention_share_of_flops": round(ours_flops(OURS, grid)["attention"]
                                                        / sum(ours_flops(OURS, grid).values()), 3),
                 "wan_gflop": round(sum(wan_flops(WAN, grid).values()) / 1e9, 2),
                 "wan_attention_share_of_flops": round(wan_flops(WAN, grid)["attention"]
                                                       / sum(wan_flops(WAN, grid).values()), 3),
                 "runs": [[run, round(seconds, 4)] for run, seconds in order]}
        sizes.append(entry)
        matmuls.append(matmul_gflops(MATMUL_SIZE, MATMUL_REPEATS))
        print(f"{name}: {entry['tokens']} tokens: ours {best['ours']:.3f} s ({entry['ours_gflop']} GFLOP), "
              f"Wan {best['wan']:.3f} s ({entry['wan_gflop']} GFLOP); matmul now {matmuls[-1]:.1f} GFLOP/s")

    matmul = max(matmuls)
    summarise(sizes, matmul)
    results = {
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__},
        "ours_config": {**OURS, "patch_size": list(OURS["patch_size"]), "rope_axes_dim": list(OURS["rope_axes_dim"])},
        "wan_config": {**WAN, "patch_size": list(WAN["patch_size"]), "text_tokens": TEXT_TOKENS},
        "parameters": counts,
        "matmul_gflops": round(matmul, 1),
        "matmul_measurements": [round(m, 1) for m in matmuls],
        "quick": args.quick,
        "sizes": sizes,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(f"\nfp32 matmul, best of the run: {matmul:.1f} GFLOP/s; parameters ours {counts['ours']:,}, "
          f"Wan {counts['wan']:,}")
    print("| size | tokens | ours s | Wan s | Wan / ours | ours GFLOP/s | ours share of matmul | Wan share |")
    print("|---|---|---|---|---|---|---|---|")
    for e in sizes:
        print(f"| {e['name']} | {e['tokens']} | {e['ours_s']:.3f} | {e['wan_s']:.3f} | {e['ratio_wan_over_ours']:.2f} "
              f"| {e['ours_gflops']} | {e['ours_share_of_matmul']:.0%} | {e['wan_share_of_matmul']:.0%} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out} ({results['seconds']} s)")


if __name__ == "__main__":
    main()
