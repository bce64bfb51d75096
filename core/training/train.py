"""``shotfill train``: train the ``dit`` engine's VAE and transformer, from scratch or fine-tuned.

Usage::

    shotfill train vae --data DATA --out CKPT [--preset cpu|gpu] [--steps N] [--seconds S] [--resume] [--init CKPT]
    shotfill train dit --data DATA --out CKPT [--preset cpu|gpu] [--steps N] [--seconds S] [--resume] [--init CKPT]
    shotfill train export CKPT --out resources/dit [--dtype bfloat16|float16|float32]

(also ``python -m shotfill.training.train ...``). A checkpoint folder has the layout the engine
loads: ``vae/`` and ``transformer/`` (``config.json`` + safetensors), next to the
training state of each part (``<part>_optimizer.pt``, loaded with ``weights_only=True``,
and ``<part>_state.json``) and its loss log ``<part>_loss.jsonl`` (one JSON object per
logged step). ``train vae`` writes ``CKPT/vae``; ``train dit`` encodes with ``CKPT/vae``
(or the VAE of ``--init``) and writes ``CKPT/transformer``. ``export`` writes the
shipped form: both parts in half precision and a ``manifest.json`` with the sha256 of
every weight file.

Data (``--data``):

- a folder of footage: every movie, image or EXR sequence under it (a folder's
  ``shots.json`` cuts its movie into shots; folders named ``masks`` are skipped);
- ``procedural``: shots rendered by :mod:`shotfill.synthetic.scene` (made by the project);
- a recipe JSON (see ``resources/recipe.json``): procedural shots and footage paths
  relative to the shared-data root (``--shared``, else ``$SHOTFILL_SHARED_DATA``), each
  with a sampling weight. Footage that is absent is skipped, and the log says so; the
  procedural part always runs.

Every picture is brought to the working encoding (:class:`shotfill.io.colour.ColourTransform`
from the source's colour space) and resized so its short side is the preset's
``pool_short_side`` (the scale the engine works at). The VAE trains on random single-frame
crops; the transformer on random clips of ``frames`` frames cropped from latents encoded
once at the start (the VAE is per-frame and convolutional, so a crop of the latents is
the latents of the crop, away from the borders), with plans of all four kinds
(:func:`shotfill.models.random_generate_mask`) so one model learns extend forward and
backward, bridge and fill.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from ..io.colour import ColourTransform
from ..errors import InputError, ShotfillError
from ..io.media import MOVIE_SUFFIXES, SEQUENCE_SUFFIXES, open_source
from ..engines.classical.flow import FlowEngine
from ..models import ShotfillTransformer3DModel, ShotfillVAE, flow_matching_loss, random_generate_mask
from ..plan import FramePlan
from ..synthetic.scene import CameraMove, ShotSpec, render_shot

#: environment variable naming the shared-data root recipe paths are relative to
SHARED_ENV = "SHOTFILL_SHARED_DATA"
#: file names inside a checkpoint folder
MANIFEST = "manifest.json"
#: the log-variance a new VAE's posterior starts at
INITIAL_LOGVAR = -8.0


@dataclasses.dataclass(frozen=True)
class TrainPreset:
    """Model sizes, data shapes and optimisation settings of one training set-up.

    ``pool_short_side``: footage is resized to this short side (and procedural shots
    rendered at it) before cropping; ``crop`` is the square training crop in pixels and
    ``frames`` the transformer's clip length. ``bf16`` turns on bfloat16 autocast (for
    GPUs; on this CPU bf16 convolutions are far slower than float32). ``refine_share`` of
    the transformer's samples are refinement samples: they start from the ``flow`` engine's
    result on the sample's plan, noised to a level in ``refine_sigma``, and learn to reach
    the truth from there (see :func:`shotfill.models.flow_matching_loss`), which is how the
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


# -- data -------------------------------------------------------------------------------------------
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
    """``shots`` procedural shots (:mod:`shotfill.synthetic.scene`) at 16:9, every camera move, speeds of both signs."""
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


