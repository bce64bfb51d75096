"""The model files (torch and diffusers): the ``dit`` engine's video DiT and its VAE, and the
RIFE frame-interpolation network (IFNet) whose converted weights ship in ``resources/rife``.

Sampling is the engine's pipeline (:mod:`shotfill.engines.dit.pipeline`); training, the loss
among it, is :mod:`shotfill.training`.
"""
from .ifnet import IFNet
from .transformer_shotfill import SIZE_PRESETS, ShotfillTransformer3DModel
from .vae_shotfill import ShotfillVAE, VAELoss

__all__ = [
    "IFNet",
    "SIZE_PRESETS",
    "ShotfillTransformer3DModel",
    "ShotfillVAE",
    "VAELoss",
]
