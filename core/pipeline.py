"""The worker's pipeline: job spec in, EXR frames (and a new edit) out.

One fixed order, whatever the front door::

    resolve   job spec (+ edit target) -> sources, frame plan, colour spaces
    read      known frames and masks -> working encoding (display-referred)
    generate  engine.generate(plan, frames, masks, ...)
    seam      colour-anchor generated frames to the plate; seam scores
    write     EXR per generated frame, atomic, provenance in the header;
              frames already written by the same job are kept (resume)
    timeline  the generated sequence placed on a new edit next to the input
    preview   a contact sheet around each seam, and a small picture of every
              frame of the window (``preview/``) for the panel to scrub

Known pixels are never regenerated: where the mask is 0 the output is the
source pixel itself (bit-exact when source and output colour spaces agree).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from . import __version__
from .engines import Engine, check_cancel, get_engine
from .errors import InputError, MediaError, ShotfillError
from .events import EventSink, ListSink, Progress
from .job import JobSpec
from .plan import FramePlan, Role, TaskKind

#: first frame number of sequences generated for an edit target (film convention)
EDIT_FIRST_FRAME = 1001
#: folder names that say nothing about the shot: the parent folder names it instead
GENERIC_FOLDERS = {"frames", "images", "plates", "plate", "img", "jpg", "png", "exr", "tif", "tiff"}
#: longest side, in pixels, of the per-frame preview pictures
PREVIEW_MAX_SIDE = 480


# ---------------------------------------------------------------------------
# resolved job
# ---------------------------------------------------------------------------
@dataclasses.dataclass
class ResolvedJob:
    """Everything a job needs once its spec (and edit target) is resolved."""

    spec: JobSpec
    engine: Engine
    plan: FramePlan
    sources: dict            # "a" / "b" -> FrameSource
    mask_source: object | None
    source_spaces: dict      # "a" / "b" -> colour space of that source
    output_space: str
    out_dir: Path
    name: str
    width: int
    height: int
    timeline: object | None = None
    target: object | None = None
    record_start: object | None = None   # otio RationalTime of the first written frame
    rate: float | None = None
    warnings: list = dataclasses.field(default_factory=list)

    @property
    def kind(self) -> TaskKind:
        return self.plan.kind

    def frame_number(self, frame: int) -> str:
        """``frame`` as output file names spell it: zero-padded, a minus sign before the digits."""
        pad = self.spec.output.padding
        return f"-{abs(frame):0{pad}d}" if frame < 0 else f"{frame:0{pad}d}"

    def frame_path(self, frame: int) -> Path:
        return self.out_dir / f"{self.name}.{self.frame_number(frame)}.exr"

    @property
    def pattern(self) -> str:
        return str(self.out_dir / f"{self.name}.{'#' * self.spec.output.padding}.exr")


@dataclasses.dataclass
class JobResult:
    job_id: str
    task: str
    engine: str
    output_pattern: str
    frames: list
    written: list
    skipped: list
    seam_scores: dict
    timings: dict
    warnings: list
    target: str | None = None
    edit: str | None = None
    new_edit: str | None = None
    contact_sheet: str | None = None
    #: the ``preview_frames`` event's entries: one small picture per position of the window
    preview_frames: list = dataclasses.field(default_factory=list)
    placement: dict | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------
# resolve
# ---------------------------------------------------------------------------
def resolve(spec: JobSpec, *, engine: Engine | None = None) -> ResolvedJob:
    """Open the sources, pick the frames, build the plan. Raises InputError on bad input."""
    from . import media

    engine = engine or get_engine(spec.engine, **spec.engine_options)
    warnings: list[str] = []
    if spec.prompt and not engine.uses_prompt:
        warnings.append(f"engine '{engine.name}' has no text conditioning: the prompt is ignored")
    context = spec.context or engine.context_frames
    if spec.edit is not None:
        return _resolve_edit_target(spec, engine, context, warnings)

    kind = spec.task
    a = media.open_source(spec.source.path, frame_range=spec.source.frame_range)
    sources = {"a": a}
    mask_source = None
    if kind in (TaskKind.EXTEND_FORWARD, TaskKind.EXTEND_BACKWARD):
        plan = FramePlan.extend(_span(a), spec.frames, backward=kind is TaskKind.EXTEND_BACKWARD,
                                context=context)
    elif kind is TaskKind.BRIDGE:
        b = media.open_source(spec.source_b.path, frame_range=spec.source_b.frame_range)
        sources["b"] = b
        plan = FramePlan.bridge(_span(a), _span(b), spec.frames, context=context)
    else:
        mask_source = media.open_source(spec.mask.path, frame_range=spec.mask.frame_range)
        have = set(mask_source.frames)
        missing = [] if mask_source.still else [f for f in _span(a) if f not in have]
        if missing:
            raise InputError(f"mask {spec.mask.path}: no mask for frame {missing[0]} of {spec.source.path}"
                             f" (mask frames {mask_source.frames[0]}-{mask_source.frames[-1]})")
        plan = FramePlan.fill(_span(a))
    return _finish(spec, engine, plan, sources, mask_source, warnings,
                   name=spec.output.name or _default_name(spec.source.path, kind),
                   rate=float(a.rate) if a.rate else None)


def _resolve_edit_target(spec: JobSpec, engine: Engine, context: int, warnings: list) -> ResolvedJob:
    import opentimelineio as otio

    from . import media, timeline as tl

    edit = spec.edit
    timeline = tl.load_edit(edit.path, rate=edit.rate)
    targets = {t.id: t for t in tl.find_targets(timeline, edit_path=edit.path)}
    if edit.target not in targets:
        listing = ", ".join(sorted(targets)) or "none"
        raise InputError(f"{edit.path}: no target '{edit.target}' (targets: {listing})")
    target = targets[edit.target]
    if spec.task is not None and spec.task is not target.kind:
        raise InputError(f"target '{target.id}' is a {target.kind.value}, not a {spec.task.value}")

    def open_clip(clip, first, last, what):
        if clip is None or not clip.path:
            raise InputError(f"{edit.path}: target '{target.id}': {what} has no readable media")
        if not clip.exists:
            raise MediaError(clip.path, f"media of clip '{clip.clip_name}' ({what}) is not on disk")
        return media.open_source(clip.path, frame_range=(first, last))

    kind = target.kind
    mask_source = None
    sources = {}
    if kind is TaskKind.BRIDGE:
        a, b = target.clip_a, target.clip_b
        sources["a"] = open_clip(a, a.source_first, a.source_last, "the clip before the gap")
        sources["b"] = open_clip(b, b.source_first, b.source_last, "the clip after the gap")
        frames = spec.frames or target.frames
        if spec.frames and spec.frames != target.frames:
            if edit.write_mode == "replace":
                raise InputError(f"target '{target.id}': the gap is {target.frames} frames; "
                                 f"--frames {spec.frames} cannot replace it (use track mode)")
            warnings.append(f"the gap is {target.frames} frames but {spec.frames} were asked for")
        plan = FramePlan.bridge(_span(sources["a"]), _span(sources["b"]), frames, context=context,
                                first_output_frame=EDIT_FIRST_FRAME)
        record_start = target.record_range.start_time
    elif kind in (TaskKind.EXTEND_FORWARD, TaskKind.EXTEND_BACKWARD):
        clip = target.clip_a
        if spec.frames is None:
            raise InputError(f"target '{target.id}': say how many frames to extend by (--frames N)")
        forward = kind is TaskKind.EXTEND_FORWARD
        first = clip.available_first if clip.available_first is not None else clip.source_first
        last = clip.available_last if clip.available_last is not None else clip.source_last
        handles = (clip.handles_after if forward else clip.handles_before) or 0
        to_generate = spec.frames - handles
        if to_generate < 1:
            raise InputError(
                f"target '{target.id}': the media already holds {handles} real frames "
                f"{'after the out' if forward else 'before the in'} point, enough for {spec.frames}: "
                "trim the clip instead, or ask for more frames than the handles")
        if handles:
            warnings.append(f"{handles} handle frames exist in the media; generating the "
                            f"{to_generate} frames beyond them")
        sources["a"] = open_clip(clip, first, last, "the clip")
        plan = FramePlan.extend(_span(sources["a"]), to_generate, backward=not forward, context=context)
        frames_at = lambda n: otio.opentime.RationalTime(n, target.rate)  # noqa: E731
        if forward:
            record_start = target.record_range.end_time_exclusive() + frames_at(handles)
        else:
            record_start = target.record_range.start_time - frames_at(handles + to_generate)
            if record_start.value < 0 and edit.write_timeline:
                raise InputError(
                    f"target '{target.id}': {to_generate} frames before the clip would start "
                    f"{-record_start.to_frames()} frames before the timeline's first frame; "
                    "make room in the edit first, or run with write_timeline off and place them by hand")
    else:  # fill
        clip = target.clip_a
        sources["a"] = open_clip(clip, clip.source_first, clip.source_last, "the clip")
        if target.mask is None or not target.mask.path:
            raise InputError(f"target '{target.id}': no mask sequence is linked to the clip")
        mask_source = media.open_source(target.mask.path)
        plan = FramePlan.fill(_span(sources["a"]))
        record_start = target.record_range.start_time

    return _finish(spec, engine, plan, sources, mask_source, warnings,
                   name=spec.output.name or _safe_name(f"{Path(edit.path).stem}_{target.id}"),
                   rate=target.rate, timeline=timeline, target=target, record_start=record_start)


def _finish(spec, engine, plan, sources, mask_source, warnings, *, name, rate, timeline=None,
            target=None, record_start=None) -> ResolvedJob:
    """Colour spaces, sizes and output folder: the parts every kind of job shares."""
    from . import colour

    engine.check_plan(plan)
    a = sources["a"]
    spaces = {}
    for key, src in sources.items():
        given = spec.source.colourspace if (key == "a" and spec.source is not None) else \
            (spec.source_b.colourspace if (key == "b" and spec.source_b is not None) else None)
        spaces[key] = colour.canonical_space(given or src.default_colourspace)
    if spec.output.colourspace:
        output_space = colour.canonical_space(spec.output.colourspace)
    else:
        output_space = spaces["a"] if a.kind == "exr" else colour.canonical_space("lin_rec709")
    if "b" in sources and (sources["b"].width, sources["b"].height) != (a.width, a.height):
        warnings.append(f"shot B is {sources['b'].width}x{sources['b'].height}, shot A "
                        f"{a.width}x{a.height}: B is resized to A's size for the bridge")
    if rate and hasattr(engine, "frame_rate") and "frame_rate" not in spec.engine_options:
        engine.frame_rate = float(rate)  # models that take a frame rate get the timeline's, unless told
    out_dir = Path(spec.output.dir).expanduser().resolve()
    return ResolvedJob(spec=spec, engine=engine, plan=plan, sources=sources, mask_source=mask_source,
                       source_spaces=spaces, output_space=output_space, out_dir=out_dir, name=name,
                       width=a.width, height=a.height, timeline=timeline, target=target,
                       record_start=record_start, rate=rate, warnings=warnings)


def _span(source) -> range:
    """Every frame number from a source's first to its last: a hole inside the window a plan
    uses is read, and fails with an error naming the missing frame, rather than skipped."""
    return range(source.frames[0], source.frames[-1] + 1)


def _default_name(path: str, kind: TaskKind) -> str:
    p = Path(path.split("#", 1)[0])
    if p.is_dir():
        stem = p.parent.name if p.name.lower() in GENERIC_FOLDERS else p.name
    else:
        stem = p.name.split(".")[0] or p.stem
    suffix = {TaskKind.EXTEND_FORWARD: "ext", TaskKind.EXTEND_BACKWARD: "head",
              TaskKind.BRIDGE: "bridge", TaskKind.FILL: "fill"}[kind]
    return _safe_name(f"{stem}_{suffix}")


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text).strip("_") or "shotfill"


# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------
def run_job(spec: JobSpec, sink: EventSink | None = None, *, cancel: Optional[Callable[[], bool]] = None,
            engine: Engine | None = None) -> JobResult:
    """Run one job end to end. Raises ShotfillError subclasses on bad input or cancel."""
    from . import colour
    from .exr import write_exr

    sink = sink or ListSink()
    progress = Progress(sink)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    progress.begin("prepare", f"job {spec.id}")
    job = resolve(spec, engine=engine)
    for w in job.warnings:
        sink.emit({"event": "warning", "message": w})
    timings["prepare"] = time.monotonic() - t0

    plan = job.plan
    written_positions = plan.written_positions
    out_frames = plan.output_frames
    job.out_dir.mkdir(parents=True, exist_ok=True)

    _remove_stale_temporaries(job)
    # resume: frames whose header says they belong to this job are kept
    done = {f for f in out_frames if _belongs_to_job(job.frame_path(f), spec.id)}
    todo = [p for p in written_positions if plan.frames[p].output_frame not in done]

    transforms = {k: colour.ColourTransform(job.source_spaces[k], job.output_space) for k in job.sources}
    working = masks = originals = None
    peak = 1.0
    seam_scores: dict[str, float] = {}
    previous: dict = {}
    if todo:
        t = time.monotonic()
        progress.begin("read", f"{len(plan)} frames ({plan.summary()})")
        working, masks, originals, peak = _read_window(job, transforms, progress, cancel)
        timings["read"] = time.monotonic() - t

        t = time.monotonic()
        progress.begin("generate", f"engine {job.engine.name}")
        result = job.engine.generate(plan, working, masks, prompt=spec.prompt or None, seed=spec.seed,
                                     progress=progress.callback(), cancel=cancel)
        result = np.asarray(result, dtype=np.float32)
        # what the engine had to change to run the plan (frames rounded to the model's count...)
        for w in getattr(job.engine, "last_info", {}).get("warnings", []):
            job.warnings.append(w)
            sink.emit({"event": "warning", "message": w})
        if result.shape != working.shape:
            raise ShotfillError(f"engine '{job.engine.name}' returned shape {result.shape}, expected {working.shape}")
        timings["generate"] = time.monotonic() - t
        for stage, seconds in getattr(job.engine, "last_info", {}).get("timings", {}).items():
            timings[f"generate.{stage}"] = seconds  # the engine's own breakdown (dit: encode, denoise...)

        t = time.monotonic()
        progress.begin("seam", "colour anchor and seam scores")
        from .seam import anchor_to_plate, seam_scores as score_seams
        result = anchor_to_plate(plan, working, result, masks)
        seam_scores = score_seams(plan, working, result)
        timings["seam"] = time.monotonic() - t
    else:
        sink.emit({"event": "stage", "stage": "write", "message": "every frame is already written by this job"})
        previous = _previous_result(job)
        seam_scores = previous.get("seam_scores", {})

    t = time.monotonic()
    progress.begin("write", f"{len(written_positions)} frames to {job.pattern}")
    written, skipped = [], []
    attrs = _provenance(job)
    windows = _output_windows(job)
    for i, pos in enumerate(written_positions):
        check_cancel(cancel)
        frame = plan.frames[pos].output_frame
        path = job.frame_path(frame)
        if frame in done:
            skipped.append(frame)
            sink.emit({"event": "frame", "frame": frame, "path": str(path), "skipped": True})
        else:
            pixels = _output_pixels(transforms, pos, result, masks, originals, peak)
            write_exr(path, _crop(pixels, job, windows), compression=spec.output.compression,
                      data_window=windows[0], display_window=windows[1],
                      attributes={**attrs, "shotfill.frame": int(frame)})
            written.append(frame)
            sink.emit({"event": "frame", "frame": frame, "path": str(path), "skipped": False})
        progress.update((i + 1) / len(written_positions))
    timings["write"] = time.monotonic() - t

    res = JobResult(job_id=spec.id, task=plan.kind.value, engine=job.engine.name,
                    output_pattern=job.pattern, frames=out_frames, written=written, skipped=skipped,
                    seam_scores=seam_scores, timings=timings, warnings=list(job.warnings),
                    target=job.target.id if job.target is not None else None,
                    edit=spec.edit.path if spec.edit is not None else None)

    if job.target is not None:
        res.placement = placement_dict(job)
        if spec.edit.write_timeline:
            t = time.monotonic()
            progress.begin("timeline", "placing the result on a new version of the edit")
            res.new_edit = str(publish(spec.edit.path, [res.to_dict()], mode=spec.edit.write_mode,
                                       rate=spec.edit.rate, export_format=spec.edit.export))
            timings["timeline"] = time.monotonic() - t

    sheet = job.out_dir / f"{job.name}.contact.png"
    if spec.output.preview and working is not None:
        t = time.monotonic()
        progress.begin("preview", "contact sheet and a picture of each frame around the seam")

        def before(position: int) -> np.ndarray:
            return transforms["a"].to_working(originals[position])

        res.contact_sheet = str(_contact_sheet(job, working, result, masks, before, sheet))
        sink.emit({"event": "preview", "path": res.contact_sheet})
        res.preview_frames = _preview_frames(job, working, result, masks, before, progress)
        sink.emit({"event": "preview_frames", "frames": res.preview_frames})
        timings["preview"] = time.monotonic() - t
    elif spec.output.preview:                         # resumed with nothing left to do
        if sheet.exists():
            res.contact_sheet = str(sheet)
            sink.emit({"event": "preview", "path": res.contact_sheet})
        earlier = previous.get("preview_frames") or []
        if earlier and all(Path(p).is_file() for f in earlier for p in (f["after"], f["before"]) if p):
            res.preview_frames = earlier
            sink.emit({"event": "preview_frames", "frames": res.preview_frames})

    timings["total"] = time.monotonic() - t0
    res.timings = {k: round(v, 3) for k, v in timings.items()}
    _write_result_file(job, res)
    progress.finish()
    sink.emit({"event": "result", **res.to_dict()})
    return res


def _read_window(job: ResolvedJob, transforms, progress: Progress, cancel):
    """Known frames (working encoding), masks (1 = generate), source pixels for fills, and
    the plate's brightest value (generated highlights are capped there, never invented)."""
    plan = job.plan
    T, H, W = len(plan), job.height, job.width
    working = np.zeros((T, H, W, 3), np.float32)
    masks = np.ones((T, H, W), np.float32)
    originals: dict[int, np.ndarray] = {}
    peak = 1.0
    for pos, pf in enumerate(plan.frames):
        check_cancel(cancel)
        if pf.role is Role.GENERATE:
            continue
        src = job.sources[pf.source]
        pixels = _fit(src.read(pf.source_frame), W, H)
        working[pos] = transforms[pf.source].to_working(pixels)
        peak = max(peak, float(np.nanmax(transforms[pf.source].source_to_output(pixels))))
        if pf.role is Role.KNOWN:
            masks[pos] = 0.0
        else:
            masks[pos] = job.mask_source.read_mask(pf.source_frame, size=(W, H))
            originals[pos] = pixels
            working[pos][masks[pos] > 0] = 0.0   # the engine never sees what it replaces
        progress.update((pos + 1) / T)
    return working, masks, originals, peak


