"""The dit engine's pipeline: a folder with model_index.json and a scheduler, the explicit noise levels,
and ``__call__`` against the sampling loop it replaced (tiny seeded models built here, CPU float32)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.utils.torch_utils import randn_tensor

from shotfill.engines.dit.engine import SHIPPED_MODEL
from shotfill.engines.dit.pipeline import (NUM_TRAIN_TIMESTEPS, ShotfillDiTPipeline, ShotfillDiTPipelineOutput,
                                           default_scheduler, denoising_sigmas, first_step)
from shotfill.errors import EngineUnavailableError, InputError
from shotfill.models import ShotfillTransformer3DModel, ShotfillVAE

CHANNELS = 4


def tiny_pipeline(guide: bool = False, text_dim: int = 0) -> ShotfillDiTPipeline:
    """A tiny VAE and transformer, every weight perturbed so the output depends on the inputs."""
    torch.manual_seed(0)
    vae = ShotfillVAE(latent_channels=CHANNELS, block_out_channels=(8, 16, 16)).eval()
    transformer = ShotfillTransformer3DModel.from_preset("tiny", in_channels=CHANNELS, guide=guide, text_dim=text_dim)
    with torch.no_grad():
        for parameter in transformer.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return ShotfillDiTPipeline(vae=vae, transformer=transformer.eval(), scheduler=default_scheduler())


def settings(scheduler) -> dict:
    """A scheduler's configuration, without diffusers' bookkeeping (``_class_name``, ``_use_default_values``...)."""
    return {k: v for k, v in scheduler.config.items() if not k.startswith("_")}


def window(batch: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Known latents, an extend-forward mask (2 of 5 frames known) and a first guess."""
    known = torch.randn((batch, CHANNELS, 5, 4, 6), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(batch, 1, 5, 4, 6)
    mask[:, :, :2] = 0
    guess = known + 0.3 * torch.randn(known.shape, generator=torch.Generator().manual_seed(2))
    return known, mask, guess


@torch.no_grad()
def sample_before_the_pipeline(transformer, *, known_latents, generate_mask, scheduler, num_steps, generator,
                               encoder_hidden_states=None, guidance_scale=1.0, negative_encoder_hidden_states=None,
                               prior_latents=None, strength=1.0):
    """``shotfill.models.sampler.sample`` as it was before the pipeline (commit 4c9f0f0), its input
    checks and progress left out: the schedule from ``set_timesteps(num_steps)``, cut at ``first``."""
    device, dtype = transformer.device, transformer.dtype
    known_latents = known_latents.to(device=device, dtype=torch.float32)
    keep = (generate_mask == 0).to(device)
    do_guidance = encoder_hidden_states is not None and guidance_scale > 1.0
    if do_guidance:
        if negative_encoder_hidden_states is None:
            negative_encoder_hidden_states = torch.zeros_like(encoder_hidden_states)
        encoder_hidden_states = torch.cat([negative_encoder_hidden_states, encoder_hidden_states])
    if encoder_hidden_states is not None:
        encoder_hidden_states = encoder_hidden_states.to(device=device, dtype=dtype)
    scheduler.set_timesteps(num_steps, device=device)
    first = min(int(round(num_steps * (1.0 - strength))), num_steps - 1)
    scheduler.set_begin_index(first)
    timesteps = scheduler.timesteps[first:]
    guided = bool(getattr(transformer.config, "guide", False)) and prior_latents is not None
    model_guide = prior_latents.to(device=device, dtype=dtype).repeat(2 if do_guidance else 1, 1, 1, 1, 1) if guided else None
    noise = randn_tensor(known_latents.shape, generator=generator, device=device, dtype=torch.float32)
    if first > 0:
        noise = scheduler.scale_noise(prior_latents.to(device=device, dtype=torch.float32), timesteps[:1], noise)
    latents = torch.where(keep, known_latents, noise)
    repeats = 2 if do_guidance else 1
    model_known = known_latents.to(dtype).repeat(repeats, 1, 1, 1, 1)
    model_mask = generate_mask.to(device=device, dtype=dtype).repeat(repeats, 1, 1, 1, 1)
    for t in timesteps:
        model_input = latents.to(dtype).repeat(repeats, 1, 1, 1, 1)
        timestep = t.expand(model_input.shape[0])
        extra = {"guide_latents": model_guide} if guided else {}
        velocity = transformer(
            model_input, model_known, model_mask, timestep, encoder_hidden_states=encoder_hidden_states, **extra
        ).sample.float()
        if do_guidance:
            velocity_negative, velocity_text = velocity.chunk(2)
            velocity = velocity_negative + guidance_scale * (velocity_text - velocity_negative)
        latents = scheduler.step(velocity, t, latents).prev_sample
        latents = torch.where(keep, known_latents, latents)
    return latents


STRENGTHS = (0.05, 0.1, 0.2, 0.25, 0.3, 1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.75, 0.8, 0.9, 0.95, 1.0)


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 7, 10, 16, 20, 25, 50, 100])
def test_explicit_sigmas_give_the_schedule_of_set_timesteps_cut_at_the_strength_bit_for_bit(steps):
    for strength in STRENGTHS:
        before = default_scheduler()
        before.set_timesteps(steps)
        first = min(int(round(steps * (1.0 - strength))), steps - 1)
        assert first_step(steps, strength) == first
        explicit = default_scheduler()
        explicit.set_timesteps(sigmas=denoising_sigmas(explicit, steps, strength))
        assert torch.equal(explicit.timesteps, before.timesteps[first:]), (steps, strength)
        assert torch.equal(explicit.sigmas, before.sigmas[first:]), (steps, strength)
        assert explicit.sigmas.dtype == explicit.timesteps.dtype == torch.float32
        assert explicit.sigmas[-1] == 0  # the scheduler's terminal level
        # the last step runs at 0.001 (a one-step path has only its first, at 1)
        assert explicit.sigmas[-2] == (np.float32(1 / NUM_TRAIN_TIMESTEPS) if steps > 1 else 1.0)
        # the first guess is noised to the same level
        sample, noise = torch.ones(3), torch.zeros(3)
        before.set_begin_index(first)
        explicit.set_begin_index(0)
        assert torch.equal(explicit.scale_noise(sample, explicit.timesteps[:1], noise),
                           before.scale_noise(sample, before.timesteps[first:][:1], noise))


