"""The ``ltx`` engine: LTX-Video through diffusers' ``LTXConditionPipeline``.

Everything a pretrained engine shares (model check, working size, chained windows, padding
each window to ``8k+1`` frames, colour anchoring, plate size and detail, memory modes) is
:class:`~shotfill.engines.pretrained.base.PretrainedEngine`'s. This module says how one window of
the plan becomes LTX's conditioning.

**The pipeline's rules.** LTX's VAE compresses time 8x and space 32x (the transformer's patch
is 1), so the pipeline takes ``8k+1`` frames whose sides are multiples of 32. Known frames go
in as ``LTXVideoCondition(video=frames, frame_index=i)``, each condition ``8k+1`` frames long
(one frame is an image). A condition at ``frame_index`` 0 replaces the first latent frames
outright (hard conditioning); one placed later enters as extra tokens at its frame positions,
and the latents after its first two sit in the main grid from ``frame_index // 8 + 2``, so a
condition longer than one frame must start on a multiple of 8 there (LTX-Video's own pipeline
asserts it; diffusers' rounds down silently, which would put those frames at the wrong time).

**From the plan to the conditioning** (:func:`plan_conditioning`), for the window's known frames
(mask all 0) before and after the frames to generate::

    extend forward    [K known][N generate]       ->  video at 0: the 8k+1 known frames nearest the cut
    extend backward   [N generate][K known]       ->  video at the cut: the 8k+1 known frames nearest it
    bridge            [A tail][N generate][B head] ->  both of the above

- Before the generated frames, the pipeline's first frame is chosen so that the ``8k+1`` known
  frames nearest the cut start it: a video condition at ``frame_index`` 0 that ends exactly at
  the cut. Older known frames the ``8k+1`` rule leaves over are not shown to the model.
- After the generated frames, the known frames start wherever the generated ones end. The
  frames from there to the next multiple of 8 (at most 7) go in as single images, at their own
  frame positions, and from that multiple of 8 the longest ``8k+1`` run of the rest as one video.
  With ``K = 8k+1`` and nothing before (extending backward) the cut is already on a multiple of
  8 and no images are needed.
- The pipeline runs the smallest ``8k+1`` frames that reach the last generated frame and the end
  of the last condition; pipeline frames beyond the window are generated and dropped.

The result's ``info["conditioning"]`` records each window's layout, and a window whose known
frames were not all shown adds a warning to the result's ``warnings``. Before the generated frames, context
and overlap of ``8k+1`` frames (9, 17, 25, ...) leave none over; after them, up to 7 of the
farthest can be, unless the cut falls on a multiple of 8. Only the generated frames of the
model's output are used: the known frames are copied back from the plate, bit-exact.

**Frame rate.** One model frame is one timeline frame (nothing is resampled). LTX's rotary
positions measure time in seconds (frame index / ``frame_rate``), and ``frame_rate=`` is the
timeline's rate, so the model is told the real time between the frames it sees and continues
the context's motion at the timeline's speed. LTX-Video is made for 24 fps video (diffusers'
default ``frame_rate`` is 25). The result's ``info["frame_rate"]`` records the timeline's rate and the
model's native one (the manifest's ``native_frame_rate``).

**Settings** as LTX-Video's recommendations for its timestep-aware VAE (0.9.1 and later, in
diffusers' LTX-Video documentation and LTX-Video's own inference configs): ``decode_timestep``
0.05 and ``decode_noise_scale`` 0.025 (the VAE decoder does the last bit of denoising),
``image_cond_noise_scale`` 0.025 (a little noise on the hard-conditioning latents through the
steps, for motion that continues rather than freezes). Guidance 3.0, 30 steps.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence

import numpy as np

from ...errors import EngineUnavailableError
from ...plan import TaskKind
from ..base import CancelFn, ProgressFn
from .base import PretrainedEngine


@dataclasses.dataclass(frozen=True)
class Conditioning:
    """Where one window's known frames go among the pipeline's frames.

    Window frame ``t`` is pipeline frame ``t - offset`` (``offset`` >= 0: the known frames
    before it are not shown); the pipeline runs ``num_frames`` (``8k+1``) frames, which may
    reach past the window's end. Each ``(first, count)`` of ``conditions`` is one condition: window
    frames ``first .. first + count - 1`` at ``frame_index = first - offset``. ``unshown``
    counts the window's known frames that are in no condition.
    """

    offset: int
    num_frames: int
    conditions: tuple[tuple[int, int], ...]
    unshown: int

    def frame_index(self, first: int) -> int:
        """The pipeline frame of window frame ``first``."""
        return first - self.offset

    def to_dict(self) -> dict:
        return {"offset": self.offset, "num_frames": self.num_frames, "unshown": self.unshown,
                "conditions": [{"frames": [first, first + count - 1], "frame_index": self.frame_index(first)}
                               for first, count in self.conditions]}


def plan_conditioning(known: Sequence[bool], step: int = 8) -> Conditioning:
    """The conditioning of one window whose frames are ``known`` (True) or to generate (False).

    ``step`` is the VAE's temporal compression (8 for LTX-Video). Known frames before the
    first frame to generate form one video condition at pipeline frame 0 (the ``step*k+1``
    frames nearest the cut); every run of known frames after it gives single images up to the
    next multiple of ``step`` and then one video of the longest ``step*k+1`` frames that fit.
    For example, with ``step`` 8 (``K`` known, ``G`` to generate; ``V`` frames of a video
    condition, ``i`` an image condition, ``.`` known frames not shown; ``frame`` the pipeline's)::

        window    K K K K K K K K K K G G G G G G G K K K K K K K K K K
        condition . V V V V V V V V V G G G G G G G V V V V V V V V V .
        frame       0               8               16              24       (offset 1, 25 frames)

        window    K K K K K K K K K G G G G G G G G G G G K K K K K K K K K K K K K
        condition V V V V V V V V V G G G G G G G G G G G i i i i V V V V V V V V V
        frame     0               8               16              24              32   (offset 0, 33 frames)
    """
    known = np.asarray(known, dtype=bool)
    to_generate = np.flatnonzero(~known)
    first_new, last_new = int(to_generate[0]), int(to_generate[-1])
    conditions: list[tuple[int, int]] = []
    offset = 0
    if first_new > 0:  # the known frames before the cut: one video ending at the cut, at frame 0
        count = _whole_latents(first_new, step)
        offset = first_new - count
        conditions.append((offset, count))
    for first, stop in _runs(known):
        if first < first_new:
            continue
        images = min((offset - first) % step, stop - first)  # frames up to the next multiple of step
        conditions += [(first + i, 1) for i in range(images)]
        if stop - first > images:
            conditions.append((first + images, _whole_latents(stop - first - images, step)))
    end = max([last_new + 1] + [first + count for first, count in conditions]) - offset
    num_frames = -(-(end - 1) // step) * step + 1
    unshown = int(known.sum()) - sum(count for _, count in conditions)
    return Conditioning(offset=offset, num_frames=num_frames, conditions=tuple(conditions), unshown=unshown)


def _whole_latents(frames: int, step: int) -> int:
    """The most frames, at most ``frames``, that a condition can be: ``step * k + 1``."""
    return (frames - 1) // step * step + 1


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[(first, stop), ...]``: the runs of True in ``flags``, ``stop`` exclusive."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return [(int(first), int(stop)) for first, stop in zip(edges[::2], edges[1::2])]


class LTXEngine(PretrainedEngine):
    """LTX-Video (0.9.5 and later, diffusers format): extend forward, extend backward, bridge.

    Options are :class:`~shotfill.engines.pretrained.base.PretrainedEngine`'s. Defaults: working size
    768 (LTX-Video 0.9.x's native 768x512), 30 steps, guidance 3.0, windows of 121 frames (the
    pipeline's own default length, about 5 s at 24 fps; the 0.9.x models take up to 257), 17
    context frames (the first frame's latent and two more), and chained windows overlapping by 17
    (an overlap is best ``8k+1`` too: with 8, a window would show the model one of its 8 frames of
    context).
    """

    name: ClassVar[str] = "ltx"
    family: ClassVar[str] = "ltx"
    frame_step: ClassVar[int] = 8
    size_multiple: ClassVar[int] = 32
    default_working_size: ClassVar[int] = 768
    default_steps: ClassVar[int] = 30
    default_guidance: ClassVar[float] = 3.0
    default_window: ClassVar[int] = 121
    context_frames: ClassVar[int] = 17
    default_overlap: ClassVar[int] = 17
    supports: ClassVar[frozenset] = frozenset({TaskKind.EXTEND_FORWARD, TaskKind.EXTEND_BACKWARD, TaskKind.BRIDGE})
    uses_prompt: ClassVar[bool] = True

    #: timestep the VAE decoder denoises from, and the noise mixed in before it (timestep-aware VAE)
    decode_timestep: ClassVar[float] = 0.05
    decode_noise_scale: ClassVar[float] = 0.025
    #: noise added to the hard-conditioning latents at every step, scaled by the step's time squared
    image_cond_noise_scale: ClassVar[float] = 0.025

    def load_pipeline(self, folder: Path, dtype) -> Any:
        from diffusers import LTXConditionPipeline

        pipe = LTXConditionPipeline.from_pretrained(folder, dtype=dtype, local_files_only=True,
                                                    use_safetensors=True)
        multiple = pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size
        step = pipe.vae_temporal_compression_ratio * pipe.transformer_temporal_patch_size
        if (step, multiple) != (self.frame_step, self.size_multiple):
            raise EngineUnavailableError(
                f"{folder}: the model compresses time {step}x and space {multiple}x; the ltx engine "
                f"needs LTX-Video's {self.frame_step}x and {self.size_multiple}x")
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def run_window(self, frames: np.ndarray, masks: np.ndarray, *, prompt: str, generator, frame_rate: float,
                   report: dict, warnings: list, progress: ProgressFn, cancel: Optional[CancelFn]) -> np.ndarray:
        conditioning = plan_conditioning(~masks.reshape(len(masks), -1).any(axis=1), self.frame_step)
        layouts = report.setdefault("conditioning", [])
        layouts.append(conditioning.to_dict())
        if conditioning.unshown:
            warnings.append(
                f"window {len(layouts)}: {conditioning.unshown} known frames, the farthest from the cut, are not "
                f"shown to the model (LTX conditions are {self.frame_step}k+1 frames long and start on a "
                f"multiple of {self.frame_step})")
        return self.run_pipeline(frames, conditioning, prompt=prompt, generator=generator, frame_rate=frame_rate,
                                 progress=progress, cancel=cancel)

    def run_pipeline(self, frames: np.ndarray, conditioning: Conditioning, *, prompt: str, generator,
                     frame_rate: float, progress: ProgressFn, cancel: Optional[CancelFn]) -> np.ndarray:
        """One pipeline call for a window laid out as ``conditioning``; ``(T, h, w, 3)`` pictures.

        ``frames`` come clipped to [0, 1] (:meth:`PretrainedEngine.run_window`; diffusers reads a
        video holding any value below 0 as already in [-1, 1]). Window frames the pipeline runs
        come from its output, the others (known frames it was not shown) are ``frames``' own;
        pipeline frames past the window are dropped.
        """
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        conditions = [LTXVideoCondition(video=frames[first:first + count],
                                        frame_index=conditioning.frame_index(first))
                      for first, count in conditioning.conditions]
        height, width = frames.shape[1:3]
        output = self.pipe(
            conditions=conditions, prompt=prompt, negative_prompt=self.negative_prompt,
            height=height, width=width, num_frames=conditioning.num_frames, frame_rate=frame_rate,
            num_inference_steps=self.steps, guidance_scale=self.guidance_scale,
            image_cond_noise_scale=self.image_cond_noise_scale, decode_timestep=self.decode_timestep,
            decode_noise_scale=self.decode_noise_scale, generator=generator, output_type="np",
            callback_on_step_end=self.step_callback(self.steps, progress, cancel)).frames[0]  # (N, h, w, 3)
        pictures = frames.copy()
        stop = min(len(frames), conditioning.offset + conditioning.num_frames)
        pictures[conditioning.offset:stop] = output[:conditioning.frame_index(stop)]
        return pictures
