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
                                           default_scheduler, denoising_sigmas)
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
def euler_by_hand(transformer, *, known_latents, generate_mask, levels, generator, prior_latents=None,
                  encoder_hidden_states=None, guidance_scale=1.0, negative_encoder_hidden_states=None):
    """The sampling the pipeline's options describe, written out without the scheduler: the guess
    (or pure noise at level 1) noised to ``levels[0]``, then one Euler step from each level to the next
    and from the last to 0, ``x += (next - level) * velocity``, the model seeing ``level * 1000``."""
    keep = generate_mask == 0
    noise = randn_tensor(known_latents.shape, generator=generator, dtype=torch.float32)
    first = torch.tensor(levels[0], dtype=torch.float32)
    start = noise if levels[0] == 1.0 else (1 - first) * prior_latents + first * noise
    latents = torch.where(keep, known_latents, start)
    do_guidance = encoder_hidden_states is not None and guidance_scale > 1.0
    if do_guidance:
        negative = torch.zeros_like(encoder_hidden_states) if negative_encoder_hidden_states is None \
            else negative_encoder_hidden_states
        encoder_hidden_states = torch.cat([negative, encoder_hidden_states])
    repeats = 2 if do_guidance else 1
    guided = bool(getattr(transformer.config, "guide", False)) and prior_latents is not None
    extra = {"guide_latents": prior_latents.repeat(repeats, 1, 1, 1, 1)} if guided else {}
    path = torch.tensor([*levels, 0.0], dtype=torch.float32)
    for level, following in zip(path[:-1], path[1:]):
        velocity = transformer(latents.repeat(repeats, 1, 1, 1, 1), known_latents.repeat(repeats, 1, 1, 1, 1),
                               generate_mask.repeat(repeats, 1, 1, 1, 1),
                               (level * NUM_TRAIN_TIMESTEPS).expand(latents.shape[0] * repeats),
                               encoder_hidden_states=encoder_hidden_states, **extra).sample
        if do_guidance:
            velocity_negative, velocity_text = velocity.chunk(2)
            velocity = velocity_negative + guidance_scale * (velocity_text - velocity_negative)
        latents = torch.where(keep, known_latents, latents + (following - level) * velocity)
    return latents