def _fit(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    if pixels.shape[:2] == (height, width):
        return pixels
    import cv2

    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)


def _output_pixels(transforms, pos: int, result, masks, originals, peak: float) -> np.ndarray:
    """The frame to write: generated pixels where the mask is > 0, source pixels elsewhere."""
    generated = transforms["a"].from_working(result[pos], peak=peak)
    if pos not in originals:
        return generated
    keep = transforms["a"].source_to_output(originals[pos])
    m = masks[pos][..., None]
    return np.where(m > 0, keep * (1.0 - m) + generated * m, keep).astype(np.float32)


def _output_windows(job: ResolvedJob):
    """(data window, display window) for written frames: the source's where it has them."""
    a = job.sources["a"]
    full = (0, 0, job.width - 1, job.height - 1)
    if a.kind != "exr":
        return full, full
    known = [pf.source_frame for pf in job.plan.frames if pf.source == "a"]
    header = a.frame_header(known[-1] if job.kind is not TaskKind.EXTEND_BACKWARD else known[0])
    disp = tuple(header["display_window"])
    data = tuple(header["data_window"])
    inside = (data[0] >= disp[0] and data[1] >= disp[1] and data[2] <= disp[2] and data[3] <= disp[3])
    return (data if inside else disp), disp


def _crop(pixels: np.ndarray, job: ResolvedJob, windows) -> np.ndarray:
    data, disp = windows
    x0, y0 = data[0] - disp[0], data[1] - disp[1]
    return pixels[y0:y0 + data[3] - data[1] + 1, x0:x0 + data[2] - data[0] + 1]


