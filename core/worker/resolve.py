"""Resolving a job: its spec (and edit target) -> sources, frame plan, colour spaces, output folder.

:func:`resolve` opens the sources and picks the frames; a job on an edit target reads the edit,
finds the target and places the frames on the timeline's clock. Bad input raises
:class:`~shotfill.errors.InputError` (or :class:`~shotfill.errors.MediaError`) before any engine runs.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..engines import Engine, get_engine
from ..errors import InputError, MediaError
from ..job import JobSpec
from ..plan import FramePlan, TaskKind


#: first frame number of sequences generated for an edit target (film convention)
EDIT_FIRST_FRAME = 1001


#: folder names that say nothing about the shot: the parent folder names it instead
GENERIC_FOLDERS = {"frames", "images", "plates", "plate", "img", "jpg", "png", "exr", "tif", "tiff"}


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


def resolve(spec: JobSpec, *, engine: Engine | None = None) -> ResolvedJob:
    """Open the sources, pick the frames, build the plan. Raises InputError on bad input."""
    from ..io import media

    spec.validate()                    # a spec built in code gets the checks a job file gets
    engine = engine or get_engine(spec.engine, **spec.engine_options)
    warnings: list[str] = []
    if spec.prompt and not engine.uses_prompt:
        warnings.append(f"engine '{engine.name}' has no text conditioning: the prompt is ignored")
    context = spec.context if spec.context is not None else engine.context_frames
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

    from ..io import media
    from .. import timeline as tl

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
    from ..io import colour

    engine.check_plan(plan)
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
