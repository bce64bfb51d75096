"""Flow-matching sampling and training for :class:`ShotfillTransformer3DModel`.

Flow matching, with the conventions of diffusers' ``FlowMatchEulerDiscreteScheduler``:
at noise level ``sigma`` in [0, 1] the sample is ``x = (1 - sigma) * clean + sigma * noise``,
the model predicts the velocity ``noise - clean``, and the timestep the model sees is
``sigma * 1000`` (:data:`NUM_TRAIN_TIMESTEPS`).

Mask convention: ``generate_mask`` is **1 = generate, 0 = keep**. Known latents are
re-imposed after every step, so they come out of :func:`sample` bit-exact; the loss
is taken on generated latents only.
"""
from __future__ import annotations

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor

from ..engines.base import CancelFn, ProgressFn, check_cancel
from ..errors import InputError
from ..plan import TaskKind
from .transformer_shotfill import ShotfillTransformer3DModel

#: Timestep scale shared by training and the scheduler: ``timestep = sigma * NUM_TRAIN_TIMESTEPS``.
NUM_TRAIN_TIMESTEPS = 1000


@torch.no_grad()
def sample(
    transformer: ShotfillTransformer3DModel,
    *,
    known_latents: torch.Tensor,
    generate_mask: torch.Tensor,
    scheduler: SchedulerMixin,
    num_steps: int,
    generator: torch.Generator | None,
    encoder_hidden_states: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    negative_encoder_hidden_states: torch.Tensor | None = None,
    prior_latents: torch.Tensor | None = None,
    strength: float = 1.0,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> torch.Tensor:
    """Generate the masked latents of a window, in context of the known ones.

    With ``prior_latents`` and ``strength`` below 1, generation starts from a first guess
    instead of pure noise (as diffusers' image-to-image pipelines do): the guess is noised
    to the noise level ``strength`` and only the steps below that level run, so the model
    refines the guess rather than inventing the frames from nothing. A guided model
    (``transformer.config.guide``) is also given the guess clean at every step.

    Args:
        transformer: the model.
        known_latents: ``(B, C, T, H, W)`` scaled VAE latents; read where the mask is 0.
        generate_mask: ``(B, 1, T, H, W)`` of 0 and 1, **1 = generate, 0 = keep**.
        scheduler: a flow-matching scheduler with ``set_timesteps``, ``timesteps`` and ``step``
            (``FlowMatchEulerDiscreteScheduler``, or ``FlowMatchHeunDiscreteScheduler`` for
            second order), built with ``num_train_timesteps=1000``.
        num_steps: denoising steps.
        generator: seeds the starting noise; the same seed gives the same result.
        encoder_hidden_states: ``(B, L, text_dim)`` text embedding, for a model with text.
        guidance_scale: classifier-free guidance; above 1 runs the model with and without
            the text each step and extrapolates from the latter to the former.
        negative_encoder_hidden_states: the "without" text embedding for guidance
            (zeros, the embedding training drops text to, when not given).
        prior_latents: ``(B, C, T, H, W)`` a first guess of the generated latents (read where the mask is 1).
        strength: noise level, in (0, 1], the guess is noised to and denoising starts from; 1 ignores
            the guess. ``num_steps`` is the count for the whole path: ``strength`` 0.5 runs about half.
        progress: called after each step with ``(fraction, message)``.
        cancel: checked before each step; raises :class:`~shotfill.errors.CancelledError` when it returns True.

    Returns:
        ``(B, C, T, H, W)`` float32 latents: generated where the mask is 1, ``known_latents``
        exactly where it is 0. The latents stay float32 whatever the model's dtype.
    """
    # 1. Check inputs
    _check_sample_inputs(
        known_latents, generate_mask, scheduler, num_steps, encoder_hidden_states, guidance_scale,
        negative_encoder_hidden_states,
    )
    if not 0.0 < strength <= 1.0:
        raise InputError(f"strength must be in (0, 1], got {strength}")
    if strength < 1.0 and (prior_latents is None or prior_latents.shape != known_latents.shape):
        raise InputError(f"strength {strength} needs prior_latents of shape {tuple(known_latents.shape)}")
    # the latents stay float32 (so known ones stay exact); only the model's inputs take its dtype
    device, dtype = transformer.device, transformer.dtype
    known_latents = known_latents.to(device=device, dtype=torch.float32)
    keep = (generate_mask == 0).to(device)
    do_guidance = encoder_hidden_states is not None and guidance_scale > 1.0

    # 2. Text conditions: [without, with] on the batch axis when guiding
    if do_guidance:
        if negative_encoder_hidden_states is None:
            negative_encoder_hidden_states = torch.zeros_like(encoder_hidden_states)
        encoder_hidden_states = torch.cat([negative_encoder_hidden_states, encoder_hidden_states])
    if encoder_hidden_states is not None:
        encoder_hidden_states = encoder_hidden_states.to(device=device, dtype=dtype)

    # 3. Timesteps: the whole path, or its part below ``strength`` when refining a prior
    scheduler.set_timesteps(num_steps, device=device)
    first = min(int(round(num_steps * (1.0 - strength))), num_steps - 1)
    scheduler.set_begin_index(first)
    timesteps = scheduler.timesteps[first:]

    guided = _is_guided(transformer) and prior_latents is not None
    model_guide = prior_latents.to(device=device, dtype=dtype).repeat(2 if do_guidance else 1, 1, 1, 1, 1) if guided else None

    # 4. Prepare latents: noise (or the noised prior) where generated, the known latents where kept
    noise = randn_tensor(known_latents.shape, generator=generator, device=device, dtype=torch.float32)
    if first > 0:
        noise = scheduler.scale_noise(prior_latents.to(device=device, dtype=torch.float32), timesteps[:1], noise)
    latents = torch.where(keep, known_latents, noise)
    repeats = 2 if do_guidance else 1
    model_known = known_latents.to(dtype).repeat(repeats, 1, 1, 1, 1)
    model_mask = generate_mask.to(device=device, dtype=dtype).repeat(repeats, 1, 1, 1, 1)

    # 5. Denoising loop
    for i, t in enumerate(timesteps):
        check_cancel(cancel)
        model_input = latents.to(dtype).repeat(repeats, 1, 1, 1, 1)
        timestep = t.expand(model_input.shape[0])  # float32 even for a half-precision model
        extra = {"guide_latents": model_guide} if guided else {}
        velocity = transformer(
            model_input, model_known, model_mask, timestep, encoder_hidden_states=encoder_hidden_states, **extra
        ).sample.float()
        if do_guidance:
            velocity_negative, velocity_text = velocity.chunk(2)
            velocity = velocity_negative + guidance_scale * (velocity_text - velocity_negative)
        latents = scheduler.step(velocity, t, latents).prev_sample
        latents = torch.where(keep, known_latents, latents)  # known latents never drift
        if progress is not None:
            progress((i + 1) / len(timesteps), f"denoising step {i + 1}/{len(timesteps)}")

    return latents


def flow_matching_loss(
    transformer: ShotfillTransformer3DModel,
    clean_latents: torch.Tensor,
    generate_mask: torch.Tensor,
    generator: torch.Generator | None,
    *,
    encoder_hidden_states: torch.Tensor | None = None,
    text_dropout: float = 0.0,
    prior_latents: torch.Tensor | None = None,
    refine: torch.Tensor | None = None,
    refine_sigma: tuple[float, float] = (0.05, 0.5),
) -> torch.Tensor:
    """The flow-matching training loss of one batch.

    Noise levels are drawn logit-normal (as in Stable Diffusion 3: most training on the
    middle of the path, where the velocity is hardest). ``x_t = (1 - sigma) * clean +
    sigma * noise``; the target is ``noise - clean``; the squared error is averaged over
    the generated latents only (``generate_mask`` 1 = generate, 0 = keep), the known ones
    being given to the model clean.

    ``text_dropout`` replaces each sample's text embedding by zeros with that probability,
    which teaches the model the "without text" branch classifier-free guidance needs.

    **Refinement samples.** Where ``refine`` (``(B,)`` bool) is set, the sample starts
    from a first guess instead of the clean latents, as :func:`sample` does with
    ``prior_latents`` and ``strength`` below 1: ``x = (1 - sigma) * prior + sigma * noise``
    at a noise level drawn uniformly in ``refine_sigma``, and the target is the velocity
    that takes ``x`` to the *clean* latents in one Euler step, ``(x - clean) / sigma``.
    So the model learns to remove the guess's errors along with the noise, not to keep
    them. With a perfect guess this is the ordinary target ``noise - clean``, and an
    Euler path of such predictions stays on the straight line to the model's estimate of
    the clean latents, so several steps below ``strength`` see inputs of the same kind.
    A guided model (``transformer.config.guide``) is given the guess clean as well on
    refinement samples (no guess on the others), as :func:`sample` gives it.
    """
    batch = clean_latents.shape[0]
    device, dtype = clean_latents.device, clean_latents.dtype
    if generate_mask.sum() == 0:
        raise InputError("generate_mask: nothing to generate in this batch, so there is nothing to learn")
    sigmas = torch.sigmoid(randn_tensor((batch,), generator=generator, device=device, dtype=dtype))
    noise = randn_tensor(clean_latents.shape, generator=generator, device=device, dtype=dtype)
    if refine is None:
        sigma = sigmas.view(batch, 1, 1, 1, 1)
        noisy = (1 - sigma) * clean_latents + sigma * noise
        target = noise - clean_latents
    else:
        low, high = refine_sigma
        if not 0 < low <= high <= 1:
            raise InputError(f"refine_sigma must satisfy 0 < low <= high <= 1, got {refine_sigma}")
        if prior_latents is None or prior_latents.shape != clean_latents.shape or refine.shape != (batch,):
            raise InputError("refinement samples need prior_latents shaped like the clean latents and refine shaped (B,)")
        refine = refine.to(device)
        uniform = low + (high - low) * torch.rand((batch,), generator=generator, device=device, dtype=dtype)
        sigmas = torch.where(refine, uniform, sigmas)
        sigma = sigmas.view(batch, 1, 1, 1, 1)
        start = torch.where(refine.view(batch, 1, 1, 1, 1), prior_latents.to(dtype), clean_latents)
        noisy = (1 - sigma) * start + sigma * noise
        target = torch.where(refine.view(batch, 1, 1, 1, 1), (noisy - clean_latents) / sigma, noise - clean_latents)
    if encoder_hidden_states is not None and text_dropout > 0:
        drop = torch.rand((batch,), generator=generator, device=device) < text_dropout
        encoder_hidden_states = torch.where(drop.view(batch, 1, 1), 0.0, encoder_hidden_states)

    extra = {}
    if refine is not None and _is_guided(transformer):
        extra["guide_latents"] = torch.where(refine.view(batch, 1, 1, 1, 1), prior_latents.to(dtype), 0.0)
    velocity = transformer(
        noisy, clean_latents, generate_mask, sigmas * NUM_TRAIN_TIMESTEPS, encoder_hidden_states=encoder_hidden_states,
        **extra,
    ).sample
    squared_error = (velocity - target).square() * generate_mask
    return squared_error.sum() / (generate_mask.sum() * clean_latents.shape[1])


def random_generate_mask(
    shape: tuple[int, int, int, int],
    generator: torch.Generator | None,
    kinds: tuple[TaskKind, ...] = tuple(TaskKind),
) -> torch.Tensor:
    """Random training masks ``(B, 1, T, H, W)`` (1 = generate), one task kind per sample.

    ``shape`` is ``(B, T, H, W)`` in latent elements. Each sample draws one of ``kinds``:

    - extend forward: the first 1..T-1 frames known, the rest generated;
    - extend backward: the last 1..T-1 frames known, the rest generated;
    - bridge: 1 or more frames known at each end, at least one generated between
      (needs T >= 3);
    - fill: every frame, a box covering a quarter to three quarters of each side generated.
    """
    batch, frames, height, width = shape
    if frames < 2 or (TaskKind.BRIDGE in kinds and frames < 3):
        raise InputError(f"random_generate_mask: {frames} frames is too short for the kinds {[k.value for k in kinds]}")
    mask = torch.zeros(batch, 1, frames, height, width)

    def randint(low: int, high: int) -> int:  # inclusive of both ends
        return int(torch.randint(low, high + 1, (1,), generator=generator))

    for b in range(batch):
        kind = kinds[randint(0, len(kinds) - 1)]
        if kind is TaskKind.EXTEND_FORWARD:
            mask[b, :, randint(1, frames - 1):] = 1
        elif kind is TaskKind.EXTEND_BACKWARD:
            mask[b, :, : frames - randint(1, frames - 1)] = 1
        elif kind is TaskKind.BRIDGE:
            head = randint(1, frames - 2)
            tail = randint(1, frames - 1 - head)
            mask[b, :, head : frames - tail] = 1
        else:
            box_h = randint(max(1, height // 4), max(1, 3 * height // 4))
            box_w = randint(max(1, width // 4), max(1, 3 * width // 4))
            top, left = randint(0, height - box_h), randint(0, width - box_w)
            mask[b, :, :, top : top + box_h, left : left + box_w] = 1
    return mask


def _is_guided(transformer) -> bool:
    """Whether ``transformer`` takes a clean first guess (``config.guide``); test doubles without a config do not."""
    return bool(getattr(getattr(transformer, "config", None), "guide", False))


def _check_sample_inputs(
    known_latents: torch.Tensor,
    generate_mask: torch.Tensor,
    scheduler: SchedulerMixin,
    num_steps: int,
    encoder_hidden_states: torch.Tensor | None,
    guidance_scale: float,
    negative_encoder_hidden_states: torch.Tensor | None,
) -> None:
    if known_latents.ndim != 5:
        raise InputError(f"known_latents must be (B, C, T, H, W), got {tuple(known_latents.shape)}")
    batch, _, frames, height, width = known_latents.shape
    if generate_mask.shape != (batch, 1, frames, height, width):
        raise InputError(f"generate_mask must be {(batch, 1, frames, height, width)}, got {tuple(generate_mask.shape)}")
    if not bool(((generate_mask == 0) | (generate_mask == 1)).all()):
        raise InputError("generate_mask must hold only 0 (keep) and 1 (generate) at latent resolution")
    if scheduler.config.num_train_timesteps != NUM_TRAIN_TIMESTEPS:
        raise InputError(
            f"scheduler num_train_timesteps is {scheduler.config.num_train_timesteps}; "
            f"the model is trained with {NUM_TRAIN_TIMESTEPS}"
        )
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
        raise InputError(f"num_steps must be a whole number of at least 1, got {num_steps!r}")
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
