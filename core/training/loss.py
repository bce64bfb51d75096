"""The flow-matching training loss of :class:`~shotfill.models.ShotfillTransformer3DModel`, and its random masks.

The conventions are the sampler's (:mod:`shotfill.engines.dit.pipeline`): at noise level
``sigma`` the sample is ``x = (1 - sigma) * clean + sigma * noise``, the model predicts the
velocity ``noise - clean`` and sees the timestep ``sigma * 1000``
(:data:`~shotfill.engines.dit.pipeline.NUM_TRAIN_TIMESTEPS`). Mask convention:
``generate_mask`` is **1 = generate, 0 = keep**; the loss is taken on generated latents only.
"""
from __future__ import annotations

import torch
from diffusers.utils.torch_utils import randn_tensor

from ..engines.dit.pipeline import NUM_TRAIN_TIMESTEPS, is_guided
from ..errors import InputError
from ..models import ShotfillTransformer3DModel
from ..plan import TaskKind


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
    from a first guess instead of the clean latents, as the ``dit`` pipeline does with
    ``prior_latents`` and ``strength`` below 1: ``x = (1 - sigma) * prior + sigma * noise``
    at a noise level drawn uniformly in ``refine_sigma``, and the target is the velocity
    that takes ``x`` to the *clean* latents in one Euler step, ``(x - clean) / sigma``.
    So the model learns to remove the guess's errors along with the noise, not to keep
    them. With a perfect guess this is the ordinary target ``noise - clean``, and an
    Euler path of such predictions stays on the straight line to the model's estimate of
    the clean latents, so several steps below ``strength`` see inputs of the same kind.
    A guided model (``transformer.config.guide``) is given the guess clean as well on
    refinement samples (no guess on the others), as the pipeline gives it.
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
    if refine is not None and is_guided(transformer):
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
    - bridge: 1 or more frames known at each end and 2 or more at one of them, at least one
      generated between (needs T >= 4): a refinement sample's first guess checks itself on a
      known frame beside the gap and needs two on one side
      (:func:`shotfill.engines.interpolate.self_check_cases`), as every bridge the engine runs has;
    - fill: every frame, a box covering a quarter to three quarters of each side generated.
    """
    batch, frames, height, width = shape
    if frames < 2 or (TaskKind.BRIDGE in kinds and frames < 4):
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
            tail = randint(2 if head == 1 else 1, frames - 1 - head)
            mask[b, :, head : frames - tail] = 1
        else:
            box_h = randint(max(1, height // 4), max(1, 3 * height // 4))
            box_w = randint(max(1, width // 4), max(1, 3 * width // 4))
            top, left = randint(0, height - box_h), randint(0, width - box_w)
            mask[b, :, :, top : top + box_h, left : left + box_w] = 1
    return mask
