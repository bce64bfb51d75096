"""The job spec: one serialisable object that carries everything a job needs.

Every front door (command line, panel, farm task, host hooks) builds a
:class:`JobSpec` and hands it to the same worker (``shotfill run job.json``).
The JSON form is versioned; :meth:`JobSpec.from_dict` migrates older versions
and names the field at fault when something is wrong.

Example::

    {
      "version": 1,
      "task": "extend_forward",
      "source": {"path": "plates/sh010.####.exr"},
      "frames": 24,
      "engine": "dit",
      "seed": 7,
      "output": {"dir": "out/sh010_ext", "compression": "zip"}
    }

A job can instead name a target of an edit; its sources, frame counts and
placement then come from the timeline::

    {"version": 1, "edit": {"path": "cut_v3.otio", "target": "V1.gap1"},
     "output": {"dir": "out/gap1"}}
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .errors import JobSpecError
from .plan import TaskKind

#: the engine a job runs when it names none: the project's own DiT (its checkpoint ships in the package).
#: Part of the job schema; the engine registry (:mod:`shotfill.engines`) re-exports it.
DEFAULT_ENGINE = "dit"

JOB_VERSION = 1
#: the largest seed: every written frame's header keeps its job's seed as an EXR int attribute,
#: which is 32-bit signed
MAX_SEED = 2**31 - 1
COMPRESSIONS = ("zip", "zips", "piz", "dwaa", "dwab", "none", "rle", "pxr24", "b44")
WRITE_MODES = ("track", "replace")
#: what a job does when its output folder holds frames (or a result file) of its name that another job
#: wrote: refuse (exit 2, naming that job), overwrite them (and remove that job's other frames of the
#: name), or write a new version beside them (``NAME_v2``, ``NAME_v3``...: the first free name)
IF_EXISTS = ("refuse", "overwrite", "version")
#: the largest job file we read, in bytes: a job spec is a few hundred bytes, and the bound keeps a
#: runaway or hostile file from taking the worker's memory (it is refused before it is read)
MAX_SPEC_BYTES = 4 << 20
#: the longest output name stem, in bytes of UTF-8: frame number, suffix, a ``_v2`` and the writer's
#: temporary-file decoration still fit in a file name (255 bytes)
MAX_NAME_LENGTH = 200
#: characters an output name may not hold: path separators of either system, NUL and what Windows
#: file names refuse (``:`` would name a drive or a stream there)
_NAME_FORBIDDEN = frozenset('/\\:*?"<>|') | {chr(c) for c in range(32)} | {"\x7f"}


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """A frame source: a sequence pattern, a movie, a folder of frames."""

    path: str
    frame_range: tuple[int, int] | None = None
    part: str | None = None
    layer: str | None = None
    colourspace: str | None = None   # None: the source's default (EXR keeps its space, 8-bit is sRGB)

    def to_dict(self) -> dict:
        d = {"path": self.path}
        if self.frame_range is not None:
            d["frame_range"] = list(self.frame_range)
        for k in ("part", "layer", "colourspace"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return d

    @classmethod
    def from_dict(cls, d: Any, field: str) -> "SourceSpec":
        if isinstance(d, str):
            d = {"path": d}
        if not isinstance(d, dict):
            raise JobSpecError(field, f"expected an object with a 'path', got {type(d).__name__}")
        _no_unknown(d, {"path", "frame_range", "part", "layer", "colourspace"}, field)
        path = d.get("path")
        if not isinstance(path, str) or not path:
            raise JobSpecError(f"{field}.path", "must be a non-empty string")
        _check_path(path, f"{field}.path")
        fr = d.get("frame_range")
        if fr is not None:
            if (not isinstance(fr, (list, tuple)) or len(fr) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in fr)
                    or fr[0] > fr[1]):
                raise JobSpecError(f"{field}.frame_range", f"must be [first, last] whole numbers, got {fr!r}")
            fr = (fr[0], fr[1])
        for k in ("part", "layer", "colourspace"):
            if d.get(k) is not None and not isinstance(d[k], (str, int)):
                raise JobSpecError(f"{field}.{k}", "must be a string")
        return cls(path=path, frame_range=fr, part=d.get("part"), layer=d.get("layer"),
                   colourspace=d.get("colourspace"))


@dataclasses.dataclass(frozen=True)
class EditSpec:
    """A target of an edit (OTIO, EDL, FCP XML, ...)."""

    path: str
    target: str
    rate: float | None = None
    write_mode: str = "track"        # "track": a new track; "replace": in place of the gap
    export: str | None = None        # also export the new edit through this adapter
    write_timeline: bool = True      # False: leave the timeline to a later publish step
    colourspace: str | None = None   # the colour space of the target's media; None: each source's default
    timeline: str | int | None = None  # the timeline of a file holding several: its name, or its number from 1
    search_paths: tuple[str, ...] = ()  # folders where offline media is looked for by file name (relink)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        # left out when unset: a job id stays what it was before the field
        for key, unset in (("colourspace", None), ("timeline", None), ("search_paths", ())):
            if d[key] == unset or (key == "search_paths" and not d[key]):
                del d[key]
        if "search_paths" in d:
            d["search_paths"] = list(d["search_paths"])
        return d

    @classmethod
    def from_dict(cls, d: Any, field: str = "edit") -> "EditSpec":
        if not isinstance(d, dict):
            raise JobSpecError(field, "expected an object with 'path' and 'target'")
        _no_unknown(d, {f.name for f in dataclasses.fields(cls)}, field)
        for k in ("path", "target"):
            if not isinstance(d.get(k), str) or not d[k]:
                raise JobSpecError(f"{field}.{k}", "must be a non-empty string")
        _check_path(d["path"], f"{field}.path")
        mode = d.get("write_mode", "track")
        if mode not in WRITE_MODES:
            raise JobSpecError(f"{field}.write_mode", f"must be one of {', '.join(WRITE_MODES)}, got {mode!r}")
        rate = d.get("rate")
        if rate is not None and (not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate <= 0):
            raise JobSpecError(f"{field}.rate", f"must be a positive number, got {rate!r}")
        space = d.get("colourspace")
        if space is not None and (not isinstance(space, str) or not space):
            raise JobSpecError(f"{field}.colourspace", f"must be a colour space name, got {space!r}")
        timeline = d.get("timeline")
        if timeline is not None and (isinstance(timeline, bool) or not isinstance(timeline, (str, int))
                                     or timeline == "" or (isinstance(timeline, int) and timeline < 1)):
            raise JobSpecError(f"{field}.timeline", f"must be a timeline name or a number from 1, got {timeline!r}")
        search = d.get("search_paths", [])
        if not isinstance(search, list) or not all(isinstance(p, str) and p for p in search):
            raise JobSpecError(f"{field}.search_paths", f"must be a list of folder paths, got {search!r}")
        for p in search:
            _check_path(p, f"{field}.search_paths")
        return cls(path=d["path"], target=d["target"], rate=rate, write_mode=mode,
                   export=d.get("export"), write_timeline=bool(d.get("write_timeline", True)),
                   colourspace=space, timeline=timeline, search_paths=tuple(search))


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    dir: str
    name: str | None = None          # file name stem; default from the source or target
    compression: str = "zip"
    colourspace: str | None = None   # None: EXR sources keep their space, others become lin_rec709
    padding: int = 4
    preview: bool = True             # write a contact sheet around each seam
    start_frame: int | None = None   # first frame number written; None: the task's own rule
    if_exists: str = "refuse"        # another job's frames in the folder: one of IF_EXISTS (not part of the job id)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if d["start_frame"] is None:     # left out, so specs (and job ids) from before it are unchanged
            del d["start_frame"]
        if d["if_exists"] == "refuse":   # the default, left out: job files from before it read the same
            del d["if_exists"]
        return d

    @classmethod
    def from_dict(cls, d: Any, field: str = "output") -> "OutputSpec":
        if isinstance(d, str):
            d = {"dir": d}
        if not isinstance(d, dict):
            raise JobSpecError(field, "expected an object with a 'dir'")
        _no_unknown(d, {f.name for f in dataclasses.fields(cls)}, field)
        if not isinstance(d.get("dir"), str) or not d["dir"]:
            raise JobSpecError(f"{field}.dir", "must be a non-empty string")
        _check_path(d["dir"], f"{field}.dir")
        comp = str(d.get("compression", "zip")).lower()
        if comp not in COMPRESSIONS:
            raise JobSpecError(f"{field}.compression", f"must be one of {', '.join(COMPRESSIONS)}, got {comp!r}")
        padding = d.get("padding", 4)
        if not isinstance(padding, int) or isinstance(padding, bool) or not 1 <= padding <= 10:
            raise JobSpecError(f"{field}.padding", f"must be a whole number 1..10, got {padding!r}")
        name = d.get("name")
        if name is not None:
            _check_name(name, f"{field}.name")
        start = d.get("start_frame")
        if start is not None and (not isinstance(start, int) or isinstance(start, bool) or start < 0):
            raise JobSpecError(f"{field}.start_frame", f"must be a whole number 0 or more, got {start!r}")
        if_exists = d.get("if_exists", "refuse")
        if if_exists not in IF_EXISTS:
            raise JobSpecError(f"{field}.if_exists", f"must be one of {', '.join(IF_EXISTS)}, got {if_exists!r}")
        return cls(dir=d["dir"], name=name, compression=comp, colourspace=d.get("colourspace"),
                   padding=padding, preview=bool(d.get("preview", True)), start_frame=start,
                   if_exists=if_exists)


@dataclasses.dataclass(frozen=True)
class JobSpec:
    output: OutputSpec
    task: TaskKind | None = None     # None only when an edit target decides it
    source: SourceSpec | None = None
    source_b: SourceSpec | None = None   # bridge: the shot after the gap
    mask: SourceSpec | None = None       # fill: the mask sequence (1 = generate)
    edit: EditSpec | None = None
    frames: int | None = None        # frames to generate (extend, bridge)
    context: int | None = None       # known frames each side; None: the engine's choice
    engine: str = DEFAULT_ENGINE
    engine_options: dict = dataclasses.field(default_factory=dict)
    seed: int = 0
    prompt: str = ""
    job_id: str | None = None        # None: derived from the spec, so a re-run resumes
    version: int = JOB_VERSION

    # -- identity ------------------------------------------------------------
    @property
    def id(self) -> str:
        """The job id written into every frame's header (resume key)."""
        if self.job_id:
            return self.job_id
        d = self.to_dict()
        for k in ("job_id", "version"):
            d.pop(k, None)
        d["output"].pop("preview", None)
        d["output"].pop("if_exists", None)   # how to meet another job's frames: the same frames either way
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # -- serialisation -----------------------------------------------------------
    def to_dict(self) -> dict:
        d: dict[str, Any] = {"version": self.version}
        if self.job_id:
            d["job_id"] = self.job_id
        if self.task is not None:
            d["task"] = self.task.value
        for k in ("source", "source_b", "mask", "edit"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v.to_dict()
        for k in ("frames", "context"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        d.update(engine=self.engine, engine_options=dict(self.engine_options), seed=self.seed,
                 prompt=self.prompt, output=self.output.to_dict())
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path) -> "JobSpec":
        """Read a job file. Refused before parsing: a file that is empty or larger than
        :data:`MAX_SPEC_BYTES`; then JSON that is invalid, not UTF-8 or nested too deep."""
        path = Path(path)
        try:
            size = path.stat().st_size
            if size > MAX_SPEC_BYTES:
                raise JobSpecError("(file)", f"job file {path} is {size} bytes, more than the {MAX_SPEC_BYTES} "
                                             "a job may be: not a job spec")
            with open(path, "rb") as stream:
                raw = stream.read(MAX_SPEC_BYTES + 1)
        except OSError as e:
            raise JobSpecError("(file)", f"cannot read job file {path}: {e.strerror or e}") from None
        if len(raw) > MAX_SPEC_BYTES:      # it grew while we looked
            raise JobSpecError("(file)", f"job file {path} is more than the {MAX_SPEC_BYTES} bytes a job may be")
        if not raw.strip():
            raise JobSpecError("(file)", f"job file {path} is empty ({len(raw)} bytes)")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JobSpecError("(file)", f"{path} is not UTF-8 text (byte {e.start})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise JobSpecError("(file)", f"{path} is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}") from None
        except RecursionError:
            raise JobSpecError("(file)", f"{path} is nested too deep to be a job spec") from None
        except ValueError as e:           # an integer of more than 4300 digits, for one
            raise JobSpecError("(file)", f"{path} is not a job spec: {e}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, d: Any) -> "JobSpec":
        if not isinstance(d, dict):
            raise JobSpecError("(top level)", "a job is a JSON object")
        d = migrate(dict(d))
        known = {f.name for f in dataclasses.fields(cls)}
        _no_unknown(d, known, None)
        task = d.get("task")
        if task is not None:
            try:
                task = TaskKind(task)
            except ValueError:
                raise JobSpecError("task", f"must be one of {', '.join(k.value for k in TaskKind)}, got {task!r}") from None
        if "output" not in d:
            raise JobSpecError("output", "is required (at least {\"dir\": ...})")
        spec = cls(
            output=OutputSpec.from_dict(d["output"]),
            task=task,
            source=SourceSpec.from_dict(d["source"], "source") if d.get("source") is not None else None,
            source_b=SourceSpec.from_dict(d["source_b"], "source_b") if d.get("source_b") is not None else None,
            mask=SourceSpec.from_dict(d["mask"], "mask") if d.get("mask") is not None else None,
            edit=EditSpec.from_dict(d["edit"]) if d.get("edit") is not None else None,
            frames=_opt_count(d, "frames"),
            context=_opt_count(d, "context"),
            engine=_str(d, "engine", DEFAULT_ENGINE),
            engine_options=_dict(d, "engine_options"),
            seed=_seed(d),
            prompt=_str(d, "prompt", ""),
            job_id=d.get("job_id") or None,
            version=JOB_VERSION,
        )
        spec.validate()
        return spec

    def validate(self) -> None:
        """Cross-field checks: what each task needs (and the seed and context of a spec built in code)."""
        _check_seed(self.seed)
        if self.context is not None and (not isinstance(self.context, int) or isinstance(self.context, bool)
                                         or self.context < 1):
            raise JobSpecError("context", f"must be a whole number of at least 1 (known frames each side), "
                                          f"got {self.context!r}")
        if self.edit is not None:
            if self.source is not None or self.source_b is not None:
                raise JobSpecError("edit", "give either an edit target or sources, not both")
            return
        if self.task is None:
            raise JobSpecError("task", "is required when no edit target is given")
        if self.source is None:
            raise JobSpecError("source", f"is required for {self.task.value}")
        if self.task in (TaskKind.EXTEND_FORWARD, TaskKind.EXTEND_BACKWARD, TaskKind.BRIDGE) and self.frames is None:
            raise JobSpecError("frames", f"is required for {self.task.value}")
        if self.task is TaskKind.BRIDGE and self.source_b is None:
            raise JobSpecError("source_b", "is required for bridge (the shot after the gap)")
        if self.task is TaskKind.FILL and self.mask is None:
            raise JobSpecError("mask", "is required for fill (1 = generate, 0 = keep)")
        if self.task is not TaskKind.BRIDGE and self.source_b is not None:
            raise JobSpecError("source_b", f"is only used by bridge, not {self.task.value}")


def migrate(d: dict) -> dict:
    """Bring an older job dict up to :data:`JOB_VERSION`."""
    version = d.get("version", JOB_VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        raise JobSpecError("version", f"must be a whole number, got {version!r}")
    if version > JOB_VERSION:
        raise JobSpecError("version", f"{version} is newer than this shotfill understands ({JOB_VERSION}); update shotfill")
    if version < 1:
        raise JobSpecError("version", f"{version} is not a shotfill job version")
    d["version"] = JOB_VERSION
    return d


def _check_name(name: Any, field: str) -> None:
    """An output name is one plain, readable file name stem: never a path, never hidden."""
    if not isinstance(name, str) or not name.strip():
        raise JobSpecError(field, f"must be a plain file name stem, got {name!r}")
    bad = sorted(set(name) & _NAME_FORBIDDEN)
    if bad:
        raise JobSpecError(field, f"must be a plain file name stem (no {' '.join(map(repr, bad))}), got {name!r}")
    if name.startswith(".") or name != name.strip() or name.endswith("."):
        raise JobSpecError(field, f"must not start with '.', end with '.' or a space, or start with a space "
                                  f"(a hidden or unreadable file name), got {name!r}")
    _check_path(name, field)
    if len(name.encode("utf-8")) > MAX_NAME_LENGTH:
        raise JobSpecError(field, f"is {len(name.encode('utf-8'))} bytes long, more than the "
                                  f"{MAX_NAME_LENGTH} a file name stem may be")


def _check_path(path: str, field: str) -> None:
    """A path the file system can be asked about: no NUL byte, text that encodes."""
    if "\0" in path:
        raise JobSpecError(field, f"holds a NUL character, which no file name can: {path!r}")
    try:
        os.fsencode(path)
        path.encode("utf-8", "surrogateescape")
    except UnicodeError:
        raise JobSpecError(field, f"is not valid Unicode text: {path!r}") from None


def _no_unknown(d: dict, known: set, field: str | None) -> None:
    for k in d:
        if k not in known:
            where = f"{field}.{k}" if field else k
            raise JobSpecError(where, f"unknown field (known: {', '.join(sorted(known))})")


def _opt_count(d: dict, key: str) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise JobSpecError(key, f"must be a whole number of at least 1, got {v!r}")
    return v


def _seed(d: dict) -> int:
    v = d.get("seed", 0)
    _check_seed(v)
    return v


def _check_seed(v) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_SEED:
        raise JobSpecError("seed", f"must be a whole number 0..{MAX_SEED} (the EXR header keeps it as a "
                                   f"32-bit int), got {v!r}")


def _str(d: dict, key: str, default: str) -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise JobSpecError(key, f"must be a string, got {v!r}")
    return v


def _dict(d: dict, key: str) -> dict:
    v = d.get(key, {})
    if not isinstance(v, dict):
        raise JobSpecError(key, f"must be an object, got {v!r}")
    return v
