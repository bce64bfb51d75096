"""The quality harness: hide real frames, let each engine make them again, score.

Every trial is cut from one real shot, so the truth of what an engine generates
is known:

=================  =========================================================
``extend_forward``   hide the shot's last N frames; context: the K before them
``extend_backward``  hide the shot's first N frames; context: the K after them
``bridge``           hide N frames in the middle; context: K on either side
``fill``             hide a region over visible background on F frames
=================  =========================================================

K, the context, is a parameter of the trial (``context``, default
:data:`DEFAULT_CONTEXT`), the same for every engine of a run: each trial is cut once and every
engine is given the same window, so no engine's score comes from seeing more real frames than
another's (an engine may still use fewer of them: ``flow`` extends from at most its last 4, the
baseline from the nearest one). The hidden pixels are
zeroed before the engine sees them, and the engine's picture is taken only
where the mask is > 0 (as the pipeline does), then scored against the truth:
PSNR and SSIM (inside the region for fill), flicker
(:func:`~shotfill.quality.metrics.temporal_consistency` over the generated run, next
to the truth's own flicker), the seam score at each cut between known and
generated frames against the motion of the real frames of the window, and the
engine's time per generated frame. Scores are those of the engine alone: the
pipeline's colour anchoring (:func:`shotfill.io.matching.anchor_to_plate`) is not applied.

Engines are rows named by a spec (``dit``, ``dit:strength=0.5``), with two reference rows that
measure what the ``dit`` engine owes to its model: ``dit-guess`` (its own first guess) and
``dit-no-change`` (the model's change switched off); see :mod:`shotfill.quality.rows`. Each shot
is labelled ``training``, ``tuned`` or ``untouched`` (:mod:`shotfill.quality.labels`); the
table's headline means are over the untouched shots only, and the results file records every
row's options and model checksum, every shot's label and every cell's window.

The footage folder holds one shot per sub-folder::

    footage/
      davis2016_car-shadow/frames/00000.jpg ...   an image sequence
      davis2016_car-shadow/masks/00000.png ...    optional object masks, same numbers
      sttn_dogs_jump/dogs_jump_orig.mp4           or one movie (masks/ optional)
      bbb_480p_30s/shots.json                     or a movie cut into shots by a list

A ``shots.json`` names its movie (``"file"``) and its shots (``"shots"``:
``{"id", "first", "last"}``). For fill, a shot with object masks hides the
object's outline moved sideways onto the background beside it (minus the
object itself, so only background whose truth is visible is hidden); a shot
without masks hides a rectangle moving across the frame. Sub-folders without
pictures, and shots too short for a task, are listed as skipped.

Run it from the command line as ``shotfill eval FOOTAGE_DIR`` or
``python bench/quality.py FOOTAGE_DIR``, or call :func:`run`.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import cv2
import numpy as np

from . import metrics
from .labels import LABEL_MEANING, LABEL_ORDER, ShotLabel, label_shots
from .rows import GUESS_ROW, MODEL_ENGINE, NO_CHANGE_ROW, Row, json_safe, load_row, row_record
from ..io.colour import ColourTransform
from ..engines import Engine
from ..engines.base import EngineResult, ProgressFn
from ..errors import InputError
from ..io.media import MOVIE_SUFFIXES, open_source
from ..plan import FramePlan, Role, TaskKind

#: the default engine, its two reference rows (its own first guess, and the model's change switched off),
#: the classical engine it must beat, and the trivial references
DEFAULT_ENGINES = (MODEL_ENGINE, GUESS_ROW, NO_CHANGE_ROW, "flow", "baseline")
DEFAULT_TASKS = (TaskKind.EXTEND_FORWARD, TaskKind.EXTEND_BACKWARD, TaskKind.BRIDGE, TaskKind.FILL)
DEFAULT_OUT = "shotfill-eval"
#: the engine the other engines are compared against in the table
REFERENCE_ENGINE = "baseline"
#: known frames each trial gives every engine on each side of what it hides: the most any of the default
#: engines asks for (``flow``'s 4; ``dit`` asks for 2, the baseline for 1), so none is given fewer frames
#: than it was built for, and the dit engine's first guess, made inside it, sees the same frames as the
#: ``flow`` and ``dit-guess`` rows: dit minus its guess, and dit minus flow, measure what the engine adds,
#: not a difference of context. (``shotfill extend`` without ``--context`` gives each engine its own.)
DEFAULT_CONTEXT = 4
#: seam scores below this count as this in the seam error (a freeze frame's seam is 0: no finite log)
SEAM_ERROR_FLOOR = 0.01
#: how far fill regions are grown beyond the object outline, as a share of the long side
FILL_DILATION = 0.015
SEED = 0


# -- shots -----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Shot:
    """One real shot: a source spec :func:`shotfill.io.media.open_source` reads, and its masks."""

    name: str
    spec: str
    masks: Path | None = None


def discover_shots(footage_dir: str | Path) -> tuple[list[Shot], list[dict]]:
    """The shots of a footage folder, and the sub-folders that hold none (with why)."""
    root = Path(footage_dir)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of footage")
    shots: list[Shot] = []
    skipped: list[dict] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        masks = folder / "masks" if (folder / "masks").is_dir() else None
        movies = sorted(p for p in folder.iterdir() if p.suffix.lower() in MOVIE_SUFFIXES)
        if (folder / "shots.json").is_file():
            shots.extend(_shot_list(folder / "shots.json"))
        elif (folder / "frames").is_dir():
            shots.append(Shot(folder.name, str(folder / "frames"), masks))
        elif len(movies) == 1:
            shots.append(Shot(folder.name, str(movies[0]), masks))
        elif movies:
            skipped.append({"shot": folder.name, "reason": "several movies and no shots.json"})
        else:
            skipped.append({"shot": folder.name, "reason": "no frames/ folder, movie or shots.json"})
    return shots, skipped


def _shot_list(path: Path) -> list[Shot]:
    try:
        listing = json.loads(path.read_text())
        movie = path.parent / listing["file"]
        return [Shot(f"{path.parent.name}/shot{s['id']}", f"{movie}#frames={int(s['first'])}-{int(s['last'])}")
                for s in listing["shots"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a readable shot list ({e})") from None


# -- one shot's frames -------------------------------------------------------
class ShotFrames:
    """A shot's frames in the working encoding, scaled to fit ``max_side``, read once each.

    Use it as a context manager, or call :meth:`close`, to release its media.
    """

    def __init__(self, shot: Shot, max_side: int):
        self.shot = shot
        self.source = open_source(shot.spec)
        self.masks = open_source(str(shot.masks)) if shot.masks is not None else None
        self.colour = ColourTransform(self.source.default_colourspace)
        scale = min(1.0, max_side / max(self.source.width, self.source.height))
        self.size = (max(1, round(self.source.width * scale)), max(1, round(self.source.height * scale)))
        self._cache: dict[int, np.ndarray] = {}

    def close(self) -> None:
        self.source.close()
        if self.masks is not None:
            self.masks.close()

    def __enter__(self) -> "ShotFrames":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def frames(self) -> list[int]:
        return list(self.source.frames)

    def read(self, frame: int) -> np.ndarray:
        """Frame ``frame`` as float32 ``(H, W, 3)`` in the working encoding."""
        if frame not in self._cache:
            pixels = self.source.read(frame)
            if pixels.shape[1::-1] != self.size:
                pixels = cv2.resize(pixels, self.size, interpolation=cv2.INTER_AREA)
            self._cache[frame] = self.colour.to_working(pixels).astype(np.float32)
        return self._cache[frame]

    def object_mask(self, frame: int) -> np.ndarray:
        """The shot's object mask of ``frame`` at the working size, as booleans."""
        return self.masks.read_mask(frame, size=self.size) >= 0.5