@pytest.mark.parametrize("strength", [1.0, 0.5, 0.2])
@pytest.mark.parametrize("guide", [False, True])
def test_call_gives_the_latents_of_the_sampling_loop_it_replaced(guide, strength):
    pipeline = tiny_pipeline(guide=guide)
    known, mask, guess = window(batch=2)
    for steps in (1, 3, 10):
        new = pipeline(known, mask, num_inference_steps=steps, generator=torch.Generator().manual_seed(4),
                       prior_latents=guess, strength=strength, output_type="latent").latents
        old = sample_before_the_pipeline(pipeline.transformer, known_latents=known, generate_mask=mask,
                                         scheduler=default_scheduler(), num_steps=steps,
                                         generator=torch.Generator().manual_seed(4), prior_latents=guess,
                                         strength=strength)
        assert new.dtype == torch.float32 and torch.equal(new, old), steps


def test_call_with_classifier_free_guidance_gives_the_latents_of_the_loop_it_replaced():
    pipeline = tiny_pipeline(text_dim=8)
    known, mask, _ = window()
    text, negative = torch.randn(1, 3, 8), torch.randn(1, 3, 8)
    kwargs = dict(encoder_hidden_states=text, guidance_scale=3.0, negative_encoder_hidden_states=negative)
    new = pipeline(known, mask, num_inference_steps=3, generator=torch.Generator().manual_seed(0),
                   output_type="latent", **kwargs).latents
    old = sample_before_the_pipeline(pipeline.transformer, known_latents=known, generate_mask=mask,
                                     scheduler=default_scheduler(), num_steps=3,
                                     generator=torch.Generator().manual_seed(0), **kwargs)
    assert torch.equal(new, old)


