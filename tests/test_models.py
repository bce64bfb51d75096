"""Tests of the DiT, its sampling (the dit pipeline), its training loss and the VAE, with tiny seeded models
built in code (CPU, float32)."""
from __future__ import annotations

import json

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.models.modeling_outputs import Transformer2DModelOutput

from shotfill.engines.dit.pipeline import ShotfillDiTPipeline
from shotfill.errors import CancelledError, InputError
from shotfill.models.transformer_shotfill import (
    SIZE_PRESETS,
    RotaryPosEmbed3D,
    SelfAttention,
    ShotfillTransformer3DModel,
    apply_rotary,
    rotary_for_windows,
)
from shotfill.models.vae_shotfill import ShotfillVAE
from shotfill.plan import TaskKind
from shotfill.training.loss import flow_matching_loss, random_generate_mask

CHANNELS = 4


def tiny_transformer(seed: int = 0, **overrides) -> ShotfillTransformer3DModel:
    """The tiny preset with 4 latent channels, its zero-initialised layers (adaLN-Zero) perturbed.

    A freshly built model outputs zeros everywhere by design; perturbing every weight makes
    its output depend on its inputs, so the tests below can tell right from wrong.
    """
    torch.manual_seed(seed)
    model = ShotfillTransformer3DModel.from_preset("tiny", in_channels=CHANNELS, **overrides)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


def tiny_vae(seed: int = 0, **config) -> ShotfillVAE:
    torch.manual_seed(seed)
    return ShotfillVAE(latent_channels=CHANNELS, block_out_channels=(8, 16, 32, 32), **config).eval()


