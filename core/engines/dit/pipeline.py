"""The ``dit`` engine's denoising pipeline: :class:`ShotfillDiTPipeline`.

One object holds the VAE, the transformer and the scheduler (diffusers'
``FlowMatchEulerDiscreteScheduler``), saved and loaded as one checkpoint folder
(``model_index.json``, ``vae/``, ``transformer/``, ``scheduler/``), as diffusers'
pipelines are. One ``__call__`` fills the generated latents of a window in context of
the known ones, in a fixed order:

1. check the inputs;
2. the timesteps, from explicit noise levels (:func:`denoising_sigmas`): ``num_inference_steps``
   levels from ``strength`` (1: pure noise; below: a first guess noised to that level) down
   to, but not including, 0, evenly spaced, handed to the scheduler as they are;
3. prepare the latents (noise, or the noised guess, where generated; the known latents
   where kept) and the conditioning (the known latents, the mask, a guided model's clean
   guess, text);
4. the denoising loop, with a progress callback and a cancel check every step; the known
   latents are re-imposed after every step, so they come out bit-exact;
5. decode (or not: ``output_type="latent"``, as the engine runs it, which decodes only the
   frames it needs);
6. return a :class:`ShotfillDiTPipelineOutput`.

Flow matching, with the conventions of ``FlowMatchEulerDiscreteScheduler``: at noise level
``sigma`` in [0, 1] the sample is ``x = (1 - sigma) * clean + sigma * noise``, the model
predicts the velocity ``noise - clean``, and the timestep it sees is ``sigma * 1000``
(:data:`NUM_TRAIN_TIMESTEPS`). Mask convention: ``generate_mask`` is **1 = generate,
0 = keep**. Training (the loss, the masks) is in :mod:`shotfill.training.loss`.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.utils import BaseOutput, is_accelerate_available
from diffusers.utils.torch_utils import randn_tensor

from ...errors import EngineUnavailableError, InputError
from ...models import ShotfillTransformer3DModel, ShotfillVAE
from ..base import CancelFn, ProgressFn, check_cancel

#: Timestep scale shared by training and the scheduler: ``timestep = sigma * NUM_TRAIN_TIMESTEPS``.
NUM_TRAIN_TIMESTEPS = 1000
#: what ``__call__`` can return: the latents only, or the latents and their decoded pictures
OUTPUT_TYPES = ("latent", "pt")


def default_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """The scheduler the model is trained for; a checkpoint without ``scheduler/`` gets this one."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS)


def denoising_sigmas(num_inference_steps: int, strength: float = 1.0) -> list[float]:
    """The noise levels the steps start from: ``num_inference_steps`` of them, from ``strength`` down to,
    but not including, 0, evenly spaced (``linspace(strength, 0, N + 1)[:-1]``, float32).

    Every step is a real one: with 2 steps at strength 0.2 they run from 0.2 to 0.1 and from 0.1 to
    0 (the scheduler appends the final 0), and 1 step at 0.2 runs from 0.2 to 0. At strength 1
    sampling starts from pure noise. The levels are given to the scheduler as they are, which
    :func:`check_scheduler` makes sure it keeps.
    """
    if not isinstance(num_inference_steps, int) or isinstance(num_inference_steps, bool) or num_inference_steps < 1:
        raise InputError(f"num_inference_steps must be a whole number of at least 1, got {num_inference_steps!r}")
    if not 0.0 < strength <= 1.0:
        raise InputError(f"strength must be in (0, 1], got {strength}")
    return np.linspace(strength, 0.0, num_inference_steps + 1)[:-1].astype(np.float32).tolist()


def check_scheduler(scheduler: FlowMatchEulerDiscreteScheduler, where: str = "scheduler") -> None:
    """Raise :class:`InputError` unless ``scheduler`` runs explicit noise levels exactly as given.

    The pipeline's levels (:func:`denoising_sigmas`) are the noise the first guess is noised to and
    the steps run at; a scheduler that shifts, stretches or re-spaces them (``shift`` other than 1,
    dynamic shifting, ``shift_terminal``, Karras, exponential or beta sigmas, inverted sigmas) or
    counts timesteps on another scale would run another schedule than the one the options say.
    ``where`` names the scheduler (its config file) in the error.
    """
    if scheduler.config.num_train_timesteps != NUM_TRAIN_TIMESTEPS:
        raise InputError(f"{where}: num_train_timesteps is {scheduler.config.num_train_timesteps}; "
                         f"the model is trained with {NUM_TRAIN_TIMESTEPS}")
    probe = FlowMatchEulerDiscreteScheduler.from_config(scheduler.config)
    levels = torch.tensor([0.9, 0.6, 0.2, 0.1])  # unevenly spaced, so a re-spacing between the ends shows too
    try:
        probe.set_timesteps(sigmas=levels.tolist())
    except ValueError as e:
        raise InputError(f"{where}: cannot run explicit noise levels ({e})") from None
    if not (torch.equal(probe.sigmas, torch.cat([levels, torch.zeros(1)]))
            and torch.equal(probe.timesteps, levels * NUM_TRAIN_TIMESTEPS)):
        changed = {k: scheduler.config[k] for k in ("shift", "use_dynamic_shifting", "shift_terminal",
                                                      "use_karras_sigmas", "use_exponential_sigmas",
                                                      "use_beta_sigmas", "invert_sigmas") if k in scheduler.config}
        raise InputError(f"{where}: the scheduler changes the noise levels it is given ({changed}); the dit "
                         f"pipeline needs them run as given (shift 1, no re-spacing)")


