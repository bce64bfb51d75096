"""The ``wan-vace`` engine: Wan2.1-VACE (1.3B, 14B) through diffusers' ``WanVACEPipeline``.

Everything but one window's conditioning is :class:`~shotfill.engines.pretrained.base.PretrainedEngine`'s
(model check, working size, chained windows, padding to ``4k+1`` frames, plate size and
detail); this module says how a window of the plan becomes VACE's inputs.

**The plan as VACE's conditioning.** VACE takes a conditioning ``video`` and a per-frame,
per-pixel ``mask`` with the same convention as shotfill's (1 = generate, 0 = keep), so every
task kind is one call:

- ``video``: the window's frames at working size, pictures in [0, 1]; every pixel to generate
  (whole generated frames, the padding to ``4k+1``, a fill's masked region) is grey, 0.5.
  The pipeline maps pictures to [-1, 1] (``VideoProcessor.preprocess_video``), so grey is 0
  there, as in the original VACE code, and encodes ``video * (1 - mask)`` (what to keep) and
  ``video * mask`` (grey: nothing to edit) as its two conditioning latents. The frames arrive
  clipped to [0, 1] (the base class does it), which VACE needs: the working encoding can carry
  small negative values (out-of-gamut colour) and the processor leaves a video whose minimum
  is below 0 un-normalised.
- ``mask``: the plan's masks at working size, 0 or 1, one channel. The pipeline reads masks
  through the same processor and back to [0, 1], so 0 and 1 arrive exactly.

So extend forward is ``[K kept][N grey, mask 1]``, extend backward the mirror, bridge
``[K kept][N grey][K kept]``, fill every frame kept but its masked pixels. VACE redraws the
kept pixels too (through its VAE); the base class takes the model's values only where the
mask is 1, and :mod:`shotfill.worker` writes the plate's own pixels everywhere else.

**Frame rate.** One model frame is one timeline frame: the known frames come at the
timeline's rate and the generated frames must fall between and after them on timeline frame
numbers, so nothing is resampled. Wan is trained on 16 fps clips and its pipeline takes no
frame rate (its rotary positions count frames), so there is nothing to pass: on a 24 fps
plate the model sees each frame's motion at the plate's speed and continues it, and a window
of 81 frames spans 3.4 s of the timeline instead of Wan's 5 s. The result's
``info["frame_rate"]`` records both rates.

The model folder is a diffusers-format Wan2.1-VACE checkpoint (``Wan-AI/Wan2.1-VACE-1.3B-diffusers``
or ``-14B-diffusers``), checked against its manifest entry; the scheduler the folder ships is
used unchanged.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np

from ...plan import TaskKind
from ..base import CancelFn, ProgressFn
from .base import PretrainedEngine

#: the conditioning value of a pixel to generate, in [0, 1] pictures (0 once the pipeline maps to [-1, 1])
GREY = 0.5


class WanVACEEngine(PretrainedEngine):
    """Wan2.1-VACE: extend forward and backward, bridge and fill with one pretrained model.

    Options are :class:`~shotfill.engines.pretrained.base.PretrainedEngine`'s. ``working_size`` is
    the long side in multiples of 16 (832 gives Wan's 480p, 832x480 at 16:9; the 14B also runs
    720p, 1280); ``window`` is ``4k+1`` frames (81, Wan's trained length, by default).
    """

    name: ClassVar[str] = "wan-vace"
    family: ClassVar[str] = "wan-vace"
    #: the VAE compresses time 4x (the first frame alone): windows of 4k+1 frames
    frame_step: ClassVar[int] = 4
    #: the VAE's 8x spatial compression times the transformer's (1, 2, 2) patch
    size_multiple: ClassVar[int] = 16
    #: Wan's 480p: 832x480
    default_working_size: ClassVar[int] = 832
    #: what diffusers' WanVACEPipeline example runs (the pipeline's own default is 50, as in Wan's
    #: scripts): each step is a full transformer pass, twice with guidance, so 30 takes 3/5 of the
    #: time of 50; ``steps=50`` matches the reference
    default_steps: ClassVar[int] = 30
    #: Wan's default classifier-free guidance
    default_guidance: ClassVar[float] = 5.0
    #: the clip length Wan is trained on: 81 frames, 5 s at 16 fps
    default_window: ClassVar[int] = 81
    #: about a second at Wan's 16 fps, and 4k+1 frames: the known frames before a cut fill whole latent
    #: frames (the first frame alone, then groups of 4), so the first frame to generate starts a latent
    #: frame; a bridge's two sides leave 47 of 81 frames for the gap
    context_frames: ClassVar[int] = 17
    #: a chained window's context, 4k+1 for the same reason: 64 new frames a window of 81
    default_overlap: ClassVar[int] = 17
    supports: ClassVar[frozenset] = frozenset(TaskKind)
    uses_prompt: ClassVar[bool] = True

    def load_pipeline(self, folder: Path, dtype) -> Any:
        """``WanVACEPipeline`` from ``folder`` alone, in ``dtype`` but for the VAE; its progress bar off.

        The VAE stays in float32, as diffusers' Wan examples load it (the pipeline casts to each
        component's own dtype); it is small next to the transformer (Wan's: 127M parameters).
        Progress goes to events through :meth:`step_callback`.
        """
        import torch
        from diffusers import AutoencoderKLWan, WanVACEPipeline

        vae = AutoencoderKLWan.from_pretrained(folder, subfolder="vae", dtype=torch.float32, local_files_only=True)
        pipe = WanVACEPipeline.from_pretrained(folder, vae=vae, dtype=dtype, local_files_only=True)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def run_window(self, frames: np.ndarray, masks: np.ndarray, *, prompt: str, generator, frame_rate: float,
                   report: dict, warnings: list, progress: ProgressFn, cancel: Optional[CancelFn]) -> np.ndarray:
        """One pipeline call on a window: kept pixels as they are, pixels to generate grey with mask 1."""
        count, height, width = masks.shape
        generate = masks[..., None] > 0
        video = np.where(generate, GREY, frames)
        output = self.pipe(
            prompt=prompt,
            negative_prompt=self.negative_prompt,
            video=video[None],  # (1, T, h, w, 3): one video, so the pipeline reads its size from the frames
            mask=masks[None, ..., None],  # (1, T, h, w, 1)
            height=height,
            width=width,
            num_frames=count,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance_scale,
            generator=generator,
            output_type="np",
            callback_on_step_end=self.step_callback(self.steps, progress, cancel),
        )
        return output.frames[0]  # (T, h, w, 3) float32 in [0, 1]