def plan_of_mask(mask: torch.Tensor) -> FramePlan:
    """The plan a training mask ``(1, T, h, w)`` (1 = generate) stands for.

    Masks of :func:`~shotfill.models.random_generate_mask`: whole generated frames after
    the known ones (extend forward), before them (extend backward) or between them
    (bridge), or a region of every frame (fill).
    """
    covered = mask[0].flatten(1)
    whole, none = covered.amin(1) > 0, covered.amax(1) == 0
    if not bool((whole | none).all()) or bool(whole.all()) or bool(none.all()):
        return FramePlan.fill(range(mask.shape[1]))
    generated = [t for t in range(mask.shape[1]) if bool(whole[t])]
    first, last = generated[0], generated[-1]
    if last - first + 1 != len(generated):
        raise InputError(f"plan_of_mask: generated frames {generated} are not one run")
    known_before, known_after = list(range(first)), list(range(last + 1, mask.shape[1]))
    if known_before and known_after:
        return FramePlan.bridge(known_before, known_after, len(generated), context=mask.shape[1])
    if known_before:
        return FramePlan.extend(known_before, len(generated), context=mask.shape[1])
    return FramePlan.extend(known_after, len(generated), backward=True, context=mask.shape[1])


@torch.no_grad()
def flow_prior_latents(vae: ShotfillVAE, latents: torch.Tensor, mask: torch.Tensor, pictures: np.ndarray,
                       refine: Sequence[bool]) -> torch.Tensor:
    """First guesses for refinement samples: the ``flow`` engine's result, encoded as the ``dit`` engine does.

    For each sample with ``refine`` set, the generated pixels (the latent mask scaled up
    to the pictures) are zeroed and the :class:`~shotfill.engines.classical.flow.FlowEngine` makes
    them again from the known ones on the sample's plan (:func:`plan_of_mask`); every
    frame with a generated latent is encoded. Other samples keep their clean latents.
    """
    prior = latents.clone()
    f = vae.spatial_compression
    for b in np.flatnonzero(np.asarray(refine, bool)):
        plan = plan_of_mask(mask[b].cpu())
        pixel_mask = mask[b, 0].cpu().repeat_interleave(f, 1).repeat_interleave(f, 2).numpy().astype(np.float32)
        frames = pictures[b] * (1.0 - pixel_mask[..., None])
        guess = FlowEngine().generate(plan, frames, pixel_mask)
        touched = [t for t in range(len(plan)) if bool(pixel_mask[t].any())]
        picture = (torch.from_numpy(np.ascontiguousarray(guess[touched])) * 2 - 1).permute(3, 0, 1, 2)[None]
        encoded = vae.encode(picture.to(latents.device)).latent_dist.mode()
        prior[b, :, touched] = vae.scale_latents(encoded)[0]
    return prior


# -- training ----------------------------------------------------------------------------------------
class Trainer:
    """The loop both parts share: optimiser, warm-up, logging, timed checkpoints, resume."""

    def __init__(self, part: str, model: torch.nn.Module, out: Path, preset: TrainPreset, lr: float,
                 resume: bool, log: Callable[[str], None]):
        self.part, self.model, self.out, self.preset, self.log = part, model, out, preset, log
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.01)
        self.lr = lr
        self.step = 0
        if resume:
            check_resumable(out, part)
            state_file, optimizer_file = out / f"{part}_state.json", out / f"{part}_optimizer.pt"
            self.step = int(json.loads(state_file.read_text())["step"])
            self.optimizer.load_state_dict(torch.load(optimizer_file, weights_only=True))
            log(f"{part}: resumed at step {self.step}")

    def run(self, loss_fn: Callable[[int], dict], steps: int | None, seconds: float | None,
            on_save: Callable[[], None] | None = None) -> None:
        """Train until ``steps`` (a total, counted across resumes) or ``seconds`` of this run, saving on the way."""
        start = last_save = time.monotonic()
        log_file = (self.out / f"{self.part}_loss.jsonl").open("a")
        try:
            while steps is None or self.step < steps:
                if seconds is not None and time.monotonic() - start >= seconds:
                    break
                for group in self.optimizer.param_groups:
                    group["lr"] = self.lr * min(1.0, (self.step + 1) / max(1, self.preset.warmup_steps))
                terms = loss_fn(self.step)
                self.optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self.optimizer.step()
                self.step += 1
                if self.step % self.preset.log_every == 0 or self.step == 1:
                    record = {"step": self.step, "time": round(time.monotonic() - start, 1),
                              "grad_norm": round(float(grad_norm), 4),
                              **{k: round(float(v.detach()), 6) for k, v in terms.items()}}
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
                    self.log(f"{self.part} step {self.step}: " + " ".join(
                        f"{k} {v}" for k, v in record.items() if k != "step"))
                if time.monotonic() - last_save >= self.preset.checkpoint_seconds:
                    self.save(on_save)
                    last_save = time.monotonic()
        finally:
            log_file.close()
        self.save(on_save)

    def save(self, on_save: Callable[[], None] | None) -> None:
        if on_save is not None:
            on_save()
        self.model.save_pretrained(self.out / self.part)
        torch.save(self.optimizer.state_dict(), self.out / f"{self.part}_optimizer.pt")
        (self.out / f"{self.part}_state.json").write_text(json.dumps({"step": self.step}) + "\n")
        self.log(f"{self.part}: saved step {self.step} to {self.out / self.part}")


