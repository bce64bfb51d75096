"""Training the ``dit`` engine's VAE and transformer (``shotfill train``), and exporting a checkpoint.

One module a job:

- :mod:`~shotfill.training.presets`: :class:`TrainPreset` and :data:`PRESETS`;
- :mod:`~shotfill.training.data`: footage discovery, clips, crops, latent clips, procedural clips;
- :mod:`~shotfill.training.loss`: :func:`flow_matching_loss` and :func:`random_generate_mask`;
- :mod:`~shotfill.training.refine`: refinement samples' plans and first guesses (the ``flow`` engine's);
- :mod:`~shotfill.training.trainer`: :class:`Trainer`, :func:`train_vae`, :func:`train_dit`, resumable checkpoints;
- :mod:`~shotfill.training.export`: :func:`export_checkpoint`, the shipped form.

The command line is :mod:`shotfill.cli.train`. The names below are re-exported lazily: importing
this package imports neither torch nor the models until one of them is asked for.
"""
from __future__ import annotations

import importlib

#: public name -> the module of this package that defines it
_EXPORTS = {
    "PRESETS": "presets",
    "TrainPreset": "presets",
    "SHARED_ENV": "data",
    "Clip": "data",
    "LatentClip": "data",
    "discover_footage": "data",
    "encode_clips": "data",
    "load_data": "data",
    "load_footage_clip": "data",
    "render_procedural_clips": "data",
    "sample_crops": "data",
    "sample_latent_clips": "data",
    "flow_matching_loss": "loss",
    "random_generate_mask": "loss",
    "flow_prior_latents": "refine",
    "plan_of_mask": "refine",
    "Trainer": "trainer",
    "check_resumable": "trainer",
    "set_latent_statistics": "trainer",
    "train_dit": "trainer",
    "train_vae": "trainer",
    "export_checkpoint": "export",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
