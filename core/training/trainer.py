"""``shotfill train vae|dit``: the training loops of the ``dit`` engine's VAE and transformer.

A checkpoint folder has the layout the engine loads: ``vae/`` and ``transformer/``
(``config.json`` + safetensors), next to the training state of each part
(``<part>_optimizer.pt``, loaded with ``weights_only=True``, and ``<part>_state.json``) and its
loss log ``<part>_loss.jsonl`` (one JSON object per logged step). :func:`train_vae` writes
``CKPT/vae``; :func:`train_dit` encodes with ``CKPT/vae`` (or the VAE of ``--init``) and writes
``CKPT/transformer``. Both run in :class:`Trainer`: warm-up, logging, timed checkpoints, resume.
The transformer trains with plans of all four kinds (:func:`shotfill.training.loss.random_generate_mask`)
so one model learns extend forward and backward, bridge and fill. The command line is
:mod:`shotfill.cli.train`; :mod:`shotfill.training.export` writes the shipped form.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import InputError
from ..models import ShotfillTransformer3DModel, ShotfillVAE
from .data import Clip, encode_clips, sample_crops, sample_latent_clips
from .loss import flow_matching_loss, random_generate_mask
from .presets import TrainPreset
from .refine import flow_prior_latents

#: the log-variance a new VAE's posterior starts at
INITIAL_LOGVAR = -8.0


class Trainer:
    """The loop both parts share: optimiser, warm-up, logging, timed checkpoints, resume."""

    def __init__(self, part: str, model: torch.nn.Module, out: Path, preset: TrainPreset, lr: float,
                 resume: bool, log: Callable[[str], None]):
        self.part, self.model, self.out, self.preset, self.log = part, model, out, preset, log
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.01)
        self.lr = lr
        self.step = 0
        if resume:
            check_resumable(out, part)
            state_file, optimizer_file = out / f"{part}_state.json", out / f"{part}_optimizer.pt"
            self.step = int(json.loads(state_file.read_text())["step"])
            self.optimizer.load_state_dict(torch.load(optimizer_file, weights_only=True))
            log(f"{part}: resumed at step {self.step}")

    def run(self, loss_fn: Callable[[int], dict], steps: int | None, seconds: float | None,
            on_save: Callable[[], None] | None = None) -> None:
        """Train until ``steps`` (a total, counted across resumes) or ``seconds`` of this run, saving on the way."""
        start = last_save = time.monotonic()
        log_file = (self.out / f"{self.part}_loss.jsonl").open("a")
        try:
            while steps is None or self.step < steps:
                if seconds is not None and time.monotonic() - start >= seconds:
                    break
                for group in self.optimizer.param_groups:
                    group["lr"] = self.lr * min(1.0, (self.step + 1) / max(1, self.preset.warmup_steps))
                terms = loss_fn(self.step)
                self.optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self.optimizer.step()
                self.step += 1
                if self.step % self.preset.log_every == 0 or self.step == 1:
                    record = {"step": self.step, "time": round(time.monotonic() - start, 1),
                              "grad_norm": round(float(grad_norm), 4),
                              **{k: round(float(v.detach()), 6) for k, v in terms.items()}}
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
                    self.log(f"{self.part} step {self.step}: " + " ".join(
                        f"{k} {v}" for k, v in record.items() if k != "step"))
                if time.monotonic() - last_save >= self.preset.checkpoint_seconds:
                    self.save(on_save)
                    last_save = time.monotonic()
        finally:
            log_file.close()
        self.save(on_save)

    def save(self, on_save: Callable[[], None] | None) -> None:
        if on_save is not None:
            on_save()
        self.model.save_pretrained(self.out / self.part)
        torch.save(self.optimizer.state_dict(), self.out / f"{self.part}_optimizer.pt")
        (self.out / f"{self.part}_state.json").write_text(json.dumps({"step": self.step}) + "\n")
        self.log(f"{self.part}: saved step {self.step} to {self.out / self.part}")


def check_resumable(out: Path, part: str) -> None:
    """Raise :class:`InputError` unless ``out`` holds a checkpoint of ``part`` to resume."""
    for required in (out / f"{part}_state.json", out / f"{part}_optimizer.pt", out / part / "config.json"):
        if not required.is_file():
            raise InputError(f"--resume: {required} is missing (nothing to resume in {out})")


@torch.no_grad()
def set_latent_statistics(vae: ShotfillVAE, crops: torch.Tensor) -> None:
    """Set the VAE's ``shift_factor`` and ``scaling_factor`` so the latents of ``crops`` have mean 0 and std 1."""
    latents = vae.encode(crops).latent_dist.mode()
    vae.register_to_config(shift_factor=float(latents.mean()), scaling_factor=float(1.0 / latents.std()))


