"""GPU proof: seconds per denoising step and achieved TFLOP/s of the video transformers.

On a CUDA device, in bfloat16, with random weights (nothing is downloaded), for one
480p x 81-frame window (832 x 480 pictures):

- the ceiling: the device's bf16 matmul rate, ``torch.matmul`` of two 8192 x 8192
  matrices, measured before and after the models and the best kept;
- ``wan-vace``: ``diffusers.WanVACETransformer3DModel`` with the real Wan2.1-VACE-1.3B
  configuration, on the Wan VAE's latents (4x in time, 8x in space: 21 x 60 x 104) with
  a 96-channel VACE control input and 512 text tokens;
- ``dit``: our :class:`shotfill.models.ShotfillTransformer3DModel` at its largest size
  preset and at the shipped checkpoint's configuration, on our VAE's latents (frame by
  frame, so 81 latent frames, and the shipped VAE's spatial compression).

Each model is timed for one forward pass and for one denoising step (``wan-vace`` guides
with classifier-free guidance: two forwards a step, with and without the prompt, as
``WanVACEPipeline`` runs them; our ``dit`` models have no text conditioning, so their
pipeline never guides and a step is one forward). The times are the fastest of
``--steps`` runs after one warm-up, with the device synchronised around each. The
achieved rate is the FLOPs of a forward, counted by hand from the configuration
(:func:`wan_vace_flops`; :func:`bench_dit_forward.forward_flops` for ours), over its
time, and is given as a share of the matmul rate.

It prints a Markdown table and writes ``bench/results/gpu.json``.

    python bench/bench_gpu.py [--device cuda] [--out bench/results/gpu.json] [--steps 3]
    python bench/bench_gpu.py --smoke   # the same code with tiny configs, CPU float32, seconds

Without a CUDA device (and without ``--smoke``) it exits with code 2.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import diffusers
import torch
from bench_dit_forward import forward_flops, model_inputs, token_grid
from diffusers import WanVACETransformer3DModel
from diffusers.models.modeling_utils import ModelMixin

from shotfill.errors import EngineUnavailableError, InputError, ShotfillError
from shotfill.models import SIZE_PRESETS, ShotfillTransformer3DModel, ShotfillVAE
from shotfill.resources import RESOURCES

RESULTS = Path(__file__).resolve().parent / "results"
SHIPPED_DIT = RESOURCES / "dit"
NO_CUDA = "no CUDA device: this benchmark needs a GPU (use --smoke to check the script on a CPU)"

#: Wan2.1-VACE-1.3B's transformer, as diffusers builds it. Every value is from
#: ``get_transformer_config("Wan-VACE-1.3B")`` in huggingface/diffusers
#: ``scripts/convert_wan_to_diffusers.py`` (commit 7d5682739a1e), the script that made
#: Wan-AI/Wan2.1-VACE-1.3B-diffusers from Wan-AI/Wan2.1-VACE-1.3B. A published copy of that
#: ``transformer/config.json`` (huggingface.co/callgg/wan-decoder) carries the same values,
#: plus the class defaults ``rope_max_seq_len`` 1024, ``image_dim`` and ``pos_embed_seq_len`` null.
#: Width 12 x 128 = 1536; VACE blocks beside every second block.
WAN_VACE_1_3B: dict = {
    "added_kv_proj_dim": None,
    "attention_head_dim": 128,
    "cross_attn_norm": True,
    "eps": 1e-06,
    "ffn_dim": 8960,
    "freq_dim": 256,
    "in_channels": 16,
    "num_attention_heads": 12,
    "num_layers": 30,
    "out_channels": 16,
    "patch_size": (1, 2, 2),
    "qk_norm": "rms_norm_across_heads",
    "text_dim": 4096,
    "vace_layers": [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28],
    "vace_in_channels": 96,
}

#: The same architecture at toy size, for ``--smoke`` and the tests.
WAN_VACE_TINY: dict = {
    **WAN_VACE_1_3B,
    "attention_head_dim": 12,
    "ffn_dim": 48,
    "freq_dim": 16,
    "num_attention_heads": 2,
    "num_layers": 3,
    "text_dim": 32,
    "vace_layers": [0, 2],
}

#: Wan VAE compression (``WanVACEPipeline.vae_scale_factor_temporal`` / ``_spatial``):
#: ``(frames - 1) // 4 + 1`` latent frames, height and width / 8.
WAN_VAE_TIME, WAN_VAE_SPACE = 4, 8
#: Prompt embeddings are padded to 512 tokens (``WanVACEPipeline``'s ``max_sequence_length``).
WAN_TEXT_TOKENS = 512
#: ShotfillVAE codes frame by frame: one latent frame per picture frame.
SHOTFILL_VAE_TIME = 1


@dataclass(frozen=True)
class Setup:
    """What differs between the GPU run and the CPU smoke run: picture, precision, matmul size, models."""

    frames: int
    height: int
    width: int
    text_tokens: int
    dtype: torch.dtype
    matmul_size: int
    #: (name, engine, transformer config) of each model to time
    models: tuple[tuple[str, str, dict], ...]


def gpu_setup() -> Setup:
    """480p x 81 frames in bfloat16, the real Wan VACE 1.3B, our largest preset and our shipped config."""
    shipped = ShotfillTransformer3DModel.load_config(SHIPPED_DIT / "transformer")
    return Setup(
        frames=81, height=480, width=832, text_tokens=WAN_TEXT_TOKENS, dtype=torch.bfloat16, matmul_size=8192,
        models=(
            ("wan-vace 1.3B", "wan-vace", WAN_VACE_1_3B),
            ("dit large", "dit", SIZE_PRESETS["large"]),
            ("dit shipped", "dit", shipped),
        ),
    )


def smoke_setup() -> Setup:
    """A few frames of 64 x 64 in float32 with tiny configs (the shipped one is small enough as it is)."""
    shipped = ShotfillTransformer3DModel.load_config(SHIPPED_DIT / "transformer")
    return Setup(
        frames=5, height=64, width=64, text_tokens=8, dtype=torch.float32, matmul_size=256,
        models=(
            ("wan-vace tiny", "wan-vace", WAN_VACE_TINY),
            ("dit tiny", "dit", SIZE_PRESETS["tiny"]),
            ("dit shipped", "dit", shipped),
        ),
    )


# -- FLOPs --------------------------------------------------------------------------------
def wan_vace_flops(config: dict, grid: tuple[int, int, int], text_tokens: int) -> float:
    """FLOPs of one ``WanVACETransformer3DModel`` forward pass of batch 1, counted by hand from its config.

    With ``N`` video tokens (``prod(grid)``), ``L`` text tokens, width ``D`` (heads x head width),
    feed-forward width ``F`` and patch volume ``p``, two FLOPs per multiply-add:

    - patch embeddings (3D convolutions, stride = kernel): video ``2 N (C_in p) D``, VACE control
      ``2 N (C_vace p) D``;
    - conditions: timestep MLP ``2 (f D + D^2)`` and its projection to six modulations ``2 D (6 D)``;
      text projection ``2 L (T D + D^2)`` (``f`` = ``freq_dim``, ``T`` = ``text_dim``);
    - every block, the main ones and the VACE ones alike: self-attention projections q, k, v, out
      ``2 N 4 D^2`` and attention ``4 N^2 D`` (scores and weighted sum); cross-attention q and out
      ``2 N 2 D^2``, k and v of the text ``2 L 2 D^2``, attention ``4 N L D``; feed-forward
      ``2 N 2 D F``;
    - VACE blocks also: output projection ``2 N D^2`` each, input projection ``2 N D^2`` (the first);
    - output projection ``2 N D (C_out p)``.

    Left out: normalisations (layer norms, q/k RMS norms), rotary embedding, activations,
    softmax, adaLN modulations, gates, residual additions and biases: elementwise work, none of
    it matmuls (``FlopCounterMode`` does not count it either).
    """
    tokens = math.prod(grid)
    width = config["num_attention_heads"] * config["attention_head_dim"]
    patch = math.prod(config["patch_size"])
    vace_blocks = len(config["vace_layers"])
    blocks = config["num_layers"] + vace_blocks

    embed = 2 * tokens * (config["in_channels"] + config["vace_in_channels"]) * patch * width
    conditions = 2 * (config["freq_dim"] * width + width * width + width * 6 * width)
    conditions += 2 * text_tokens * (config["text_dim"] * width + width * width)
    self_attention = 2 * tokens * 4 * width**2 + 4 * tokens**2 * width
    cross_attention = 2 * tokens * 2 * width**2 + 2 * text_tokens * 2 * width**2 + 4 * tokens * text_tokens * width
    feed_forward = 2 * tokens * 2 * width * config["ffn_dim"]
    vace_projections = (vace_blocks + 1) * 2 * tokens * width**2
    output = 2 * tokens * width * config["out_channels"] * patch
    return embed + conditions + blocks * (self_attention + cross_attention + feed_forward) + vace_projections + output


# -- models and their inputs ---------------------------------------------------------------
@dataclass
class Case:
    """One transformer to time: the model, the forwards of one denoising step, and its size."""

    name: str
    engine: str
    config: dict
    model: ModelMixin
    #: keyword arguments of each forward of one denoising step (two with guidance)
    step_inputs: list[dict]
    latent_shape: tuple[int, ...]
    tokens: int
    flops_per_forward: float


def build(model_class: type[ModelMixin], config: dict, device: torch.device, dtype: torch.dtype) -> ModelMixin:
    """A randomly initialised model built on ``device`` (never first in float32 on the CPU), in ``dtype``.

    Parameters are cast as ``from_pretrained(torch_dtype=dtype)`` leaves them: those under the
    class's ``_keep_in_fp32_modules`` (Wan's time embedder, norms, modulation tables) stay
    float32, and buffers (Wan's rotary tables) keep their own dtype.
    """
    with torch.device(device):
        model = model_class.from_config(config)
    keep_fp32 = set(model._keep_in_fp32_modules or ())
    for name, parameter in model.named_parameters():
        if not keep_fp32.intersection(name.split(".")):
            parameter.data = parameter.data.to(dtype)
    return model.eval()


def wan_vace_case(name: str, config: dict, setup: Setup, device: torch.device) -> Case:
    """Wan VACE on the Wan VAE's latents: noisy latents, the VACE control input and prompt embeddings."""
    model = build(WanVACETransformer3DModel, config, device, setup.dtype)
    latent_shape = (
        1,
        config["in_channels"],
        (setup.frames - 1) // WAN_VAE_TIME + 1,
        setup.height // WAN_VAE_SPACE,
        setup.width // WAN_VAE_SPACE,
    )
    grid = tuple(size // patch for size, patch in zip(latent_shape[2:], config["patch_size"]))

    def tensor(*shape: int) -> torch.Tensor:
        return torch.randn(shape, device=device, dtype=setup.dtype)

    common = {
        "hidden_states": tensor(*latent_shape),
        "control_hidden_states": tensor(1, config["vace_in_channels"], *latent_shape[2:]),
        "timestep": torch.tensor([500], device=device),
        "return_dict": False,
    }
    # classifier-free guidance: with the prompt, then with the negative prompt
    text_shape = (1, setup.text_tokens, config["text_dim"])
    prompt, negative_prompt = tensor(*text_shape), tensor(*text_shape)
    return Case(
        name=name, engine="wan-vace", config=config, model=model,
        step_inputs=[{**common, "encoder_hidden_states": prompt}, {**common, "encoder_hidden_states": negative_prompt}],
        latent_shape=latent_shape, tokens=math.prod(grid),
        flops_per_forward=wan_vace_flops(config, grid, setup.text_tokens),
    )


def dit_case(name: str, config: dict, setup: Setup, device: torch.device) -> Case:
    """Our DiT on the shipped VAE's latents, first half of the frames known (extend forward); one forward a step."""
    model = build(ShotfillTransformer3DModel, config, device, setup.dtype)
    with torch.device("meta"):
        space = ShotfillVAE.from_config(ShotfillVAE.load_config(SHIPPED_DIT / "vae")).spatial_compression
    frames, height, width = setup.frames // SHOTFILL_VAE_TIME, setup.height // space, setup.width // space
    latents, mask, timestep, guess = model_inputs(model.config, 1, frames, height, width)
    latents, mask = latents.to(device, setup.dtype), mask.to(device, setup.dtype)
    guess = None if guess is None else guess.to(device, setup.dtype)  # a guided model's first guess
    grid = token_grid(model.config, frames, height, width)
    return Case(
        name=name, engine="dit", config=config, model=model,
        step_inputs=[{"hidden_states": latents, "known_latents": latents, "generate_mask": mask,
                      "timestep": timestep.to(device), "guide_latents": guess, "return_dict": False}],
        latent_shape=tuple(latents.shape), tokens=math.prod(grid),
        flops_per_forward=forward_flops(model.config, 1, grid),
    )


CASES: dict[str, Callable[[str, dict, Setup, torch.device], Case]] = {"wan-vace": wan_vace_case, "dit": dit_case}


# -- timing ---------------------------------------------------------------------------------
def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CPU work is done when the call returns)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_seconds(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Fastest of ``repeats`` runs of ``fn`` after one warm-up, the device synchronised around each."""
    fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_tflops(size: int, dtype: torch.dtype, device: torch.device, repeats: int, chain: int = 10) -> float:
    """The device's matmul rate: ``chain`` products of two ``size`` x ``size`` matrices per timed run."""
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    out = torch.empty(size, size, device=device, dtype=dtype)

    def products() -> None:
        for _ in range(chain):
            torch.matmul(a, b, out=out)

    return chain * 2 * size**3 / best_seconds(products, device, repeats) / 1e12


@torch.inference_mode()
def time_case(case: Case, device: torch.device, steps: int) -> tuple[float, float]:
    """Seconds of one forward and of one denoising step (every forward of ``case.step_inputs``).

    A step of one forward is that forward: it is timed once.
    """
    first = case.step_inputs[0]
    per_forward = best_seconds(lambda: case.model(**first), device, steps)
    if len(case.step_inputs) == 1:
        return per_forward, per_forward

    def step() -> None:
        for inputs in case.step_inputs:
            case.model(**inputs)

    return per_forward, best_seconds(step, device, steps)


# -- the run --------------------------------------------------------------------------------
def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's and its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, threads: {torch.get_num_threads()})"


def run(setup: Setup, device: torch.device, steps: int) -> dict:
    """Measure the matmul rate and every model of ``setup``; return the results (see the module docstring)."""
    torch.manual_seed(0)
    matmul = matmul_tflops(setup.matmul_size, setup.dtype, device, steps)
    models = []
    for name, engine, config in setup.models:
        case = CASES[engine](name, config, setup, device)
        per_forward, per_step = time_case(case, device, steps)
        models.append({
            "name": case.name,
            "engine": case.engine,
            "config": {key: value for key, value in case.config.items() if not key.startswith("_")},
            "params": sum(parameter.numel() for parameter in case.model.parameters()),
            "latent_shape": list(case.latent_shape),
            "tokens": case.tokens,
            "forwards_per_step": len(case.step_inputs),
            "s_per_forward": per_forward,
            "s_per_step": per_step,
            "tflop_per_forward": case.flops_per_forward / 1e12,
        })
        del case
        if device.type == "cuda":
            torch.cuda.empty_cache()
    matmul = max(matmul, matmul_tflops(setup.matmul_size, setup.dtype, device, steps))
    for entry in models:
        entry["achieved_tflops"] = entry["tflop_per_forward"] / entry["s_per_forward"]
        entry["ratio_to_matmul"] = entry["achieved_tflops"] / matmul
    return {
        "device": device_name(device),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "dtype": str(setup.dtype).removeprefix("torch."),
        "picture": {"frames": setup.frames, "height": setup.height, "width": setup.width},
        "steps_timed": steps,
        "matmul_size": setup.matmul_size,
        "matmul_tflops": matmul,
        "models": models,
    }


def markdown_table(results: dict) -> str:
    """The results as a Markdown table, one row a model, with the device and the matmul rate above it."""
    picture = results["picture"]
    lines = [
        f"{results['device']}, {results['dtype']}, {picture['frames']} frames of {picture['width']} x "
        f"{picture['height']}, torch {results['torch']}, diffusers {results['diffusers']}, {results['date']}",
        f"matmul ({results['matmul_size']}^3): {results['matmul_tflops']:.1f} TFLOP/s",
        "",
        "| model | params | tokens | s/forward | s/step (forwards) | TFLOP/forward | TFLOP/s | of matmul |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in results["models"]:
        lines.append(
            f"| {m['name']} | {m['params'] / 1e6:.1f}M | {m['tokens']} | {m['s_per_forward']:.4g} | "
            f"{m['s_per_step']:.4g} ({m['forwards_per_step']}) | {m['tflop_per_forward']:.4g} | "
            f"{m['achieved_tflops']:.4g} | {m['ratio_to_matmul']:.0%} |"
        )
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/bench_gpu.py", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--device", default="cuda", help="the CUDA device to measure (default: cuda)")
    where.add_argument("--smoke", action="store_true",
                       help="tiny configs on the CPU in float32: checks the script, measures nothing of note")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"results JSON (default: {RESULTS / 'gpu.json'}, or gpu_smoke.json with --smoke)")
    parser.add_argument("--steps", type=int, default=3,
                        help="timed runs per measurement, the fastest kept (default: 3)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: check the device, run, print the table and write the JSON."""
    args = build_parser().parse_args(argv)
    try:
        if args.steps < 1:
            raise InputError(f"--steps must be at least 1, got {args.steps}")
        if args.smoke:
            # one thread: tiny ops on a busy shared CPU (a CI runner) are many times slower on two
            torch.set_num_threads(1)
            device, setup = torch.device("cpu"), smoke_setup()
        else:
            device = torch.device(args.device)
            if device.type != "cuda" or not torch.cuda.is_available():
                raise EngineUnavailableError(NO_CUDA)
            setup = gpu_setup()
        results = run(setup, device, args.steps)
    except ShotfillError as e:
        print(f"bench/bench_gpu.py: error: {e}", file=sys.stderr)
        return e.exit_code
    out = args.out or RESULTS / ("gpu_smoke.json" if args.smoke else "gpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown_table(results), end="")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
