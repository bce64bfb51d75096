"""Resolving a job: its spec (and edit target) -> sources, frame plan, colour spaces, output folder, engine.

:func:`resolve` opens the sources and picks the frames; a job on an edit target reads the edit,
finds the target and places the frames on the timeline's clock. Then (for the worker) it locks the
output name against another job running at once (:mod:`.lock`), claims it (another job's frames
there are refused, replaced or versioned, a symbolic link refused: :mod:`.existing`), and only then
builds the engine (torch, diffusers: seconds), whose own checks of the plan come last. Bad input
raises :class:`~shotfill.errors.InputError` (or :class:`~shotfill.errors.MediaError`) before any
engine loads.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..engines import Engine, declared_context, get_engine
from ..errors import InputError, MediaError, ShotfillError
from ..job import JobSpec
from ..plan import FramePlan, TaskKind
from .existing import check_out_folder, claim_output
from .lock import OutputLock, lock_output


#: first frame number of sequences generated for an edit target (film convention), unless the job's
#: ``output.start_frame`` says otherwise: the one rule, for bridges and extensions alike (see
#: :func:`edit_first_frame`)
EDIT_FIRST_FRAME = 1001


#: folder names that say nothing about the shot: the parent folder names it instead
GENERIC_FOLDERS = {"frames", "images", "plates", "plate", "img", "jpg", "png", "exr", "tif", "tiff"}


@dataclasses.dataclass
class ResolvedJob:
    """Everything a job needs once its spec (and edit target) is resolved."""

    spec: JobSpec
    engine: Engine | None    # None only inside resolve(), until the sources and output are checked
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
    handles: tuple = (0, 0)              # edit targets: real handle frames placed before/after the generated ones
    #: another job's files under this job's name, removed just before this job writes (``if_exists``
    #: "overwrite"; see :mod:`shotfill.worker.existing`)
    replaces: list = dataclasses.field(default_factory=list)
    #: the output name's lock (``resolve(..., lock=True)``, :mod:`.lock`): released when the job ends
    lock: OutputLock | None = None

    @property
    def kind(self) -> TaskKind:
        return self.plan.kind

    def frame_number(self, frame: int) -> str:
        """``frame`` as output file names spell it, zero-padded. Never negative: :func:`resolve`
        refuses a plan that would write one."""
        if frame < 0:
            raise ShotfillError(f"frame {frame}: output frame numbers are never negative")
        return f"{frame:0{self.spec.output.padding}d}"

    def frame_path(self, frame: int) -> Path:
        return self.out_dir / f"{self.name}.{self.frame_number(frame)}.exr"

    @property
    def pattern(self) -> str:
        return str(self.out_dir / f"{self.name}.{'#' * self.spec.output.padding}.exr")


def resolve(spec: JobSpec, *, engine: Engine | None = None, lock: bool = False) -> ResolvedJob:
    """Open the sources, pick the frames, build the plan, claim the output name, then build the
    engine (``engine``: one already built) and let it check the plan. Raises InputError on bad
    input; everything but the engine's own checks fails before the engine is imported.

    With ``lock``, the output name is locked (:func:`~shotfill.worker.lock.lock_output`) before it
    is claimed, and stays locked on the returned job (``job.lock``) until the caller releases it;
    on any failure here it is released before the error goes up. The worker locks; a look at a job
    (farm validate, export) does not."""
    spec.validate()                    # a spec built in code gets the checks a job file gets
    if spec.context is not None:
        context = spec.context
    else:                              # the registry's declaration: the engine is not imported yet
        context = engine.context_frames if engine is not None else declared_context(spec.engine)
    warnings: list[str] = []
    if spec.edit is not None:
        job = _resolve_edit_target(spec, context, warnings, lock)
    else:
        job = _resolve_media(spec, context, warnings, lock)
    try:
        _build_engine(job, spec, engine, context)
    except BaseException:
        if job.lock is not None:
            job.lock.release()
        raise
    return job


def _build_engine(job: ResolvedJob, spec: JobSpec, engine: Engine | None, context: int) -> None:
    job.engine = engine or get_engine(spec.engine, **spec.engine_options)
    if spec.context is None and job.engine.context_frames != context:
        raise ShotfillError(f"engine '{job.engine.name}' wants {job.engine.context_frames} context frames but "
                            f"the registry declares {context} (shotfill.engines.CONTEXT_FRAMES)")
    if spec.prompt and not job.engine.uses_prompt:
        job.warnings.insert(0, f"engine '{job.engine.name}' has no text conditioning: the prompt is ignored")
    job.engine.check_plan(job.plan)


def _resolve_media(spec: JobSpec, context: int, warnings: list, lock: bool) -> ResolvedJob:
    """A job on media (sequences, movies): its sources, mask and plan, numbered from
    ``output.start_frame`` when given, else continuing the source's numbers."""
    from ..io import media

    kind = spec.task
    first = spec.output.start_frame
    a = media.open_source(spec.source.path, frame_range=spec.source.frame_range)
    sources = {"a": a}
    mask_source = None
    if kind in (TaskKind.EXTEND_FORWARD, TaskKind.EXTEND_BACKWARD):
        backward = kind is TaskKind.EXTEND_BACKWARD
        if backward and first is None and a.frames[0] - spec.frames < 0:
            raise InputError(
                f"{spec.source.path}: {spec.frames} frames before its first frame ({a.frames[0]}) would be "
                f"numbered from {a.frames[0] - spec.frames}, and frame numbers are never negative: pass "
                "--start-frame N (e.g. 1001) to number the new frames from N (in a job file: "
                "output.start_frame)")
        plan = FramePlan.extend(_span(a), spec.frames, backward=backward, context=context,
                                first_output_frame=first)
    elif kind is TaskKind.BRIDGE:
        b = media.open_source(spec.source_b.path, frame_range=spec.source_b.frame_range)
        sources["b"] = b
        plan = FramePlan.bridge(_span(a), _span(b), spec.frames, context=context, first_output_frame=first)
    else:
        mask_source = media.open_source(spec.mask.path, frame_range=spec.mask.frame_range)
        have = set(mask_source.frames)
        missing = [] if mask_source.still else [f for f in _span(a) if f not in have]
        if missing:
            raise InputError(f"mask {spec.mask.path}: no mask for frame {missing[0]} of {spec.source.path}"
                             f" (mask frames {mask_source.frames[0]}-{mask_source.frames[-1]})")
        plan = FramePlan.fill(_span(a), first_output_frame=first)
    return _finish(spec, plan, sources, mask_source, warnings,
                   name=spec.output.name or _default_name(spec.source.path, kind),
                   rate=float(a.rate) if a.rate else None, lock=lock)


