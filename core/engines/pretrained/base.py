"""Engines that run open pretrained video DiTs through diffusers, from a local model folder.

``wan-vace`` (:mod:`shotfill.engines.pretrained.wan_vace`) and ``ltx`` (:mod:`shotfill.engines.pretrained.ltx`)
share everything here and differ only in how one window of the plan becomes their
pipeline's conditioning (:meth:`PretrainedEngine.run_window`).

One generate call, read top to bottom:

1. **The model** was checked when the engine was made: the folder is verified against
   the manifest shipped in ``resources/models.json`` (every weight file's size and
   sha256, safetensors only; :func:`shotfill.engines.pretrained.store.open_model`) and then loaded
   with ``from_pretrained`` from that folder alone. Nothing downloads.
2. **Working size.** The plate is scaled down to the model's working size (long side
   ``working_size``, both sides multiples of :attr:`PretrainedEngine.size_multiple`,
   aspect kept; :func:`shotfill.engines.working.to_working`).
3. **Windows.** A plan longer than ``window`` frames runs as chained windows that
   overlap the frames before them (after them, extending backward). Each window's
   frame count is rounded *up* to what the model takes (``frame_step * k + 1``: 4k+1
   for Wan, 8k+1 for LTX) by adding frames to generate at the window's far end,
   which are dropped afterwards; the result's ``warnings`` say so. Every window's
   new frames are colour-matched to the plan's *real* frames before they serve as the
   next window's context, so colour cannot drift from window to window.
4. **Frame rate.** One model frame is one timeline frame: the known frames are given
   at the timeline's rate and the generated ones must interleave with them, so nothing
   is resampled. A model trained at another rate (Wan: 16 fps) sees motion at the
   timeline's speed and continues the context's motion; ``frame_rate`` is passed to
   models that take it (LTX's rotary positions), and the result's ``info`` records both rates.
5. **Plate size** comes back by the same path as the ``dit`` engine
   (:func:`shotfill.engines.working.at_plate`): colour anchored to the plate, upscaled,
   the plate's fine detail carried along the ``flow`` engine's motion.

Memory (:data:`MEMORY_MODES`): on CUDA the pipeline runs in bfloat16, whole on the GPU
or offloaded; on a CPU in float32. A CUDA out-of-memory error becomes
:class:`~shotfill.errors.OutOfMemoryError`, whose message names the next mode to try; frames already
written by earlier runs stay valid and the re-run job resumes after them.
"""
from __future__ import annotations

import abc
import contextlib
import time
from pathlib import Path
from typing import Any, ClassVar, Iterator, Optional

import numpy as np

from ...io.matching import match_colour
from ...errors import EngineUnavailableError, InputError, OutOfMemoryError
from ...plan import FramePlan, TaskKind
from ..classical import _cv
from ..base import CancelFn, Engine, EngineResult, ProgressFn, check_cancel, no_progress
from ..working import at_plate, plan_windows, positive_option, to_working, whole_option, working_size

#: ``--memory`` modes, least saving first; the trade-offs, as ``shotfill engines`` and the README show them
MEMORY_MODES = {
    "auto": "on CUDA, the first of gpu, offload, group, sequential whose need (from the manifest) fits the "
            "free GPU memory; without CUDA, cpu",
    "gpu": "the whole pipeline on the GPU in bfloat16: fastest, needs the most GPU memory",
    "offload": "model CPU offload: each component (text encoder, transformer, VAE) moves to the GPU only "
               "while it runs; a little slower, peak is the largest component",
    "group": "group offload: the transformer's blocks stream to the GPU one group at a time, overlapped "
             "with compute on a CUDA stream; slower, far less GPU memory, needs more CPU memory",
    "sequential": "leaf-level group offload: one layer at a time on the GPU; slowest, least GPU memory",
    "cpu": "everything on the CPU in float32: for tests and tiny models (a real model takes hours a window)",
}
#: the next mode to suggest after running out of GPU memory
NEXT_MODE = {"gpu": "offload", "offload": "group", "group": "sequential"}
#: share of the progress bar the windows take (the rest: plate size and detail)
WINDOWS_SHARE = 0.9
#: the frame rate models that take one are told when neither the engine option nor the call gives one
DEFAULT_FRAME_RATE = 24.0


