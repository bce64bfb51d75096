"""The panel's model: everything the widgets show, changed only by events.

:class:`PanelState` holds the loaded targets, the selected one, the settings,
the running job's per-stage progress, the takes and the log. Widgets read it
and redraw when it signals; they never change it directly. Changes come from
the user's actions (through the panel) and from the worker's events
(:meth:`PanelState.apply_event`).

Settings are plain JSON, layered: built-in defaults, then a studio file named
by ``SHOTFILL_STUDIO_DEFAULTS``, then the user's own file (``panel.json`` in
the user's config folder, :func:`default_settings_path`), which the panel
rewrites on every change. A value that does not fit is reported in the log
and skipped, never guessed.
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import re
import time
from pathlib import Path

from .client import Event, JobFinished, JobStatus
from .protocol import (STAGE_WEIGHTS, STAGES, ErrorEvent, FrameEvent, FrameTrust, OutputLine, PreviewEvent,
                       PreviewFrame, PreviewFramesEvent, ProgressEvent, ResultEvent, StageEvent, WarningEvent,
                       trust_summary)
from .hosts.base import Generated, Media
from .qt import QtCore, Signal

STUDIO_DEFAULTS_ENV = "SHOTFILL_STUDIO_DEFAULTS"
#: EXR compressions the worker writes (``shotfill.job.COMPRESSIONS``)
COMPRESSIONS = ("zip", "zips", "piz", "dwaa", "dwab", "none", "rle", "pxr24", "b44")
WRITE_MODES = ("track", "replace")
#: output colour spaces offered ("" keeps the source's own); others can be typed
COLOURSPACES = ("", "lin_rec709", "acescg", "aces2065-1", "lin_p3d65", "lin_rec2020")
MAX_TAKES = 8
#: the largest seed a job takes (``shotfill.job.MAX_SEED``: EXR headers keep it as a 32-bit int)
MAX_SEED = 2**31 - 1


class Operation(enum.Enum):
    """What a target asks for (the worker's task kinds)."""

    BRIDGE = "bridge"
    EXTEND_FORWARD = "extend_forward"
    EXTEND_BACKWARD = "extend_backward"
    FILL = "fill"

    @property
    def label(self) -> str:
        return {"bridge": "Bridge", "extend_forward": "Extend tail", "extend_backward": "Extend head",
                "fill": "Fill"}[self.value]

    @property
    def user_sets_length(self) -> bool:
        """Extensions: the user says how many frames to add."""
        return self in (Operation.EXTEND_FORWARD, Operation.EXTEND_BACKWARD)


class Status(enum.Enum):
    EMPTY = "empty"       # nothing loaded
    LOADED = "loaded"     # targets shown, nothing run yet
    RUNNING = "running"
    DONE = "done"         # the last job finished, or a take was applied
    CANCELLED = "cancelled"
    ERROR = "error"       # the last load, job or apply failed


# ---------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Target:
    """One thing to generate: from ``shotfill plan --json`` (an edit) or from host media.

    Record frames are in the edit's track time at ``rate`` (0 = the timeline's
    first frame); for host media they are the plate's own frame numbers.
    """

    id: str
    operation: Operation
    track_name: str
    track_index: int
    rate: float | None
    record_first: int
    record_last: int
    frames: int | None                  # None: an extension, the user sets the length
    ready: bool = True                  # the media is on disk
    record_first_tc: str | None = None
    record_last_tc: str | None = None
    clip_a: dict | None = None
    clip_b: dict | None = None
    mask: dict | None = None
    edit: str | None = None             # edit targets: the edit's path
    media: Media | None = None          # host media targets: the plate
    mask_media: Media | None = None     # host media fills: the mask sequence (1 = generate)
    handle_frames: dict | None = None   # bridge {"a": n, "b": m}; extension {"available": n} (plan --json)
    generated_frames: int | None = None  # a bridge's or fill's frames left to generate; None: the user's length

    @classmethod
    def from_plan(cls, d: dict, edit: str) -> "Target":
        """One entry of ``shotfill plan EDIT --json``."""
        try:
            return cls(id=str(d["id"]), operation=Operation(d["kind"]), track_name=str(d["track_name"]),
                       track_index=int(d["track_index"]), rate=float(d["rate"]),
                       record_first=int(d["record_first"]), record_last=int(d["record_last"]),
                       frames=None if d.get("frames") is None else int(d["frames"]),
                       ready=bool(d.get("ready", True)), record_first_tc=d.get("record_first_tc"),
                       record_last_tc=d.get("record_last_tc"), clip_a=d.get("clip_a"),
                       clip_b=d.get("clip_b"), mask=d.get("mask"), edit=edit,
                       handle_frames=_handle_frames(d.get("handle_frames")),
                       generated_frames=None if d.get("generated_frames") is None else int(d["generated_frames"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"`shotfill plan` gave a target the panel cannot read ({e}): {d!r}") from None

    @property
    def clips(self) -> str:
        """The clips involved, as an editor reads them: ``shotA -> shotB``."""
        if self.media is not None:
            return self.media.name + (f"  (mask: {self.mask_media.name})" if self.mask_media else "")
        names = [c["clip_name"] for c in (self.clip_a, self.clip_b) if c]
        text = " -> ".join(names)
        if self.mask:
            text += f"  (mask: {Path(self.mask['path']).name})"
        return text

    def offline_clips(self) -> list[str]:
        """The clips (and masks) whose media the plan found missing, by name."""
        names = []
        for role, media in (("", self.clip_a), ("", self.clip_b), ("mask of ", self.mask)):
            if media and media.get("exists") is False:
                names.append(role + str(media.get("clip_name") or media.get("path")))
        return names or ([self.media.name] if self.media is not None and not self.ready else [])

    def handles_available(self) -> int | None:
        """An extension's handle frames on its side (None: the plan does not say)."""
        return (self.handle_frames or {}).get("available") if self.operation.user_sets_length else None

    def frame_split(self, settings: "Settings") -> tuple[int | None, int | None]:
        """``(from handles, generated)``: of the frames a take places, how many are the clips'
        real handle frames and how many are generated (None where the plan does not say).

        An extension of N takes its ``h`` handles first and generates ``N - h``; a bridge takes
        A's and B's handles and generates the rest; a fill generates its whole clip.
        """
        if self.operation is Operation.FILL:
            return 0, self.length(settings)
        if self.handle_frames is None:
            return None, None if self.operation.user_sets_length else self.generated_frames
        if self.operation is Operation.BRIDGE:
            handles = self.handle_frames.get("a", 0) + self.handle_frames.get("b", 0)
            return handles, self.generated_frames
        used = min(settings.frames, self.handles_available() or 0)
        return used, settings.frames - used

    def handles_text(self, settings: "Settings") -> str:
        """The "From handles" cell: ``8 + 8`` for a bridge (A's tail, B's head), ``8`` for an extension."""
        handles, _ = self.frame_split(settings)
        if handles is None:
            return ""
        if self.operation is Operation.BRIDGE:
            return f"{self.handle_frames.get('a', 0)} + {self.handle_frames.get('b', 0)}"
        return str(handles)

    def record_range_text(self) -> str:
        if self.record_first_tc and self.record_last_tc:
            return f"{self.record_first_tc} - {self.record_last_tc}"
        return f"{self.record_first} - {self.record_last}"

    def length(self, settings: "Settings") -> int:
        """Frames a take of this target makes."""
        return settings.frames if self.operation.user_sets_length else int(self.frames or 0)

    def job_fields(self, settings: "Settings") -> dict:
        """The part of a job that names what to do (edit target, or task and sources)."""
        if self.edit is not None:
            d: dict = {"edit": {"path": self.edit, "target": self.id, "write_mode": settings.write_mode,
                                "write_timeline": False}}
            if settings.search_paths:     # where the plan relinked offline media from: the job does too
                d["edit"]["search_paths"] = list(settings.search_paths)
        else:
            d = {"task": self.operation.value, "source": self.media.source_spec()}
            if self.mask_media is not None:
                d["mask"] = self.mask_media.source_spec()
        if self.operation.user_sets_length:
            d["frames"] = settings.frames
        return d


def _handle_frames(value) -> dict | None:
    """The plan's ``handle_frames``: a mapping of whole numbers, or None."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, int) and not isinstance(v, bool)
                                              for v in value.values()):
        raise ValueError(f"handle_frames must map names to whole numbers, got {value!r}")
    return dict(value)


# ---------------------------------------------------------------------------
# the edit's tracks, as the timeline strip draws them
# ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TrackItem:
    """One clip, gap or transition of a track (``shotfill plan --json``'s ``tracks``)."""

    kind: str                         # "clip", "gap", "transition", or another schema's name
    name: str
    record_first: int                 # inclusive frames in track time, as targets give them
    record_last: int
    media: str | None = None          # clips: "online", "offline" or "none" (no media at all)
    target_id: str | None = None      # a clip shotfill placed: the target it belongs to

    @property
    def offline(self) -> bool:
        return self.kind == "clip" and self.media != "online"


@dataclasses.dataclass(frozen=True)
class EditTrack:
    """A video track of the edit and everything on it, for the timeline strip."""

    index: int                        # in the timeline's tracks (audio too), as targets count it
    name: str
    label: str | None                 # "V1"...: the label target ids use; None for a result track
    results: bool                     # one of shotfill's result tracks
    target_id: str | None             # a result track: the target its clips were made for
    items: tuple[TrackItem, ...]

    @classmethod
    def from_plan(cls, d: dict) -> "EditTrack":
        try:
            items = tuple(TrackItem(kind=str(i["kind"]), name=str(i.get("name") or ""),
                                    record_first=int(i["record_first"]), record_last=int(i["record_last"]),
                                    media=i.get("media"), target_id=i.get("target_id")) for i in d["items"])
            return cls(index=int(d["index"]), name=str(d.get("name") or ""), label=d.get("label"),
                       results=bool(d.get("results")), target_id=d.get("target_id"), items=items)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"`shotfill plan` gave a track the panel cannot read ({e}): {d!r}") from None

    @property
    def title(self) -> str:
        """What the strip calls the track: a result track after its target (``V1.gap1 result``),
        another by its label and its name (``V1 · Main cut``; the name alone when it starts with
        the label, the label alone when it has no name)."""
        if self.results:
            return f"{self.target_id} result" if self.target_id else (self.name or "shotfill result")
        label = self.label or f"track {self.index + 1}"
        if not self.name or self.name.startswith(label):
            return self.name or label
        return f"{label} \u00b7 {self.name}"


def _why_no_targets(tracks: "list[EditTrack]") -> str:
    """Why an edit offers nothing, from what its tracks hold."""
    clips = [i for t in tracks if not t.results for i in t.items if i.kind == "clip"]
    if not tracks:
        return "no gaps between clips, and no clips with media to extend or fill"
    if not clips:
        return f"its {len(tracks)} video track(s) hold no clips"
    offline = [c for c in clips if c.offline]
    if len(offline) == len(clips):
        return (f"the media of all {len(clips)} clips is offline (add the folders that hold it to "
                f"Search folders)")
    return "no gaps between clips, and no clips with media to extend or fill"


def targets_for_media(media: list[Media]) -> list[Target]:
    """Targets for sequences a host has selected: each plate's head and tail; with two
    selected, a fill of each masked by the other (the panel lists both, the user picks)."""
    targets = []
    for m in media:
        for op, suffix in ((Operation.EXTEND_BACKWARD, "head"), (Operation.EXTEND_FORWARD, "tail")):
            targets.append(Target(id=f"{m.name}.{suffix}", operation=op, track_name=m.name, track_index=0,
                                  rate=m.rate, record_first=m.first, record_last=m.last, frames=None,
                                  media=m))
    if len(media) == 2:
        for plate, mask in (media, media[::-1]):
            targets.append(Target(id=f"{plate.name}.fill", operation=Operation.FILL, track_name=plate.name,
                                  track_index=0, rate=plate.rate, record_first=plate.first,
                                  record_last=plate.last, frames=plate.last - plate.first + 1,
                                  media=plate, mask_media=mask))
    return targets


# ---------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Settings:
    """What the user chose, remembered between sessions."""

    operation: str = "all"        # which targets the list shows: "all" or an Operation value
    frames: int = 24              # frames to add, for extensions
    engine: str = "dit"           # the engine side's default engine (shotfill.engines.DEFAULT_ENGINE)
    model: str = ""               # the engine's model folder; "": the model the engine ships with
    seed: int = 0                 # the first take's seed; take i uses seed + i
    takes: int = 1                # takes per Generate, each with its own seed
    steps: int = 0                # sampling steps; 0: the engine's default
    prompt: str = ""
    output_dir: str = ""          # "": a shotfill folder next to the edit or plate
    colourspace: str = ""         # output colour space; "": the source's own
    compression: str = "zip"
    write_mode: str = "track"     # edits: the take goes on a new track, or in place of the gap
    search_paths: tuple = ()      # folders to relink offline media from, by name (``--search-path``)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, origin: str, base: "Settings | None" = None) -> "tuple[Settings, list[str]]":
        """``base`` updated with the valid values of ``d``; problems come back as messages."""
        base = base or cls()
        if not isinstance(d, dict):
            return base, [f"{origin}: expected a JSON object of settings, got {type(d).__name__}"]
        problems, values = [], {}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in d.items():
            if key not in fields:
                problems.append(f"{origin}: unknown setting {key!r} (known: {', '.join(fields)})")
                continue
            reason = _check_setting(key, value)
            if reason:
                problems.append(f"{origin}: setting {key!r} {reason}, got {value!r}; kept {getattr(base, key)!r}")
            else:
                values[key] = tuple(value) if key == "search_paths" else value
        return dataclasses.replace(base, **values), problems


def _check_setting(key: str, value) -> str | None:
    """Why ``value`` does not fit setting ``key`` (None: it fits)."""
    whole = isinstance(value, int) and not isinstance(value, bool)
    if key == "search_paths":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
            return "must be a list of folder paths"
        return None
    if key in ("frames", "takes", "seed", "steps"):
        low, high = {"frames": (1, 100000), "takes": (1, MAX_TAKES), "seed": (0, MAX_SEED),
                     "steps": (0, 10000)}[key]
        return None if whole and low <= value <= high else f"must be a whole number {low}..{high}"
    if not isinstance(value, str):
        return "must be a string"
    if key == "operation" and value != "all" and value not in {op.value for op in Operation}:
        return f"must be 'all' or one of {', '.join(op.value for op in Operation)}"
    if key == "compression" and value not in COMPRESSIONS:
        return f"must be one of {', '.join(COMPRESSIONS)}"
    if key == "write_mode" and value not in WRITE_MODES:
        return f"must be one of {', '.join(WRITE_MODES)}"
    if key == "engine" and not value:
        return "must name an engine"
    return None


def default_settings_path() -> Path:
    """``shotfill/panel.json`` in the user's config folder (``~/.config`` on Linux)."""
    base = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.GenericConfigLocation)
    return Path(base or Path.home() / ".config") / "shotfill" / "panel.json"


class SettingsStore:
    """Reads the layered settings and saves the user's."""

    def __init__(self, path: str | os.PathLike | None = None, studio_path: str | None = None):
        self.path = Path(path) if path is not None else default_settings_path()
        self.studio_path = studio_path if studio_path is not None else os.environ.get(STUDIO_DEFAULTS_ENV)

    def load(self) -> tuple[Settings, list[str]]:
        settings, problems = Settings(), []
        for path in (self.studio_path, self.path):
            if not path or not Path(path).exists():
                continue
            try:
                data = json.loads(Path(path).read_text())
            except (OSError, ValueError) as e:
                problems.append(f"{path}: cannot read settings ({e}); skipped")
                continue
            settings, found = Settings.from_dict(data, str(path), settings)
            problems += found
        return settings, problems

    def save(self, settings: Settings) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(settings.to_dict(), indent=2) + "\n")
        os.replace(tmp, self.path)


# ---------------------------------------------------------------------------
# takes, progress, log
# ---------------------------------------------------------------------------
class TakeStatus(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclasses.dataclass
class Take:
    """One job's output for a target: kept beside the other seeds until one is applied."""

    number: int
    target: Target
    seed: int
    engine: str
    frames: int
    out_dir: str
    job: dict
    status: TakeStatus = TakeStatus.QUEUED
    result: dict | None = None
    contact_sheet: str | None = None
    preview_frames: tuple[PreviewFrame, ...] = ()   # every frame of the window, in order
    preview_position: int = 0                       # the frame the scrubber shows
    written: int = 0
    message: str = ""
    applied: str = ""                 # what the host made of it, once applied
    frame_trust: tuple[FrameTrust, ...] = ()        # each written frame's trust and method, from the result
    warnings: list = dataclasses.field(default_factory=list)   # what the job warned of, in order

    @property
    def job_path(self) -> Path:
        return Path(self.out_dir) / "job.json"

    @property
    def title(self) -> str:
        return f"Take {self.number}: {self.target.id}, seed {self.seed}"

    @property
    def model(self) -> str:
        """The model folder the take asked its engine for ("": the engine's own)."""
        return self.job.get("engine_options", {}).get("model", "")

    @property
    def preview_frame(self) -> PreviewFrame | None:
        """The frame the scrubber shows (None: no frames yet)."""
        return self.preview_frames[self.preview_position] if self.preview_frames else None

    def summary(self) -> str:
        engine = f"{self.engine} ({Path(self.model).name})" if self.model else self.engine
        parts = [f"{engine}, {self.frames} frames", self.status.value]
        if self.result and self.result.get("seam_scores"):
            parts.append("seam " + " / ".join(f"{v:.1f}" for v in self.result["seam_scores"].values()))
        trust = trust_summary(self.frame_trust)
        if trust is not None:     # the seam says how smooth the cut is; trust, how far the frames hold
            parts.append(f"trust {trust[0]:.2f} (lowest {trust[1]:.2f})")
        if self.warnings:
            parts.append(f"{len(self.warnings)} warning{'s' if len(self.warnings) > 1 else ''}")
        if self.applied:
            parts.append("applied")
        return " · ".join(parts)

    def generated(self) -> Generated:
        edit = self.job.get("edit") or {}
        return Generated.from_result(self.result, target_id=self.target.id, source=self.target.media,
                                     track_index=self.target.track_index,
                                     colourspace=self.job["output"].get("colourspace"),
                                     write_mode=edit.get("write_mode", "track"), label=self.title)


@dataclasses.dataclass
class StageProgress:
    """Per-stage fractions (None: not reached, or skipped) of the running job."""

    fractions: dict = dataclasses.field(default_factory=lambda: {s: None for s in STAGES})
    stage: str = ""
    fraction: float = 0.0             # the whole job
    eta_s: float | None = None
    message: str = ""

    def begin(self, stage: str, message: str) -> None:
        if stage in STAGES:
            for s in STAGES[:STAGES.index(stage)]:
                if self.fractions[s] is not None:
                    self.fractions[s] = 1.0       # a stage ends where a later one begins
            if self.fractions[stage] is None:
                self.fractions[stage] = 0.0
        self.stage, self.message = stage, message

    def update(self, stage: str, fraction: float, eta_s: float | None, message: str) -> None:
        if stage != self.stage:
            self.begin(stage, message)
        self.fraction, self.eta_s = fraction, eta_s
        if message:
            self.message = message
        if stage in STAGE_WEIGHTS:
            start = sum(STAGE_WEIGHTS[s] for s in STAGES[:STAGES.index(stage)])
            within = (fraction - start) / STAGE_WEIGHTS[stage]
            self.fractions[stage] = min(1.0, max(self.fractions[stage] or 0.0, within))

    def finish(self) -> None:
        self.fractions = {s: (1.0 if f is not None else None) for s, f in self.fractions.items()}
        self.fraction, self.eta_s = 1.0, 0.0


class LogLevel(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    DETAIL = "detail"                 # worker chatter, stderr


@dataclasses.dataclass(frozen=True)
class LogEntry:
    time: float
    level: LogLevel
    text: str

    def line(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.time))
        tag = "" if self.level in (LogLevel.INFO, LogLevel.DETAIL) else f"{self.level.value}: "
        return f"{stamp}  {tag}{self.text}"


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------
class PanelState(QtCore.QObject):
    """The panel's single source of truth."""

    targets_changed = Signal()
    selection_changed = Signal()
    settings_changed = Signal()
    status_changed = Signal()
    progress_changed = Signal()
    takes_changed = Signal()
    preview_changed = Signal()             # a take's frames, or the frame it shows, changed
    log_added = Signal(object)

    def __init__(self, settings: Settings | None = None, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.settings = settings or Settings()
        self.source = ""                       # the edit path or the host media it came from
        self.edit: str | None = None           # the loaded edit's path (None: host media, or nothing)
        self.source_name = ""
        self.targets: list[Target] = []
        self.tracks: list[EditTrack] = []       # the edit's video tracks (empty for host media)
        self.selected_id: str | None = None
        self.status = Status.EMPTY
        self.status_message = "Open an edit to see its gaps, clip heads and tails and fills."
        self.progress = StageProgress()
        self.takes: list[Take] = []
        self.selected_take: int | None = None  # index into takes
        self.log_entries: list[LogEntry] = []

    # -- reading ----------------------------------------------------------------
    @property
    def target(self) -> Target | None:
        return next((t for t in self.targets if t.id == self.selected_id), None)

    def visible_targets(self) -> list[Target]:
        op = self.settings.operation
        return [t for t in self.targets if op == "all" or t.operation.value == op]

    @property
    def take(self) -> Take | None:
        return self.takes[self.selected_take] if self.selected_take is not None else None

    def queued_takes(self) -> list[Take]:
        return [t for t in self.takes if t.status is TakeStatus.QUEUED]

    def can_generate(self) -> tuple[bool, str]:
        """Whether Generate can run now, and if not why, in a few words the panel shows beside it."""
        target = self.target
        if self.status is Status.RUNNING:
            return False, "job running: wait for it or cancel it"
        if not self.source:
            return False, "no edit loaded"
        if not self.targets:
            return False, f"no targets in {self.source_name or Path(self.source).name}"
        if not self.visible_targets():
            label = Operation(self.settings.operation).label
            return False, f"no {label} targets in this edit: set Show to All targets"
        if target is None or target not in self.visible_targets():
            return False, "choose a target"
        if not target.ready:
            offline = target.offline_clips() or [target.id]
            return False, (f"media offline: {', '.join(offline)} (add the folder that holds it to "
                           f"Search folders)")
        _, generated = target.frame_split(self.settings)
        if target.operation is Operation.BRIDGE and generated == 0:
            return False, (f"nothing to generate: the handles ({target.handles_text(self.settings)} frames) "
                           f"cover the {target.frames}-frame gap; trim the clips over it instead")
        available = target.handles_available()
        if target.operation.user_sets_length and available and self.settings.frames <= available:
            return False, (f"set Frames to add above {available}: the clip has {available} handle frames "
                           f"there, which a trim gives without generating")
        last_seed = self.settings.seed + self.settings.takes - 1
        if last_seed > MAX_SEED:
            return False, (f"{self.settings.takes} takes from seed {self.settings.seed} would need seed {last_seed}, "
                           f"past the largest, {MAX_SEED}: lower the seed or the takes")
        return True, ""

    # -- loading ----------------------------------------------------------------
    def load_plan(self, plan: dict) -> None:
        """Targets from ``shotfill plan EDIT --json``."""
        edit = str(plan["edit"])
        targets = [Target.from_plan(d, edit) for d in plan["targets"]]
        tracks = [EditTrack.from_plan(d) for d in plan.get("tracks") or []]
        name = plan.get("name") or Path(edit).name
        message = (f"{len(targets)} targets in {Path(edit).name}" if targets else
                   f"nothing to do in {Path(edit).name}: "
                   f"{'; '.join(map(str, plan.get('reasons') or [])) or _why_no_targets(tracks)}")
        left_out = [d for d in plan.get("left_out") or [] if isinstance(d, dict)]
        if left_out:      # implausible targets the plan does not offer (a "bridge" of minutes, ...)
            message += (f"; {len(left_out)} implausible target(s) left out, "
                        f"{left_out[0].get('id')}: {left_out[0].get('implausible')}")
        relink = [d for d in plan.get("relink") or [] if isinstance(d, dict)]
        found = [d for d in relink if d.get("status") == "relinked"]
        missing = [d for d in relink if d.get("status") in ("not_found", "ambiguous")]
        if found or missing:     # what the search folders gave
            message += f"; relinked {len(found)} clip(s) from the search folders"
            if missing:
                message += f", {len(missing)} not relinked (see the log)"
        self._load(targets, edit, name, message, tracks)
        self.edit = edit
        for d in missing:
            why = (f"{d.get('wanted')} is in {len(d.get('candidates') or [])} places: "
                   + ", ".join(d.get("candidates") or []) if d.get("status") == "ambiguous"
                   else f"no {d.get('wanted')} in the search folders")
            self.log(LogLevel.WARNING, f"clip {d.get('clip')} (track {d.get('track')}) not relinked: {why}")

    def load_media(self, media: list[Media], host_name: str) -> None:
        """Targets from the sequences a host has selected."""
        if not media:
            self.fail(f"select a plate in {host_name} first (with a second sequence selected, "
                      f"each can be the other's fill mask)")
            return
        names = ", ".join(m.name for m in media)
        self._load(targets_for_media(media), media[0].path, names, f"{names} from {host_name}")
        self.edit = None

    def _load(self, targets: list[Target], source: str, name: str, message: str,
              tracks: "list[EditTrack] | None" = None) -> None:
        self.targets, self.source, self.source_name = targets, source, name
        self.tracks = tracks or []
        visible = self.visible_targets()
        candidates = [t for t in visible if t.ready] or visible or targets
        self.selected_id = candidates[0].id if candidates else None
        self.takes, self.selected_take = [], None
        self.progress = StageProgress()
        offline = sum(not t.ready for t in targets)
        if offline:
            message += f" ({offline} with media offline)"
        self._set_status(Status.LOADED, message)
        self.log(LogLevel.INFO, f"loaded {source}: {message}")
        self.targets_changed.emit()
        self.selection_changed.emit()
        self.takes_changed.emit()
        self.progress_changed.emit()

    def fail(self, message: str) -> None:
        """Something the user asked for failed: show it, keep what is loaded."""
        self.log(LogLevel.ERROR, message)
        self._set_status(Status.ERROR, message)

    # -- user choices -----------------------------------------------------------------
    def select_target(self, target_id: str) -> None:
        if target_id != self.selected_id and any(t.id == target_id for t in self.targets):
            self.selected_id = target_id
            self.selection_changed.emit()

    def select_take(self, index: int | None) -> None:
        if index is not None and not 0 <= index < len(self.takes):
            index = None
        if index != self.selected_take:
            self.selected_take = index
            self.takes_changed.emit()

    def scrub_to(self, position: int) -> None:
        """Show the frame at ``position`` of the selected take's window (clamped to it)."""
        take = self.take
        if take is None or not take.preview_frames:
            return
        position = min(max(0, position), len(take.preview_frames) - 1)
        if position != take.preview_position:
            take.preview_position = position
            self.preview_changed.emit()

    def update_settings(self, **changes) -> list[str]:
        """Apply valid changes; returns the problems with the others (also logged)."""
        settings, problems = Settings.from_dict(changes, "panel", self.settings)
        for p in problems:
            self.log(LogLevel.WARNING, p)
        if settings != self.settings:
            op_changed = settings.operation != self.settings.operation
            self.settings = settings
            self.settings_changed.emit()
            if op_changed:
                visible = self.visible_targets()
                if visible and self.target not in visible:
                    self.selected_id = visible[0].id
                    self.selection_changed.emit()
                self.targets_changed.emit()
        return problems

    # -- jobs -----------------------------------------------------------------------
    def output_root(self) -> Path:
        """Where takes go: the chosen folder, else ``shotfill/`` next to the edit or plate."""
        if self.settings.output_dir:
            return Path(self.settings.output_dir).expanduser()
        source = Path(self.source)
        return source.parent / "shotfill" / (source.stem if self.target and self.target.edit else "")

    def queue_takes(self) -> list[Take]:
        """One take per seed for the selected target, queued behind any others."""
        ok, why = self.can_generate()
        if not ok:
            raise ValueError(why)
        target, s = self.target, self.settings
        takes = []
        for i in range(s.takes):
            seed = s.seed + i
            out = self.output_root() / _take_folder(target, s, seed)
            job = {"version": 1, **target.job_fields(s), "engine": s.engine, "seed": seed, "prompt": s.prompt,
                   "output": {"dir": str(out), "compression": s.compression, "preview": True}}
            if s.colourspace:
                job["output"]["colourspace"] = s.colourspace
            options = {}
            if s.steps:
                options["steps"] = s.steps
            if s.model:
                options["model"] = str(Path(s.model).expanduser())
            if options:
                job["engine_options"] = options
            number = len(self.takes) + len(takes) + 1
            takes.append(Take(number=number, target=target, seed=seed, engine=s.engine,
                              frames=target.length(s), out_dir=str(out), job=job))
        self.takes.extend(takes)
        self.log(LogLevel.INFO, f"queued {len(takes)} take(s) of {target.id}: seeds "
                                f"{', '.join(str(t.seed) for t in takes)}")
        self.takes_changed.emit()
        return takes

    def start_take(self, take: Take) -> None:
        take.status = TakeStatus.RUNNING
        self.progress = StageProgress()
        self.selected_take = self.takes.index(take)
        self._set_status(Status.RUNNING, f"{take.title}: starting")
        self.log(LogLevel.INFO, f"{take.title}: {take.job_path}")
        self.takes_changed.emit()
        self.progress_changed.emit()

    def cancel_queued(self) -> None:
        for take in self.queued_takes():
            take.status = TakeStatus.CANCELLED
            take.message = "cancelled before it started"
        self.takes_changed.emit()

    def apply_event(self, take: Take, event: Event) -> None:
        """The reducer: one worker event changes the state of ``take`` and the progress."""
        if isinstance(event, StageEvent):
            self.progress.begin(event.stage, event.message)
            self.log(LogLevel.INFO, f"{event.stage}: {event.message}" if event.message else event.stage)
            self.status_message = f"{take.title}: {event.stage}"
            self.progress_changed.emit()
            self.status_changed.emit()
        elif isinstance(event, ProgressEvent):
            self.progress.update(event.stage, event.fraction, event.eta_s, event.message)
            self.progress_changed.emit()
        elif isinstance(event, FrameEvent):
            take.written += 1
            self.log(LogLevel.DETAIL, f"frame {event.frame} {'kept' if event.skipped else 'written'}: "
                                      f"{event.path}")
        elif isinstance(event, PreviewEvent):
            take.contact_sheet = event.path
            self.takes_changed.emit()
        elif isinstance(event, PreviewFramesEvent):
            take.preview_frames = event.frames
            # start at the seam: the first frame with new pixels
            take.preview_position = next((i for i, f in enumerate(event.frames) if f.is_new), 0)
            self.preview_changed.emit()
        elif isinstance(event, WarningEvent):
            self.log(LogLevel.WARNING, event.message)
            if event.message not in take.warnings:
                take.warnings.append(event.message)
                self.takes_changed.emit()
        elif isinstance(event, ResultEvent):
            take.result = event.result
            take.contact_sheet = event.contact_sheet or take.contact_sheet
            take.frame_trust = event.frame_trust
            take.warnings.extend(w for w in event.warnings if w not in take.warnings)
            self.takes_changed.emit()
        elif isinstance(event, ErrorEvent):
            take.message = event.message
        elif isinstance(event, OutputLine):
            self.log(LogLevel.DETAIL, event.text)
        elif isinstance(event, JobFinished):
            self._finish(take, event)

    def _finish(self, take: Take, event: JobFinished) -> None:
        take.status = {JobStatus.DONE: TakeStatus.DONE, JobStatus.CANCELLED: TakeStatus.CANCELLED,
                       JobStatus.FAILED: TakeStatus.FAILED}[event.status]
        take.message = event.message
        if event.status is JobStatus.DONE:
            self.progress.finish()
            self.log(LogLevel.INFO, f"{take.title}: {event.message}")
        elif event.status is JobStatus.CANCELLED:
            self.cancel_queued()
            self.log(LogLevel.WARNING, f"{take.title}: {event.message}")
        else:
            self.log(LogLevel.ERROR, f"{take.title}: {event.message}")
        self.takes_changed.emit()
        self.progress_changed.emit()
        if self.queued_takes():
            return                             # the panel starts the next one
        if take.status is TakeStatus.FAILED:
            self._set_status(Status.ERROR, f"{take.title} failed: {event.message}")
        elif take.status is TakeStatus.CANCELLED:
            self._set_status(Status.CANCELLED, f"{take.title} {event.message}")
        else:
            done = [t for t in self.takes if t.status is TakeStatus.DONE]
            self._set_status(Status.DONE, f"{take.title}: {event.message}. {len(done)} take(s) ready: "
                                          f"pick one and Apply.")

    def mark_applied(self, take: Take, message: str) -> None:
        take.applied = message
        self.log(LogLevel.INFO, f"{take.title} applied: {message}")
        self._set_status(Status.DONE, f"{take.title} applied: {message}")
        self.takes_changed.emit()

    # -- log and status ----------------------------------------------------------------
    def log(self, level: LogLevel, text: str) -> None:
        entry = LogEntry(time.time(), level, text)
        self.log_entries.append(entry)
        self.log_added.emit(entry)

    def _set_status(self, status: Status, message: str) -> None:
        self.status, self.status_message = status, message
        self.status_changed.emit()


def _take_folder(target: Target, settings: Settings, seed: int) -> str:
    """``V1_gap1_flow_s3`` (``_n24`` added for extensions, the model folder's name after
    the engine's where one is set, and a short hash when the prompt, steps, colour space or
    compression differ from the defaults): the same settings reuse the folder, so running a
    cancelled take again resumes it, and takes that differ never share one."""
    engine = settings.engine + (f"_{Path(settings.model).name}" if settings.model else "")
    name = f"{target.id}_{engine}_s{seed}"
    if target.operation.user_sets_length:
        name += f"_n{settings.frames}"
    extra = {"prompt": settings.prompt, "steps": settings.steps, "colourspace": settings.colourspace,
             "compression": settings.compression}
    if extra != {"prompt": "", "steps": 0, "colourspace": "", "compression": "zip"}:
        name += "_" + hashlib.sha1(json.dumps(extra, sort_keys=True).encode()).hexdigest()[:6]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).replace(".", "_")

