"""Running a job: job spec in, EXR frames (and a new edit) out.

One fixed order, whatever the front door::

    resolve   job spec (+ edit target) -> sources, frame plan, colour spaces; the output
              name locked until the job ends (another job running there: refused,
              lock.py) and claimed (another job's frames there: refused, replaced or a
              new version, existing.py); then the engine is built and checks the plan
    read      known frames and masks -> working encoding (display-referred); the
              output windows too: nothing of the sources is read after this stage
    generate  engine.generate(plan, frames, masks, ...)
    seam      colour-anchor generated frames to the plate; seam scores
    trust     per written frame, the engine's mean confidence over its new pixels and
              its method (trust.py); a dissolve or a long run of low trust is a warning
    write     EXR per generated frame, atomic, provenance, trust and method in the
              header; frames already written by the same job are kept (resume), with
              the trust their header gives; with ``if_exists`` "overwrite", the other
              job's files of the name are removed first
    timeline  the generated sequence placed on a new edit next to the input
    preview   a contact sheet around each seam, and a small picture of every
              frame of the window (``preview/``) for the panel to scrub

Known pixels are never regenerated: where the mask is 0 the output is the
source pixel itself (bit-exact when source and output colour spaces agree).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..engines import Engine, EngineResult, check_cancel
from ..errors import ShotfillError
from ..events import (EventSink, FrameEvent, ListSink, PreviewEvent, PreviewFramesEvent, Progress, ResultEvent,
                      StageEvent, WarningEvent)
from ..job import JobSpec
from ..plan import Role
from ..timeline.publishing import publish
from .output import (crop_to_window, job_frame_attributes, output_windows, placement_dict, previous_result,
                     provenance, remove_stale_temporaries, write_result_file)
from .preview import write_contact_sheet, write_preview_frames
from .existing import remove_replaced
from .resolve import ResolvedJob, resolve
from .trust import (FrameTrust, ProtocolError, dissolve_reason, frame_trust, from_attributes, header_attributes,
                    trust_warnings)


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
    #: per written frame, in order: ``{"frame", "trust", "method"}`` (:class:`~shotfill.worker.trust.FrameTrust`):
    #: the engine's mean confidence over the frame's new pixels (None when it gives none) and what it did
    frame_trust: list = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def trust_entries(self) -> list[FrameTrust]:
        """:attr:`frame_trust` as typed entries."""
        return [FrameTrust.from_dict(e) for e in self.frame_trust]


def run_job(spec: JobSpec, sink: EventSink | None = None, *, cancel: Optional[Callable[[], bool]] = None,
            engine: Engine | None = None) -> JobResult:
    """Run one job end to end. Raises ShotfillError subclasses on bad input or cancel."""
    sink = sink or ListSink()
    progress = Progress(sink)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    progress.begin("prepare", f"job {spec.id}")
    job = resolve(spec, engine=engine, lock=True)    # the output name locked until this job ends (lock.py)
    try:
        return _run_resolved(job, sink, progress, cancel, timings, t0)
    finally:
        job.lock.release()


def _run_resolved(job: ResolvedJob, sink: EventSink, progress: Progress, cancel, timings: dict,
                  t0: float) -> JobResult:
    """:func:`run_job` once the job is resolved and its output name locked."""
    from ..io import colour
    from ..io.exr import write_exr

    spec = job.spec
    for w in job.warnings:
        sink.emit(WarningEvent(w))
    timings["prepare"] = time.monotonic() - t0

    plan = job.plan
    written_positions = plan.written_positions
    out_frames = plan.output_frames
    job.out_dir.mkdir(parents=True, exist_ok=True)

    remove_stale_temporaries(job)
    # resume: frames whose header says they belong to this job are kept, with what their header says
    done = {}
    for f in out_frames:
        attributes = job_frame_attributes(job.frame_path(f), spec.id)
        if attributes is not None:
            done[f] = attributes
    todo = [p for p in written_positions if plan.frames[p].output_frame not in done]

    transforms = {k: colour.ColourTransform(job.source_spaces[k], job.output_space) for k in job.sources}
    working = masks = originals = None
    windows: dict = {}
    peak = 1.0
    seam_scores: dict[str, float] = {}
    previous = previous_result(job) if done else {}
    trust: list[FrameTrust] = []
    dissolve_reasons: list[str] = []    # the engine's own words for a dissolve it fell back to
    if todo:
        t = time.monotonic()
        progress.begin("read", f"{len(plan)} frames ({plan.summary()})")
        windows = output_windows(job)   # read with the frames: nothing of the sources is read after this stage
        working, masks, originals, peak = _read_window(job, transforms, progress, cancel)
        timings["read"] = time.monotonic() - t

        t = time.monotonic()
        progress.begin("generate", f"engine {job.engine.name}")
        generated = job.engine.generate(plan, working, masks, prompt=spec.prompt or None, seed=spec.seed,
                                        frame_rate=float(job.rate) if job.rate else None,
                                        progress=progress.callback(), cancel=cancel)
        if not isinstance(generated, EngineResult):
            raise ShotfillError(f"engine '{job.engine.name}' returned a {type(generated).__name__}, "
                                "not an EngineResult")
        result = np.asarray(generated.frames, dtype=np.float32)
        # what the engine had to change to run the plan (frames rounded to the model's count...)
        for w in generated.warnings:
            if dissolve_reason(w) is not None:     # said once, with the frames, by trust_warnings below
                dissolve_reasons.append(dissolve_reason(w))
                continue
            job.warnings.append(w)
            sink.emit(WarningEvent(w))
        if result.shape != working.shape:
            raise ShotfillError(f"engine '{job.engine.name}' returned shape {result.shape}, expected {working.shape}")
        trust = frame_trust(plan, masks, generated, job.engine.name)
        timings["generate"] = time.monotonic() - t
        for stage, seconds in generated.info.get("timings", {}).items():
            timings[f"generate.{stage}"] = seconds  # the engine's own breakdown (dit: encode, denoise...)
        del generated                # its confidence (a plate-size array per frame) is in ``trust`` now

        t = time.monotonic()
        progress.begin("seam", "colour anchor and seam scores")
        from ..io.matching import anchor_to_plate
        from ..quality.seam import seam_scores as score_seams
        # anchored in place (no second copy of the run), unless the engine handed back the plate itself
        result = anchor_to_plate(plan, working, result, masks, in_place=not np.may_share_memory(result, working))
        seam_scores = score_seams(plan, working, result)
        timings["seam"] = time.monotonic() - t
    else:
        sink.emit(StageEvent("write", "every frame is already written by this job"))
        seam_scores = previous.get("seam_scores", {})
    trust = _kept_trust(out_frames, trust, done, previous)
    for w in trust_warnings(plan.kind, trust, dissolve_reasons):
        job.warnings.append(w)
        sink.emit(WarningEvent(w))

    t = time.monotonic()
    progress.begin("write", f"{len(written_positions)} frames to {job.pattern}")
    check_cancel(cancel)
    remove_replaced(job.replaces)        # --overwrite: the other job's files go only once this job's are made
    written, skipped = [], []
    attrs = provenance(job)
    for i, (pos, entry) in enumerate(zip(written_positions, trust)):
        check_cancel(cancel)
        frame = plan.frames[pos].output_frame
        path = job.frame_path(frame)
        if frame in done:
            skipped.append(frame)
            sink.emit(FrameEvent(frame, str(path), True))
        else:
            pixels = _output_pixels(transforms, pos, result, masks, originals, peak)
            data, display = windows[pos]
            write_exr(path, crop_to_window(pixels, windows[pos]), compression=spec.output.compression,
                      data_window=data, display_window=display,
                      attributes={**attrs, "shotfill.frame": int(frame), **header_attributes(entry)})
            written.append(frame)
            sink.emit(FrameEvent(frame, str(path), False))
        progress.update((i + 1) / len(written_positions))
    timings["write"] = time.monotonic() - t

    res = JobResult(job_id=spec.id, task=plan.kind.value, engine=job.engine.name,
                    output_pattern=job.pattern, frames=out_frames, written=written, skipped=skipped,
                    seam_scores=seam_scores, timings=timings, warnings=list(job.warnings),
                    target=job.target.id if job.target is not None else None,
                    edit=spec.edit.path if spec.edit is not None else None,
                    frame_trust=[e.to_dict() for e in trust])

    if job.target is not None:
        res.placement = placement_dict(job)
        if spec.edit.write_timeline:
            t = time.monotonic()
            progress.begin("timeline", "placing the result on a new version of the edit")
            edit_warnings: list[str] = []       # what the new edit's formats cannot carry
            res.new_edit = str(publish(spec.edit.path, [res.to_dict()], mode=spec.edit.write_mode,
                                       rate=spec.edit.rate, export_format=spec.edit.export,
                                       warnings=edit_warnings, timeline=spec.edit.timeline,
                                       search_paths=spec.edit.search_paths))
            for w in edit_warnings:
                res.warnings.append(w)
                sink.emit(WarningEvent(w))
            timings["timeline"] = time.monotonic() - t

    sheet = job.out_dir / f"{job.name}.contact.png"
    if spec.output.preview and working is not None:
        t = time.monotonic()
        progress.begin("preview", "contact sheet and a picture of each frame around the seam")

        def before(position: int) -> np.ndarray:
            return transforms["a"].to_working(originals[position])

        res.contact_sheet = str(write_contact_sheet(job, working, result, masks, before, sheet))
        sink.emit(PreviewEvent(res.contact_sheet))
        res.preview_frames = write_preview_frames(job, working, result, masks, before, progress)
        sink.emit(PreviewFramesEvent.from_entries(res.preview_frames))
        timings["preview"] = time.monotonic() - t
    elif spec.output.preview:                         # resumed with nothing left to do
        if sheet.exists():
            res.contact_sheet = str(sheet)
            sink.emit(PreviewEvent(res.contact_sheet))
        earlier = previous.get("preview_frames") or []
        if earlier and all(Path(p).is_file() for f in earlier for p in (f["after"], f["before"]) if p):
            res.preview_frames = earlier
            sink.emit(PreviewFramesEvent.from_entries(res.preview_frames))

    timings["total"] = time.monotonic() - t0
    res.timings = {k: round(v, 3) for k, v in timings.items()}
    write_result_file(job, res.to_dict())
    progress.finish()
    sink.emit(ResultEvent(res.to_dict()))
    return res


def _kept_trust(frames: list, fresh: list, done: dict, previous: dict) -> list:
    """Each written frame's trust: this run's for the frames it writes; for the frames an earlier run
    wrote, what that run put in the frame's header, else in its result file (None: neither says)."""
    fresh = {e.frame: e for e in fresh}
    earlier = {}
    for d in previous.get("frame_trust") or []:
        try:
            entry = FrameTrust.from_dict(d)
        except ProtocolError:
            continue                                  # an entry this run cannot read: as if absent
        earlier[entry.frame] = entry
    entries = []
    for f in frames:
        if f in done:
            entries.append(from_attributes(f, done[f]) or earlier.get(f) or FrameTrust(f))
        else:
            entries.append(fresh[f])
    return entries


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
