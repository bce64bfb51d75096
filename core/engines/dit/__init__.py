"""The ``dit`` engine: the project's own video diffusion transformer, and its denoising pipeline."""
from .engine import SHIPPED_MODEL, DiTEngine, DiTOutput, check_sampling
from .pipeline import NUM_TRAIN_TIMESTEPS, ShotfillDiTPipeline, ShotfillDiTPipelineOutput

__all__ = [
    "NUM_TRAIN_TIMESTEPS",
    "SHIPPED_MODEL",
    "DiTEngine",
    "DiTOutput",
    "ShotfillDiTPipeline",
    "ShotfillDiTPipelineOutput",
    "check_sampling",
]
