"""The ``dit`` engine: the project's own video diffusion transformer.

One generate call, read top to bottom:

1. **Working size.** The plate is scaled down so its long side is at most
   ``working_size`` (both sides multiples of the VAE's compression times the
   transformer's patch: 16 for the shipped model), aspect kept. Masks are scaled with it; a working
   pixel is generated when any plate pixel under it is.
2. **First guess.** The first guess runs once, at plate size
   (:func:`~shotfill.engines.working.plate_flow`): scaled to working size it is the first
   guess the model refines (a strength below 1, or a guided model), and at plate size it
   is the base of the ``correction`` output and the detail of the ``picture`` output; its
   confidence and its methods become the result's (6.).
3. **Encode.** Frames go to [-1, 1] and through the VAE (tiled, so any size
   works), pixel masks become latent masks (:meth:`ShotfillVAE.latent_mask`); the
   guess is encoded the same way.
4. **Denoise, in windows.** :class:`~shotfill.engines.dit.pipeline.ShotfillDiTPipeline`
   fills the generated latents in context of the known ones (flow matching, Euler, a seeded
   ``torch.Generator``; progress and cancel every step): ``steps`` steps from the noise level
   ``strength`` (the guess noised to exactly that level) down to 0. A plan longer than
   ``window`` frames runs as chained windows: each starts ``overlap`` frames
   before the first frame still to generate, so the previous window's last
   frames are its context. Extending backward runs the same chain with time
   reversed. Each window's generated frames are decoded; when windows chain, they are
   colour-matched to the plan's *real* context frames (:func:`shotfill.io.matching.match_colour`)
   and re-encoded before they serve as context, so colour cannot drift from
   window to window.
5. **Compose at plate size**, as the ``output`` option says (:class:`DiTOutput`):

   - ``correction``: the flow engine's plate-size result plus the model's change to the
     guess, upscaled, weighted per pixel by the flow engine's distrust in its result;
   - ``picture``: the model's picture, its colour anchored to the plate
     (:func:`shotfill.io.matching.anchor_to_plate`, as the pipeline does), upscaled to the
     plate and split into bands by a Gaussian of ``detail_scale`` working pixels (scaled
     to the plate): its low band is kept and its high band (which the model, at its
     working size and through its small VAE, does not carry) is replaced by the high band
     of the flow engine's result, which carries the plate's real detail along the measured
     motion from the nearest real frame. Per pixel, that detail fades out where the two
     low bands disagree (the model made something the plate does not show there), leaving
     the model's own smooth picture rather than ghosted texture.

6. **Trust.** The result's per-pixel ``confidence`` and per-frame ``methods``: the guess's,
   less where the model moved a pixel away from it, or 0 and ``generated`` from pure noise
   (see :class:`DiTEngine`). ``model_change=False`` leaves step 4 out, so the result is the
   guess through the same composition: the reference the model's own share is measured against.

The pipeline copies known pixels back (bit-exact) and anchors the colour of
the result to the plate; the engine returns the whole window in an
:class:`~shotfill.engines.base.EngineResult` whose ``info`` holds the working size, the
windows and the time of each stage.
"""
from __future__ import annotations

import enum
import hashlib
import json
import time
from pathlib import Path
from typing import ClassVar, Optional

import cv2
import numpy as np
import torch

from ...io.matching import match_colour
from ...errors import EngineUnavailableError, InputError, ShotfillError
from ...plan import FramePlan, TaskKind
from ...resources import RESOURCES
from ..classical import _cv
from ..base import CancelFn, Engine, EngineResult, ProgressFn, check_cancel, no_progress
from ..working import (PlateFlow, at_plate, plan_windows, plate_flow, positive_option, to_working, whole_option,
                      working_size)
from .pipeline import ShotfillDiTPipeline, denoising_sigmas

#: the checkpoint that ships with shotfill
SHIPPED_MODEL = RESOURCES / "dit"
#: the checkpoint's manifest: ``{"model": id, "files": {relative path: sha256}}``
MANIFEST = "manifest.json"
#: share of the progress bar the denoising takes (the rest: encode, decode, detail)
DENOISE_SHARE = 0.8
#: the stages ``info["timings"]`` reports, in this order
STAGES = ("encode", "flow", "denoise", "decode", "detail")
#: how far (mean absolute change, working encoding) the model may move a pixel from its first guess
#: before the pixel's trust has fallen to 1/e of the guess's
CHANGE_TOLERANCE = 0.08
#: the length of the noise-level path checkpoints without ``sampling.steps`` were sampled on (see :func:`legacy_steps`)
LEGACY_PATH_STEPS = 10