class PretrainedEngine(Engine):
    """A diffusers video pipeline behind the engine interface.

    Subclasses set the class attributes and implement :meth:`load_pipeline` and
    :meth:`run_window`; they take their options from this ``__init__`` (the registry
    checks options against its signature).

    Args:
        model: a model name from ``shotfill models list`` or a model folder; by default the
            first model of this engine present in the models folder.
        manifest: a manifest file other than the shipped ``resources/models.json`` (a studio's
            fine-tune, a test model).
        memory: one of :data:`MEMORY_MODES`.
        attention: a diffusers attention backend for the transformer (``"native"``,
            ``"flash"``, ``"_native_cudnn"``, ``"sage"``...); the default is diffusers'.
        working_size: long side, in pixels, the model runs at (the engine's default when None).
        steps: denoising steps.
        guidance_scale: classifier-free guidance (1 turns it off: half the work).
        window: most frames one pipeline call takes (``frame_step * k + 1``).
        overlap: frames of context each chained window takes from the one before (the engine's
            default when None).
        frame_rate: the frame rate models that take one are told; by default the timeline's (the
            ``frame_rate`` of each generate call), 24 when that is not known.
        negative_prompt: what to steer away from, when guiding.
        detail: carry the plate's fine detail into generated frames (as the ``dit`` engine does).
        detail_scale: sigma, in working pixels, of the band split between model and plate detail.
    """

    #: the ``engine`` field of this engine's manifest entries
    family: ClassVar[str]
    #: frame counts the model takes are ``frame_step * k + 1``
    frame_step: ClassVar[int]
    #: working sizes are multiples of this many pixels
    size_multiple: ClassVar[int]
    default_working_size: ClassVar[int]
    default_steps: ClassVar[int]
    default_guidance: ClassVar[float]
    default_window: ClassVar[int]
    #: frames of context a chained window takes from the one before
    default_overlap: ClassVar[int] = 8
    uses_prompt: ClassVar[bool] = True

    def __init__(self, model: str | Path | None = None, manifest: str | Path | None = None,
                 memory: str = "auto", attention: str | None = None, working_size: int | None = None,
                 steps: int | None = None, guidance_scale: float | None = None, window: int | None = None,
                 overlap: int | None = None, frame_rate: float | None = None, negative_prompt: str = "",
                 detail: bool = True, detail_scale: float = 2.0):
        import importlib.util

        from .store import open_model

        missing = [m for m in ("transformers", "accelerate", "ftfy") if importlib.util.find_spec(m) is None]
        if missing:
            raise EngineUnavailableError(f"engine '{self.name}' needs {', '.join(missing)}: "
                                         "pip install 'shotfill[pretrained]'")
        def given(value, default):  # None takes the engine's default; anything else is checked as given
            return default if value is None else value

        self.working_size = whole_option("working_size", given(working_size, self.default_working_size),
                                         self.size_multiple)
        if self.working_size % self.size_multiple:
            raise InputError(f"engine option working_size: must be a multiple of {self.size_multiple}, "
                             f"got {self.working_size}")
        self.steps = whole_option("steps", given(steps, self.default_steps), 1)
        self.window = whole_option("window", given(window, self.default_window), self.frame_step + 1)
        if (self.window - 1) % self.frame_step:
            raise InputError(f"engine option window: {self.name} takes {self.frame_step}k+1 frames, got {self.window}")
        self.overlap = whole_option("overlap", given(overlap, self.default_overlap), 1)
        if self.overlap >= self.window:
            raise InputError(f"engine options: overlap ({self.overlap}) must be smaller than window ({self.window})")
        self.guidance_scale = positive_option("guidance_scale", given(guidance_scale, self.default_guidance))
        #: the frame rate the engine was told to use, whatever the timeline's (None: the timeline's)
        self.frame_rate = None if frame_rate is None else positive_option("frame_rate", frame_rate)
        self.detail_scale = positive_option("detail_scale", detail_scale)
        self.detail, self.negative_prompt = bool(detail), str(negative_prompt)
        if memory not in MEMORY_MODES:
            raise InputError(f"engine option memory: '{memory}' is not one of {', '.join(MEMORY_MODES)}")

        self.model = open_model(model, engine=self.family, manifest=manifest)
        self.memory = choose_memory_mode(memory, self.model.entry.gpu_memory_gib)
        import torch

        self.dtype = torch.float32 if self.memory == "cpu" else torch.bfloat16
        self.pipe = self.load_pipeline(self.model.path, self.dtype)
        apply_memory_mode(self.pipe, self.memory)
        if attention:
            self.pipe.transformer.set_attention_backend(attention)

    # -- what a subclass provides ------------------------------------------------------
    @abc.abstractmethod
    def load_pipeline(self, folder: Path, dtype) -> Any:
        """The diffusers pipeline, loaded from ``folder`` only (``local_files_only``), in ``dtype``."""

    @abc.abstractmethod
    def run_window(self, frames: np.ndarray, masks: np.ndarray, *, prompt: str, generator, frame_rate: float,
                   report: dict, warnings: list, progress: ProgressFn, cancel: Optional[CancelFn]) -> np.ndarray:
        """Generate one window at working size.

        ``frames`` ``(T, h, w, 3)`` clipped to [0, 1] (the models' range; known pixels go back
        into the result from the plate, unclipped), ``T = frame_step * k + 1``; generated pixels
        hold zeros. ``masks`` ``(T, h, w)`` of 0 and 1 (1 = generate). Returns ``(T, h, w, 3)``
        float32 pictures in [0, 1]; only the masked pixels are used. ``frame_rate`` is the rate to
        tell a model that takes one; ``report`` is the ``info`` of the generate call in progress and
        ``warnings`` its warnings (they reach the job's events): add notes to them.
        """

    # -- the engine interface ----------------------------------------------------------
    def describe(self) -> dict:
        return {"engine": self.name, "model": f"{self.model.entry.repo_id}@{self.model.entry.revision}",
                "model_sha256": self.model.checksum}

    def generate(self, plan: FramePlan, frames, masks, *, prompt: str | None = None, seed: int = 0,
                 frame_rate: float | None = None, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelFn] = None) -> EngineResult:
        import torch

        self.check_plan(plan)
        _cv.check_window(plan, frames, masks)
        progress = progress or no_progress
        height, width = frames.shape[1:3]
        size = working_size(height, width, self.working_size, self.size_multiple)
        rate = self.frame_rate or frame_rate or DEFAULT_FRAME_RATE
        info: dict = {"working_size": [size[1], size[0]], "memory": self.memory,
                      "frame_rate": {"timeline": rate, "model_native": self.model.entry.native_frame_rate}}
        warnings: list[str] = []
        timings = {"windows": 0.0}
        small, small_masks = to_working(frames, masks, size)
        backward = plan.kind is TaskKind.EXTEND_BACKWARD
        windows = plan_windows(small_masks.reshape(len(plan), -1).max(1) > 0, self.window, self.overlap,
                               backward=backward)
        info["windows"] = [list(w) for w in windows]
        real_context = small[plan.known_positions]
        chained = len(windows) > 1 and plan.kind is not TaskKind.FILL and len(real_context) > 0
        current, todo = small.copy(), small_masks.copy()
        generator = torch.Generator(device="cpu").manual_seed(seed)

        with out_of_memory_hint(self.name, self.memory):
            for index, (first, last) in enumerate(windows):
                def window_progress(fraction: float, message: str, index: int = index) -> None:
                    progress(WINDOWS_SHARE * (index + fraction) / len(windows),
                             f"window {index + 1}/{len(windows)}: {message}")

                start = time.monotonic()
                span = slice(first, last)
                padded, padded_masks, keep = pad_frames(current[span], todo[span], self.frame_step,
                                                        at_start=backward)
                if len(padded) != last - first:
                    warnings.append(
                        f"window {index + 1}: {last - first} frames rounded up to {len(padded)} "
                        f"({self.name} takes {self.frame_step}k+1); the extra frames are generated and dropped")
                pictures = self.run_window(np.clip(padded, 0.0, 1.0), padded_masks, prompt=prompt or "",
                                           generator=generator, frame_rate=rate, report=info, warnings=warnings,
                                           progress=window_progress, cancel=cancel)[keep]
                new = [first + t for t in range(last - first) if todo[first + t].any()]
                generated = pictures[[t - first for t in new]]
                if chained:  # anchored to the real plate before it serves as the next window's context
                    generated = match_colour(generated, real_context)
                hole = todo[new][..., None] > 0
                current[new] = np.where(hole, generated, current[new])
                todo[new] = 0
                timings["windows"] += time.monotonic() - start
                check_cancel(cancel)

        start = time.monotonic()
        progress(WINDOWS_SHARE, "plate size and detail")
        result, detail_info = at_plate(plan, frames, masks, small, small_masks, current,
                                       detail=self.detail, detail_scale=self.detail_scale, cancel=cancel)
        if detail_info:
            info["detail"] = detail_info
        timings["detail"] = time.monotonic() - start
        info["timings"] = {k: round(v, 3) for k, v in timings.items()}
        progress(1.0, "done")
        return EngineResult(frames=result, info=info, warnings=warnings)

    def step_callback(self, total_steps: int, progress: ProgressFn, cancel: Optional[CancelFn]):
        """A diffusers ``callback_on_step_end`` reporting progress and stopping on cancel.

        The VAE decode follows the last step inside the pipeline, so the last report names it.
        """
        def callback(pipe, step: int, timestep, callback_kwargs: dict) -> dict:
            check_cancel(cancel)
            done = step + 1
            message = (f"denoising step {done}/{total_steps}" if done < total_steps
                       else f"denoising step {done}/{total_steps}; VAE decode")
            progress(done / (total_steps + 1), message)
            return callback_kwargs
        return callback