class Still(torch.nn.Module):
    """A transformer whose velocity is 0: sampling returns the latents it started from."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        self.config = type("Config", (), {"guide": False})()
        self.device, self.dtype = self.anchor.device, self.anchor.dtype

    def forward(self, hidden_states, *args, **kwargs):
        from diffusers.models.modeling_outputs import Transformer2DModelOutput
        return Transformer2DModelOutput(sample=torch.zeros_like(hidden_states))


STRENGTHS = (0.05, 0.1, 0.2, 0.25, 0.3, 1 / 3, 0.5, 0.75, 0.9, 1.0)


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 7, 8, 10, 16, 50])
def test_the_noise_levels_run_from_strength_down_to_zero_in_as_many_real_steps_as_asked(steps):
    pipeline = tiny_pipeline()
    for strength in STRENGTHS:
        levels = denoising_sigmas(steps, strength)
        expected = np.linspace(strength, 0, steps + 1).astype(np.float32)
        assert levels == expected[:-1].tolist(), (steps, strength)
        timesteps = pipeline.prepare_timesteps(steps, strength, "cpu")
        sigmas = pipeline.scheduler.sigmas
        assert torch.equal(sigmas, torch.from_numpy(expected)), (steps, strength)  # the scheduler's own 0 appended
        assert torch.equal(timesteps, sigmas[:-1] * NUM_TRAIN_TIMESTEPS)
        assert len(timesteps) == steps                           # every step runs
        assert sigmas[0] == np.float32(strength)                 # the first level is the strength itself
        assert sigmas[-2] == pytest.approx(strength / steps)     # the last step starts at strength / N, not at 0.001
        assert sigmas[-2] > 1.5 / NUM_TRAIN_TIMESTEPS or strength / steps <= 1.5 / NUM_TRAIN_TIMESTEPS
        assert bool((sigmas[:-1] - sigmas[1:] > 0).all())        # no step of zero length


def test_a_few_noise_levels_by_value():
    assert denoising_sigmas(1, 0.2) == [np.float32(0.2)]
    assert denoising_sigmas(2, 0.2) == [np.float32(0.2), np.float32(0.1)]
    assert denoising_sigmas(4, 1.0) == [1.0, 0.75, 0.5, 0.25]
    with pytest.raises(InputError, match="num_inference_steps"):
        denoising_sigmas(0, 0.2)
    with pytest.raises(InputError, match="strength"):
        denoising_sigmas(2, 0.0)


def test_the_first_guess_is_noised_to_exactly_the_strength_and_one_step_honours_it():
    still = ShotfillDiTPipeline(vae=None, transformer=Still(), scheduler=default_scheduler())
    known, mask, guess = window()
    generated = mask.expand_as(known).bool()
    for strength in (0.05, 0.2, 0.5, 0.9):
        for steps in (1, 3):
            out = still(known, mask, num_inference_steps=steps, generator=torch.Generator().manual_seed(4),
                        prior_latents=guess, strength=strength, output_type="latent").latents
            noise = randn_tensor(known.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float32)
            level = torch.tensor(strength, dtype=torch.float32)
            torch.testing.assert_close(out[generated], ((1 - level) * guess + level * noise)[generated],
                                       rtol=0, atol=1e-6)
            assert torch.equal(out[~generated], known[~generated])
    pipeline = tiny_pipeline(guide=True)
    one_step = {strength: pipeline(known, mask, num_inference_steps=1, generator=torch.Generator().manual_seed(4),
                                   prior_latents=guess, strength=strength, output_type="latent").latents
                for strength in (0.1, 0.2, 0.5)}
    assert not torch.allclose(one_step[0.1], one_step[0.2]) and not torch.allclose(one_step[0.2], one_step[0.5])


def test_every_step_count_from_1_to_8_changes_the_result_at_strength_0_2():
    pipeline = tiny_pipeline(guide=True)
    known, mask, guess = window()
    results = [pipeline(known, mask, num_inference_steps=steps, generator=torch.Generator().manual_seed(4),
                        prior_latents=guess, strength=0.2, output_type="latent").latents for steps in range(1, 9)]
    generated = mask.expand_as(known).bool()
    for a in range(len(results)):
        for b in range(a + 1, len(results)):
            assert (results[a] - results[b])[generated].abs().max() > 1e-4, (a + 1, b + 1)


@pytest.mark.parametrize("strength", [1.0, 0.5, 0.2])
@pytest.mark.parametrize("guide", [False, True])
def test_call_is_the_euler_path_its_options_describe(guide, strength):
    pipeline = tiny_pipeline(guide=guide)
    known, mask, guess = window(batch=2)
    for steps in (1, 3, 10):
        new = pipeline(known, mask, num_inference_steps=steps, generator=torch.Generator().manual_seed(4),
                       prior_latents=guess, strength=strength, output_type="latent").latents
        by_hand = euler_by_hand(pipeline.transformer, known_latents=known, generate_mask=mask,
                                levels=denoising_sigmas(steps, strength), generator=torch.Generator().manual_seed(4),
                                prior_latents=guess)
        assert new.dtype == torch.float32
        torch.testing.assert_close(new, by_hand, rtol=0, atol=1e-5)


def test_call_with_classifier_free_guidance_is_the_euler_path_with_guidance():
    pipeline = tiny_pipeline(text_dim=8)
    known, mask, _ = window()
    text, negative = torch.randn(1, 3, 8), torch.randn(1, 3, 8)
    kwargs = dict(encoder_hidden_states=text, guidance_scale=3.0, negative_encoder_hidden_states=negative)
    new = pipeline(known, mask, num_inference_steps=3, generator=torch.Generator().manual_seed(0),
                   output_type="latent", **kwargs).latents
    by_hand = euler_by_hand(pipeline.transformer, known_latents=known, generate_mask=mask,
                            levels=denoising_sigmas(3, 1.0), generator=torch.Generator().manual_seed(0), **kwargs)
    torch.testing.assert_close(new, by_hand, rtol=0, atol=1e-5)


def test_a_scheduler_that_would_move_the_noise_levels_is_refused(tmp_path):
    pipeline = tiny_pipeline()
    known, mask, guess = window()
    for config in ({"shift": 3.0}, {"use_karras_sigmas": True}, {"invert_sigmas": True}):
        pipeline.scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, **config)
        with pytest.raises(InputError, match="changes the noise levels it is given"):
            pipeline(known, mask, num_inference_steps=2, prior_latents=guess, strength=0.5)
    pipeline.save_pretrained(tmp_path / "model")  # the shifted one
    with pytest.raises(EngineUnavailableError, match=r"scheduler_config.json: the scheduler changes the noise levels"):
        ShotfillDiTPipeline.from_pretrained(tmp_path / "model")


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
