"""Pretrained frame interpolation: RIFE 4.x in-betweens of two plate frames, at plate resolution.

A library for the engines (no engine is registered here). :class:`RifeInterpolator` loads the
network that ships in ``resources/rife`` (:class:`shotfill.models.ifnet.IFNet`, converted by
``resources/rife/convert.py``) once, and makes the picture at any time t between two frames:

1. **Working scale.** Both frames are scaled down so the long side is at most ``working_side``
   (960 by default; never up), clipped to [0, 1] (what the network was trained on) and padded
   (edges replicated) to the network's multiple of 64.
2. **Motion.** One pass of the network at t gives two backward-warp fields (from t to A, from t
   to B) and the weight of A at each pixel (its occlusion mask).
3. **Plate resolution.** The fields (vectors rescaled) and the weight are upsampled to the
   plate, and the *full-resolution* frames are warped (bilinear, edges replicated, values not
   clipped: a highlight above 1 survives) and blended by the weight.

Nothing downloads: the model loads from its folder only, safetensors only, after every file
that ``manifest.json`` lists has matched its sha256 (a mismatch is an
:class:`~shotfill.errors.EngineUnavailableError` naming the file).

**Per-pixel confidence** (:attr:`Inbetween.confidence`, 0..1): where the two warped frames
agree, the in-between is what both sides say (``agreement = exp(-(d / AGREEMENT_SCALE)**2)``,
``d`` the mean absolute difference of their colours); where they disagree, trust only as far as
the network chose one side, ``|2 w - 1|`` (``w`` the weight of A): an occlusion it resolved.
That is multiplied by how much of the blend comes from inside the pictures (a vector that
leaves the frame reads a replicated edge).

**Self-check** (:meth:`RifeInterpolator.self_check`), with no truth: the known frames next to
a gap are interpolated as if they were missing. A's last known frame is made from the frame
before it and B's first, at ``t = 1 / (gap + 2)``; B's first from A's last and the frame
after it, at ``t = (gap + 1) / (gap + 2)``; both are compared with the real frames (PSNR, and
the dissolve's PSNR on the same frames). The held-out pair spans one frame more than the gap
itself, so the check is as hard as the bridge. :func:`self_check_cases` gives the same cases
to any other method (the ``flow`` engine's bridge, a dissolve), so an engine can choose per
target between them on one footing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..errors import EngineUnavailableError, InputError
from ..resources import RESOURCES
from .classical import _cv

#: the model that ships with shotfill
SHIPPED_MODEL = RESOURCES / "rife"
#: ``{"model": id, "files": {name: sha256}, ...}``, written by ``resources/rife/convert.py``
MANIFEST = "manifest.json"
WEIGHTS = "ifnet.safetensors"
CONFIG = "config.json"
#: long side, in pixels, the motion is estimated at by default
DEFAULT_WORKING_SIDE = 960
#: colour difference (working encoding, mean of the channels) at which the two sides' agreement is 1/e
AGREEMENT_SCALE = 0.05
#: the self-check's PSNR is capped here (identical pictures)
MAX_PSNR = 100.0
#: fixed-point steps that turn the in-between's two fields into one field between the frames
#: (:meth:`RifeInterpolator.flow`)
COMPOSE_STEPS = 6


@dataclasses.dataclass(frozen=True)
class Inbetween:
    """One in-between at plate resolution."""

    #: ``(H, W, 3)`` float32 in the working encoding
    picture: np.ndarray
    #: ``(H, W)`` float32 in [0, 1]: trust in each pixel (see the module docstring)
    confidence: np.ndarray
    #: where it lies: 0 is A, 1 is B
    t: float


@dataclasses.dataclass(frozen=True)
class CheckCase:
    """A known frame held out: ``truth`` lies at ``t`` between the known frames ``a`` and ``b``."""

    side: str  #: "a" (A's last known frame) or "b" (B's first)
    a: np.ndarray
    b: np.ndarray
    truth: np.ndarray
    t: float


@dataclasses.dataclass(frozen=True)
class SelfCheck:
    """How well the interpolator made known frames it was not shown; higher is better."""

    #: PSNR (dB) of its pictures of the held-out frames, pooled over the cases
    psnr: float
    #: a dissolve's PSNR on the same cases
    dissolve_psnr: float
    #: per case: ``{"side", "t", "psnr", "dissolve_psnr"}``
    cases: list

    @property
    def margin(self) -> float:
        """dB over the dissolve on the same held-out frames."""
        return self.psnr - self.dissolve_psnr

    def to_dict(self) -> dict:
        return {"psnr": round(self.psnr, 3), "dissolve_psnr": round(self.dissolve_psnr, 3),
                "margin": round(self.margin, 3), "cases": self.cases}


def self_check_cases(before: Sequence[np.ndarray], after: Sequence[np.ndarray], gap: int) -> list[CheckCase]:
    """The held-out cases of a gap of ``gap`` frames between ``before[-1]`` (A) and ``after[0]`` (B).

    ``before`` are A's known frames, oldest first; ``after`` B's, in order. A needs two known
    frames for its case, B two for its; raises :class:`InputError` when neither side has them.
    """
    if not isinstance(gap, int) or gap < 1:
        raise InputError(f"self-check: gap must be a whole number of frames of at least 1, got {gap!r}")
    span = gap + 2  # frames from the frame before A's last to B's first (or from A's last to the one after B's first)
    cases = []
    if len(before) >= 2:
        cases.append(CheckCase("a", before[-2], after[0], before[-1], 1.0 / span))
    if len(after) >= 2:
        cases.append(CheckCase("b", before[-1], after[1], after[0], (span - 1.0) / span))
    if not cases:
        raise InputError("self-check: needs two known frames on at least one side of the gap")
    return cases


def psnr(picture: np.ndarray, truth: np.ndarray) -> float:
    """PSNR (dB, peak 1) of ``picture`` against ``truth``, at most :data:`MAX_PSNR`."""
    return _psnr_of(float(np.mean(np.square(picture - truth, dtype=np.float64))))


def _psnr_of(mse: float) -> float:
    return MAX_PSNR if mse <= 10 ** (-MAX_PSNR / 10) else -10.0 * math.log10(mse)


class RifeInterpolator:
    """RIFE 4.x in-betweens at plate resolution, from the shipped (or a given) model folder.

    Args:
        model: a folder with ``ifnet.safetensors``, ``config.json`` and ``manifest.json`` (their
            sha256); the shipped ``resources/rife`` by default.
        working_side: long side, in pixels, at which the motion is estimated (never above the plate's).
        device: torch device to run the network on.
    """

    def __init__(self, model: str | Path | None = None, working_side: int = DEFAULT_WORKING_SIDE,
                 device: str = "cpu"):
        if not isinstance(working_side, int) or isinstance(working_side, bool) or working_side < 64:
            raise InputError(f"working_side: expected a whole number of pixels of at least 64, got {working_side!r}")
        self.model_dir = Path(model) if model is not None else SHIPPED_MODEL
        self.working_side = working_side
        self.device = device
        self.model_id, self.checksum, self.network = _load(self.model_dir, device)
        self.multiple = self.network.size_multiple()

    def describe(self) -> dict:
        """The model's id and the sha256 of its weights."""
        return {"model": self.model_id, "model_sha256": self.checksum}

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        """``(h, w)``: the plate scaled so its long side is at most ``working_side`` (aspect kept, never up)."""
        scale = min(1.0, self.working_side / max(height, width))
        return max(1, round(height * scale)), max(1, round(width * scale))

    def interpolate(self, a: np.ndarray, b: np.ndarray, t: float) -> Inbetween:
        """The picture at ``t`` (0 is ``a``, 1 is ``b``); ``a`` and ``b`` float32 ``(H, W, 3)``."""
        return self.interpolate_many(a, b, [t])[0]

    def interpolate_many(self, a: np.ndarray, b: np.ndarray, ts: Sequence[float]) -> list[Inbetween]:
        """The pictures at each of ``ts``; the frames are prepared once."""
        _check_pair(a, b)
        ts = [_check_t(t) for t in ts]
        height, width = a.shape[:2]
        size = self.working_size(height, width)
        small_a, small_b = self._prepare(a, size), self._prepare(b, size)
        out = []
        for t in ts:
            to_a, to_b, weight = self._motion(small_a, small_b, t, size)
            out.append(_at_plate(a, b, to_a, to_b, weight, t))
        return out

    def flow(self, a: np.ndarray, b: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        """The motion from ``a`` to ``b`` as one backward-warp field ``f``, ``a(x) ~ b(x + f(x))``.

        Float32 ``(h, w, 2)`` at ``size`` ``(h, w)`` (the plate's by default), vectors in that size's
        pixels, in the convention of :func:`shotfill.engines.classical._cv.estimate_flow`. The network
        gives fields from the in-between at t = 0.5 to each frame (``to_a``, ``to_b``); the pixel of
        ``a`` at ``x`` is the in-between's pixel ``m`` with ``m + to_a(m) = x`` (found by
        :data:`COMPOSE_STEPS` fixed-point steps), and it lands on ``m + to_b(m)`` in ``b``. (The
        network's own fields at t = 0 or 1 are poor: it was trained on in-betweens.)
        """
        _check_pair(a, b)
        height, width = a.shape[:2]
        working = self.working_size(height, width)
        to_a, to_b, _ = self._motion(self._prepare(a, working), self._prepare(b, working), 0.5, working)
        xs, ys = _cv.pixel_grid(working[0], working[1])
        offset = -to_a  # m = x + offset(x)
        for _ in range(COMPOSE_STEPS):
            offset = -_warp(to_a, offset, xs, ys)[0]
        field = _warp(to_b, offset, xs, ys)[0] + offset
        size = (height, width) if size is None else tuple(size)
        return np.ascontiguousarray(_cv.upsample_field(field, *size), dtype=np.float32)

    def self_check(self, before: Sequence[np.ndarray], after: Sequence[np.ndarray], gap: int) -> SelfCheck:
        """How well it makes the known frames next to a gap of ``gap`` frames (see the module docstring)."""
        cases = self_check_cases(before, after, gap)
        details, errors, dissolve_errors = [], [], []
        for case in cases:
            made = self.interpolate(case.a, case.b, case.t).picture
            dissolve = ((1.0 - case.t) * case.a + case.t * case.b).astype(np.float32)
            errors.append(float(np.mean(np.square(made - case.truth, dtype=np.float64))))
            dissolve_errors.append(float(np.mean(np.square(dissolve - case.truth, dtype=np.float64))))
            details.append({"side": case.side, "t": round(case.t, 6), "psnr": round(_psnr_of(errors[-1]), 3),
                            "dissolve_psnr": round(_psnr_of(dissolve_errors[-1]), 3)})
        return SelfCheck(_psnr_of(float(np.mean(errors))), _psnr_of(float(np.mean(dissolve_errors))), details)

    # -- the network -----------------------------------------------------------------

    def _prepare(self, picture: np.ndarray, size: tuple[int, int]):
        """A plate frame as the network's input: ``(1, 3, h', w')`` at working size, in [0, 1], padded."""
        import torch
        import torch.nn.functional as F

        h, w = size
        if picture.shape[:2] != size:
            picture = cv2.resize(picture, (w, h), interpolation=cv2.INTER_AREA)
        tensor = torch.from_numpy(np.ascontiguousarray(np.clip(picture, 0.0, 1.0), dtype=np.float32))
        tensor = tensor.permute(2, 0, 1)[None]  # (H, W, 3) -> (1, 3, h, w)
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        tensor = F.pad(tensor, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else tensor
        return tensor.to(self.device)  # (1, 3, h', w')

    def _motion(self, small_a, small_b, t: float, size: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Backward-warp fields from t to A and to B ``(h, w, 2)``, and the weight of A ``(h, w)``, at working size."""
        import torch

        h, w = size
        with torch.inference_mode():
            out = self.network(small_a, small_b, t)
        flow = out.flow[0, :, :h, :w].permute(1, 2, 0).float().cpu().numpy()  # (4, h', w') -> (h, w, 4)
        weight = out.mask[0, 0, :h, :w].float().cpu().numpy()  # (h, w)
        return np.ascontiguousarray(flow[..., :2]), np.ascontiguousarray(flow[..., 2:]), weight


def _at_plate(a: np.ndarray, b: np.ndarray, to_a: np.ndarray, to_b: np.ndarray, weight: np.ndarray,
              t: float) -> Inbetween:
    """Warp and blend the full-resolution frames along the working-size motion; the result and its confidence."""
    height, width = a.shape[:2]
    xs, ys = _cv.pixel_grid(height, width)
    field_a, field_b = _cv.upsample_field(to_a, height, width), _cv.upsample_field(to_b, height, width)
    weight = weight if weight.shape == (height, width) else cv2.resize(weight, (width, height),
                                                                       interpolation=cv2.INTER_LINEAR)
    weight = np.clip(weight, 0.0, 1.0)[..., None]  # (H, W, 1)
    from_a, inside_a = _warp(a, field_a, xs, ys)
    from_b, inside_b = _warp(b, field_b, xs, ys)
    picture = weight * from_a + (1.0 - weight) * from_b
    agreement = np.exp(-np.square(np.abs(from_a - from_b).mean(axis=2) / AGREEMENT_SCALE))
    decided = np.abs(2.0 * weight[..., 0] - 1.0)
    inside = weight[..., 0] * inside_a + (1.0 - weight[..., 0]) * inside_b
    confidence = (agreement + (1.0 - agreement) * decided) * inside
    return Inbetween(picture.astype(np.float32), np.clip(confidence, 0.0, 1.0).astype(np.float32), t)


def _warp(image: np.ndarray, field: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image(y + field(y))`` (bilinear, edges replicated, values kept) and where that lies inside ``image``."""
    map_x, map_y = xs + field[..., 0], ys + field[..., 1]
    height, width = image.shape[:2]
    warped = _cv.sample(np.ascontiguousarray(image, dtype=np.float32), map_x, map_y)
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return warped, inside.astype(np.float32)


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    for name, picture in (("a", a), ("b", b)):
        if not isinstance(picture, np.ndarray) or picture.ndim != 3 or picture.shape[2] != 3:
            got = getattr(picture, "shape", picture)
            raise InputError(f"interpolate: {name} must be a (H, W, 3) array, got {got!r}")
        if picture.dtype != np.float32:
            raise InputError(f"interpolate: {name} must be float32, got {picture.dtype}")
    if a.shape != b.shape:
        raise InputError(f"interpolate: a {a.shape} and b {b.shape} differ in size")


def _check_t(t) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= t <= 1.0:
        raise InputError(f"interpolate: t must be a number from 0 to 1, got {t!r}")
    return float(t)


def _load(folder: Path, device: str):
    """``(model id, weights sha256, network)``: the folder's files checked against its manifest, then loaded."""
    manifest_file = folder / MANIFEST
    if not manifest_file.is_file():
        raise EngineUnavailableError(
            f"{folder}: no {MANIFEST} (not an interpolation model, or the shipped one is missing)")
    try:
        manifest = json.loads(manifest_file.read_text())
        files = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise EngineUnavailableError(f"{manifest_file}: not a readable manifest ({e})") from None
    for needed in (WEIGHTS, CONFIG):
        if needed not in files:
            raise EngineUnavailableError(f"{manifest_file}: does not list {needed}")
    verified = {}
    for name, expected in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            raise EngineUnavailableError(f"{path}: listed in {MANIFEST} but missing")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != expected:
            raise EngineUnavailableError(f"{path}: sha256 does not match {MANIFEST} (damaged or altered file)")
        verified[name] = data
    try:
        import torch  # noqa: F401  (the package a base install lacks first, so the error names it)
        from safetensors.torch import load as load_safetensors

        from ..models.ifnet import IFNet
    except ModuleNotFoundError as e:
        raise EngineUnavailableError(
            f"frame interpolation needs the Python package '{e.name}', which is not installed: install shotfill "
            "with its 'dit' extra (in a checkout: pip install -c constraints.txt torch==2.13.0 -e '.[dit]')") from None
    try:
        config = json.loads(verified[CONFIG])
        network = IFNet.from_config({k: v for k, v in config.items() if not k.startswith("_")})
        network.load_state_dict(load_safetensors(verified[WEIGHTS]), strict=True)
    except (ValueError, TypeError, RuntimeError) as e:
        raise EngineUnavailableError(f"{folder}: the weights do not fit the network ({e})") from None
    network = network.to(device).eval()
    return str(manifest.get("model", folder.name)), files[WEIGHTS], network