def is_guided(transformer) -> bool:
    """Whether ``transformer`` takes a clean first guess (``config.guide``); test doubles without a config do not."""
    return bool(getattr(getattr(transformer, "config", None), "guide", False))


@dataclasses.dataclass
class ShotfillDiTPipelineOutput(BaseOutput):
    """What :class:`ShotfillDiTPipeline` returns."""

    #: ``(B, C, T, h, w)`` float32 scaled latents: generated where the mask is 1, the known ones exactly where 0
    latents: torch.Tensor
    #: ``(B, 3, T, H, W)`` the decoded pictures in [-1, 1]; None with ``output_type="latent"``
    frames: torch.Tensor | None = None


class ShotfillDiTPipeline(DiffusionPipeline):
    """Extend, bridge and fill latents with the shotfill video DiT.

    Args:
        vae: encodes pictures to latents and back (None when only latents go in and out).
        transformer: predicts the flow-matching velocity.
        scheduler: the Euler flow-matching scheduler, built with ``num_train_timesteps=1000``.
    """

    model_cpu_offload_seq = "transformer->vae"

    def __init__(self, vae: ShotfillVAE | None, transformer: ShotfillTransformer3DModel,
                 scheduler: FlowMatchEulerDiscreteScheduler):
        super().__init__()
        self.register_modules(vae=vae, transformer=transformer, scheduler=scheduler)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *,
                        dtype: torch.dtype = torch.float32) -> ShotfillDiTPipeline:
        """Load a local checkpoint folder: ``vae/`` and ``transformer/`` (``config.json`` + safetensors),
        ``scheduler/scheduler_config.json`` and ``model_index.json``, in ``dtype``.

        The folder :meth:`save_pretrained` writes, loaded quietly (no progress bar: the engine loads in
        the worker, whose output is the job's events) and from disk only. A folder without
        ``scheduler/`` (a training checkpoint, or one exported before the pipeline) gets
        :func:`default_scheduler`, the scheduler every shotfill model is trained for. A scheduler
        that would not run the pipeline's noise levels as given (:func:`check_scheduler`) is refused.
        """
        folder = Path(pretrained_model_name_or_path)
        index_file = folder / cls.config_name
        if index_file.is_file():
            try:
                class_name = json.loads(index_file.read_text()).get("_class_name")
            except (OSError, ValueError, AttributeError) as e:
                raise EngineUnavailableError(f"{index_file}: not a readable model index ({e})") from None
            if class_name != cls.__name__:
                raise EngineUnavailableError(f"{index_file}: a {class_name} checkpoint, not a {cls.__name__} one")
        # diffusers' default (low_cpu_mem_usage=True) needs accelerate; without it diffusers falls back to the
        # plain load and warns on every model it loads: asked for the plain load then, it loads the same, silently
        load = {"torch_dtype": dtype, "low_cpu_mem_usage": is_accelerate_available()}
        vae = ShotfillVAE.from_pretrained(folder / "vae", **load).eval()
        transformer = ShotfillTransformer3DModel.from_pretrained(folder / "transformer", **load).eval()
        scheduler_folder = folder / "scheduler"
        scheduler_file = scheduler_folder / FlowMatchEulerDiscreteScheduler.config_name
        if scheduler_file.is_file():
            scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(scheduler_folder)
            try:
                check_scheduler(scheduler, where=str(scheduler_file))
            except InputError as e:
                raise EngineUnavailableError(str(e)) from None
        else:
            scheduler = default_scheduler()
        return cls(vae=vae, transformer=transformer, scheduler=scheduler)

    # -- pictures <-> latents ---------------------------------------------------------------------------
    @torch.no_grad()
    def encode_pictures(self, pictures: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` pictures in [-1, 1] -> ``(B, C, T, h, w)`` scaled latents (tiled, posterior mode)."""
        return self.vae.scale_latents(self.vae.tiled_encode(pictures).latent_dist.mode())

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, h, w)`` scaled latents -> ``(B, 3, T, H, W)`` pictures in [-1, 1] (tiled)."""
        return self.vae.tiled_decode(self.vae.unscale_latents(latents)).sample

    # -- the steps of __call__ ----------------------------------------------------------------------------
    def check_inputs(self, known_latents, generate_mask, num_inference_steps, strength, prior_latents,
                     encoder_hidden_states, guidance_scale, negative_encoder_hidden_states, output_type) -> None:
        if known_latents.ndim != 5:
            raise InputError(f"known_latents must be (B, C, T, H, W), got {tuple(known_latents.shape)}")
        batch, _, frames, height, width = known_latents.shape
        if generate_mask.shape != (batch, 1, frames, height, width):
            raise InputError(f"generate_mask must be {(batch, 1, frames, height, width)}, got {tuple(generate_mask.shape)}")
        if not bool(((generate_mask == 0) | (generate_mask == 1)).all()):
            raise InputError("generate_mask must hold only 0 (keep) and 1 (generate) at latent resolution")
        check_scheduler(self.scheduler)
        if not isinstance(num_inference_steps, int) or isinstance(num_inference_steps, bool) or num_inference_steps < 1:
            raise InputError(f"num_inference_steps must be a whole number of at least 1, got {num_inference_steps!r}")
        if guidance_scale > 1.0 and encoder_hidden_states is None:
            raise InputError(f"guidance_scale {guidance_scale} needs a prompt (encoder_hidden_states)")
        if negative_encoder_hidden_states is not None and (
            encoder_hidden_states is None or negative_encoder_hidden_states.shape != encoder_hidden_states.shape
        ):
            expected = None if encoder_hidden_states is None else tuple(encoder_hidden_states.shape)
            raise InputError(
                f"negative_encoder_hidden_states shape {tuple(negative_encoder_hidden_states.shape)} "
                f"must match encoder_hidden_states {expected}"
            )
        if not 0.0 < strength <= 1.0:
            raise InputError(f"strength must be in (0, 1], got {strength}")
        if strength < 1.0 and (prior_latents is None or prior_latents.shape != known_latents.shape):
            raise InputError(f"strength {strength} needs prior_latents of shape {tuple(known_latents.shape)}")
        if output_type not in OUTPUT_TYPES:
            raise InputError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if output_type != "latent" and self.vae is None:
            raise InputError(f"output_type {output_type!r} decodes the latents, and this pipeline has no VAE")

    def encode_text(self, encoder_hidden_states, negative_encoder_hidden_states, do_guidance: bool, device, dtype):
        """The text conditions: ``[without, with]`` on the batch axis when guiding (zeros, the embedding
        training drops text to, for the "without" when none is given)."""
        if do_guidance:
            if negative_encoder_hidden_states is None:
                negative_encoder_hidden_states = torch.zeros_like(encoder_hidden_states)
            encoder_hidden_states = torch.cat([negative_encoder_hidden_states, encoder_hidden_states])
        if encoder_hidden_states is not None:
            encoder_hidden_states = encoder_hidden_states.to(device=device, dtype=dtype)
        return encoder_hidden_states

    def prepare_timesteps(self, num_inference_steps: int, strength: float, device) -> torch.Tensor:
        """Set the scheduler to the noise levels of :func:`denoising_sigmas` (``num_inference_steps`` of them,
        from ``strength`` down); return its timesteps (``sigma * 1000``)."""
        self.scheduler.set_timesteps(sigmas=denoising_sigmas(num_inference_steps, strength), device=device)
        self.scheduler.set_begin_index(0)
        return self.scheduler.timesteps

    def prepare_latents(self, known_latents, keep, prior_latents, strength: float, timesteps, generator, device):
        """Noise where generated, or, when refining (``strength`` below 1), the first guess noised to the
        first step's level, which is ``strength`` itself; the known latents where kept. float32."""
        noise = randn_tensor(known_latents.shape, generator=generator, device=device, dtype=torch.float32)
        if strength < 1.0:
            noise = self.scheduler.scale_noise(prior_latents.to(device=device, dtype=torch.float32), timesteps[:1], noise)
        return torch.where(keep, known_latents, noise)

    @torch.no_grad()
    def __call__(
        self,
        known_latents: torch.Tensor,
        generate_mask: torch.Tensor,
        *,
        num_inference_steps: int = 10,
        generator: torch.Generator | None = None,
        prior_latents: torch.Tensor | None = None,
        strength: float = 1.0,
        encoder_hidden_states: torch.Tensor | None = None,
        guidance_scale: float = 1.0,
        negative_encoder_hidden_states: torch.Tensor | None = None,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        output_type: str = "pt",
        return_dict: bool = True,
    ) -> ShotfillDiTPipelineOutput | tuple:
        """Generate the masked latents of a window, in context of the known ones.

        With ``prior_latents`` and ``strength`` below 1, generation starts from a first guess
        instead of pure noise (as diffusers' image-to-image pipelines do): the guess is noised
        to the noise level ``strength`` exactly and ``num_inference_steps`` steps run from there
        to 0 (:func:`denoising_sigmas`), so the model refines the guess rather than inventing the
        frames from nothing. A guided model (``transformer.config.guide``) is also given the
        guess clean at every step.

        Args:
            known_latents: ``(B, C, T, H, W)`` scaled VAE latents; read where the mask is 0.
            generate_mask: ``(B, 1, T, H, W)`` of 0 and 1, **1 = generate, 0 = keep**.
            num_inference_steps: denoising steps, from ``strength`` to 0; every one is run.
            generator: seeds the starting noise; the same seed gives the same result.
            prior_latents: ``(B, C, T, H, W)`` a first guess of the generated latents (read where the mask is 1).
            strength: noise level, in (0, 1], the guess is noised to and denoising starts from; 1 starts
                from pure noise (a guided model still reads the guess clean).
            encoder_hidden_states: ``(B, L, text_dim)`` text embedding, for a model with text.
            guidance_scale: classifier-free guidance; above 1 runs the model with and without
                the text each step and extrapolates from the latter to the former.
            negative_encoder_hidden_states: the "without" text embedding for guidance (zeros when not given).
            progress: called after each step with ``(fraction, message)``.
            cancel: checked before each step; raises :class:`~shotfill.errors.CancelledError` when it returns True.
            output_type: ``"pt"``: the latents and their decoded pictures; ``"latent"``: the latents only.
            return_dict: a :class:`ShotfillDiTPipelineOutput`, else the tuple ``(latents, frames)``.

        Returns:
            :class:`ShotfillDiTPipelineOutput`; its latents are float32 whatever the model's dtype,
            generated where the mask is 1 and ``known_latents`` exactly where it is 0.
        """
        # 1. Check inputs
        self.check_inputs(known_latents, generate_mask, num_inference_steps, strength, prior_latents,
                          encoder_hidden_states, guidance_scale, negative_encoder_hidden_states, output_type)
        # the latents stay float32 (so known ones stay exact); only the model's inputs take its dtype
        device, dtype = self.transformer.device, self.transformer.dtype
        known_latents = known_latents.to(device=device, dtype=torch.float32)
        keep = (generate_mask == 0).to(device)
        do_guidance = encoder_hidden_states is not None and guidance_scale > 1.0
        repeats = 2 if do_guidance else 1

        # 2. Text conditions
        encoder_hidden_states = self.encode_text(encoder_hidden_states, negative_encoder_hidden_states,
                                                 do_guidance, device, dtype)

        # 3. Timesteps: ``num_inference_steps`` noise levels from ``strength`` down to (not including) 0
        timesteps = self.prepare_timesteps(num_inference_steps, strength, device)

        # 4. Prepare latents and conditioning: the known latents and the mask, and a guided model's clean guess
        guided = is_guided(self.transformer) and prior_latents is not None
        model_guide = prior_latents.to(device=device, dtype=dtype).repeat(repeats, 1, 1, 1, 1) if guided else None
        latents = self.prepare_latents(known_latents, keep, prior_latents, strength, timesteps, generator, device)
        model_known = known_latents.to(dtype).repeat(repeats, 1, 1, 1, 1)
        model_mask = generate_mask.to(device=device, dtype=dtype).repeat(repeats, 1, 1, 1, 1)
        extra = {"guide_latents": model_guide} if guided else {}

        # 5. Denoising loop
        for i, t in enumerate(timesteps):
            check_cancel(cancel)
            model_input = latents.to(dtype).repeat(repeats, 1, 1, 1, 1)
            timestep = t.expand(model_input.shape[0])  # float32 even for a half-precision model
            velocity = self.transformer(
                model_input, model_known, model_mask, timestep, encoder_hidden_states=encoder_hidden_states, **extra
            ).sample.float()
            if do_guidance:
                velocity_negative, velocity_text = velocity.chunk(2)
                velocity = velocity_negative + guidance_scale * (velocity_text - velocity_negative)
            latents = self.scheduler.step(velocity, t, latents).prev_sample
            latents = torch.where(keep, known_latents, latents)  # known latents never drift
            if progress is not None:
                progress((i + 1) / len(timesteps), f"denoising step {i + 1}/{len(timesteps)}")

        # 6. Decode
        frames = None if output_type == "latent" else self.decode_latents(latents)

        # 7. Return
        if not return_dict:
            return latents, frames
        return ShotfillDiTPipelineOutput(latents=latents, frames=frames)
