"""Training data: footage discovery, clips at the pool scale, random crops and latent clips.

Data (``shotfill train --data``):

- a folder of footage: every movie, image or EXR sequence under it (a folder's
  ``shots.json`` cuts its movie into shots; folders named ``masks`` are skipped);
- ``procedural``: shots rendered by :mod:`shotfill.synthetic.render` (made by the project);
- a recipe JSON (see ``resources/recipe.json``): procedural shots and footage paths
  relative to the shared-data root (``--shared``, else ``$SHOTFILL_SHARED_DATA``), each
  with a sampling weight. Footage that is absent is skipped, and the log says so; the
  procedural part always runs.

Every picture is brought to the working encoding (:class:`shotfill.io.colour.ColourTransform`
from the source's colour space) and resized so its short side is the preset's
``pool_short_side`` (the scale the engine works at). The VAE trains on random single-frame
crops (:func:`sample_crops`); the transformer on random clips cropped from latents encoded
once at the start (:func:`encode_clips`, :func:`sample_latent_clips`; the VAE is per-frame
and convolutional, so a crop of the latents is the latents of the crop, away from the borders).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from ..errors import InputError
from ..io.colour import ColourTransform
from ..io.media import MOVIE_SUFFIXES, SEQUENCE_SUFFIXES, open_source
from ..models import ShotfillVAE
from ..synthetic.render import CameraMove, ShotSpec, render_shot
from .presets import TrainPreset

#: environment variable naming the shared-data root recipe paths are relative to
SHARED_ENV = "SHOTFILL_SHARED_DATA"


@dataclasses.dataclass
class Clip:
    """Consecutive frames of one shot, ``(T, H, W, 3)`` float16 in the working encoding, and its sampling weight."""

    name: str
    frames: np.ndarray
    weight: float


def discover_footage(root: Path) -> list[str]:
    """Source specs (for :func:`shotfill.io.media.open_source`) of every shot under ``root``.

    A folder with a ``shots.json`` (``{"file": movie, "shots": [{"first", "last"}, ...]}``)
    gives one shot per entry; otherwise each movie and each numbered image sequence is a
    shot. Folders named ``masks`` hold masks, not pictures, and are skipped.
    """
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of footage")
    specs: list[str] = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d != "masks")
        folder = Path(folder)
        if "shots.json" in files:
            specs += _shot_list_specs(folder / "shots.json")
            continue
        specs += [str(folder / f) for f in sorted(files) if Path(f).suffix.lower() in MOVIE_SUFFIXES]
        specs += _sequence_specs(folder, files)
    return specs


def _shot_list_specs(path: Path) -> list[str]:
    try:
        listing = json.loads(path.read_text())
        movie = path.parent / listing["file"]
        return [f"{movie}#frames={int(s['first'])}-{int(s['last'])}" for s in listing["shots"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a readable shot list ({e})") from None


def _sequence_specs(folder: Path, files: Sequence[str]) -> list[str]:
    """``%0Nd`` patterns of the numbered image sequences among ``files`` (one per prefix and suffix)."""
    sequences: dict[tuple[str, str], set[int]] = {}
    for name in files:
        match = re.fullmatch(r"(.*?)(\d+)(\.[A-Za-z0-9]+)", name)
        if match and match[3].lower() in SEQUENCE_SUFFIXES:
            sequences.setdefault((match[1], match[3]), set()).add(len(match[2]))
    specs = []
    for (prefix, suffix), widths in sorted(sequences.items()):
        token = f"%0{widths.pop()}d" if len(widths) == 1 else "%d"
        specs.append(str(folder / f"{prefix}{token}{suffix}"))
    return specs


def _resize_short_side(picture: np.ndarray, short_side: int) -> np.ndarray:
    """Resize ``(H, W, 3)`` so its short side is ``short_side``, then crop both sides to multiples of 16."""
    height, width = picture.shape[:2]
    scale = short_side / min(height, width)
    size = (max(short_side, round(width * scale)), max(short_side, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    picture = cv2.resize(picture, size, interpolation=interpolation)
    h16, w16 = picture.shape[0] // 16 * 16, picture.shape[1] // 16 * 16
    top, left = (picture.shape[0] - h16) // 2, (picture.shape[1] - w16) // 2
    return picture[top : top + h16, left : left + w16]


def load_footage_clip(spec: str, short_side: int, weight: float) -> Clip:
    """Read every frame of one source into a :class:`Clip` at the pool scale."""
    with open_source(spec) as source:
        colour = ColourTransform(source.default_colourspace)
        frames = [
            _resize_short_side(colour.to_working(source.read(frame)), short_side).astype(np.float16)
            for frame in source.frames
        ]
    return Clip(spec, np.stack(frames), weight)


def render_procedural_clips(
    shots: int, frames: int, short_side: int, weight: float, seed: int = 0
) -> list[Clip]:
    """``shots`` procedural shots (:mod:`shotfill.synthetic.render`) at 16:9, every camera move, speeds of both signs."""
    rng = np.random.default_rng(seed)
    width = round(short_side * 16 / 9 / 16) * 16
    colour = ColourTransform("lin_rec709")
    moves = list(CameraMove)
    clips = []
    for index in range(shots):
        spec = ShotSpec(
            seed=int(rng.integers(0, 2**31)), width=width, height=short_side, frames=frames,
            camera=moves[index % len(moves)],
            speed=float(rng.choice([-1, 1]) * rng.uniform(0.002, 0.03)),
            with_object=bool(rng.random() < 0.7), with_rig=bool(rng.random() < 0.2),
        )
        pictures = colour.to_working(render_shot(spec).frames).astype(np.float16)
        clips.append(Clip(f"procedural/{spec.seed}-{spec.camera.value}", pictures, weight / shots))
    return clips


def load_data(
    data: str, preset: TrainPreset, shared: Path | None, log: Callable[[str], None]
) -> list[Clip]:
    """The training clips ``--data`` names: ``procedural``, a recipe JSON or a footage folder."""
    if data == "procedural":
        recipe = {"procedural": {"weight": 1.0}}
    elif data.endswith(".json"):
        try:
            recipe = json.loads(Path(data).read_text())
        except (OSError, ValueError) as e:
            raise InputError(f"--data {data}: not a readable recipe ({e})") from None
    else:
        specs = discover_footage(Path(data))
        if not specs:
            raise InputError(f"--data {data}: no movies or image sequences under it")
        log(f"data: {len(specs)} shots under {data}")
        return [load_footage_clip(spec, preset.pool_short_side, 1.0 / len(specs)) for spec in specs]

    clips: list[Clip] = []
    procedural = recipe.get("procedural")
    if procedural is not None:
        clips += render_procedural_clips(
            int(procedural.get("shots", preset.procedural_shots)),
            int(procedural.get("frames", preset.procedural_frames)),
            preset.pool_short_side, float(procedural["weight"]), int(procedural.get("seed", 0)),
        )
        log(f"data: {len(clips)} procedural shots (weight {procedural['weight']})")
    footage = recipe.get("footage", [])
    if footage and (shared is None or not shared.is_dir()):
        log(f"data: no shared-data root (--shared or ${SHARED_ENV}): the recipe's {len(footage)} footage "
            "entries are skipped, training on procedural shots only")
        footage = []
    for entry in footage:
        try:
            path, weight = shared / entry["path"], float(entry["weight"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"--data {data}: footage entry {entry!r} needs 'path' and 'weight' ({e})") from None
        if not path.exists():
            log(f"data: {entry['path']} is not under {shared}: skipped")
            continue
        specs = discover_footage(path) if path.is_dir() else [str(path)]
        clips += [load_footage_clip(spec, preset.pool_short_side, weight / len(specs)) for spec in specs]
        log(f"data: {entry['path']}: {len(specs)} shots (weight {weight})")
    if not clips:
        raise InputError(f"--data {data}: the recipe yields no training data")
    return clips


def _pick(rng: np.random.Generator, clips: Sequence[Clip]) -> Clip:
    weights = np.array([c.weight for c in clips], np.float64)
    return clips[int(rng.choice(len(clips), p=weights / weights.sum()))]


def sample_crops(rng: np.random.Generator, clips: Sequence[Clip], batch: int, crop: int) -> torch.Tensor:
    """Random single-frame crops ``(B, 3, 1, crop, crop)`` in [-1, 1], flipped left-right half the time."""
    crops = []
    for _ in range(batch):
        frames = _pick(rng, clips).frames
        frame = frames[rng.integers(len(frames))]
        top, left = rng.integers(frame.shape[0] - crop + 1), rng.integers(frame.shape[1] - crop + 1)
        picture = frame[top : top + crop, left : left + crop]
        crops.append(picture[:, ::-1] if rng.random() < 0.5 else picture)
    pictures = torch.from_numpy(np.stack(crops).astype(np.float32))  # (B, H, W, 3)
    return (pictures * 2 - 1).permute(0, 3, 1, 2).unsqueeze(2)  # (B, 3, 1, H, W)


@dataclasses.dataclass
class LatentClip:
    """Scaled VAE latents ``(C, T, h, w)`` of one clip, its pictures ``(T, H, W, 3)`` (float16, the
    working encoding) and its sampling weight."""

    latents: torch.Tensor
    weight: float
    pictures: np.ndarray | None = None


@torch.no_grad()
def encode_clips(vae: ShotfillVAE, clips: Sequence[Clip], min_frames: int, budget: int,
                 rng: np.random.Generator, log: Callable[[str], None]) -> list[LatentClip]:
    """Encode about ``budget`` frames, once: segments of up to ``2 * min_frames`` frames of clips drawn by weight.

    Clips shorter than ``min_frames`` are left out. The segments are drawn in proportion to
    the clips' weights, so each is then sampled with the same weight. The latents are the
    posterior means, scaled for the transformer.
    """
    eligible = [clip for clip in clips if len(clip.frames) >= min_frames]
    for clip in clips:
        if len(clip.frames) < min_frames:
            log(f"data: {clip.name} has {len(clip.frames)} frames, fewer than {min_frames}: VAE training only")
    if not eligible:
        raise InputError(f"no training clip has the {min_frames} frames the transformer trains on")
    encoded, total = [], 0
    while total < budget:
        clip = _pick(rng, eligible)
        length = min(len(clip.frames), 2 * min_frames)
        start = int(rng.integers(len(clip.frames) - length + 1))
        pictures = torch.from_numpy(clip.frames[start : start + length].astype(np.float32)) * 2 - 1  # (T, H, W, 3)
        latents = [
            vae.encode(chunk.permute(3, 0, 1, 2).unsqueeze(0)).latent_dist.mode()[0]  # (C, t, h, w)
            for chunk in pictures.split(16)
        ]
        encoded.append(LatentClip(vae.scale_latents(torch.cat(latents, dim=1)), 1.0,
                                  clip.frames[start : start + length]))
        total += length
    log(f"data: encoded {total} frames in {len(encoded)} segments")
    return encoded


def sample_latent_clips(
    rng: np.random.Generator, clips: Sequence[LatentClip], batch: int, frames: int, size: int,
    compression: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, np.ndarray]:
    """Random clips ``(B, C, frames, size, size)`` of latents: random start, stride 1 or 2, time reversed half the time.

    With ``compression`` (the VAE's spatial factor), also the pictures of the same clips,
    ``(B, frames, size * compression, size * compression, 3)`` float32.
    """
    weights = np.array([c.weight for c in clips], np.float64)
    out, pictures = [], []
    for _ in range(batch):
        chosen = clips[int(rng.choice(len(clips), p=weights / weights.sum()))]
        latents = chosen.latents
        length, height, width = latents.shape[1:]
        stride = 2 if length >= 2 * frames - 1 and rng.random() < 0.3 else 1
        start = int(rng.integers(length - stride * (frames - 1)))
        top, left = int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1))
        span = slice(start, start + stride * (frames - 1) + 1, stride)
        clip = latents[:, span, top : top + size, left : left + size]
        reverse = rng.random() < 0.5
        out.append(clip.flip(1) if reverse else clip)
        if compression is not None:
            if chosen.pictures is None:
                raise InputError("sample_latent_clips: these latent clips were encoded without their pictures")
            f = compression
            crop = chosen.pictures[span, top * f : (top + size) * f, left * f : (left + size) * f].astype(np.float32)
            pictures.append(crop[::-1] if reverse else crop)
    if compression is None:
        return torch.stack(out)
    return torch.stack(out), np.ascontiguousarray(np.stack(pictures))