def check_resumable(out: Path, part: str) -> None:
    """Raise :class:`InputError` unless ``out`` holds a checkpoint of ``part`` to resume."""
    for required in (out / f"{part}_state.json", out / f"{part}_optimizer.pt", out / part / "config.json"):
        if not required.is_file():
            raise InputError(f"--resume: {required} is missing (nothing to resume in {out})")


@torch.no_grad()
def set_latent_statistics(vae: ShotfillVAE, crops: torch.Tensor) -> None:
    """Set the VAE's ``shift_factor`` and ``scaling_factor`` so the latents of ``crops`` have mean 0 and std 1."""
    latents = vae.encode(crops).latent_dist.mode()
    vae.register_to_config(shift_factor=float(latents.mean()), scaling_factor=float(1.0 / latents.std()))


def train_vae(args: argparse.Namespace, preset: TrainPreset, clips: list[Clip], device: torch.device,
              log: Callable[[str], None]) -> None:
    out = Path(args.out)
    if args.resume:
        vae = ShotfillVAE.from_pretrained(out / "vae")
    elif args.init:
        vae = ShotfillVAE.from_pretrained(Path(args.init) / "vae", torch_dtype=torch.float32)
    else:
        torch.manual_seed(args.seed)
        vae = ShotfillVAE(**preset.vae_config)
        with torch.no_grad():  # start nearly deterministic (posterior std ~0.02): noisy latents stall early training
            vae.encoder.conv_out.bias[vae.config.latent_channels:] = INITIAL_LOGVAR
    statistics_crops = sample_crops(np.random.default_rng([args.seed, 1]), clips, 64, preset.crop).to(device)
    if not args.resume and not args.init and vae.config.linear_path:
        kept = vae.init_linear_path(statistics_crops.cpu())
        log(f"vae: linear path set to the principal components of {len(statistics_crops)} crops "
            f"({kept:.2%} of their variance)")
    vae.to(device).train()
    trainer = Trainer("vae", vae, out, preset, preset.vae_lr, args.resume, log)
    generator = torch.Generator(device).manual_seed(args.seed)

    def loss(step: int) -> dict:
        rng = np.random.default_rng([args.seed, step])
        crops = sample_crops(rng, clips, preset.vae_batch, preset.crop).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=preset.bf16):
            terms = vae.training_loss(crops, generator)
        return {field.name: getattr(terms, field.name) for field in dataclasses.fields(terms)}

    def on_save() -> None:
        vae.eval()
        set_latent_statistics(vae, statistics_crops)
        vae.train()

    trainer.run(loss, args.steps, args.seconds, on_save)


