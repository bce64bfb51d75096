"""The ``dit`` engine's models (torch and diffusers): the video DiT, its VAE and the flow-matching sampler."""
from .sampler import NUM_TRAIN_TIMESTEPS, flow_matching_loss, random_generate_mask, sample
from .transformer_shotfill import SIZE_PRESETS, ShotfillTransformer3DModel
from .vae_shotfill import ShotfillVAE, VAELoss

__all__ = [
    "NUM_TRAIN_TIMESTEPS",
    "SIZE_PRESETS",
    "ShotfillTransformer3DModel",
    "ShotfillVAE",
    "VAELoss",
    "flow_matching_loss",
    "random_generate_mask",
    "sample",
]