def _provenance(job: ResolvedJob) -> dict:
    from .colour import chromaticities

    spec = job.spec
    desc = job.engine.describe()
    src = spec.edit.path + "#" + spec.edit.target if spec.edit else spec.source.path
    attrs = {
        "shotfill.version": __version__,
        "shotfill.jobId": spec.id,
        "shotfill.task": job.kind.value,
        "shotfill.engine": desc.get("engine", job.engine.name),
        "shotfill.model": desc.get("model", ""),
        "shotfill.modelSha256": desc.get("model_sha256", ""),
        "shotfill.seed": int(spec.seed),
        "shotfill.prompt": spec.prompt,
        "shotfill.sourceClip": src,
        "shotfill.framePlan": job.plan.summary(),
        "shotfill.colourSpace": job.output_space,
    }
    chroma = chromaticities(job.output_space)
    if chroma is not None:
        attrs["chromaticities"] = tuple(float(c) for c in chroma)
    return attrs


def _remove_stale_temporaries(job: ResolvedJob) -> None:
    """Remove temporary files left by a killed writer (``.NAME.####.exr.PID-XXXX.tmp``).

    Temporaries of a process that is still alive (another attempt of the same farm task)
    are left alone: its rename is atomic and its frames are the same.
    """
    for tmp in job.out_dir.glob(f".{job.name}.*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _belongs_to_job(path: Path, job_id: str) -> bool:
    """A frame on disk counts as done when it decodes whole and its header names this job."""
    from .exr import read_exr

    if not path.exists():
        return False
    try:
        return read_exr(path).attributes.get("shotfill.jobId") == job_id
    except MediaError:
        return False   # a damaged frame is written again


def placement_dict(job: ResolvedJob) -> dict:
    frames = job.plan.output_frames
    return {
        "target_id": job.target.id,
        "directory": str(job.out_dir),
        "name_prefix": f"{job.name}.",
        "name_suffix": ".exr",
        "frame_zero_padding": job.spec.output.padding,
        "start_frame": min(frames),
        "end_frame": max(frames),
        "rate": job.rate,
        "record_start": {"value": job.record_start.value, "rate": job.record_start.rate},
        "metadata": {"job_id": job.spec.id, "engine": job.engine.name, "seed": job.spec.seed,
                     "task": job.kind.value, "prompt": job.spec.prompt, "frame_plan": job.plan.summary()},
    }


def publish(edit_path, results: list[dict], *, mode: str = "track", rate: float | None = None,
            export_format: str | None = None, out_path=None) -> Path:
    """Place finished results (``JobResult.to_dict()``) on a new version of the edit."""
    import opentimelineio as otio

    from . import timeline as tl

    placements = []
    for r in results:
        p = r.get("placement")
        if not p:
            raise InputError(f"result of job {r.get('job_id')} has no edit placement")
        rs = p["record_start"]
        placements.append(tl.Placement(
            target_id=p["target_id"], directory=Path(p["directory"]), name_prefix=p["name_prefix"],
            name_suffix=p["name_suffix"], frame_zero_padding=p["frame_zero_padding"],
            start_frame=p["start_frame"], end_frame=p["end_frame"], rate=p["rate"],
            record_start=otio.opentime.RationalTime(rs["value"], rs["rate"]), metadata=p["metadata"]))
    timeline = tl.load_edit(edit_path, rate=rate)
    return tl.write_back(edit_path, timeline, placements, mode=mode, out_path=out_path,
                         export_format=export_format)


def _contact_sheet(job: ResolvedJob, working, result, masks, before, path: Path) -> Path:
    """Rows of frames around each seam; for a fill, the plate before and the result after."""
    from .contact import Thumb, contact_sheet

    plan = job.plan

    def disp(p: int) -> np.ndarray:  # the composite of one position, display-referred (only the frames shown)
        return np.clip(np.where(masks[p][..., None] > 0, result[p], working[p]), 0.0, 1.0)

    rows = []
    gen = plan.generate_positions
    title = job.target.id if job.target is not None else job.name
    if plan.kind is TaskKind.FILL:
        picks = np.linspace(0, len(plan) - 1, num=min(4, len(plan))).round().astype(int)
        rows = [(f"{title} fill: original",
                 [(f"{plan.frames[p].source_frame} before", np.clip(before(p), 0, 1)) for p in picks]),
                (f"{title} fill: result",
                 [Thumb(f"{plan.frames[p].source_frame} after", disp(p), True) for p in picks])]
    else:
        lo, hi = max(0, gen[0] - 2), min(len(plan), gen[-1] + 3)
        if len(gen) > 6:
            keep = set(range(lo, gen[0] + 3)) | set(range(gen[-1] - 2, hi))
        else:
            keep = set(range(lo, hi))
        cells = []
        for p in sorted(keep):
            pf = plan.frames[p]
            label = f"G {pf.output_frame}" if pf.role is Role.GENERATE else f"{pf.source} {pf.source_frame}"
            cells.append(Thumb(label, disp(p), pf.role is Role.GENERATE))
        rows = [(f"{title} {plan.kind.value}", cells)]
    return contact_sheet(rows, path)


def _preview_frames(job: ResolvedJob, working, result, masks, before, progress: Progress) -> list[dict]:
    """A small PNG of every position of the window, in ``<out>/preview/``, and their entries.

    Known frames are named by where they come from (``NAME.k_a_1039.png``), generated frames
    by their output frame (``NAME.1041.png``); a filled frame has the plate before
    (``NAME.1005.before.png``) and the result after (``NAME.1005.after.png``). Pictures are
    display-referred (the working encoding clipped to [0, 1]), 8-bit, the long side at most
    :data:`PREVIEW_MAX_SIDE`. ``before(position)`` is a filled frame's plate, working encoding.
    """
    from .contact import write_png

    folder = job.out_dir / "preview"
    folder.mkdir(exist_ok=True)
    scale = min(1.0, PREVIEW_MAX_SIDE / max(job.width, job.height))
    size = (max(1, round(job.width * scale)), max(1, round(job.height * scale)))

    def save(pixels: np.ndarray, stem: str) -> str:
        return str(write_png(folder / f"{job.name}.{stem}.png", _preview_pixels(pixels, size)))

    entries = []
    for pos, pf in enumerate(job.plan.frames):
        if pf.role is Role.KNOWN:
            label = f"{pf.source} {pf.source_frame}"
            after = save(working[pos], f"k_{pf.source}_{job.frame_number(pf.source_frame)}")
            plate = None
        elif pf.role is Role.GENERATE:
            label = f"G {pf.output_frame}"
            after = save(result[pos], job.frame_number(pf.output_frame))
            plate = None
        else:
            label = str(pf.source_frame)
            stem = job.frame_number(pf.output_frame)
            original = before(pos)
            m = masks[pos][..., None]
            plate = save(original, f"{stem}.before")
            after = save(original + m * (result[pos] - original), f"{stem}.after")
        entries.append({"position": pos, "role": pf.role.value, "label": label, "after": after,
                        "before": plate})
        progress.update((pos + 1) / len(job.plan))
    return entries


def _preview_pixels(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Working-encoding pixels as an 8-bit picture of ``size`` (width, height)."""
    import cv2

    shown = np.clip(pixels, 0.0, 1.0)
    if shown.shape[1::-1] != size:
        shown = cv2.resize(shown, size, interpolation=cv2.INTER_AREA)
    return np.round(shown * 255.0).astype(np.uint8)


def _previous_result(job: ResolvedJob) -> dict:
    """The result file an earlier run of this same job left, or {}."""
    path = job.out_dir / f"{job.name}.result.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if data.get("job_id") == job.spec.id else {}


def _write_result_file(job: ResolvedJob, res: JobResult) -> Path:
    path = job.out_dir / f"{job.name}.result.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(res.to_dict(), indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path
