"""Training set-ups: :class:`TrainPreset` (model sizes, data shapes, optimisation) and :data:`PRESETS`,
the ones ``shotfill train --preset`` offers."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TrainPreset:
    """Model sizes, data shapes and optimisation settings of one training set-up.

    ``pool_short_side``: footage is resized to this short side (and procedural shots
    rendered at it) before cropping; ``crop`` is the square training crop in pixels and
    ``frames`` the transformer's clip length. ``bf16`` turns on bfloat16 autocast (for
    GPUs; on this CPU bf16 convolutions are far slower than float32). ``refine_share`` of
    the transformer's samples are refinement samples: they start from the ``dit`` engine's first
    guess on the sample's plan (:func:`shotfill.engines.working.plate_flow`), noised to a level in
    ``refine_sigma``, and learn to reach the truth from there (see :func:`shotfill.training.loss.flow_matching_loss`), which is how the
    ``dit`` engine samples at a strength below 1.
    """

    dit_size: str
    dit_config: dict
    vae_config: dict
    pool_short_side: int
    crop: int
    frames: int
    vae_batch: int
    dit_batch: int
    vae_lr: float
    dit_lr: float
    warmup_steps: int
    procedural_shots: int
    procedural_frames: int
    encode_frames: int
    bf16: bool
    checkpoint_seconds: float
    log_every: int
    refine_share: float = 0.0
    refine_sigma: tuple[float, float] = (0.05, 0.5)


PRESETS: dict[str, TrainPreset] = {
    # the shipped model: trains on a 2-core CPU in about an hour. A 4x VAE (three levels) learns
    # to reconstruct in minutes where an 8x one needs hours; 4x4 patches keep the transformer's
    # tokens as few as 8x latents with 2x2 patches would. 16-frame clips, so a 12-frame bridge
    # with 2 context frames on each side is one window of a length the model has seen.
    "cpu": TrainPreset(
        dit_size="small", dit_config={"patch_size": (1, 4, 4), "guide": True},
        vae_config={"block_out_channels": (32, 64, 128), "linear_path": True},
        pool_short_side=144, crop=128, frames=16, vae_batch=4, dit_batch=4, vae_lr=6e-4, dit_lr=4e-4, warmup_steps=50, procedural_shots=64, procedural_frames=24,
        encode_frames=640, bf16=False,
        checkpoint_seconds=300.0, log_every=10, refine_share=0.75, refine_sigma=(0.05, 0.5),
    ),
    # a GPU run: the large transformer, bigger crops and longer clips, bf16 autocast
    "gpu": TrainPreset(
        dit_size="large", dit_config={"guide": True},
        vae_config={"block_out_channels": (64, 128, 256, 256), "layers_per_block": 2, "linear_path": True},
        pool_short_side=288, crop=256, frames=16, vae_batch=16, dit_batch=8, vae_lr=3e-4, dit_lr=1e-4,
        warmup_steps=1000, procedural_shots=512, procedural_frames=48, encode_frames=200_000, bf16=True, checkpoint_seconds=900.0,
        log_every=50, refine_share=0.5, refine_sigma=(0.05, 0.5),
    ),
    # for tests: seconds, not minutes
    "tiny": TrainPreset(
        dit_size="tiny", dit_config={"guide": True}, vae_config={"block_out_channels": (8, 16, 16, 16), "linear_path": True},
        pool_short_side=48, crop=32,
        frames=4, vae_batch=2, dit_batch=2, vae_lr=2e-3, dit_lr=2e-3, warmup_steps=0, procedural_shots=2,
        procedural_frames=6, encode_frames=64, bf16=False, checkpoint_seconds=300.0, log_every=1,
        refine_share=0.5,
    ),
}