def train_dit(args: argparse.Namespace, preset: TrainPreset, clips: list[Clip], device: torch.device,
              log: Callable[[str], None]) -> None:
    out = Path(args.out)
    vae_folder = out / "vae" if (out / "vae" / "config.json").is_file() or not args.init else Path(args.init) / "vae"
    if not (vae_folder / "config.json").is_file():
        raise InputError(f"train dit: no VAE at {vae_folder} (run 'shotfill train vae --out {out}' first, or --init)")
    vae = ShotfillVAE.from_pretrained(vae_folder, torch_dtype=torch.float32).to(device).eval()
    if vae_folder != out / "vae":
        vae.save_pretrained(out / "vae")  # the checkpoint carries the VAE its transformer was trained with
    guide = bool(preset.dit_config.get("guide")) if args.guide is None else args.guide
    if args.resume:
        transformer = ShotfillTransformer3DModel.from_pretrained(out / "transformer")
    elif args.init:
        transformer = ShotfillTransformer3DModel.from_pretrained(
            Path(args.init) / "transformer", torch_dtype=torch.float32)
    else:
        torch.manual_seed(args.seed)
        transformer = ShotfillTransformer3DModel.from_preset(preset.dit_size, **{**preset.dit_config, "guide": guide})
    if transformer.config.guide and not guide:
        raise InputError("--no-guide: the model to train already takes the guess (a guided model cannot lose it)")
    if guide and not transformer.config.guide:
        transformer = transformer.with_guide()  # fine-tuning an unguided model: it learns to use the guess from here
        log("dit: the model now takes the flow engine's guess as a clean input (guide), starting unused")
    transformer.to(device).train()
    log(f"dit: encoding {preset.encode_frames} frames of {len(clips)} clips with {vae_folder}")
    latent_clips = encode_clips(vae, clips, preset.frames, preset.encode_frames,
                                np.random.default_rng([args.seed, 2]), log)
    trainer = Trainer("transformer", transformer, out, preset, preset.dit_lr, args.resume, log)
    generator = torch.Generator(device).manual_seed(args.seed)
    size = preset.crop // vae.spatial_compression

    refine_share = preset.refine_share if args.refine_share is None else args.refine_share
    if not 0 <= refine_share <= 1:
        raise InputError(f"--refine-share must be in [0, 1], got {refine_share}")
    log(f"dit: {refine_share:.0%} of samples refine the flow engine's result (noise levels {preset.refine_sigma})")

    def loss(step: int) -> dict:
        rng = np.random.default_rng([args.seed, step])
        # the pictures draw nothing from rng: a run without refinement samples draws as before they existed
        latents, pictures = sample_latent_clips(rng, latent_clips, preset.dit_batch, preset.frames, size,
                                                vae.spatial_compression)
        latents = latents.to(device)
        mask = random_generate_mask(
            (preset.dit_batch, preset.frames, size, size), torch.Generator().manual_seed(int(rng.integers(2**31)))
        ).to(device)
        refinement = {}
        if refine_share > 0:
            refine = rng.random(preset.dit_batch) < refine_share
            refinement = {"prior_latents": flow_prior_latents(vae, latents, mask, pictures, refine),
                          "refine": torch.from_numpy(refine), "refine_sigma": preset.refine_sigma}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=preset.bf16):
            return {"loss": flow_matching_loss(transformer, latents, mask, generator, **refinement)}

    trainer.run(loss, args.steps, args.seconds)