class DiTOutput(str, enum.Enum):
    """What the engine makes at plate size (its ``output`` option, and a manifest's ``sampling.output``)."""

    #: the model's own picture, with the plate's detail
    PICTURE = "picture"
    #: the flow engine's result plus the model's change to it, where the flow engine distrusts its result
    CORRECTION = "correction"


class DiTEngine(Engine):
    """The shotfill video DiT: extend, bridge and fill with one model.

    Args:
        model: checkpoint folder (``vae/``, ``transformer/`` and ``scheduler/``, with ``model_index.json``,
            as :class:`~shotfill.engines.dit.pipeline.ShotfillDiTPipeline` saves them, and ``manifest.json``
            with the sha256 of the weight files); the shipped one by default.
        working_size: long side, in pixels, the model runs at (a multiple of the VAE's compression
            times the transformer's patch size: 16 for the shipped model).
        steps: denoising steps, every one run: ``steps`` noise levels from ``strength`` down to, but
            not including, 0, evenly spaced (:func:`~shotfill.engines.dit.pipeline.denoising_sigmas`).
            By default the manifest's ``sampling.steps``; a manifest without it (exported before the
            schedule was saved) gets as many steps as its old schedule ran below its strength, a
            10-step path from noise cut at the strength (:func:`legacy_steps`: 2 at 0.2, 10 at 1).
        window: most frames the transformer sees at once; longer plans run as chained windows.
        overlap: frames of context each chained window takes from the one before.
        detail: carry the plate's fine detail into generated frames (see the module docstring).
        detail_scale: where the model's band ends and the plate's detail begins: the sigma, in
            working pixels, of the Gaussian that splits them.
        strength: noise level denoising starts from. 1 generates from pure noise; below 1 the
            ``flow`` engine's result, scaled to working size, is the first guess, noised to that
            level, and the model refines it (see :class:`~shotfill.engines.dit.pipeline.ShotfillDiTPipeline`;
            the shipped model is trained for this, :mod:`shotfill.training.trainer`). The flow engine runs
            once, at plate size, for both the guess and the detail band. By default, the strength
            the checkpoint's manifest recommends (``sampling.strength``), else 1.
        samples: denoise this many samples of the window at once (one batch, one seed) and keep
            their mean: an estimate of the expected frames given the guess, which scores better
            than any one sample. By default the manifest's ``sampling.samples``, else 1.
        output: ``"picture"``: the model's own picture, with the plate's detail (step 5 of the
            module docstring); ``"correction"`` (needs a strength below 1): the ``flow`` engine's
            plate-size result plus the model's change to it (its decoded frames minus the decoded
            guess, upscaled), weighted per pixel by how little the flow engine trusts its result
            (``1 -`` the flow result's ``confidence``): little where an extension's motion foretold the
            last real frame well, where a bridge followed the motion and on fill pixels tracked from
            a real frame; all of it on a dissolve or an inpainted pixel. So a right guess is
            kept, and the model mends what flow could not. The VAE's own error cancels
            out of the difference, and the detail is the flow result's own (``detail`` and
            ``detail_scale`` serve the ``picture`` output only). By default the manifest's
            ``sampling.output``, else ``"picture"``. A :class:`DiTOutput` or its value.
        model_change: False leaves the model out: the result is the first guess taken through the
            same composition (``correction``: exactly the flow engine's result; ``picture``: the
            decoded guess with the plate's detail), so "dit minus this" is the model's own share.
            Needs a strength below 1 (a first guess).

    The result's ``confidence`` (per pixel, 0..1) and ``methods`` say what the engine did. Refining
    (strength below 1), a generated pixel's trust is its first guess's (the flow engine's
    ``confidence``: how well its motion is tracked to a real frame) times how little the model
    moved it away from that guess, ``exp(-(d / CHANGE_TOLERANCE)**2)``, ``d`` the mean absolute
    change over the three channels: the model's share of a pixel is not tracked to any real frame,
    so it never adds trust (its measured gain over its guess is a few tenths of a dB), and a large
    change takes trust away. Its methods are the guess's words (``interpolated``, ``dissolve``,
    ``extrapolated``, ``propagated``...), and its warnings (a bridge that fell back to a dissolve) are
    the result's. From pure noise (strength 1) nothing is tracked: trust 0
    where generated, and the method ``generated``. Kept pixels have trust 1.
    """

    name: ClassVar[str] = "dit"
    context_frames: ClassVar[int] = 2

    def __init__(self, model: str | Path | None = None, working_size: int = 256, steps: int | None = None,
                 window: int = 16, overlap: int = 4, detail: bool = True, detail_scale: float = 2.0,
                 strength: float | None = None, samples: int | None = None, output: str | DiTOutput | None = None,
                 model_change: bool | None = None):
        whole_option("working_size", working_size, 1)
        whole_option("window", window, 2)
        whole_option("overlap", overlap, 1)
        if overlap >= window:
            raise InputError(f"engine options: overlap ({overlap}) must be smaller than window ({window})")
        self.detail_scale = positive_option("detail_scale", detail_scale)
        self.model_dir = Path(model) if model is not None else SHIPPED_MODEL
        self.model_id, self.checksum, sampling = _verify_manifest(self.model_dir)
        strength = sampling.get("strength", 1.0) if strength is None else strength
        if steps is not None:
            self.steps_from = "option"
        elif "steps" in sampling:
            steps, self.steps_from = sampling["steps"], "manifest"
        else:
            steps = legacy_steps(check_strength(strength, "engine option"))
            self.steps_from = "legacy rule (the manifest has no sampling.steps)"
        self.strength, self.steps, self.samples, self.output = check_sampling(
            strength, steps, sampling.get("samples", 1) if samples is None else samples,
            sampling.get("output", DiTOutput.PICTURE.value) if output is None else output)
        if model_change is not None and not isinstance(model_change, bool):
            raise InputError(f"engine option model_change: expected true or false, got {model_change!r}")
        if model_change is False and self.strength >= 1:
            raise InputError("engine option model_change: false keeps the first guess, so it needs a strength "
                             "below 1 (from noise there is no guess to keep)")
        self.model_change = model_change
        #: the tasks on which the checkpoint keeps its first guess when ``model_change`` is not given
        #: (the manifest's ``sampling.keep_guess_for``: where the model's change was measured to lose)
        self.keep_guess_for = _keep_guess_for(sampling.get("keep_guess_for", []), self.model_dir, self.strength)
        self.working_size, self.window, self.overlap, self.detail = working_size, window, overlap, bool(detail)
        self.pipeline = ShotfillDiTPipeline.from_pretrained(self.model_dir, dtype=torch.float32)
        self.vae, self.transformer = self.pipeline.vae, self.pipeline.transformer
        #: a model without text conditioning ignores prompts; the worker says so
        self.uses_prompt = self.transformer.config.text_dim > 0
        #: working sizes are multiples of this many pixels: one transformer patch
        self.multiple = self.vae.spatial_compression * max(self.transformer.config.patch_size[1:])
        if working_size % self.multiple:
            raise InputError(f"engine option working_size: must be a multiple of {self.multiple} for "
                             f"{self.model_dir}, got {working_size}")

    def describe(self) -> dict:
        return {"engine": self.name, "model": self.model_id, "model_sha256": self.checksum}

    def generate(self, plan: FramePlan, frames, masks, *, prompt: str | None = None, seed: int = 0,
                 frame_rate: float | None = None, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelFn] = None) -> EngineResult:
        """The engine's result on the window (``frame_rate`` is not used: the model has no notion of it)."""
        self.check_plan(plan)
        _cv.check_window(plan, frames, masks)
        if prompt and self.uses_prompt:
            raise EngineUnavailableError(
                f"{self.model_dir}: the model has text conditioning, but no text encoder ships with it "
                "to embed the prompt")
        progress = progress or no_progress
        timings: dict[str, float] = {}
        info: dict = {"prompt": "ignored: the model has no text conditioning"} if prompt else {}
        reverse = plan.kind is TaskKind.EXTEND_BACKWARD  # extending backward is extending forward, time reversed
        correcting = self.output is DiTOutput.CORRECTION
        model_change, model_change_from = self.uses_model(plan.kind)

        # 1. Working size
        start = time.monotonic()
        size = working_size(*frames.shape[1:3], self.working_size, self.multiple)
        info["working_size"] = [size[1], size[0]]
        small, small_masks = to_working(frames, masks, size)
        timings["encode"] = time.monotonic() - start

        # 2. First guess: the flow engine, once, at plate size (also the correction's base and the detail band)
        flow = None
        needs_guess = self.strength < 1.0 or bool(self.transformer.config.guide)
        if needs_guess or self.detail:
            start = time.monotonic()
            flow = plate_flow(plan, frames, masks, cancel)
            timings["flow"] = time.monotonic() - start
        if correcting and not model_change:  # the first guess is the result: no model, no VAE to run
            return self._first_guess(plan, masks, flow, small_masks, info, timings, model_change_from, progress)

        # 3. Encode the plate and the guess
        start = time.monotonic()
        pictures = _to_model(small)  # (1, 3, T, h, w)
        pixel_mask = torch.from_numpy(small_masks)[None, None]  # (1, 1, T, h, w)
        if reverse:
            pictures, pixel_mask = pictures.flip(2), pixel_mask.flip(2)
        latents = self._encode_plate(pictures, pixel_mask, size)
        latent_mask = self.vae.latent_mask(pixel_mask)
        prior = None
        if needs_guess:
            prior = self._encode_guess(flow, small, small_masks, masks, size, latents, latent_mask, reverse)
        timings["encode"] += time.monotonic() - start
        check_cancel(cancel)

        # 4. Denoise in chained windows, decoding each window's new frames
        windows = plan_windows(latent_mask[0, 0].flatten(1).amax(1).numpy() > 0, self.window, self.overlap)
        info["windows"] = [list(w) for w in windows]
        real_context = small[plan.known_positions] if plan.kind is not TaskKind.FILL else None
        decoded, change = self._denoise_windows(windows, pictures, latents, latent_mask, prior, real_context,
                                                correcting, model_change, seed, timings, progress, cancel)
        if reverse:
            decoded = decoded.flip(2)
            change = None if change is None else change.flip(2)

        # 5. Compose at plate size: the flow result corrected, or the model's picture with the plate's detail
        start = time.monotonic()
        if correcting:
            result, info["correction"] = _corrected(plan, flow, change, small_masks, masks)
        else:
            result, detail_info = at_plate(plan, frames, masks, small, small_masks, _from_model(decoded),
                                           detail=self.detail, detail_scale=self.detail_scale, cancel=cancel,
                                           flow_result=flow)
            if detail_info:
                info["detail"] = detail_info
        result = np.asarray(result, dtype=np.float32)
        confidence, methods = self._trust(plan, masks, flow, result)
        timings["detail"] = time.monotonic() - start
        progress(1.0, "done")

        return self._result(plan, masks, flow, result, confidence, methods, info, timings, model_change,
                            model_change_from)

    def uses_model(self, kind: TaskKind) -> tuple[bool, str]:
        """Whether the model's change is applied on a task of this kind, and what decided it: the
        ``model_change`` option when given, else the manifest's ``sampling.keep_guess_for``."""
        if self.model_change is not None:
            return self.model_change, "option"
        if kind.value in self.keep_guess_for:
            return False, f"manifest: keep_guess_for {kind.value}"
        return True, "default"

    def _first_guess(self, plan: FramePlan, masks: np.ndarray, flow: PlateFlow, small_masks: np.ndarray,
                     info: dict, timings: dict, model_change_from: str, progress: ProgressFn) -> EngineResult:
        """The result with the model's change left out of a correction: the first guess itself, taken
        through the same composition as a change of zero (so it equals the model-off reference bit for bit)."""
        start = time.monotonic()
        zero = torch.zeros((1, 3, len(plan), *small_masks.shape[1:3]))
        result, info["correction"] = _corrected(plan, flow, zero, small_masks, masks)
        confidence, methods = self._trust(plan, masks, flow, result)
        timings["detail"] = time.monotonic() - start
        progress(1.0, "done: the first guess (the model's change is left out on this task)")
        return self._result(plan, masks, flow, result, confidence, methods, info, timings, False, model_change_from)

    def _result(self, plan: FramePlan, masks: np.ndarray, flow: PlateFlow | None, result: np.ndarray,
                confidence: np.ndarray, methods, info: dict, timings: dict, model_change: bool,
                model_change_from: str) -> EngineResult:
        info["sampling"] = {"strength": self.strength, "steps": self.steps, "steps_from": self.steps_from,
                            "sigmas": [round(v, 6) for v in denoising_sigmas(self.steps, self.strength)],
                            "samples": self.samples, "output": self.output.value, "model_change": model_change,
                            "model_change_from": model_change_from}
        generated = masks > 0
        info["trust"] = round(float(confidence[generated].mean(dtype=np.float64)), 4) if generated.any() else 1.0
        info["timings"] = {stage: round(timings[stage], 3) for stage in STAGES if stage in timings}
        # what the guess had to say (a bridge that fell back to a dissolve...) stands for the result it refined
        warnings = list(flow.warnings) if self.strength < 1.0 else []
        return EngineResult(frames=result, confidence=confidence, info=info, warnings=warnings, methods=methods)

    def _trust(self, plan: FramePlan, masks: np.ndarray, flow: PlateFlow | None,
               result: np.ndarray) -> tuple[np.ndarray, list]:
        """The result's per-pixel ``confidence`` ``(T, H, W)`` and per-position ``methods`` (see the class
        docstring): the first guess's trust and words where the model refined it, 0 and "generated"
        where it generated from noise; trust 1 where the plan keeps the pixel."""
        generated = masks > 0
        touched = [t for t in range(len(plan)) if generated[t].any()]
        methods: list = [None] * len(plan)
        confidence = np.ones(masks.shape, np.float32)
        if self.strength >= 1.0:  # from noise: nothing of it is tracked to a real frame
            confidence[generated] = 0.0
            for t in touched:
                methods[t] = "generated"
            return confidence, methods
        if len(flow.methods) != len(plan):
            raise ShotfillError(f"the first guess reported methods for {len(flow.methods)} of the window's "
                                f"{len(plan)} frames (shotfill.engines.working.plate_flow must say what it did)")
        for t in touched:  # frame by frame: no plate-size copy of the whole run
            moved = np.abs(result[t] - flow.frames[t]).mean(axis=2)  # (H, W) the model's change, as applied
            kept = np.exp(-np.square(moved / CHANGE_TOLERANCE))
            trust = np.clip(flow.confidence[t], 0.0, 1.0) * kept
            confidence[t] = np.where(generated[t], trust, 1.0)
            methods[t] = flow.methods[t]
        return confidence, methods

    def _encode_plate(self, pictures: torch.Tensor, pixel_mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Latents ``(1, C, T, h/f, w/f)`` of the plate: only frames with a pixel to keep are encoded (the
        latents of wholly generated ones are never read, and stay 0)."""
        f = self.vae.spatial_compression
        latents = torch.zeros(1, self.vae.config.latent_channels, pictures.shape[2], size[0] // f, size[1] // f)
        kept = [t for t in range(pictures.shape[2]) if not bool(pixel_mask[0, 0, t].all())]
        latents[:, :, kept] = self.pipeline.encode_pictures(pictures[:, :, kept])
        return latents

    def _encode_guess(self, flow: PlateFlow, small: np.ndarray, small_masks: np.ndarray, masks: np.ndarray,
                      size: tuple[int, int], latents: torch.Tensor, latent_mask: torch.Tensor,
                      reverse: bool) -> torch.Tensor:
        """The first guess's latents: the flow engine's picture at working size where generated, encoded in
        every frame with a generated latent; the plate's latents elsewhere."""
        guess = np.where(small_masks[..., None] > 0, to_working(flow.frames, masks, size)[0], small)
        guess = _to_model(guess)
        guess = guess.flip(2) if reverse else guess
        touched = [t for t in range(latents.shape[2]) if bool(latent_mask[0, 0, t].any())]
        prior = latents.clone()
        prior[:, :, touched] = self.pipeline.encode_pictures(guess[:, :, touched])
        return prior

    def _denoise_windows(self, windows: list[tuple[int, int]], pictures: torch.Tensor, latents: torch.Tensor,
                         latent_mask: torch.Tensor, prior: torch.Tensor | None, real_context: np.ndarray | None,
                         correcting: bool, model_change: bool, seed: int, timings: dict, progress: ProgressFn,
                         cancel: Optional[CancelFn]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the pipeline on each window in turn (``latents`` are filled in place); return the decoded
        pictures ``(1, 3, T, h, w)`` and, when ``correcting``, the model's change to the decoded guess."""
        chained = len(windows) > 1 and real_context is not None and len(real_context) > 0
        generator = torch.Generator().manual_seed(seed)
        decoded = pictures.clone()
        change = torch.zeros_like(pictures) if correcting else None
        # what the model returns when it changes nothing: the guess where generated, the plate's latents elsewhere
        unchanged = torch.where(latent_mask > 0, prior, latents) if correcting else None
        todo = latent_mask.clone()
        timings["denoise"] = timings["decode"] = 0.0
        for index, (first, last) in enumerate(windows):
            span = slice(first, last)

            def window_progress(fraction: float, message: str, index: int = index) -> None:
                progress(DENOISE_SHARE * (index + fraction) / len(windows),
                         f"window {index + 1}/{len(windows)}: {message}")

            start = time.monotonic()
            window_mask = todo[:, :, span]
            if not model_change:  # the model left out: the guess where generated
                check_cancel(cancel)
                latents[:, :, span] = torch.where(window_mask > 0, prior[:, :, span], latents[:, :, span])
                if correcting:  # its change is 0 (``change`` stays zeros): nothing to decode
                    todo[:, :, span] = 0
                    continue
            else:
                k = self.samples  # k samples in one batch, then their mean
                latents[:, :, span] = self.pipeline(
                    latents[:, :, span].repeat(k, 1, 1, 1, 1), window_mask.repeat(k, 1, 1, 1, 1),
                    num_inference_steps=self.steps, generator=generator,
                    prior_latents=None if prior is None else prior[:, :, span].repeat(k, 1, 1, 1, 1),
                    strength=self.strength, progress=window_progress, cancel=cancel, output_type="latent",
                ).latents.mean(0, keepdim=True)
            timings["denoise"] += time.monotonic() - start

            start = time.monotonic()
            new = [first + t for t in range(last - first) if bool(window_mask[0, 0, t].any())]
            pictures_new = self.pipeline.decode_latents(latents[:, :, new])
            if correcting:  # the model's change to the guess, in pictures (the VAE's error cancels)
                change[:, :, new] = pictures_new - self.pipeline.decode_latents(unchanged[:, :, new])
            if chained:  # anchor to the real plate, and make the next window's context from the anchored frames
                pictures_new = _to_model(match_colour(_from_model(pictures_new), real_context))
                latents[:, :, new] = self.pipeline.encode_pictures(pictures_new)
            decoded[:, :, new] = pictures_new
            todo[:, :, new] = 0
            timings["decode"] += time.monotonic() - start
        return decoded, change


def _keep_guess_for(kinds, folder: Path, strength: float) -> frozenset:
    """The manifest's ``sampling.keep_guess_for``: task kinds (:class:`~shotfill.plan.TaskKind` values)."""
    known = {kind.value for kind in TaskKind}
    if not isinstance(kinds, list) or not all(isinstance(k, str) and k in known for k in kinds):
        raise EngineUnavailableError(f"{folder / MANIFEST}: sampling.keep_guess_for must be a list of task kinds "
                                     f"({', '.join(sorted(known))}), got {kinds!r}")
    if kinds and strength >= 1:
        raise EngineUnavailableError(f"{folder / MANIFEST}: sampling.keep_guess_for keeps the first guess, which "
                                     "a strength of 1 (pure noise) does not have")
    return frozenset(kinds)


def check_strength(strength, where: str = "engine option") -> float:
    """``strength`` checked as a number in (0, 1] (``where`` names it in the error); returned as a float."""
    if not isinstance(strength, (int, float)) or isinstance(strength, bool) or not 0 < strength <= 1:
        raise InputError(f"{where} strength: expected a number in (0, 1], got {strength!r}")
    return float(strength)


def legacy_steps(strength: float) -> int:
    """The denoising steps of a checkpoint whose manifest has no ``sampling.steps``: as many as its
    schedule ran below ``strength`` before the schedule was saved (a path of :data:`LEGACY_PATH_STEPS`
    levels from noise, cut at the strength: 2 at 0.2, 5 at 0.5, 10 at 1), now as real steps."""
    return LEGACY_PATH_STEPS - min(int(round(LEGACY_PATH_STEPS * (1.0 - strength))), LEGACY_PATH_STEPS - 1)


def check_sampling(strength, steps, samples, output,
                   where: str = "engine option") -> tuple[float, int, int, DiTOutput]:
    """``(strength, steps, samples, output)`` checked as the engine's options (``where`` names them in
    errors); ``output`` a :class:`DiTOutput` or its value, returned as a :class:`DiTOutput`."""
    strength = check_strength(strength, where)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise InputError(f"{where} steps: expected a whole number of at least 1, got {steps!r}")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise InputError(f"{where} samples: expected a whole number of at least 1, got {samples!r}")
    try:
        output = DiTOutput(output)
    except ValueError:
        raise InputError(f"{where} output: expected 'picture' or 'correction', got {output!r}") from None
    if output is DiTOutput.CORRECTION and strength >= 1:
        raise InputError(f"{where} output: 'correction' refines the flow result, so it needs a strength below 1")
    return strength, steps, samples, output


def _corrected(plan: FramePlan, flow: PlateFlow, change: torch.Tensor, small_masks: np.ndarray,
               masks: np.ndarray) -> tuple[np.ndarray, dict]:
    """The flow engine's plate-size result plus the model's ``change`` (working size, model range),
    upscaled, where the working mask generates, weighted per pixel by the flow engine's distrust
    in its result (``1 - confidence``). ``info["weight"]``: the mean weight over the generated pixels."""
    height, width = flow.frames.shape[1:3]
    delta = change[0].permute(1, 2, 3, 0).float().numpy() / 2  # (T, h, w, 3): the model's [-1, 1] is 2 units
    result = np.asarray(flow.frames, dtype=np.float32).copy()
    weight_sum = generated_count = 0.0
    for t in range(len(plan)):  # frame by frame: no plate-size copy of the whole run
        if small_masks[t].any():
            distrust = 1.0 - np.clip(flow.confidence[t], 0.0, 1.0)  # (H, W)
            step = cv2.resize(np.ascontiguousarray(delta[t] * small_masks[t][..., None]), (width, height),
                              interpolation=cv2.INTER_CUBIC)
            result[t] += step * distrust[..., None]
            generated = masks[t] > 0
            weight_sum += float(distrust[generated].sum(dtype=np.float64))
            generated_count += int(generated.sum())
    weight = weight_sum / generated_count if generated_count else 0.0
    return result, {"weight": round(weight, 4), "flow": flow.info}


def _to_model(pictures: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 3)`` in [0, 1] -> ``(1, 3, T, H, W)`` in [-1, 1]."""
    return (torch.from_numpy(np.ascontiguousarray(pictures, dtype=np.float32)) * 2 - 1).permute(3, 0, 1, 2)[None]


def _from_model(pictures: torch.Tensor) -> np.ndarray:
    """``(1, 3, T, H, W)`` in [-1, 1] -> ``(T, H, W, 3)`` in [0, 1] (float32)."""
    return ((pictures[0].permute(1, 2, 3, 0) + 1) / 2).float().numpy()


def _verify_manifest(folder: Path) -> tuple[str, str, dict]:
    """Check every weight file against the manifest; return the model id, the checksum of the
    manifest's sums and its sampling defaults."""
    manifest_file = folder / MANIFEST
    if not manifest_file.is_file():
        raise EngineUnavailableError(f"{folder}: no {MANIFEST} (not a dit checkpoint, or the shipped one is missing)")
    try:
        manifest = json.loads(manifest_file.read_text())
        files = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise EngineUnavailableError(f"{manifest_file}: not a readable manifest ({e})") from None
    for part in ("vae", "transformer"):
        listed = [name for name in files if name.startswith(f"{part}/")]
        if not listed:
            raise EngineUnavailableError(f"{manifest_file}: lists no weight file of the {part}")
        present = {f"{part}/{p.name}" for p in (folder / part).glob("*.safetensors")}
        if present - set(listed):
            raise EngineUnavailableError(f"{folder / part}: weight files not in the manifest: {sorted(present - set(listed))}")
    for name, expected in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            raise EngineUnavailableError(f"{path}: listed in {MANIFEST} but missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            raise EngineUnavailableError(f"{path}: sha256 does not match {MANIFEST} (damaged or altered weights)")
    checksum = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    sampling = manifest.get("sampling", {})
    if not isinstance(sampling, dict):
        raise EngineUnavailableError(f"{manifest_file}: 'sampling' must be an object")
    return str(manifest.get("model", folder.name)), checksum, sampling
