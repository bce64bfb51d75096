"""Refinement samples: the plan a training mask stands for, and the ``dit`` engine's first guess on it.

A share of the transformer's training samples start from the ``dit`` engine's own first guess
(:func:`shotfill.engines.working.plate_flow`, the very function the engine calls, so training
follows whatever guess the engine refines) instead of the clean latents
(:func:`shotfill.training.loss.flow_matching_loss` with ``refine``), which is how the ``dit``
engine samples at a strength below 1.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..engines import working
from ..errors import InputError
from ..models import ShotfillVAE
from ..plan import FramePlan


def plan_of_mask(mask: torch.Tensor) -> FramePlan:
    """The plan a training mask ``(1, T, h, w)`` (1 = generate) stands for.

    Masks of :func:`~shotfill.training.loss.random_generate_mask`: whole generated frames after
    the known ones (extend forward), before them (extend backward) or between them
    (bridge), or a region of every frame (fill).
    """
    covered = mask[0].flatten(1)
    whole, none = covered.amin(1) > 0, covered.amax(1) == 0
    if not bool((whole | none).all()) or bool(whole.all()) or bool(none.all()):
        return FramePlan.fill(range(mask.shape[1]))
    generated = [t for t in range(mask.shape[1]) if bool(whole[t])]
    first, last = generated[0], generated[-1]
    if last - first + 1 != len(generated):
        raise InputError(f"plan_of_mask: generated frames {generated} are not one run")
    known_before, known_after = list(range(first)), list(range(last + 1, mask.shape[1]))
    if known_before and known_after:
        return FramePlan.bridge(known_before, known_after, len(generated), context=mask.shape[1])
    if known_before:
        return FramePlan.extend(known_before, len(generated), context=mask.shape[1])
    return FramePlan.extend(known_after, len(generated), backward=True, context=mask.shape[1])


@torch.no_grad()
def flow_prior_latents(vae: ShotfillVAE, latents: torch.Tensor, mask: torch.Tensor, pictures: np.ndarray,
                       refine: Sequence[bool]) -> torch.Tensor:
    """First guesses for refinement samples: the ``dit`` engine's first guess, encoded as the engine does.

    For each sample with ``refine`` set, the generated pixels (the latent mask scaled up
    to the pictures) are zeroed and :func:`~shotfill.engines.working.plate_flow` makes
    them again from the known ones on the sample's plan (:func:`plan_of_mask`); every
    frame with a generated latent is encoded. Other samples keep their clean latents.
    """
    prior = latents.clone()
    f = vae.spatial_compression
    for b in np.flatnonzero(np.asarray(refine, bool)):
        plan = plan_of_mask(mask[b].cpu())
        pixel_mask = mask[b, 0].cpu().repeat_interleave(f, 1).repeat_interleave(f, 2).numpy().astype(np.float32)
        frames = pictures[b] * (1.0 - pixel_mask[..., None])
        guess = working.plate_flow(plan, frames, pixel_mask).frames  # looked up at each call: the engine's own
        touched = [t for t in range(len(plan)) if bool(pixel_mask[t].any())]
        picture = (torch.from_numpy(np.ascontiguousarray(guess[touched])) * 2 - 1).permute(3, 0, 1, 2)[None]
        encoded = vae.encode(picture.to(latents.device)).latent_dist.mode()
        prior[b, :, touched] = vae.scale_latents(encoded)[0]
    return prior