def latents(shape=(1, CHANNELS, 4, 4, 6), seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def extend_forward_mask(shape=(1, 1, 4, 4, 6), known: int = 2) -> torch.Tensor:
    mask = torch.ones(shape)
    mask[:, :, :known] = 0
    return mask


def fill_mask() -> torch.Tensor:
    """A box to generate in every frame of (1, 1, 4, 4, 6)."""
    mask = torch.zeros(1, 1, 4, 4, 6)
    mask[:, :, :, 1:3, 2:5] = 1
    return mask


def plan_layout(kind: TaskKind) -> torch.Tensor:
    """Each plan kind over 5 latent frames (K known, G generated)::

        extend forward   K K G G G
        extend backward  G G G K K
        bridge           K G G G K
        fill             every frame, a box generated
    """
    mask = torch.zeros(1, 1, 5, 4, 6)
    if kind is TaskKind.EXTEND_FORWARD:
        mask[:, :, 2:] = 1
    elif kind is TaskKind.EXTEND_BACKWARD:
        mask[:, :, :3] = 1
    elif kind is TaskKind.BRIDGE:
        mask[:, :, 1:4] = 1
    else:
        mask[:, :, :, 1:3, 2:5] = 1
    return mask


def scheduler() -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(shift=1.0)


def sample(transformer, *, known_latents, generate_mask, scheduler, num_steps, generator, **kwargs) -> torch.Tensor:
    """The latents the dit pipeline makes with ``transformer`` and ``scheduler`` alone (no VAE)."""
    pipeline = ShotfillDiTPipeline(vae=None, transformer=transformer, scheduler=scheduler)
    return pipeline(known_latents, generate_mask, num_inference_steps=num_steps, generator=generator,
                    output_type="latent", **kwargs).latents


def run(model, known, mask, timestep=500.0, noisy=None, text=None) -> torch.Tensor:
    noisy = latents(known.shape, seed=7) if noisy is None else noisy
    with torch.no_grad():
        return model(noisy, known, mask, torch.full((known.shape[0],), timestep), text).sample


# -- transformer -------------------------------------------------------------------------


@pytest.mark.parametrize("frames, height, width", [(1, 2, 2), (3, 6, 10), (5, 14, 4), (2, 8, 8)])
def test_transformer_output_has_the_input_shape_for_any_length_size_and_aspect(frames, height, width):
    model = tiny_transformer()
    known = latents((2, CHANNELS, frames, height, width))
    out = run(model, known, torch.ones(2, 1, frames, height, width))
    assert out.shape == known.shape
    assert torch.isfinite(out).all()


def test_transformer_with_a_temporal_patch():
    model = tiny_transformer(patch_size=(2, 2, 2))
    known = latents((1, CHANNELS, 6, 4, 8))
    assert run(model, known, extend_forward_mask((1, 1, 6, 4, 8))).shape == known.shape
    with pytest.raises(InputError, match="frames 5 is not a multiple of the patch size 2"):
        run(model, latents((1, CHANNELS, 5, 4, 8)), torch.ones(1, 1, 5, 4, 8))


def test_transformer_rejects_shapes_it_cannot_patch_or_mismatched_inputs():
    model = tiny_transformer()
    with pytest.raises(InputError, match="width 5 is not a multiple"):
        run(model, latents((1, CHANNELS, 2, 4, 5)), torch.ones(1, 1, 2, 4, 5))
    with pytest.raises(InputError, match="generate_mask must be"):
        run(model, latents(), torch.ones(1, CHANNELS, 4, 4, 6))
    with pytest.raises(InputError, match="hidden_states must be"):
        run(model, latents((1, 3, 4, 4, 6)), torch.ones(1, 1, 4, 4, 6))


def test_a_new_transformer_starts_at_zero_output_adaln_zero():
    model = ShotfillTransformer3DModel.from_preset("tiny", in_channels=CHANNELS)
    assert torch.equal(run(model, latents(), extend_forward_mask()), torch.zeros(1, CHANNELS, 4, 4, 6))


def test_noise_at_known_positions_is_never_read():
    model = tiny_transformer()
    known, mask = latents(), extend_forward_mask()
    noisy = latents(seed=3)
    other_noise_where_known = torch.where(mask.bool(), noisy, latents(seed=4))
    assert torch.equal(run(model, known, mask, noisy=noisy), run(model, known, mask, noisy=other_noise_where_known))
    other_noise_where_generated = torch.where(mask.bool(), latents(seed=4), noisy)
    other = run(model, known, mask, noisy=other_noise_where_generated)
    assert not torch.allclose(run(model, known, mask, noisy=noisy), other)


def test_known_latents_condition_the_generated_ones():
    model = tiny_transformer()
    mask = extend_forward_mask()
    a, b = run(model, latents(seed=1), mask), run(model, latents(seed=2), mask)
    generated = mask.expand_as(a).bool()
    assert not torch.allclose(a[generated], b[generated])


def test_the_mask_itself_is_seen_by_the_model():
    model = tiny_transformer()
    known = latents()
    noisy = known.clone()  # stream and known channels identical: only the mask channel differs
    assert not torch.allclose(
        run(model, known, extend_forward_mask(known=1), noisy=noisy),
        run(model, known, extend_forward_mask(known=2), noisy=noisy),
    )


def test_rotary_attention_scores_depend_on_relative_position_only():
    rope = RotaryPosEmbed3D((8, 12, 12))
    grid = (4, 5, 6)
    rotary = rope(grid, torch.device("cpu"), torch.float32)
    q, k = torch.randn(32), torch.randn(32)
    rotated_q = apply_rotary(q.expand(120, 32), rotary).view(*grid, 32)
    rotated_k = apply_rotary(k.expand(120, 32), rotary).view(*grid, 32)
    score = torch.einsum("d,d->", rotated_q[1, 2, 3], rotated_k[0, 1, 1])
    shifted = torch.einsum("d,d->", rotated_q[3, 4, 5], rotated_k[2, 3, 3])  # both moved by (2, 2, 2)
    moved = torch.einsum("d,d->", rotated_q[3, 4, 5], rotated_k[0, 1, 1])
    assert torch.allclose(score, shifted, atol=1e-4)
    assert not torch.allclose(score, moved, atol=1e-2)


def test_save_and_load_round_trip_gives_identical_outputs(tmp_path):
    model = tiny_transformer(text_dim=8)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["_class_name"] == "ShotfillTransformer3DModel"
    assert config["text_dim"] == 8 and config["in_channels"] == CHANNELS

    loaded = ShotfillTransformer3DModel.from_pretrained(tmp_path).eval()
    known, mask, text = latents(), extend_forward_mask(), torch.randn(1, 3, 8)
    assert torch.equal(run(model, known, mask, text=text), run(loaded, known, mask, text=text))


def test_presets_build_and_the_shipped_size_fits_a_cpu():
    with torch.device("meta"):
        sizes = {name: ShotfillTransformer3DModel.from_preset(name).num_parameters() for name in SIZE_PRESETS}
    assert set(sizes) == {"tiny", "small", "large"}
    assert sizes["tiny"] < sizes["small"] < sizes["large"]
    assert 5e6 <= sizes["small"] <= 15e6
    with pytest.raises(InputError, match="unknown model size 'huge'"):
        ShotfillTransformer3DModel.from_preset("huge")


def test_bad_configs_are_refused():
    with pytest.raises(InputError, match="rope_axes_dim"):
        ShotfillTransformer3DModel.from_preset("tiny", rope_axes_dim=(8, 8, 8))
    with pytest.raises(InputError, match="not a multiple of num_heads"):
        ShotfillTransformer3DModel.from_preset("tiny", num_heads=3)


def test_text_conditioning_changes_the_output_and_is_required_when_configured():
    model = tiny_transformer(text_dim=8)
    known, mask = latents(), extend_forward_mask()
    a = run(model, known, mask, text=torch.randn(1, 3, 8))
    b = run(model, known, mask, text=torch.randn(1, 5, 8))
    assert not torch.allclose(a, b)
    with pytest.raises(InputError, match=r"encoder_hidden_states must be \(1, L, 8\)"):
        run(model, known, mask)
    with pytest.raises(InputError, match="has no text conditioning"):
        run(tiny_transformer(), known, mask, text=torch.randn(1, 3, 8))


def test_gradient_checkpointing_gives_the_same_gradients():
    known, mask = latents(), extend_forward_mask()
    grads = []
    for checkpointing in (False, True):
        model = tiny_transformer().train()
        if checkpointing:
            model.enable_gradient_checkpointing()
        flow_matching_loss(model, known, mask, torch.Generator().manual_seed(0)).backward()
        grads.append(model.patch_embed.weight.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


# -- factorised attention -----------------------------------------------------------------


def window_attention(window: str, seed: int = 0) -> tuple[SelfAttention, SelfAttention]:
    """A ``window`` attention and a full one with the same (seeded) weights."""
    torch.manual_seed(seed)
    full = SelfAttention(64, 2, 1e-6).eval()  # 32-wide heads: rotary split 8/12/12
    windowed = SelfAttention(64, 2, 1e-6, window).eval()
    windowed.load_state_dict(full.state_dict())
    return windowed, full


def attend(attention: SelfAttention, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    rotary = RotaryPosEmbed3D((8, 12, 12))(grid, torch.device("cpu"), torch.float32)
    with torch.no_grad():
        return attention(x, rotary_for_windows(rotary, grid, attention.window), grid)


def test_spatial_attention_is_full_attention_within_each_frame():
    """Frame by frame, spatial attention is full attention over that frame alone: the rotary time
    part cancels inside a frame, so a frame attended at time t equals it attended as frame 0."""
    spatial, full = window_attention("spatial")
    grid = (3, 4, 5)
    x = torch.randn(2, 60, 64, generator=torch.Generator().manual_seed(1))
    out = attend(spatial, x, grid).view(2, 3, 20, 64)
    for frame in range(3):
        alone = attend(full, x.view(2, 3, 20, 64)[:, frame], (1, 4, 5))
        assert torch.allclose(out[:, frame], alone, atol=1e-5)


def test_temporal_attention_is_full_attention_along_each_positions_track():
    temporal, full = window_attention("temporal")
    grid = (3, 4, 5)
    x = torch.randn(2, 60, 64, generator=torch.Generator().manual_seed(1))
    out = attend(temporal, x, grid).view(2, 3, 4, 5, 64)
    for row, column in ((0, 0), (1, 3), (3, 4)):
        track = x.view(2, 3, 4, 5, 64)[:, :, row, column]  # (B, T', D)
        alone = attend(full, track, (3, 1, 1))
        assert torch.allclose(out[:, :, row, column], alone, atol=1e-5)


@pytest.mark.parametrize("window", ["spatial", "temporal"])
def test_a_token_sees_only_its_window(window):
    """The gradient of one output token reaches its own frame (spatial) or its own position (temporal)."""
    attention, _ = window_attention(window)
    grid = (3, 4, 5)
    x = torch.randn(1, 60, 64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    rotary = rotary_for_windows(RotaryPosEmbed3D((8, 12, 12))(grid, torch.device("cpu"), torch.float32), grid, window)
    attention(x, rotary, grid).view(3, 4, 5, 64)[1, 2, 3].sum().backward()
    reached = (x.grad.view(3, 4, 5, 64).abs().sum(-1) > 0)  # (T', H', W')
    expected = torch.zeros(3, 4, 5, dtype=torch.bool)
    if window == "spatial":
        expected[1] = True
    else:
        expected[:, 2, 3] = True
    assert torch.equal(reached, expected)


def test_factorised_blocks_alternate_and_two_of_them_connect_every_token():
    model = tiny_transformer(attention="factorised")
    assert [block.attn.window for block in model.blocks] == ["spatial", "temporal"]
    assert tiny_transformer().config.attention == "full"
    known, mask = latents(), extend_forward_mask()
    noisy = latents(seed=7).requires_grad_(True)
    model(noisy, known, mask, torch.full((1,), 500.0)).sample[0, :, 3, 2, 4].sum().backward()
    assert (noisy.grad[0, :, 2:].abs().sum(0) > 0).all()  # every generated latent reaches the corner token


def test_factorised_model_is_deterministic_and_keeps_the_input_shape():
    model = tiny_transformer(attention="factorised")
    for shape in ((2, CHANNELS, 5, 6, 10), (1, CHANNELS, 1, 2, 2)):
        known = latents(shape)
        mask = torch.ones(shape[0], 1, *shape[2:])
        first, second = run(model, known, mask), run(model, known, mask)
        assert first.shape == known.shape and torch.isfinite(first).all()
        assert torch.equal(first, second)


def test_factorised_attention_with_text_and_guide_and_a_temporal_patch():
    model = tiny_transformer(attention="factorised", text_dim=8, guide=True, patch_size=(2, 2, 2))
    known, mask = latents(), extend_forward_mask()
    noisy, t = latents(seed=7), torch.full((1,), 500.0)
    text = torch.randn(1, 3, 8)
    with torch.no_grad():
        plain = model(noisy, known, mask, t, text).sample
        guided = model(noisy, known, mask, t, text, guide_latents=latents(seed=9)).sample
        other_text = model(noisy, known, mask, t, torch.randn(1, 3, 8)).sample
    assert plain.shape == known.shape
    assert not torch.allclose(plain, guided) and not torch.allclose(plain, other_text)


def test_converting_to_factorised_keeps_every_weight_and_survives_save_and_load(tmp_path):
    full = tiny_transformer(text_dim=8)
    converted = full.with_attention("factorised")
    assert converted.config.attention == "factorised" and full.config.attention == "full"
    assert converted.with_attention("factorised") is converted
    assert all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), converted.state_dict().values()))
    known, mask, text = latents(), extend_forward_mask(), torch.randn(1, 3, 8)
    assert not torch.allclose(run(full, known, mask, text=text), run(converted.eval(), known, mask, text=text))
    converted.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["attention"] == "factorised"
    loaded = ShotfillTransformer3DModel.from_pretrained(tmp_path).eval()
    assert [block.attn.window for block in loaded.blocks] == ["spatial", "temporal"]
    assert torch.equal(run(converted.eval(), known, mask, text=text), run(loaded, known, mask, text=text))


def test_unknown_attention_is_refused():
    with pytest.raises(InputError, match="attention 'sparse' is not one of full, factorised"):
        ShotfillTransformer3DModel.from_preset("tiny", attention="sparse")
    with pytest.raises(InputError, match="attention 'sparse'"):
        tiny_transformer().with_attention("sparse")


def test_gradient_checkpointing_gives_the_same_gradients_with_factorised_attention():
    known, mask = latents(), extend_forward_mask()
    grads = []
    for checkpointing in (False, True):
        model = tiny_transformer(attention="factorised").train()
        if checkpointing:
            model.enable_gradient_checkpointing()
        flow_matching_loss(model, known, mask, torch.Generator().manual_seed(0)).backward()
        grads.append(model.patch_embed.weight.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


#: the shipped checkpoint's output on :func:`shipped_inputs`, recorded with the model file as it was before
#: the ``attention`` option existed (its output then and now was checked equal bit for bit on this input)
SHIPPED_SLICES = ([-0.278565376996994, -0.34840527176856995, 0.7068178653717041],
                  [-0.5182000398635864, 0.2863770127296448])


def test_the_shipped_checkpoint_loads_with_full_attention_and_computes_as_before():
    from shotfill.engines.dit.engine import SHIPPED_MODEL

    if not (SHIPPED_MODEL / "transformer" / "config.json").is_file():
        pytest.skip("no shipped checkpoint in resources/dit")
    config = json.loads((SHIPPED_MODEL / "transformer" / "config.json").read_text())
    model = ShotfillTransformer3DModel.from_pretrained(SHIPPED_MODEL / "transformer", torch_dtype=torch.float32)
    if config.get("attention", "full") != "full" or config.get("_name_or_path") != "/tmp/ckpt5/transformer":
        pytest.skip("the shipped checkpoint is not the one the slices were recorded from")
    assert model.config.attention == "full"
    generator = torch.Generator().manual_seed(0)
    shape = (2, 16, 8, 36, 64)
    noisy, known, guess = (torch.randn(shape, generator=generator) for _ in range(3))
    mask = torch.zeros(2, 1, 8, 36, 64)
    mask[:, :, 4:] = 1
    with torch.no_grad():
        out = model.eval()(noisy, known, mask, torch.tensor([200.0, 600.0]), guide_latents=guess).sample
    assert torch.allclose(out[0, :3, 5, 10, 20], torch.tensor(SHIPPED_SLICES[0]), atol=1e-5)
    assert torch.allclose(out[1, 0, 7, :2, 0], torch.tensor(SHIPPED_SLICES[1]), atol=1e-5)


# -- training loss ---------------------------------------------------------------------------


def test_one_adamw_step_lowers_the_flow_matching_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = ShotfillTransformer3DModel.from_preset("tiny", in_channels=CHANNELS).train()
    clean = latents((4, CHANNELS, 4, 4, 6))
    mask = random_generate_mask((4, 4, 4, 6), torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        return flow_matching_loss(model, clean, mask, torch.Generator().manual_seed(123))

    before = loss()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss()
    assert after < before


class OracleTransformer(torch.nn.Module):
    """Knows the clean latents: returns the exact flow-matching velocity ``(x - clean) / sigma``
    where generated and ``junk`` where known, so it checks the pipeline's and the loss's conventions.
    """

    def __init__(self, clean: torch.Tensor, junk: float = 0.0):
        super().__init__()
        self.clean, self.junk = clean, junk
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        self.device, self.dtype = self.anchor.device, self.anchor.dtype

    def forward(self, hidden_states, known_latents, generate_mask, timestep, encoder_hidden_states=None):
        sigma = (timestep / 1000).view(-1, 1, 1, 1, 1)
        velocity = (hidden_states - self.clean) / sigma
        return Transformer2DModelOutput(sample=torch.where(generate_mask.bool(), velocity, self.junk))


def test_the_loss_is_zero_for_the_exact_velocity_and_counts_generated_latents_only():
    clean, mask = latents(), extend_forward_mask()
    oracle = OracleTransformer(clean, junk=1000.0)
    assert flow_matching_loss(oracle, clean, mask, torch.Generator().manual_seed(0)) < 1e-8
    with pytest.raises(InputError, match="nothing to generate"):
        flow_matching_loss(oracle, clean, torch.zeros_like(mask), torch.Generator().manual_seed(0))


def test_refinement_samples_learn_to_reach_the_clean_latents_not_to_keep_the_guess():
    clean, mask = latents(shape=(2, CHANNELS, 4, 4, 6)), extend_forward_mask(shape=(2, 1, 4, 4, 6))
    guess = clean + 0.5 * latents(shape=(2, CHANNELS, 4, 4, 6), seed=7)  # a first guess with errors
    refine = torch.tensor([True, False])
    oracle = OracleTransformer(clean)
    assert flow_matching_loss(oracle, clean, mask, torch.Generator().manual_seed(0), prior_latents=guess,
                              refine=refine, refine_sigma=(0.1, 0.4)) < 1e-8

    class TrustsTheGuess(OracleTransformer):  # takes the guess for the clean latents
        pass

    truster = TrustsTheGuess(guess)
    only_refined = flow_matching_loss(truster, clean[:1], mask[:1], torch.Generator().manual_seed(0),
                                      prior_latents=guess[:1], refine=refine[:1])
    assert only_refined > 0.25  # (guess - clean) / sigma, with sigma at most 0.5
    with pytest.raises(InputError, match="prior_latents"):
        flow_matching_loss(oracle, clean, mask, None, refine=refine)
    with pytest.raises(InputError, match="refine_sigma"):
        flow_matching_loss(oracle, clean, mask, None, prior_latents=guess, refine=refine, refine_sigma=(0.5, 0.1))


def test_refining_a_guess_with_the_refinement_velocity_lands_on_the_clean_latents():
    clean, mask = latents(seed=3), extend_forward_mask()
    guess = clean + latents(seed=4)
    out = sample(OracleTransformer(clean), known_latents=clean, generate_mask=mask,
                 scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000), num_steps=10,
                 generator=torch.Generator().manual_seed(0), prior_latents=guess, strength=0.3)
    torch.testing.assert_close(out, clean, atol=1e-4, rtol=0)


def test_sampling_the_exact_velocity_lands_on_the_clean_latents():
    clean, mask = latents(seed=11), fill_mask()
    known = torch.where(mask.bool(), 0.0, clean)
    out = sample(
        OracleTransformer(clean), known_latents=known, generate_mask=mask, scheduler=scheduler(), num_steps=3,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.allclose(out, clean, atol=1e-4)


def test_refining_a_prior_runs_every_step_from_strength_and_starts_from_the_noised_prior():
    clean, mask = latents(seed=11), fill_mask()
    known = torch.where(mask.bool(), 0.0, clean)
    for num_steps in (1, 3, 10):
        steps = []
        out = sample(
            OracleTransformer(clean), known_latents=known, generate_mask=mask, scheduler=scheduler(),
            num_steps=num_steps, generator=torch.Generator().manual_seed(0), prior_latents=torch.zeros_like(clean),
            strength=0.3, progress=lambda fraction, message: steps.append(message),
        )
        assert len(steps) == num_steps                       # every step runs, from 0.3 down to 0
        assert torch.allclose(out, clean, atol=1e-4)         # the exact velocity still lands on the clean latents

    class Still(OracleTransformer):                          # zero velocity: the start is the answer
        def forward(self, hidden_states, *args, **kwargs):
            return Transformer2DModelOutput(sample=torch.zeros_like(hidden_states))

    prior = latents(seed=12)
    distance = {}
    for strength in (1.0, 0.5, 0.2):
        start = sample(Still(clean), known_latents=known, generate_mask=mask, scheduler=scheduler(), num_steps=10,
                       generator=torch.Generator().manual_seed(0), prior_latents=prior, strength=strength)
        distance[strength] = (start - prior)[mask.expand_as(prior).bool()].abs().mean().item()
        assert torch.equal(start[~mask.expand_as(prior).bool()], known[~mask.expand_as(prior).bool()])
    assert distance[0.2] < distance[0.5] < distance[1.0]
    with pytest.raises(InputError, match="needs prior_latents"):
        sample_tiny(strength=0.5)
    with pytest.raises(InputError, match="strength must be in"):
        sample_tiny(strength=0.0)


def test_text_dropout_zeroes_some_text_embeddings():
    model = tiny_transformer(text_dim=8)
    clean, mask, text = latents((4, CHANNELS, 4, 4, 6)), extend_forward_mask((4, 1, 4, 4, 6)), torch.randn(4, 3, 8)
    with torch.no_grad():
        kept = flow_matching_loss(model, clean, mask, torch.Generator().manual_seed(0), encoder_hidden_states=text)
        dropped = flow_matching_loss(
            model, clean, mask, torch.Generator().manual_seed(0), encoder_hidden_states=text, text_dropout=1.0
        )
        zeros = flow_matching_loss(
            model, clean, mask, torch.Generator().manual_seed(0), encoder_hidden_states=torch.zeros_like(text)
        )
    assert not torch.isclose(kept, dropped)
    assert torch.isclose(dropped, zeros)


@pytest.mark.parametrize("kind", list(TaskKind))
def test_random_training_masks_have_the_layout_of_their_task_kind(kind):
    masks = random_generate_mask((8, 6, 8, 8), torch.Generator().manual_seed(0), kinds=(kind,))
    assert masks.shape == (8, 1, 6, 8, 8)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    for mask in masks[:, 0]:
        per_frame = mask.flatten(1).mean(1)  # fraction generated, per frame
        whole = per_frame[(per_frame == 0) | (per_frame == 1)]
        if kind is TaskKind.FILL:
            assert ((per_frame > 0) & (per_frame < 1)).all()
            assert torch.equal(mask, mask[:1].expand_as(mask))
            continue
        assert len(whole) == len(per_frame) and 0 < per_frame.sum() < len(per_frame)
        generated = per_frame.nonzero().flatten()
        assert torch.equal(generated, torch.arange(generated[0], generated[-1] + 1))  # one run of generated frames
        starts, ends = bool(per_frame[0]), bool(per_frame[-1])
        assert (starts, ends) == {
            TaskKind.EXTEND_FORWARD: (False, True),
            TaskKind.EXTEND_BACKWARD: (True, False),
            TaskKind.BRIDGE: (False, False),
        }[kind]
        if kind is TaskKind.BRIDGE:  # two known frames on one side at least, for the first guess's self-check
            assert max(int(generated[0]), len(per_frame) - 1 - int(generated[-1])) >= 2


def test_training_bridges_always_keep_two_known_frames_on_one_side_and_need_four_frames():
    masks = random_generate_mask((400, 4, 2, 2), torch.Generator().manual_seed(1), kinds=(TaskKind.BRIDGE,))
    layouts = {tuple(int(v) for v in m[0, :, 0, 0]) for m in masks}
    assert layouts == {(0, 0, 1, 0), (0, 1, 0, 0)}                  # 2 + 1 and 1 + 2 known, never 1 + 1
    with pytest.raises(InputError, match="too short"):
        random_generate_mask((1, 3, 2, 2), None, kinds=(TaskKind.BRIDGE,))


# -- sampling ------------------------------------------------------------------------------------


def sample_tiny(model=None, known=None, mask=None, seed=0, **kwargs) -> torch.Tensor:
    kwargs.setdefault("scheduler", scheduler())
    return sample(
        model or tiny_transformer(),
        known_latents=latents() if known is None else known,
        generate_mask=extend_forward_mask() if mask is None else mask,
        num_steps=kwargs.pop("num_steps", 4),
        generator=torch.Generator().manual_seed(seed),
        **kwargs,
    )


def test_sampling_is_deterministic_for_a_seed():
    model = tiny_transformer()
    a, b, c = sample_tiny(model, seed=5), sample_tiny(model, seed=5), sample_tiny(model, seed=6)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("kind", list(TaskKind))
def test_each_plan_kind_samples_end_to_end_with_known_latents_bit_exact(kind):
    known = latents((1, CHANNELS, 5, 4, 6))
    mask = plan_layout(kind)
    out = sample_tiny(known=known, mask=mask)
    keep = (mask == 0).expand_as(known)
    assert out.shape == known.shape and torch.isfinite(out).all()
    assert torch.equal(out[keep], known[keep])
    assert not torch.allclose(out[~keep], known[~keep])


def test_a_half_precision_model_samples_float32_latents_with_known_ones_exact():
    known, mask = latents(), extend_forward_mask()
    out = sample_tiny(tiny_transformer().to(torch.bfloat16), known=known, mask=mask)
    keep = (mask == 0).expand_as(known)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.equal(out[keep], known[keep])


def test_progress_is_reported_every_step_and_cancel_stops_the_loop():
    seen = []
    sample_tiny(num_steps=3, progress=lambda fraction, message: seen.append((fraction, message)))
    assert [round(f, 3) for f, _ in seen] == [0.333, 0.667, 1.0]
    assert seen[-1][1] == "denoising step 3/3"

    calls = []

    def cancel_on_second_check() -> bool:
        calls.append(1)
        return len(calls) == 2

    with pytest.raises(CancelledError):
        sample_tiny(num_steps=5, cancel=cancel_on_second_check)
    assert len(calls) == 2


def test_classifier_free_guidance_with_a_prompt():
    model = tiny_transformer(text_dim=8)
    text = torch.randn(1, 3, 8)
    plain = sample_tiny(model, encoder_hidden_states=text)
    guided = sample_tiny(model, encoder_hidden_states=text, guidance_scale=4.0)
    negative = sample_tiny(
        model, encoder_hidden_states=text, guidance_scale=4.0, negative_encoder_hidden_states=torch.randn(1, 3, 8)
    )
    assert not torch.allclose(plain, guided)
    assert not torch.allclose(guided, negative)
    with pytest.raises(InputError, match="needs a prompt"):
        sample_tiny(model, guidance_scale=4.0)


def test_the_pipeline_rejects_bad_inputs():
    with pytest.raises(InputError, match="only 0 \\(keep\\) and 1"):
        sample_tiny(mask=extend_forward_mask() * 0.5)
    with pytest.raises(InputError, match="generate_mask must be"):
        sample_tiny(mask=torch.ones(1, 1, 4, 4, 4))
    with pytest.raises(InputError, match="num_inference_steps"):
        sample_tiny(num_steps=0)
    with pytest.raises(InputError, match="num_train_timesteps"):
        sample_tiny(scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=500))


def test_training_then_sampling_reproduces_a_memorised_clip():
    """A few hundred steps on one clip: the sampled continuation moves towards it (the loop is wired right)."""
    torch.manual_seed(0)
    model = ShotfillTransformer3DModel.from_preset("tiny", in_channels=CHANNELS).train()
    clean = latents((1, CHANNELS, 3, 2, 2), seed=9)
    mask = extend_forward_mask((1, 1, 3, 2, 2), known=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):
        optimizer.zero_grad()
        flow_matching_loss(model, clean.expand(8, -1, -1, -1, -1), mask.expand(8, -1, -1, -1, -1), generator).backward()
        optimizer.step()
    model.eval()
    out = sample_tiny(model, known=clean, mask=mask, num_steps=20)
    untrained = sample_tiny(tiny_transformer(), known=clean, mask=mask, num_steps=20)
    generated = mask.expand_as(clean).bool()
    error = (out - clean)[generated].abs().mean()
    assert error < 0.5 * (untrained - clean)[generated].abs().mean()


# -- VAE ---------------------------------------------------------------------------------------------


def pictures(frames=2, height=64, width=96, seed=0) -> torch.Tensor:
    """Smooth random pictures in [-1, 1]: low-resolution noise, upsampled."""
    coarse = torch.rand(1, 3, frames, height // 16, width // 16, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(coarse * 2 - 1, size=(frames, height, width), mode="trilinear")


def test_vae_shapes():
    vae = tiny_vae()
    assert vae.spatial_compression == 8
    x = pictures(frames=3, height=48, width=80)
    with torch.no_grad():
        posterior = vae.encode(x).latent_dist
        z = posterior.mode()
        assert z.shape == (1, CHANNELS, 3, 6, 10)
        assert posterior.sample(torch.Generator().manual_seed(0)).shape == z.shape
        assert vae.decode(z).sample.shape == x.shape


def test_vae_encodes_each_frame_on_its_own():
    vae = tiny_vae()
    x = pictures(frames=3)
    changed = x.clone()
    changed[:, :, 2] = 0
    with torch.no_grad():
        a, b = vae.encode(x).latent_dist.mean, vae.encode(changed).latent_dist.mean
    assert torch.allclose(a[:, :, :2], b[:, :, :2], atol=1e-6)
    assert not torch.allclose(a[:, :, 2], b[:, :, 2])


def test_vae_rejects_sizes_it_cannot_compress():
    vae = tiny_vae()
    with pytest.raises(InputError, match="multiples of 8"):
        vae.encode(torch.zeros(1, 3, 1, 60, 64))
    with pytest.raises(InputError, match="must be \\(B, 3, T, H, W\\)"):
        vae.encode(torch.zeros(1, 4, 1, 64, 64))
    with pytest.raises(InputError, match="must be \\(B, 4, T, h, w\\)"):
        vae.decode(torch.zeros(1, 3, 1, 8, 8))
    with pytest.raises(InputError, match="0 <= overlap < tile"):
        vae.tiled_encode(pictures(), tile=64, overlap=64)
    with pytest.raises(InputError, match="multiples of 8"):
        vae.tiled_encode(pictures(), tile=60)


def _seam_steps(tiled: torch.Tensor, whole: torch.Tensor, borders: list[int]) -> float:
    """Largest difference between the tiled and whole pictures' column-to-column steps at ``borders``."""
    step_tiled = tiled[..., borders] - tiled[..., [b - 1 for b in borders]]
    step_whole = whole[..., borders] - whole[..., [b - 1 for b in borders]]
    return float((step_tiled - step_whole).abs().max())


def test_tiled_encode_and_decode_match_the_whole_frame_without_seams():
    vae = tiny_vae()
    x = pictures(frames=2, height=64, width=160)
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mean
        whole = vae.decode(z).sample
        tiled_z = vae.tiled_encode(x, tile=64, overlap=16, halo=64).latent_dist.mean
        tiled = vae.tiled_decode(z, tile=64, overlap=16, halo=64).sample
        no_halo = vae.tiled_decode(z, tile=64, overlap=16, halo=0).sample
    assert tiled_z.shape == z.shape and tiled.shape == whole.shape
    assert (tiled_z - z).abs().max() < 1e-3 * z.abs().max()
    assert (tiled - whole).abs().max() < 1e-2 * whole.abs().max()
    # tiles start at 0, 48, 96 (the last one aligned to the right edge): seams would sit near these columns
    borders = [c for c in range(40, 120)]
    assert _seam_steps(tiled, whole, borders) < 1e-2 * whole.abs().max()
    # without the halo, tile edges see zero padding instead of the picture: clearly worse
    assert (no_halo - whole).abs().max() > 10 * (tiled - whole).abs().max()


def test_tiles_never_see_more_than_one_frame_and_one_grown_tile():
    vae = tiny_vae()
    seen = []
    vae.encoder.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    vae.decoder.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    with torch.no_grad():
        z = vae.tiled_encode(pictures(frames=2, height=128, width=256), tile=64, overlap=16, halo=16).latent_dist.mean
        vae.tiled_decode(z, tile=64, overlap=16, halo=16)
    encoded, decoded = seen[: len(seen) // 2], seen[len(seen) // 2 :]
    assert len(encoded) == 2 * 3 * 5  # frames x rows x columns
    assert all(shape[0] == 1 and shape[2] <= 96 and shape[3] <= 96 for shape in encoded)  # (B*T, C, H, W)
    assert all(shape[0] == 1 and shape[2] <= 12 and shape[3] <= 12 for shape in decoded)  # latent units


def test_tiling_a_frame_that_fits_one_tile_is_the_whole_frame_encode():
    vae = tiny_vae()
    x = pictures(frames=1)
    with torch.no_grad():
        assert torch.allclose(vae.tiled_encode(x).latent_dist.mean, vae.encode(x).latent_dist.mean, atol=1e-6)


def test_the_linear_path_starts_the_vae_as_the_best_linear_code_of_its_size(tmp_path):
    x = pictures(frames=3, height=64, width=96, seed=3) + 0.05 * torch.randn(1, 3, 3, 64, 96, generator=torch.Generator().manual_seed(4))
    vae = tiny_vae(linear_path=True)
    kept = vae.init_linear_path(x)
    assert 0.5 < kept <= 1.0
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mode()
        linear = vae.decode(z).sample
    # the networks' outputs start at zero: the VAE is exactly the linear code, one orthonormal basis both ways
    f = vae.spatial_compression
    patches = torch.nn.functional.unfold(x[0].permute(1, 0, 2, 3), f, stride=f)     # (T, 3*f*f, L)
    assert torch.allclose(z[0].permute(1, 0, 2, 3).flatten(2), vae.patch_encode.weight.flatten(1) @ patches
                          + vae.patch_encode.bias[:, None], atol=1e-4)
    basis = vae.patch_encode.weight.flatten(1)
    assert torch.allclose(basis @ basis.T, torch.eye(len(basis)), atol=1e-5)
    assert torch.equal(vae.patch_decode.weight, vae.patch_encode.weight)
    assert (z[:, 0].var() > z[:, -1].var())                                            # coarse components first
    error = (linear - x).square().mean().item()
    assert error < (x - x.mean()).square().mean().item() / 10                         # most of the picture kept
    other = tiny_vae(linear_path=True)                                                 # the code of other pictures
    other.init_linear_path(pictures(frames=3, height=64, width=96, seed=9).transpose(-1, -2)[..., :64, :64])
    with torch.no_grad():
        assert error < (other.decode(other.encode(x).latent_dist.mode()).sample - x).square().mean().item()
    with torch.no_grad():                                                              # tiling changes nothing
        tiled = vae.tiled_decode(vae.tiled_encode(x, tile=32, overlap=8, halo=8).latent_dist.mode(),
                                 tile=32, overlap=8, halo=8).sample
    assert torch.allclose(tiled, linear, atol=1e-4)
    vae.save_pretrained(tmp_path / "vae")
    loaded = ShotfillVAE.from_pretrained(tmp_path / "vae").eval()
    with torch.no_grad():
        assert torch.equal(loaded.decode(z).sample, linear)
    with pytest.raises(InputError, match="no linear path"):
        tiny_vae().init_linear_path(x)


def test_vae_save_and_load_round_trip(tmp_path):
    vae = tiny_vae(scaling_factor=0.5, shift_factor=0.1)
    vae.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = ShotfillVAE.from_pretrained(tmp_path).eval()
    assert loaded.config.scaling_factor == 0.5 and loaded.config.shift_factor == 0.1
    x = pictures(frames=1)
    with torch.no_grad():
        assert torch.equal(vae.encode(x).latent_dist.mean, loaded.encode(x).latent_dist.mean)


def test_latent_scaling_round_trip():
    vae = tiny_vae(scaling_factor=0.5, shift_factor=0.1)
    z = latents()
    assert torch.allclose(vae.scale_latents(z), (z - 0.1) * 0.5)
    assert torch.allclose(vae.unscale_latents(vae.scale_latents(z)), z, atol=1e-6)


def test_latent_mask_generates_every_latent_that_covers_a_generated_pixel():
    vae = tiny_vae()
    mask = torch.zeros(1, 1, 2, 32, 48)
    mask[0, 0, 1, 9, 17] = 0.25  # one soft pixel in latent cell (1, 2) of frame 1
    latent = vae.latent_mask(mask)
    assert latent.shape == (1, 1, 2, 4, 6)
    expected = torch.zeros_like(latent)
    expected[0, 0, 1, 1, 2] = 1
    assert torch.equal(latent, expected)


def test_one_vae_training_step_lowers_its_loss():
    vae = tiny_vae().train()
    x = pictures(frames=2, height=32, width=32)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    before = vae.training_loss(x, torch.Generator().manual_seed(0))
    assert all(torch.isfinite(t) for t in (before.loss, before.l1, before.gradient, before.kl))
    before.loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = vae.training_loss(x, torch.Generator().manual_seed(0))
    assert after.loss < before.loss


# -- real footage --------------------------------------------------------------------------------------


def davis_clip(shared_data, frames: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The first DAVIS blackswan frames (B, 3, T, 480, 848) in [-1, 1] and their masks (B, 1, T, 480, 848)."""
    import numpy as np
    from PIL import Image

    folder = shared_data / "footage" / "davis2016_blackswan"
    names = [f"{i:05d}" for i in range(frames)]
    rgb = np.stack([np.asarray(Image.open(folder / "frames" / f"{n}.jpg"), np.float32) for n in names])
    mask = np.stack([np.asarray(Image.open(folder / "masks" / f"{n}.png"), np.float32) for n in names])
    rgb = torch.from_numpy(rgb[:, :, :848]).permute(3, 0, 1, 2)[None] / 127.5 - 1  # (T, H, W, 3) -> (1, 3, T, H, W)
    mask = torch.from_numpy(mask[:, :, :848] > 0).float()[None, None]  # (T, H, W) -> (1, 1, T, H, W)
    return rgb, mask


def test_real_footage_tiles_like_the_whole_frame_and_fills_its_mask(shared_data):
    vae = tiny_vae()
    frames, mask = davis_clip(shared_data)
    with torch.no_grad():
        whole = vae.encode(frames).latent_dist.mean
        tiled = vae.tiled_encode(frames, tile=256, overlap=32, halo=64).latent_dist.mean
    assert (tiled - whole).abs().max() < 1e-3 * whole.abs().max()

    latent_mask = vae.latent_mask(mask)
    covered = torch.nn.functional.interpolate(latent_mask, scale_factor=(1, 8, 8), mode="nearest")
    assert mask.sum() > 0 and bool((covered >= mask).all())  # every pixel to fill is in a generated latent
    assert latent_mask.mean() < 0.5  # and most of the picture is kept

    crop = (..., slice(16, 32), slice(32, 64))  # part of the swan and the water, small enough for a quick sample
    known, generate = whole[crop], latent_mask[crop]
    assert 0 < generate.mean() < 1
    out = sample_tiny(known=known, mask=generate)
    keep = (generate == 0).expand_as(known)
    assert torch.equal(out[keep], known[keep])


def test_a_guided_model_starts_as_the_model_it_came_from_and_then_reads_the_guess(tmp_path):
    model = tiny_transformer().eval()
    guided = model.with_guide().eval()
    assert guided.config.guide and guided.with_guide() is guided
    noisy, known, mask = latents(seed=1), latents(seed=2), extend_forward_mask()
    guess, t = latents(seed=3), torch.tensor([500.0])
    with torch.no_grad():
        plain = model(noisy, known, mask, t).sample
        torch.testing.assert_close(guided(noisy, known, mask, t).sample, plain)
        torch.testing.assert_close(guided(noisy, known, mask, t, guide_latents=guess).sample, plain)  # unused yet
        guided.patch_embed.weight[:, -CHANNELS * 4:].normal_(std=0.1)  # as if trained: the guess matters
        assert not torch.allclose(guided(noisy, known, mask, t, guide_latents=guess).sample, plain)
    with pytest.raises(InputError, match="guide_latents"):
        model(noisy, known, mask, t, guide_latents=guess)
    guided.save_pretrained(tmp_path / "guided")
    again = ShotfillTransformer3DModel.from_pretrained(tmp_path / "guided").eval()
    with torch.no_grad():
        torch.testing.assert_close(again(noisy, known, mask, t, guide_latents=guess).sample,
                                   guided(noisy, known, mask, t, guide_latents=guess).sample)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000)
    runs = [sample(again, known_latents=known, generate_mask=mask, scheduler=scheduler, num_steps=3,
                   generator=torch.Generator().manual_seed(0), prior_latents=prior) for prior in (None, guess)]
    assert not torch.allclose(*runs)  # the pipeline gives a guided model its guess, even from pure noise
