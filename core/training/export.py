"""``shotfill train export``: a checkpoint in the shipped form.

The shipped form is the folder :class:`~shotfill.engines.dit.pipeline.ShotfillDiTPipeline` loads
(``model_index.json``, ``vae/``, ``transformer/``, ``scheduler/scheduler_config.json``), both models
in one dtype, and a ``manifest.json`` with the sha256 of every weight file, which the ``dit``
engine checks at load.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..engines.dit.engine import MANIFEST, check_sampling
from ..engines.dit.pipeline import ShotfillDiTPipeline, default_scheduler
from ..errors import InputError
from ..models import ShotfillTransformer3DModel, ShotfillVAE


def export_checkpoint(checkpoint: Path, out: Path, dtype: torch.dtype, model_id: str = "shotfill-dit",
                      strength: float = 1.0, samples: int = 1, output: str = "picture") -> dict:
    """Write the shipped form of a checkpoint: the pipeline's folder, both parts in ``dtype``, and a manifest.

    The pipeline's folder is ``model_index.json``, ``vae/``, ``transformer/`` and ``scheduler/``
    (the scheduler the model is trained for). The manifest names the model (``model_id``), the
    steps each part trained for, the sha256 of every weight file, which the engine checks at
    load, and how to sample it: ``strength`` (the ``dit`` engine's default for this model,
    measured with ``shotfill eval``), ``samples`` and ``output`` (the engine's options of those names).
    """
    strength, samples, output = check_sampling(strength, samples, output, where="export:")
    parts = {}
    for part, cls in (("vae", ShotfillVAE), ("transformer", ShotfillTransformer3DModel)):
        if not (checkpoint / part / "config.json").is_file():
            raise InputError(f"export: {checkpoint / part} is not a saved model")
        parts[part] = cls.from_pretrained(checkpoint / part, torch_dtype=dtype)
    ShotfillDiTPipeline(**parts, scheduler=default_scheduler()).save_pretrained(out)
    files = {f"{part}/{weights.name}": hashlib.sha256(weights.read_bytes()).hexdigest()
             for part in parts for weights in sorted((out / part).glob("*.safetensors"))}
    steps = {part: json.loads((checkpoint / f"{part}_state.json").read_text())["step"]
             for part in ("vae", "transformer") if (checkpoint / f"{part}_state.json").is_file()}
    manifest = {"model": model_id, "dtype": str(dtype).removeprefix("torch."), "training_steps": steps,
                "sampling": {"strength": strength, "samples": samples, "output": output.value}, "files": files}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