@contextlib.contextmanager
def out_of_memory_hint(engine: str, memory: str) -> Iterator[None]:
    """Turn a CUDA out-of-memory error into :class:`~shotfill.errors.OutOfMemoryError` naming the next mode."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError as e:
        following = NEXT_MODE.get(memory)
        advice = (f"try --memory {following} (see `shotfill engines`)" if following else
                  "this is already the mode that needs least GPU memory: lower working_size or window")
        raise OutOfMemoryError(
            f"engine '{engine}': the GPU ran out of memory in memory mode '{memory}' ({e}); "
            f"{advice}. Frames already written stay valid; the job resumes after them.") from None


def pad_frames(frames: np.ndarray, masks: np.ndarray, step: int, *,
               at_start: bool = False) -> tuple[np.ndarray, np.ndarray, slice]:
    """Frames and masks padded to ``step * k + 1`` frames with frames to generate.

    The padding goes at the end (at the start with ``at_start``: extending backward, where
    time runs away from the clip toward the start), holds zeros with mask 1, and is
    dropped by indexing the model's output with the returned slice.
    """
    count = len(frames)
    target = count if (count - 1) % step == 0 else ((count - 1) // step + 1) * step + 1
    extra = target - count
    if extra == 0:
        return frames, masks, slice(0, count)
    pad_frames_ = np.zeros((extra,) + frames.shape[1:], dtype=np.float32)
    pad_masks = np.ones((extra,) + masks.shape[1:], dtype=np.float32)
    if at_start:
        return (np.concatenate([pad_frames_, frames]), np.concatenate([pad_masks, masks]),
                slice(extra, target))
    return np.concatenate([frames, pad_frames_]), np.concatenate([masks, pad_masks]), slice(0, count)


def choose_memory_mode(memory: str, needs_gib: dict) -> str:
    """The mode to run in: ``memory`` itself, or for ``auto`` the fastest that fits the free GPU memory.

    Without CUDA, ``auto`` is ``cpu`` and any GPU mode is an :class:`InputError`.
    """
    import torch

    if memory == "cpu":
        return memory
    if not torch.cuda.is_available():
        if memory == "auto":
            return "cpu"
        raise InputError(f"engine option memory: '{memory}' needs a CUDA GPU and this machine has none "
                         "(use --memory cpu, for tiny models only)")
    if memory != "auto":
        return memory
    free_gib = torch.cuda.mem_get_info()[0] / 2**30
    for mode in ("gpu", "offload", "group", "sequential"):
        need = needs_gib.get(mode)
        if need is not None and need <= free_gib:
            return mode
    return "sequential"


def apply_memory_mode(pipe, memory: str) -> None:
    """Place ``pipe`` for ``memory`` (see :data:`MEMORY_MODES`); VAE tiling is on in every mode."""
    import torch

    vae = getattr(pipe, "vae", None)
    if vae is not None and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
    if memory == "cpu":
        pipe.to("cpu")
    elif memory == "gpu":
        pipe.to("cuda")
    elif memory == "offload":
        pipe.enable_model_cpu_offload()
    elif memory in ("group", "sequential"):
        level = {"group": dict(offload_type="block_level", num_blocks_per_group=1, use_stream=True),
                 "sequential": dict(offload_type="leaf_level")}[memory]
        pipe.enable_group_offload(onload_device=torch.device("cuda"), offload_device=torch.device("cpu"), **level)
    else:  # pragma: no cover - choose_memory_mode returns only the modes above
        raise InputError(f"memory mode '{memory}'")