def train_vae(args: argparse.Namespace, preset: TrainPreset, clips: list[Clip], device: torch.device,
              log: Callable[[str], None]) -> None:
    out = Path(args.out)
    if args.resume:
        vae = ShotfillVAE.from_pretrained(out / "vae")
    elif args.init:
        vae = ShotfillVAE.from_pretrained(Path(args.init) / "vae", torch_dtype=torch.float32)
    else:
        torch.manual_seed(args.seed)
        vae = ShotfillVAE(**preset.vae_config)
        with torch.no_grad():  # start nearly deterministic (posterior std ~0.02): noisy latents stall early training
            vae.encoder.conv_out.bias[vae.config.latent_channels:] = INITIAL_LOGVAR
    statistics_crops = sample_crops(np.random.default_rng([args.seed, 1]), clips, 64, preset.crop).to(device)
    if not args.resume and not args.init and vae.config.linear_path:
        kept = vae.init_linear_path(statistics_crops.cpu())
        log(f"vae: linear path set to the principal components of {len(statistics_crops)} crops "
            f"({kept:.2%} of their variance)")
    vae.to(device).train()
    trainer = Trainer("vae", vae, out, preset, preset.vae_lr, args.resume, log)
    generator = torch.Generator(device).manual_seed(args.seed)

    def loss(step: int) -> dict:
        rng = np.random.default_rng([args.seed, step])
        crops = sample_crops(rng, clips, preset.vae_batch, preset.crop).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=preset.bf16):
            terms = vae.training_loss(crops, generator)
        return {field.name: getattr(terms, field.name) for field in dataclasses.fields(terms)}

    def on_save() -> None:
        vae.eval()
        set_latent_statistics(vae, statistics_crops)
        vae.train()

    trainer.run(loss, args.steps, args.seconds, on_save)


def train_dit(args: argparse.Namespace, preset: TrainPreset, clips: list[Clip], device: torch.device,
              log: Callable[[str], None]) -> None:
    out = Path(args.out)
    vae_folder = out / "vae" if (out / "vae" / "config.json").is_file() or not args.init else Path(args.init) / "vae"
    if not (vae_folder / "config.json").is_file():
        raise InputError(f"train dit: no VAE at {vae_folder} (run 'shotfill train vae --out {out}' first, or --init)")
    vae = ShotfillVAE.from_pretrained(vae_folder, torch_dtype=torch.float32).to(device).eval()
    if vae_folder != out / "vae":
        vae.save_pretrained(out / "vae")  # the checkpoint carries the VAE its transformer was trained with
    guide = bool(preset.dit_config.get("guide")) if args.guide is None else args.guide
    if args.resume:
        transformer = ShotfillTransformer3DModel.from_pretrained(out / "transformer")
    elif args.init:
        transformer = ShotfillTransformer3DModel.from_pretrained(
            Path(args.init) / "transformer", torch_dtype=torch.float32)
    else:
        torch.manual_seed(args.seed)
        transformer = ShotfillTransformer3DModel.from_preset(preset.dit_size, **{**preset.dit_config, "guide": guide})
    if transformer.config.guide and not guide:
        raise InputError("--no-guide: the model to train already takes the guess (a guided model cannot lose it)")
    if guide and not transformer.config.guide:
        transformer = transformer.with_guide()  # fine-tuning an unguided model: it learns to use the guess from here
        log("dit: the model now takes the first guess as a clean input (guide), starting unused")
    attention = getattr(args, "attention", None)
    if attention is not None and attention != transformer.config.attention:
        if args.resume:
            raise InputError(f"--attention {attention}: the checkpoint to resume has attention "
                             f"'{transformer.config.attention}' (convert with --init, not --resume)")
        transformer = transformer.with_attention(attention)  # same weights, converted: fine-tuning adapts them
        log(f"dit: the model's attention is now '{attention}' (weights kept, one to one)")
    transformer.to(device).train()
    log(f"dit: encoding {preset.encode_frames} frames of {len(clips)} clips with {vae_folder}")
    latent_clips = encode_clips(vae, clips, preset.frames, preset.encode_frames,
                                np.random.default_rng([args.seed, 2]), log)
    trainer = Trainer("transformer", transformer, out, preset, preset.dit_lr, args.resume, log)
    generator = torch.Generator(device).manual_seed(args.seed)
    size = preset.crop // vae.spatial_compression

    refine_share = preset.refine_share if args.refine_share is None else args.refine_share
    if not 0 <= refine_share <= 1:
        raise InputError(f"--refine-share must be in [0, 1], got {refine_share}")
    log(f"dit: {refine_share:.0%} of samples refine the dit engine's first guess (noise levels {preset.refine_sigma})")

    def loss(step: int) -> dict:
        rng = np.random.default_rng([args.seed, step])
        # the pictures draw nothing from rng: a run without refinement samples draws as before they existed
        latents, pictures = sample_latent_clips(rng, latent_clips, preset.dit_batch, preset.frames, size,
                                                vae.spatial_compression)
        latents = latents.to(device)
        mask = random_generate_mask(
            (preset.dit_batch, preset.frames, size, size), torch.Generator().manual_seed(int(rng.integers(2**31)))
        ).to(device)
        refinement = {}
        if refine_share > 0:
            refine = rng.random(preset.dit_batch) < refine_share
            refinement = {"prior_latents": flow_prior_latents(vae, latents, mask, pictures, refine),
                          "refine": torch.from_numpy(refine), "refine_sigma": preset.refine_sigma}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=preset.bf16):
            return {"loss": flow_matching_loss(transformer, latents, mask, generator, **refinement)}

    trainer.run(loss, args.steps, args.seconds)