# -- export ---------------------------------------------------------------------------------------
def export_checkpoint(checkpoint: Path, out: Path, dtype: torch.dtype, model_id: str = "shotfill-dit",
                      strength: float = 1.0, samples: int = 1, output: str = "picture") -> dict:
    """Write the shipped form of a checkpoint: both parts in ``dtype``, and a manifest.

    The manifest names the model (``model_id``), the steps each part trained for, the sha256
    of every weight file, which the engine checks at load, and how to sample it: ``strength``
    (the ``dit`` engine's default for this model, measured with ``shotfill eval``), ``samples``
    and ``output`` (the engine's options of those names).
    """
    from ..engines.dit.engine import check_sampling

    strength, samples, output = check_sampling(strength, samples, output, where="export:")
    files = {}
    for part, cls in (("vae", ShotfillVAE), ("transformer", ShotfillTransformer3DModel)):
        if not (checkpoint / part / "config.json").is_file():
            raise InputError(f"export: {checkpoint / part} is not a saved model")
        model = cls.from_pretrained(checkpoint / part, torch_dtype=dtype)
        model.save_pretrained(out / part)
        for weights in sorted((out / part).glob("*.safetensors")):
            files[f"{part}/{weights.name}"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    steps = {part: json.loads((checkpoint / f"{part}_state.json").read_text())["step"]
             for part in ("vae", "transformer") if (checkpoint / f"{part}_state.json").is_file()}
    manifest = {"model": model_id, "dtype": str(dtype).removeprefix("torch."), "training_steps": steps,
                "sampling": {"strength": strength, "samples": samples, "output": output}, "files": files}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# -- command line -----------------------------------------------------------------------------------
def build_parser(prog: str = "shotfill train") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Train the dit engine's VAE and transformer.")
    commands = parser.add_subparsers(dest="part", required=True)
    for part in ("vae", "dit"):
        sub = commands.add_parser(part, help=f"train the {'VAE' if part == 'vae' else 'diffusion transformer'}")
        sub.add_argument("--data", required=True, help="footage folder, 'procedural', or a recipe JSON")
        sub.add_argument("--out", required=True, help="checkpoint folder (vae/, transformer/, logs, state)")
        sub.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
        sub.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
        sub.add_argument("--init", help="start from this checkpoint's weights (fine-tune), e.g. resources/dit")
        sub.add_argument("--steps", type=int, help="stop at this many steps in total (across resumes)")
        sub.add_argument("--seconds", type=float, help="stop after this many seconds of this run")
        sub.add_argument("--shared", help=f"root recipe footage paths are relative to (default ${SHARED_ENV})")
        sub.add_argument("--seed", type=int, default=0)
        if part == "dit":
            sub.add_argument("--guide", action=argparse.BooleanOptionalAction, default=None,
                             help="give the model the flow engine's guess as a clean input (default: the "
                                  "preset's; an unguided model to fine-tune gains the input, unused at first)")
            sub.add_argument("--refine-share", type=float,
                             help="share of samples that learn to refine the flow engine's result "
                                  "(default: the preset's)")
    export = commands.add_parser("export", help="write a checkpoint in the shipped form, with a manifest")
    export.add_argument("checkpoint")
    export.add_argument("--out", required=True)
    export.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    export.add_argument("--model-id", default="shotfill-dit", help="the model's name in the manifest and EXR headers")
    export.add_argument("--strength", type=float, default=1.0,
                        help="the dit engine's default strength for this model (1: from noise; below: refine the flow result)")
    export.add_argument("--samples", type=int, default=1, help="the dit engine's default samples (their mean is kept)")
    export.add_argument("--output", default="picture", choices=("picture", "correction"),
                        help="the dit engine's default output: the model's picture, or the flow result corrected by it")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "shotfill train") -> int:
    args = build_parser(prog).parse_args(argv)

    def log(message: str) -> None:
        print(message, flush=True)

    try:
        if args.part == "export":
            manifest = export_checkpoint(Path(args.checkpoint), Path(args.out), getattr(torch, args.dtype),
                                         args.model_id, args.strength, args.samples, args.output)
            log(f"exported {len(manifest['files'])} weight files to {args.out}")
            return 0
        if args.resume and args.init:
            raise InputError("--resume and --init: choose one (resume continues --out, init fine-tunes from another)")
        if args.steps is None and args.seconds is None:
            raise InputError("give --steps or --seconds (or both): training has no natural end")
        if args.resume:
            check_resumable(Path(args.out), "vae" if args.part == "vae" else "transformer")
        preset = PRESETS[args.preset]
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        shared_text = args.shared or os.environ.get(SHARED_ENV)
        shared = Path(shared_text) if shared_text else None
        Path(args.out).mkdir(parents=True, exist_ok=True)
        clips = load_data(args.data, preset, shared, log)
        if args.part == "vae":
            train_vae(args, preset, clips, device, log)
        else:
            train_dit(args, preset, clips, device, log)
    except ShotfillError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2 if isinstance(e, InputError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m shotfill.training.train"))