# -- trials ------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Trial:
    """One window cut from a shot: the plan, its true frames and its masks (1 = generate)."""

    task: TaskKind
    n: int
    plan: FramePlan
    truth: np.ndarray      # (T, H, W, 3) the real frames of the whole window
    masks: np.ndarray      # (T, H, W)


def make_plan(task: TaskKind, frames: Sequence[int], n: int, context: int) -> FramePlan:
    """The plan of a trial on a shot with ``frames``: hides ``n`` frames whose truth exists.

    For fill, ``n`` is the number of frames in the window. Raises
    :class:`InputError` when the shot is too short.
    """
    frames = list(frames)
    need = {TaskKind.EXTEND_FORWARD: n + context, TaskKind.EXTEND_BACKWARD: n + context,
            TaskKind.BRIDGE: n + 2 * context, TaskKind.FILL: n}[task]
    if len(frames) < need:
        raise InputError(f"{task.value} with {n} frames and {context} of context needs "
                         f"{need} frames, the shot has {len(frames)}")
    if task is TaskKind.EXTEND_FORWARD:
        return FramePlan.extend(frames[:-n], n, context=context)
    if task is TaskKind.EXTEND_BACKWARD:
        return FramePlan.extend(frames[n:], n, backward=True, context=context)
    if task is TaskKind.BRIDGE:
        cut = (len(frames) - n) // 2
        return FramePlan.bridge(frames[:cut], frames[cut + n:], n, context=context)
    start = (len(frames) - n) // 2
    return FramePlan.fill(frames[start:start + n])