def test_call_decodes_unless_asked_for_latents_and_returns_a_dataclass_or_a_tuple():
    pipeline = tiny_pipeline()
    known, mask, _ = window()
    out = pipeline(known, mask, num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert isinstance(out, ShotfillDiTPipelineOutput)
    f = pipeline.vae.spatial_compression
    assert out.frames.shape == (1, 3, 5, 4 * f, 6 * f)
    torch.testing.assert_close(out.frames, pipeline.decode_latents(out.latents), rtol=0, atol=0)
    latents, frames = pipeline(known, mask, num_inference_steps=2, generator=torch.Generator().manual_seed(0),
                               output_type="latent", return_dict=False)
    assert frames is None and torch.equal(latents, out.latents)
    with pytest.raises(InputError, match="output_type"):
        pipeline(known, mask, output_type="pil")
    pipeline.vae = None
    with pytest.raises(InputError, match="no VAE"):
        pipeline(known, mask, output_type="pt")


def test_the_pipeline_saves_and_loads_as_a_folder_with_a_model_index_and_a_scheduler(tmp_path):
    pipeline = tiny_pipeline(guide=True)
    pipeline.save_pretrained(tmp_path / "model")
    index = json.loads((tmp_path / "model" / "model_index.json").read_text())
    assert index["_class_name"] == "ShotfillDiTPipeline"
    assert index["scheduler"] == ["diffusers", "FlowMatchEulerDiscreteScheduler"]
    assert index["vae"][1] == "ShotfillVAE" and index["transformer"][1] == "ShotfillTransformer3DModel"
    scheduler_config = json.loads((tmp_path / "model" / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler_config["num_train_timesteps"] == NUM_TRAIN_TIMESTEPS
    for part in ("vae", "transformer"):
        assert (tmp_path / "model" / part / "config.json").is_file()
        assert list((tmp_path / "model" / part).glob("*.safetensors"))

    again = ShotfillDiTPipeline.from_pretrained(tmp_path / "model")
    assert isinstance(again.scheduler, FlowMatchEulerDiscreteScheduler)
    assert settings(again.scheduler) == settings(pipeline.scheduler)
    assert not again.transformer.training and not again.vae.training
    known, mask, guess = window()
    runs = [p(known, mask, num_inference_steps=3, generator=torch.Generator().manual_seed(0), prior_latents=guess,
              strength=0.5) for p in (pipeline, again)]
    assert torch.equal(runs[0].latents, runs[1].latents) and torch.equal(runs[0].frames, runs[1].frames)


def test_a_folder_without_model_index_or_scheduler_gets_the_scheduler_the_model_is_trained_for(tmp_path):
    pipeline = tiny_pipeline()
    pipeline.vae.save_pretrained(tmp_path / "old" / "vae")
    pipeline.transformer.save_pretrained(tmp_path / "old" / "transformer")
    loaded = ShotfillDiTPipeline.from_pretrained(tmp_path / "old")
    assert settings(loaded.scheduler) == settings(default_scheduler())


def test_a_model_index_of_another_pipeline_is_refused(tmp_path):
    pipeline = tiny_pipeline()
    pipeline.save_pretrained(tmp_path / "model")
    index_file = tmp_path / "model" / "model_index.json"
    index_file.write_text(json.dumps({**json.loads(index_file.read_text()), "_class_name": "WanVACEPipeline"}))
    with pytest.raises(EngineUnavailableError, match="a WanVACEPipeline checkpoint"):
        ShotfillDiTPipeline.from_pretrained(tmp_path / "model")
    index_file.write_text("{")
    with pytest.raises(EngineUnavailableError, match="not a readable model index"):
        ShotfillDiTPipeline.from_pretrained(tmp_path / "model")


@pytest.mark.skipif(not (SHIPPED_MODEL / "manifest.json").is_file(), reason="no shipped checkpoint in resources/dit")
def test_the_shipped_checkpoint_is_a_pipeline_folder_with_the_default_scheduler():
    index = json.loads((SHIPPED_MODEL / "model_index.json").read_text())
    assert index["_class_name"] == "ShotfillDiTPipeline"
    pipeline = ShotfillDiTPipeline.from_pretrained(SHIPPED_MODEL)
    assert settings(pipeline.scheduler) == settings(default_scheduler())
    assert pipeline.transformer.dtype == pipeline.vae.dtype == torch.float32
