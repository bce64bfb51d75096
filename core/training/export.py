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
from ..plan import TaskKind
from ..models import ShotfillTransformer3DModel, ShotfillVAE


#: the denoising steps an export records when none are given
DEFAULT_STEPS = 10


def export_checkpoint(checkpoint: Path, out: Path, dtype: torch.dtype, model_id: str = "shotfill-dit",
                      strength: float = 1.0, samples: int = 1, output: str = "picture",
                      steps: int = DEFAULT_STEPS, keep_guess_for: tuple[str, ...] = ()) -> dict:
    """Write the shipped form of a checkpoint: the pipeline's folder, both parts in ``dtype``, and a manifest.

    The pipeline's folder is ``model_index.json``, ``vae/``, ``transformer/`` and ``scheduler/``
    (the scheduler the model is trained for, which runs the pipeline's noise levels as given). The
    manifest names the model (``model_id``), the steps each part trained for, the sha256 of every
    weight file, which the engine checks at load, and how to sample it: ``strength`` (the noise
    level sampling starts from) and ``steps`` (the denoising steps from there to 0), the ``dit``
    engine's defaults for this model, measured with ``shotfill eval``, and ``samples`` and
    ``output`` (the engine's options of those names), and ``keep_guess_for``: the task kinds on which
    the engine keeps its first guess unless told otherwise (where the model's change was measured to
    lose; its ``model_change`` option). Together with the scheduler's config they are
    the whole schedule: ``steps`` levels evenly spaced from ``strength`` down to, not including, 0.

    ``checkpoint`` is a training checkpoint (its ``<part>_state.json`` give the training steps) or
    an exported one (``resources/dit``: its manifest's ``training_steps`` are kept), so a shipped
    checkpoint can be exported again with new sampling defaults, its weights unchanged.
    """
    strength, steps, samples, output = check_sampling(strength, steps, samples, output, where="export:")
    kinds = {kind.value for kind in TaskKind}
    if any(kind not in kinds for kind in keep_guess_for) or (keep_guess_for and strength >= 1):
        raise InputError(f"export: --keep-guess-for takes task kinds ({', '.join(sorted(kinds))}) and a strength "
                         f"below 1 (a first guess to keep), got {list(keep_guess_for)} at strength {strength}")
    parts = {}
    for part, cls in (("vae", ShotfillVAE), ("transformer", ShotfillTransformer3DModel)):
        if not (checkpoint / part / "config.json").is_file():
            raise InputError(f"export: {checkpoint / part} is not a saved model")
        parts[part] = cls.from_pretrained(checkpoint / part, torch_dtype=dtype)
    ShotfillDiTPipeline(**parts, scheduler=default_scheduler()).save_pretrained(out)
    files = {f"{part}/{weights.name}": hashlib.sha256(weights.read_bytes()).hexdigest()
             for part in parts for weights in sorted((out / part).glob("*.safetensors"))}
    trained = {part: json.loads((checkpoint / f"{part}_state.json").read_text())["step"]
               for part in ("vae", "transformer") if (checkpoint / f"{part}_state.json").is_file()}
    if not trained and (checkpoint / MANIFEST).is_file():  # an exported checkpoint, exported again
        try:
            trained = dict(json.loads((checkpoint / MANIFEST).read_text()).get("training_steps", {}))
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise InputError(f"export: {checkpoint / MANIFEST} is not a readable manifest ({e})") from None
    manifest = {"model": model_id, "dtype": str(dtype).removeprefix("torch."), "training_steps": trained,
                "sampling": {"strength": strength, "steps": steps, "samples": samples, "output": output.value,
                             **({"keep_guess_for": sorted(set(keep_guess_for))} if keep_guess_for else {})},
                "files": files}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