def _resolve_edit_target(spec: JobSpec, context: int, warnings: list, lock: bool) -> ResolvedJob:
    """A job on an edit target: its clips' media (handles included) as sources, the frames the
    handles leave to generate, numbered by :func:`edit_first_frame`, and where they go.

    Handles are real frames, used before anything is generated:

    - an extension by ``--frames N`` takes the ``h`` handle frames on its side first and
      generates the ``N - h`` beyond them (N <= h is refused: trim the clip instead);
    - a bridge takes ``from_a`` frames of A's tail handles and ``from_b`` of B's head handles
      (:func:`shotfill.timeline.bridge_handles`) and generates only the rest of the gap; a
      gap the handles cover is refused (trim the clips out over it instead).

    The handle counts go on the job (``ResolvedJob.handles``: before and after the generated
    frames) and so into the placement, which puts them on the edit with the generated frames.
    """
    import opentimelineio as otio

    from .. import timeline as tl
    from ..io import media

    edit = spec.edit
    timeline = tl.load_edit(edit.path, rate=edit.rate, timeline=edit.timeline, search_paths=edit.search_paths)
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

    frames_at = lambda n: otio.opentime.RationalTime(n, target.rate)  # noqa: E731
    first_frame = edit_first_frame(spec)
    kind = target.kind
    mask_source = None
    sources = {}
    handles = (0, 0)
    if kind is TaskKind.BRIDGE:
        a, b = target.clip_a, target.clip_b
        from_a, from_b = tl.bridge_handles(target.frames, a.handles_after, b.handles_before)
        to_generate = target.frames - from_a - from_b
        if to_generate < 1:
            raise InputError(
                f"target '{target.id}': the handles cover the gap: {from_a} frames of '{a.clip_name}' after its "
                f"out point and {from_b} of '{b.clip_name}' before its in point fill all {target.frames} frames, "
                f"so there is nothing to generate; trim the clips out over the gap in the edit instead "
                f"(move '{a.clip_name}''s out point {from_a} frames later and '{b.clip_name}''s in point "
                f"{from_b} frames earlier)")
        if spec.frames and spec.frames != to_generate:
            if from_a or from_b:
                raise InputError(
                    f"target '{target.id}': the gap is {target.frames} frames; {from_a + from_b} come from the "
                    f"clips' handles and {to_generate} are left to generate, so --frames {spec.frames} does "
                    "not fit it: leave --frames out")
            if edit.write_mode == "replace":
                raise InputError(f"target '{target.id}': the gap is {target.frames} frames; "
                                 f"--frames {spec.frames} cannot replace it (use track mode)")
            warnings.append(f"the gap is {target.frames} frames but {spec.frames} were asked for")
            to_generate = spec.frames
        if from_a or from_b:
            warnings.append(f"{from_a} handle frames of '{a.clip_name}' and {from_b} of '{b.clip_name}' are "
                            f"real frames of the gap; generating the {to_generate} between them")
        sources["a"] = open_clip(a, a.source_first, a.source_last + from_a, "the clip before the gap")
        sources["b"] = open_clip(b, b.source_first - from_b, b.source_last, "the clip after the gap")
        plan = FramePlan.bridge(_span(sources["a"]), _span(sources["b"]), to_generate, context=context,
                                first_output_frame=first_frame)
        record_start = target.record_range.start_time + frames_at(from_a)
        handles = (from_a, from_b)
    elif kind in (TaskKind.EXTEND_FORWARD, TaskKind.EXTEND_BACKWARD):
        clip = target.clip_a
        if spec.frames is None:
            raise InputError(f"target '{target.id}': say how many frames to extend by (--frames N)")
        forward = kind is TaskKind.EXTEND_FORWARD
        first = clip.available_first if clip.available_first is not None else clip.source_first
        last = clip.available_last if clip.available_last is not None else clip.source_last
        available = max((clip.handles_after if forward else clip.handles_before) or 0, 0)
        to_generate = spec.frames - available
        if to_generate < 1:
            raise InputError(
                f"target '{target.id}': the media already holds {available} real frames "
                f"{'after the out' if forward else 'before the in'} point, enough for {spec.frames}: "
                "trim the clip instead, or ask for more frames than the handles")
        if available:
            warnings.append(f"{available} handle frames exist in the media; they are placed on the edit "
                            f"and the {to_generate} frames beyond them are generated")
        sources["a"] = open_clip(clip, first, last, "the clip")
        plan = FramePlan.extend(_span(sources["a"]), to_generate, backward=not forward, context=context,
                                first_output_frame=first_frame)
        if forward:
            record_start = target.record_range.end_time_exclusive() + frames_at(available)
            handles = (available, 0)
        else:
            record_start = target.record_range.start_time - frames_at(available + to_generate)
            handles = (0, available)
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

    job = _finish(spec, plan, sources, mask_source, warnings,
                  name=spec.output.name or _safe_name(f"{Path(edit.path).stem}_{target.id}"),
                  rate=target.rate, timeline=timeline, target=target, record_start=record_start, lock=lock)
    job.handles = handles
    return job