def make_trial(shot: ShotFrames, task: TaskKind, n: int, context: int) -> Trial:
    """Cut a trial from ``shot``: the plan of :func:`make_plan`, its true frames and masks."""
    plan = make_plan(task, shot.frames, n, context)
    real = [f.source_frame if f.source_frame is not None else f.output_frame for f in plan.frames]
    truth = np.stack([shot.read(f) for f in real])
    if task is TaskKind.FILL:
        masks = fill_masks(shot, real)
        if not masks.any():
            raise InputError("the fill region is empty on every frame of the window")
    else:
        masks = np.stack([np.full(truth.shape[1:3], 1.0 if f.role is Role.GENERATE else 0.0, np.float32)
                          for f in plan.frames])
    return Trial(task, n, plan, truth, masks)


def fill_masks(shot: ShotFrames, frames: Sequence[int]) -> np.ndarray:
    """Regions to hide for a fill trial, ``(T, H, W)`` float32, over background only.

    With object masks: each frame's object outline, grown and moved sideways by
    the object's typical width (towards the side with more room), minus the grown
    object itself. Without: a rectangle a fifth of the frame wide, moving across it.
    """
    width, height = shot.size
    if shot.masks is None:
        return moving_rectangles(len(frames), height, width)
    grow = max(2, round(FILL_DILATION * max(width, height)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    objects = [cv2.dilate(shot.object_mask(f).astype(np.uint8), kernel) for f in frames]
    columns = [np.flatnonzero(o.any(axis=0)) for o in objects]
    present = [c for c in columns if c.size]
    if not present:
        raise InputError(f"{shot.shot.masks}: the object masks are empty on frames {frames[0]}-{frames[-1]}")
    shift = int(np.median([c[-1] - c[0] + 1 for c in present])) + grow
    centre = float(np.mean([(c[0] + c[-1]) / 2 for c in present]))
    if centre > width / 2:
        shift = -shift
    regions = []
    for obj in objects:
        moved = np.zeros_like(obj)
        if shift > 0:
            moved[:, shift:] = obj[:, :-shift]
        else:
            moved[:, :shift] = obj[:, -shift:]
        regions.append((moved > 0) & (obj == 0))
    return np.stack(regions).astype(np.float32)


def moving_rectangles(frames: int, height: int, width: int) -> np.ndarray:
    """A rectangle (a fifth of the width, a quarter of the height) moving left to right."""
    rect_w, rect_h = max(1, width // 5), max(1, height // 4)
    top = (height - rect_h) // 2
    masks = np.zeros((frames, height, width), np.float32)
    for t in range(frames):
        left = round(width * (0.2 + 0.4 * t / max(1, frames - 1)))
        masks[t, top:top + rect_h, left:left + rect_w] = 1.0
    return masks


# -- scoring -------------------------------------------------------------------
@dataclasses.dataclass
class Cell:
    """The scores of one engine row on one trial of one shot, and what the trial and the engine were."""

    shot: str
    task: str
    n: int
    engine: str             # the row's spec
    metrics: dict
    seconds: float
    size: tuple[int, int]
    label: str = ShotLabel.UNTOUCHED.value   # the shot's label (shotfill.quality.labels)
    context: int | None = None               # known frames on each side: the same for every row of a run
    window: dict | None = None               # the trial's real frames: {"known": [...], "generated": [...]}
    methods: list | None = None              # what the engine did at each generated position
    info: dict | None = None                 # what it measured and chose (EngineResult.info, JSON-safe)

    def to_dict(self) -> dict:
        return {"shot": self.shot, "label": self.label, "task": self.task, "n": self.n, "engine": self.engine,
                "context": self.context, "window": self.window, "size": list(self.size),
                "seconds": self.seconds,
                "metrics": {k: _finite_or_none(v) for k, v in self.metrics.items()},
                "methods": self.methods, "info": self.info}


def trial_window(trial: Trial) -> dict:
    """The real frames of a trial's window: those given as context and those hidden (or filled)."""
    window: dict[str, list[int]] = {"known": [], "generated": []}
    for f in trial.plan.frames:
        real = f.source_frame if f.source_frame is not None else f.output_frame
        window["known" if f.role is Role.KNOWN else "generated"].append(int(real))
    return window


def run_trial(engine: Engine, trial: Trial) -> tuple[dict, float, EngineResult]:
    """Generate the trial's hidden pixels with ``engine``; return its scores, seconds and result.

    The scores are those of :func:`score` and ``seconds_per_frame``, the time
    ``engine.generate`` took per written frame.
    """
    hidden = trial.masks > 0
    given = np.where(hidden[..., None], 0.0, trial.truth).astype(np.float32)
    started = time.perf_counter()
    made = engine.generate(trial.plan, given, trial.masks.copy(), seed=SEED)
    seconds = time.perf_counter() - started
    result = np.where(hidden[..., None], np.asarray(made.frames, dtype=np.float32), trial.truth)
    scores = score(trial, result)
    scores["seconds_per_frame"] = seconds / len(trial.plan.written_positions)
    return scores, seconds, made


def score(trial: Trial, result: np.ndarray) -> dict:
    """PSNR, SSIM, flicker and seam scores of ``result`` against the trial's truth."""
    written = trial.plan.written_positions
    truth, masks, plan = trial.truth[written], trial.masks[written], trial.plan
    fill = trial.task is TaskKind.FILL
    region = masks if fill else None
    ssims = [metrics.ssim(r, t, mask=m if fill else None)
             for r, t, m in zip(result[written], truth, masks) if m.any()]
    scores = {
        "psnr": metrics.psnr(result[written], truth, mask=region),
        "ssim": float(np.mean(ssims)),
        "flicker": None,
        "flicker_truth": None,
        "seam": None,
        "seam_truth": None,
        "seam_error": None,
    }
    if len(written) >= 3:
        scores["flicker"] = metrics.temporal_consistency(result[written], mask=region)
        scores["flicker_truth"] = metrics.temporal_consistency(truth, mask=region)
    cuts = [(p, p + 1) for p in range(len(plan) - 1)
            if {plan.frames[p].role, plan.frames[p + 1].role} == {Role.KNOWN, Role.GENERATE}]
    if cuts:
        scores["seam"] = max(metrics.seam_score(result[a], result[b], trial.truth) for a, b in cuts)
        scores["seam_truth"] = max(metrics.seam_score(trial.truth[a], trial.truth[b], trial.truth)
                                   for a, b in cuts)
        # how far the seam is from the real shot's own at that cut: 0 is as smooth as the shot. The raw
        # score alone rewards standing still (a freeze frame's is 0).
        scores["seam_error"] = abs(math.log(max(scores["seam"], SEAM_ERROR_FLOOR)
                                            / max(scores["seam_truth"], SEAM_ERROR_FLOOR)))
    return scores


# -- results ---------------------------------------------------------------------
@dataclasses.dataclass
class Results:
    """Every cell of a run, what was skipped, the settings, the wall time, the engine rows' records
    (:func:`shotfill.quality.rows.row_record`) and each shot's label."""

    cells: list[Cell]
    skipped: list[dict]
    settings: dict
    wall_seconds: float
    rows: list[dict] = dataclasses.field(default_factory=list)
    labels: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"settings": self.settings, "wall_seconds": self.wall_seconds,
                           "engines": self.rows, "shots": self.labels,
                           "cells": [c.to_dict() for c in self.cells], "skipped": self.skipped},
                          indent=2, allow_nan=False)

    def to_markdown(self) -> str:
        """Mean scores per task and engine row over the untouched shots (the headline), how often each
        row beats the baseline there, the model's own share (a dit row minus ``dit-guess``), and the
        means over the tuned and the training shots."""
        specs = list(self.settings["engines"])
        registry = {r["spec"]: r["engine"] for r in self.rows}
        model_rows = [spec for spec in specs if registry.get(spec) == MODEL_ENGINE]
        share = bool(model_rows) and GUESS_ROW in specs
        compare = REFERENCE_ENGINE in specs and len(specs) > 1
        present = {c.label for c in self.cells}
        extra = [label for label in LABEL_ORDER[1:] if label.value in present]
        header = (["task", "N", "engine", "shots", "PSNR dB", "SSIM", "flicker (truth)", "seam (truth)",
                   "seam error", "s/frame"] + (["beats baseline (PSNR)"] if compare else [])
                  + (["model's own share dB"] if share else [])
                  + [f"{label.value} PSNR" + (" (share)" if share else "") for label in extra])
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        groups: dict[tuple[str, int], list[Cell]] = {}
        for c in self.cells:
            groups.setdefault((c.task, c.n), []).append(c)
        headline = ShotLabel.UNTOUCHED.value
        for (task, n), cells in groups.items():
            for spec in specs:
                mine = [c for c in cells if c.engine == spec]
                if not mine:
                    continue
                top = [c for c in mine if c.label == headline]
                row = [task, str(n), spec, str(len(top)),
                       _mean(top, "psnr", "{:.2f}"), _mean(top, "ssim", "{:.3f}"),
                       _with_truth(top, "flicker", "flicker_truth", "{:.4f}"),
                       _with_truth(top, "seam", "seam_truth", "{:.2f}"),
                       _mean(top, "seam_error", "{:.2f}"),
                       _mean(top, "seconds_per_frame", "{:.3f}")]
                if compare:
                    row.append("-" if spec == REFERENCE_ENGINE else _wins(top, cells, REFERENCE_ENGINE))
                if share:
                    row.append(_share(top, cells) if spec in model_rows else "-")
                for label in extra:
                    theirs = [c for c in mine if c.label == label.value]
                    cell = _mean(theirs, "psnr", "{:.2f}")
                    if share and spec in model_rows and theirs:
                        cell += f" ({_share(theirs, cells)})"
                    row.append(cell)
                lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        lines.append(self._caption(specs, model_rows, share, extra, header[len(header) - len(extra) - 1]))
        for s in self.skipped:
            lines.append(f"- skipped {s['shot']}" + (f" ({s['task']})" if "task" in s else "")
                         + f": {s['reason']}")
        return "\n".join(lines) + "\n"

    def _caption(self, specs: list[str], model_rows: list[str], share: bool, extra: list[ShotLabel],
                 last_headline: str) -> str:
        by_label: dict[str, list[str]] = {}
        for shot, label in sorted({(c.shot, c.label) for c in self.cells}):
            by_label.setdefault(label, []).append(shot)

        def shots(label: ShotLabel) -> str:
            names = by_label.get(label.value, [])
            return f"{len(names)} {label.value} shot{'' if len(names) == 1 else 's'}" + (
                f" ({', '.join(names)})" if names else "")

        total = sum(len(v) for v in by_label.values())
        text = [f"{total} shot{'' if total == 1 else 's'}, long side at most {self.settings['max_side']} px, "
                f"wall time {self.wall_seconds:.1f} s. Every engine had the same trials: "
                f"{self.settings['context']} real frames of context on each side, seed {self.settings['seed']}."]
        if by_label.get(ShotLabel.UNTOUCHED.value):
            text.append(f"Headline columns ('shots' to '{last_headline}'): over the {shots(ShotLabel.UNTOUCHED)} "
                        "only, those the shipped dit checkpoint was not trained on and no setting was tuned on "
                        "(shotfill.quality.labels).")
        else:
            text.append("No untouched shot in this run (none that neither training nor tuning has seen): "
                        "the headline columns are empty.")
        for label in extra:
            text.append(f"'{label.value} PSNR': the mean over the {shots(label)}"
                        + (", which the shipped dit checkpoint was trained on." if label is ShotLabel.TRAINING
                           else ", on which settings were chosen."))
        if share:
            text.append(f"Model's own share: a dit row's PSNR minus the {GUESS_ROW} row's (the dit engine's own "
                        "first guess) on the same shots, dB" + (
                            f"; on the {NO_CHANGE_ROW} row, what the engine adds with the model's change "
                            "switched off." if NO_CHANGE_ROW in specs else "."))
        elif model_rows:
            text.append(f"Add {GUESS_ROW} to the engines for the model's own share.")
        text.append("Flicker: mean |second temporal difference| of the generated run (the true run's in "
                    "brackets, lower is steadier). Seam: jump at the worst cut over the shot's median "
                    "frame-to-frame change (about 1 is seamless). Seam error: |ln(seam / the truth's seam)|, "
                    "0 is as smooth as the real shot.")
        return " ".join(text)

    def write(self, out: str | Path) -> tuple[Path, Path]:
        """Write the JSON and the Markdown table; ``out`` is a ``.json`` file or a folder."""
        out = Path(out)
        json_path = out if out.suffix == ".json" else out / "results.json"
        json_path.parent.mkdir(parents=True, exist_ok=True)
        md_path = json_path.with_suffix(".md")
        json_path.write_text(self.to_json())
        md_path.write_text(self.to_markdown())
        return json_path, md_path


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _values(cells: list[Cell], key: str) -> list[float]:
    return [c.metrics[key] for c in cells if c.metrics[key] is not None]


def _mean(cells: list[Cell], key: str, fmt: str) -> str:
    values = _values(cells, key)
    return fmt.format(float(np.mean(values))) if values else "-"


def _with_truth(cells: list[Cell], key: str, truth_key: str, fmt: str) -> str:
    mean, truth = _mean(cells, key, fmt), _mean(cells, truth_key, fmt)
    return mean if mean == "-" else f"{mean} ({truth})"


def _wins(mine: list[Cell], cells: list[Cell], reference: str) -> str:
    """``wins/shots``: on how many of ``mine``'s shots the row's PSNR beats row ``reference``'s."""
    theirs = {c.shot: c.metrics["psnr"] for c in cells if c.engine == reference}
    versus = [c for c in mine if c.shot in theirs]
    return f"{sum(c.metrics['psnr'] > theirs[c.shot] for c in versus)}/{len(versus)}"


def _share(mine: list[Cell], cells: list[Cell]) -> str:
    """The mean over ``mine``'s shots of the row's PSNR minus the guess row's on the same trial, signed."""
    guess = {c.shot: c.metrics["psnr"] for c in cells if c.engine == GUESS_ROW}
    diffs = [c.metrics["psnr"] - guess[c.shot] for c in mine
             if c.shot in guess and math.isfinite(c.metrics["psnr"]) and math.isfinite(guess[c.shot])]
    return f"{float(np.mean(diffs)):+.2f}" if diffs else "-"


# -- the run -------------------------------------------------------------------------
def _task(value: TaskKind | str) -> TaskKind:
    try:
        return TaskKind(value)
    except ValueError:
        choices = ", ".join(t.value for t in TaskKind)
        raise InputError(f"unknown task {value!r} (choose from: {choices})") from None


def _trial_specs(tasks: Sequence[TaskKind], extend_frames: int, bridge_frames: Sequence[int],
                 fill_frames: int) -> Iterator[tuple[TaskKind, int]]:
    for task in tasks:
        if task is TaskKind.BRIDGE:
            yield from ((task, n) for n in bridge_frames)
        elif task is TaskKind.FILL:
            yield task, fill_frames
        else:
            yield task, extend_frames


def evaluate_shot(shot: ShotFrames, rows: dict[str, Engine], specs: list[tuple[TaskKind, int]], context: int,
                  skipped: list[dict], step: Callable[[str], None],
                  label: ShotLabel = ShotLabel.UNTOUCHED) -> list[Cell]:
    """Every trial of one shot for every engine row (spec -> engine); trials the shot cannot give go to
    ``skipped``. Each trial is cut once, with ``context`` frames, and given to every row.

    ``step(message)`` is called before each row's trial.
    """
    cells = []
    for task, n in specs:
        try:
            trial, refused = make_trial(shot, task, n, context), None
        except InputError as e:
            trial, refused = None, str(e)
        for spec, engine in rows.items():
            step(f"{shot.shot.name} {task.value} N={n} {spec}")
            where = {"shot": shot.shot.name, "task": f"{task.value} N={n} {spec}"}
            if task not in engine.supports:
                skipped.append({**where, "reason": f"engine '{spec}' cannot do {task.value}"})
                continue
            if trial is None:
                skipped.append({**where, "reason": refused})
                continue
            scores, seconds, made = run_trial(engine, trial)
            methods = ([made.methods[p] for p in trial.plan.written_positions]
                       if len(made.methods) == len(trial.plan) else None)
            cells.append(Cell(shot.shot.name, task.value, n, spec, scores, seconds, shot.size, label=label.value,
                              context=context, window=trial_window(trial), methods=methods,
                              info=json_safe(made.info)))
    return cells


def engine_from_spec(spec: str) -> Engine:
    """An engine from ``NAME`` or ``NAME:KEY=VALUE:KEY=VALUE`` (``dit:strength=0.5``); values are JSON or text.

    ``NAME`` is a registry engine or a reference row (:mod:`shotfill.quality.rows`). The spec is the
    engine's label in the results, so one run can compare settings of one engine.
    """
    return load_row(spec).engine


def run(footage_dir: str | Path, *, engines: Sequence[str] = DEFAULT_ENGINES,
        tasks: Sequence[TaskKind | str] = DEFAULT_TASKS, extend_frames: int = 8,
        bridge_frames: Sequence[int] = (4, 12), fill_frames: int = 10, context: int = DEFAULT_CONTEXT,
        max_side: int = 480, max_shots: int | None = None, shots: Sequence[str] | None = None,
        labels: dict[str, str] | None = None, out: str | Path | None = None,
        progress: Optional[ProgressFn] = None) -> Results:
    """Run every task for every engine row on the shots of ``footage_dir``.

    Every row is given the same trials, with ``context`` real frames on each side of what is
    hidden. ``shots`` keeps only the shots with these names (``davis2016_car-shadow``,
    ``bbb_480p_30s/shot2``); ``max_shots`` keeps the first ones. ``labels`` (shot name ->
    ``training``, ``tuned`` or ``untouched``) overrides the harness's table
    (:mod:`shotfill.quality.labels`). With ``out`` (a folder, or a ``.json`` path) the results
    are written there as JSON and a Markdown table.
    """
    started = time.perf_counter()
    tasks = [_task(t) for t in tasks]
    for name, value in (("extend_frames", extend_frames), ("fill_frames", fill_frames), ("context", context),
                        ("max_side", max_side), *(("bridge_frames", n) for n in bridge_frames)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a whole number of at least 1, got {value!r}")
    if max_shots is not None and max_shots < 1:
        raise InputError(f"max_shots must be at least 1, got {max_shots!r}")
    repeated = sorted({spec for spec in engines if list(engines).count(spec) > 1})
    if repeated:
        raise InputError(f"engines: {', '.join(repeated)} given more than once")
    loaded: dict[str, Row] = {spec: load_row(spec) for spec in engines}
    found, skipped = discover_shots(footage_dir)
    if shots is not None:
        unknown = sorted(set(shots) - {s.name for s in found})
        if unknown:
            raise InputError(f"{footage_dir}: no shot named {', '.join(unknown)} "
                             f"(shots: {', '.join(s.name for s in found)})")
        found = [s for s in found if s.name in set(shots)]
        skipped = []
    found = found[:max_shots]
    shot_labels = label_shots([s.name for s in found], labels)
    specs = list(_trial_specs(tasks, extend_frames, bridge_frames, fill_frames))
    steps, done = len(found) * len(specs) * len(loaded), itertools.count()

    def step(message: str) -> None:
        if progress is not None:
            progress(next(done) / steps, message)

    cells: list[Cell] = []
    engines_of = {spec: row.engine for spec, row in loaded.items()}
    for shot in found:
        with ShotFrames(shot, max_side) as shot_frames:
            cells.extend(evaluate_shot(shot_frames, engines_of, specs, context, skipped, step,
                                       label=shot_labels[shot.name]))
    if progress is not None:
        progress(1.0, "done")
    settings = {"footage": str(footage_dir), "engines": list(engines), "tasks": [t.value for t in tasks],
                "extend_frames": extend_frames, "bridge_frames": list(bridge_frames),
                "fill_frames": fill_frames, "context": context, "max_side": max_side, "max_shots": max_shots,
                "shots": list(shots) if shots is not None else None, "seed": SEED,
                "label_meaning": {label.value: text for label, text in LABEL_MEANING.items()},
                "label_overrides": dict(labels) if labels else None}
    results = Results(cells, skipped, settings, time.perf_counter() - started,
                      rows=[row_record(row) for row in loaded.values()],
                      labels={name: label.value for name, label in shot_labels.items()})
    if out is not None:
        results.write(out)
    return results
