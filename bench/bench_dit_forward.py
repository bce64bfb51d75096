"""How close the DiT's forward pass comes to this machine's matmul speed.

Measures, in float32 on this machine:

- the matmul rate: ``torch.mm`` of two large square matrices (the ceiling), measured
  before and after every other measurement and the best kept, so that a machine shared
  with other work cannot make the ratio below look better than it is;
- the attention rate: ``scaled_dot_product_attention`` at the model's head width;
- the transformer's forward pass at a size preset (default ``small``, with the
  shipped model's widths) over 8x latents for two realistic shapes: an inference window
  (one 16-frame window of 256 x 256 pictures: 16 x 16 x 16 = 4096 tokens) and a
  training batch (8 x 5 frames of 128 x 128 pictures: 8 x 320 tokens); or, with
  ``--model DIR``, a checkpoint itself (the shipped one: ``--model resources/dit``) over its
  own VAE's latents, in the shape the ``dit`` engine runs it on a 16:9 plate (one 16-frame
  window of 256 x 144 working pictures, 4 samples at once) and the same training batch.
  Its rate is FLOPs counted by hand (linear layers ``2 * tokens * in * out``, attention
  ``4 * tokens^2 * width`` per layer) over the measured time;
- the time of one training step (forward, backward, AdamW) on the training batch.

It prints a summary and writes ``bench/results/dit_forward.json``. The bar: the
forward pass at the shipped size reaches at least 40% of the matmul rate.

    python bench/bench_dit_forward.py [--preset small | --model resources/dit] [--repeats 5]
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
import torch.nn.functional as F

from shotfill.models import ShotfillVAE
from shotfill.training.loss import flow_matching_loss
from shotfill.models.transformer_shotfill import ShotfillTransformer3DModel

RESULTS = Path(__file__).resolve().parent / "results" / "dit_forward.json"
VAE_COMPRESSION = 8

#: (name, batch, latent frames, latent height, latent width)
SHAPES = (
    ("inference window", 1, 16, 256 // VAE_COMPRESSION, 256 // VAE_COMPRESSION),
    ("training batch", 8, 5, 128 // VAE_COMPRESSION, 128 // VAE_COMPRESSION),
)


def checkpoint_shapes(compression: int) -> tuple:
    """The shapes a checkpoint runs in, over its own VAE's latents: the engine's window on a 16:9 plate
    (working size 256 x 144, 16 frames, 4 samples in one batch) and the training batch."""
    return (("engine window, 16:9 plate, 4 samples", 4, 16, 144 // compression, 256 // compression),
            ("training batch", 8, 5, 128 // compression, 128 // compression))


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` runs after one warm-up (the machine is shared; the best run is the least disturbed)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(size: int, repeats: int) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / best_time(lambda: torch.mm(a, b), repeats) / 1e9


def attention_gflops(tokens: int, width: int, head_dim: int, repeats: int) -> float:
    q, k, v = (torch.randn(1, width // head_dim, tokens, head_dim) for _ in range(3))
    return 4 * tokens**2 * width / best_time(lambda: F.scaled_dot_product_attention(q, k, v), repeats) / 1e9


def forward_flops(config, batch: int, grid: tuple[int, int, int]) -> float:
    """FLOPs of one forward pass, counted by hand from the config (matmuls and attention only)."""
    tokens = math.prod(grid)
    width = config.hidden_size
    patch = math.prod(config.patch_size)
    mlp = int(width * config.mlp_ratio)
    inputs = (3 if getattr(config, "guide", False) else 2) * config.in_channels + 1  # stream, known, mask(, guess)
    per_token = 2 * inputs * patch * width  # patch embedding
    per_token += config.num_layers * 2 * (width * 3 * width + width * width + 2 * width * mlp)  # qkv, out, mlp
    per_token += 2 * width * config.in_channels * patch  # output projection
    attention = config.num_layers * 4 * tokens**2 * width
    per_sample = 2 * (config.freq_dim * width + width * width + width * 8 * width)  # timestep MLP, modulations
    return batch * (tokens * per_token + attention + per_sample)


def token_grid(config, frames: int, height: int, width: int) -> tuple[int, int, int]:
    """Latent (frames, height, width) -> the token grid (T', H', W')."""
    pt, ph, pw = config.patch_size
    return frames // pt, height // ph, width // pw


def model_inputs(config, batch: int, frames: int, height: int, width: int):
    """Random latents (B, C, T, H, W), an extend-forward mask (first half known), a mid timestep and,
    for a guided model, a guess (None otherwise)."""
    shape = (batch, config.in_channels, frames, height, width)
    latents = torch.randn(shape)
    mask = torch.zeros(batch, 1, *shape[2:])
    mask[:, :, shape[2] // 2 :] = 1  # extend forward: the first half known
    guess = torch.randn(shape) if getattr(config, "guide", False) else None
    return latents, mask, torch.full((batch,), 500.0), guess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--model", help="a dit checkpoint folder (vae/, transformer/): measure it instead of a preset")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.manual_seed(0)

    shapes = SHAPES
    if args.model:
        model = ShotfillTransformer3DModel.from_pretrained(Path(args.model) / "transformer",
                                                           torch_dtype=torch.float32).eval()
        compression = ShotfillVAE.from_pretrained(Path(args.model) / "vae").spatial_compression
        shapes = checkpoint_shapes(compression)
    else:
        model = ShotfillTransformer3DModel.from_preset(args.preset).eval()
    config = model.config
    matmul = matmul_gflops(2048, args.repeats)
    head_dim = config.hidden_size // config.num_heads
    results = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "preset": args.preset if not args.model else None,
        "model": args.model,
        "parameters": sum(p.numel() for p in model.parameters()),
        "shapes": [],
    }
    print(f"{args.model or 'preset ' + args.preset}: {results['parameters'] / 1e6:.2f}M parameters, "
          f"{torch.get_num_threads()} threads")

    for name, batch, frames, height, width in shapes:
        grid = token_grid(config, frames, height, width)
        tokens = math.prod(grid)
        latents, mask, timestep, guess = model_inputs(config, batch, frames, height, width)
        with torch.no_grad():
            seconds = best_time(lambda: model(latents, latents, mask, timestep, guide_latents=guess), args.repeats)
        flops = forward_flops(config, batch, grid)
        attention = attention_gflops(tokens, config.hidden_size, head_dim, args.repeats)
        entry = {
            "name": name,
            "batch": batch,
            "tokens_per_sample": tokens,
            "forward_gflop": round(flops / 1e9, 2),
            "forward_s": round(seconds, 4),
            "forward_gflops": round(flops / seconds / 1e9, 1),
            "attention_gflops": round(attention, 1),
        }
        print(
            f"{name}: {batch} x {tokens} tokens, {entry['forward_gflop']} GFLOP in {seconds * 1000:.0f} ms "
            f"= {entry['forward_gflops']} GFLOP/s (SDPA alone {attention:.1f} GFLOP/s)"
        )
        results["shapes"].append(entry)
        matmul = max(matmul, matmul_gflops(2048, args.repeats))

    results["matmul_gflops"] = round(matmul, 1)
    for entry in results["shapes"]:
        entry["ratio_to_matmul"] = round(entry["forward_gflops"] / matmul, 3)

    # one training step on the training batch
    name, batch, frames, height, width = shapes[1]
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    latents, mask, _, _ = model_inputs(config, batch, frames, height, width)
    generator = torch.Generator().manual_seed(0)

    def train_step() -> None:
        optimizer.zero_grad()
        flow_matching_loss(model, latents, mask, generator).backward()
        optimizer.step()

    results["train_step_s"] = round(best_time(train_step, args.repeats), 3)
    print(f"training step ({name}, forward + backward + AdamW): {results['train_step_s']} s")
    print(f"fp32 matmul, best of the run: {matmul:.1f} GFLOP/s")
    for entry in results["shapes"]:
        print(f"{entry['name']}: forward at {entry['ratio_to_matmul']:.0%} of the matmul rate")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