def edit_first_frame(spec: JobSpec) -> int:
    """The first frame number of a sequence generated for an edit target: ``spec.output.start_frame``
    when given, else :data:`EDIT_FIRST_FRAME` (1001), for every kind of target. (A fill keeps its
    clip's own numbers: it rewrites frames that exist.)"""
    return spec.output.start_frame if spec.output.start_frame is not None else EDIT_FIRST_FRAME


def _finish(spec, plan, sources, mask_source, warnings, *, name, rate, timeline=None,
            target=None, record_start=None, lock=False) -> ResolvedJob:
    """Colour spaces, sizes and output folder (locked with ``lock``, then claimed): the parts every
    kind of job shares. The engine is built after (``engine`` is None here unless one was given)."""
    from ..io import colour

    frames = plan.output_frames
    if frames and min(frames) < 0:
        raise InputError(f"the new frames would be numbered from {min(frames)}, and frame numbers are never "
                         "negative: pass --start-frame N (e.g. 1001) to number them from N (in a job file: "
                         "output.start_frame)")
    a = sources["a"]
    spaces = {}
    for key, src in sources.items():
        if spec.edit is not None:      # an edit target's media: one colour space for all its clips
            given = spec.edit.colourspace
        else:
            given = {"a": spec.source, "b": spec.source_b}[key].colourspace
        spaces[key] = colour.canonical_space(given or src.default_colourspace)
    if spec.output.colourspace:
        output_space = colour.canonical_space(spec.output.colourspace)
    else:
        output_space = spaces["a"] if a.kind == "exr" else colour.canonical_space("lin_rec709")
    if "b" in sources and (sources["b"].width, sources["b"].height) != (a.width, a.height):
        warnings.append(f"shot B is {sources['b'].width}x{sources['b'].height}, shot A "
                        f"{a.width}x{a.height}: B is resized to A's size for the bridge")
    out_dir = Path(spec.output.dir).expanduser().resolve()
    held = None
    if lock:         # before the claim: two jobs starting at once cannot both find the name free
        check_out_folder(out_dir, "the output folder (--out, output.dir)")
        held = lock_output(out_dir, name, spec.id, engine=spec.engine, seed=spec.seed)
    try:
        claim = claim_output(out_dir, name, spec.id, frames, if_exists=spec.output.if_exists,
                             padding=spec.output.padding, about=f"engine '{spec.engine}', seed {spec.seed}")
    except BaseException:
        if held is not None:
            held.release()
        raise
    warnings.extend(claim.warnings)
    return ResolvedJob(spec=spec, engine=None, plan=plan, sources=sources, mask_source=mask_source,
                       source_spaces=spaces, output_space=output_space, out_dir=out_dir, name=claim.name,
                       width=a.width, height=a.height, timeline=timeline, target=target,
                       record_start=record_start, rate=rate, warnings=warnings, replaces=claim.replaces,
                       lock=held)


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
    """A derived output name: letters, digits, ``-`` and ``_``; an absurdly long one keeps its start and
    its end (the task suffix) within :data:`~shotfill.job.MAX_NAME_LENGTH` bytes, so its frames' file names fit."""
    from ..job import MAX_NAME_LENGTH

    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in text).strip("_") or "shotfill"
    head, tail = name, ""
    while len(f"{head}{tail}".encode()) > MAX_NAME_LENGTH:   # file systems count bytes
        head, tail = head[:-1], "_" + name[-40:]
    return head + tail
