"""Loading an edit: any file an OpenTimelineIO adapter reads, with clear errors.

``.otio``/``.otioz``/``.otiod``, CMX 3600 EDL, FCP 7 XML, ALE, AAF, xges, through the
installed adapter plugins. Every failure is a :class:`~shotfill.errors.TimelineError` naming
the file, and says why: no adapter for the suffix, a schema newer than this OpenTimelineIO,
an EDL read at the wrong rate, a file holding several timelines and no choice among them.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import opentimelineio as otio

from ..errors import TimelineError

#: The rate an EDL or ALE is read at when none is given (the adapters' default).
DEFAULT_EDL_RATE = 24.0

#: Rates suggested when an EDL's timecodes count past the rate it was read at.
COMMON_EDL_RATES = (25.0, 30.0, 50.0, 60.0)

#: The largest edit we read, in bytes (an .otioz/.otiod: its content.otio, uncompressed). A feature
#: film's edit is a few MB; the bound keeps a runaway or hostile file from taking the machine's memory.
MAX_EDIT_BYTES = 256 << 20
#: The deepest nesting of JSON arrays and objects an .otio may hold. Real edits nest 8-20 deep;
#: OpenTimelineIO's JSON reader recurses and crashes the interpreter (a stack overflow) on a file
#: nested about 100,000 deep, so the depth is checked before the file reaches it.
MAX_EDIT_DEPTH = 1000
#: adapters that read an edit's whole file as text or JSON (an AAF is read in place, in pieces)
_WHOLE_FILE_ADAPTERS = frozenset({"otio_json", "otioz", "otiod", "cmx_3600", "fcp_xml", "fcpx_xml", "ale",
                                  "xges", "kdenlive", "maya_sequencer", "hls_playlist"})
#: a JSON string (with its escapes): brackets inside one do not nest
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def load_edit(path, *, rate: float | None = None, timeline: str | int | None = None,
              search_paths=(), relinked: list | None = None) -> otio.schema.Timeline:
    """Read an edit in any format an installed OpenTimelineIO adapter reads.

    ``rate`` is the frame rate of formats that do not carry one: CMX 3600 EDL
    and ALE (default 24). Other formats carry their own rates and ignore it. An
    EDL read at 24 whose timecodes count 24 frames or more fails with a message
    asking for its rate; the rate is never guessed. (An EDL at another rate whose
    timecodes happen to stay below frame 24 cannot be told from a 24 fps one.)

    A file holding a list of clips rather than an edit (an ALE, a bin) becomes a
    timeline named after the file with one video track ``V1`` holding the clips
    one after the other. A file holding several edits (an FCPXML library) needs
    ``timeline``: its name, or its number counted from 1 in the file's order; without
    one it is an error listing them. An empty timeline is not an error: it simply has
    no targets.

    ``search_paths``: folders where offline media is looked for by file name
    (:func:`shotfill.timeline.relink.relink`); the clips found there are relinked in
    the timeline returned, and each clip's outcome is appended to ``relinked`` when
    given (:class:`~shotfill.timeline.relink.RelinkEntry`).

    Every failure is a :class:`TimelineError` naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise TimelineError(f"{path}: no such file")
    if rate is not None and not rate > 0:
        raise TimelineError(f"{path}: the frame rate must be positive, got {rate!r}")
    try:
        adapter = otio.adapters.from_filepath(str(path))
    except otio.exceptions.NoKnownAdapterForExtensionError:
        raise TimelineError(f"{path}: no OpenTimelineIO adapter here reads '{path.suffix}' files "
                            f"(installed ones read {', '.join(_readable_suffixes())})") from None
    _check_edit_file(path, adapter.name)
    arguments = {}
    if adapter.name == "cmx_3600":
        rate = DEFAULT_EDL_RATE if rate is None else rate
        arguments["rate"] = rate
    elif adapter.name == "ale":
        arguments["fps"] = DEFAULT_EDL_RATE if rate is None else rate
    try:
        result = adapter.read_from_file(str(path), **arguments)
    except otio.exceptions.UnsupportedSchemaError as err:
        raise TimelineError(f"{path}: {_newer_schema_reason(path, err)}") from err
    except Exception as err:  # adapters are plugins and raise anything; the caller gets one type
        if adapter.name == "cmx_3600" and "frames beyond" in str(err):
            higher = next((r for r in COMMON_EDL_RATES if r > rate), COMMON_EDL_RATES[-1])
            raise TimelineError(
                f"{path}: the EDL's timecodes are not {rate:g} fps ({err}); "
                f"pass the EDL's frame rate, e.g. --rate {higher:g}") from err
        raise TimelineError(f"{path}: the {adapter.name} adapter could not read it: {_reason(err)}") from err
    chosen = _as_timeline(result, path, timeline)
    if search_paths:
        from .relink import relink

        chosen, report = relink(chosen, search_paths, edit_path=path)
        if relinked is not None:
            relinked.extend(report)
    return chosen


def _check_edit_file(path: Path, adapter: str) -> None:
    """Refuse, before an adapter reads it, an edit that is empty, larger than
    :data:`MAX_EDIT_BYTES`, or (OTIO JSON) nested deeper than :data:`MAX_EDIT_DEPTH`."""
    if adapter not in _WHOLE_FILE_ADAPTERS:
        return
    if adapter == "otiod":
        content = path / "content.otio"
        if not content.is_file():
            raise TimelineError(f"{path}: an .otiod bundle without its content.otio")
        _check_otio_json(path, _bounded_bytes(path, content, content.stat().st_size))
        return
    if not path.is_file():
        raise TimelineError(f"{path}: not a file")
    size = path.stat().st_size
    if size == 0:
        raise TimelineError(f"{path}: the file is empty (0 bytes)")
    if adapter == "otioz":
        try:
            with zipfile.ZipFile(path) as bundle:
                info = bundle.getinfo("content.otio")
                if info.file_size > MAX_EDIT_BYTES:
                    raise _too_large(path, info.file_size, "its content.otio is")
                with bundle.open(info) as member:
                    data = member.read(MAX_EDIT_BYTES + 1)
        except (zipfile.BadZipFile, KeyError, OSError, EOFError, NotImplementedError, RuntimeError) as err:
            raise TimelineError(f"{path}: not a readable .otioz bundle ({_reason(err)})") from None
        if len(data) > MAX_EDIT_BYTES:   # a directory entry that understates the size
            raise _too_large(path, len(data), "its content.otio is over")
        _check_otio_json(path, data)
        return
    data = _bounded_bytes(path, path, size)
    if adapter == "otio_json":
        _check_otio_json(path, data)


def _too_large(path: Path, size: int, what: str = "the file is") -> TimelineError:
    return TimelineError(f"{path}: {what} {size} bytes, more than the {MAX_EDIT_BYTES} ({MAX_EDIT_BYTES >> 20} MB) "
                         "an edit may be")


def _bounded_bytes(path: Path, file: Path, size: int) -> bytes:
    if size > MAX_EDIT_BYTES:
        raise _too_large(path, size)
    try:
        with open(file, "rb") as stream:
            data = stream.read(MAX_EDIT_BYTES + 1)
    except OSError as err:
        raise TimelineError(f"{path}: cannot be read: {err.strerror}") from None
    if len(data) > MAX_EDIT_BYTES:   # it grew while we looked
        raise _too_large(path, len(data))
    return data


def _check_otio_json(path: Path, data: bytes) -> None:
    """The nesting depth of OTIO JSON, strings left out, at most :data:`MAX_EDIT_DEPTH`."""
    brackets = _JSON_STRING.sub(b"", data).translate(None, bytes(set(range(256)) - set(b"[]{}")))
    if len(brackets) <= MAX_EDIT_DEPTH:
        return
    import numpy as np  # only for a file with many brackets: `shotfill plan` starts without it

    steps = np.frombuffer(brackets, np.uint8)
    depth = np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1), dtype=np.int64)
    if depth.max() > MAX_EDIT_DEPTH:
        raise TimelineError(f"{path}: nested {int(depth.max())} levels deep, more than the {MAX_EDIT_DEPTH} "
                            "an edit may be (edits nest about 10 deep): damaged or not an edit")


def _readable_suffixes() -> list[str]:
    adapters = (otio.adapters.from_name(name) for name in otio.adapters.available_adapter_names())
    return sorted({f".{suffix}" for adapter in adapters if adapter.has_feature("read")
                   for suffix in adapter.suffixes})


def _reason(err: Exception) -> str:
    return str(err) or type(err).__name__


def _newer_schema_reason(path: Path, err: Exception) -> str:
    """Name the schemas a file uses that are newer than this OpenTimelineIO reads."""
    text = _otio_json_text(path)
    known = otio.core.type_version_map()
    newer = sorted({
        (name, int(version))
        for name, version in re.findall(r'"OTIO_SCHEMA"\s*:\s*"(\w+)\.(\d+)"', text)
        if name in known and int(version) > known[name]
    })
    if not newer:
        return f"the otio_json adapter could not read it: {_reason(err)}"
    found = ", ".join(f"{name}.{version}" for name, version in newer)
    supported = ", ".join(sorted({f"{name}.{known[name]}" for name, _ in newer}))
    return (f"written by a newer OpenTimelineIO (schema {found}); "
            f"this build ({otio.__version__}) reads up to {supported}")


def _otio_json_text(path: Path) -> str:
    """The JSON text of an ``.otio`` file, ``.otioz`` bundle or ``.otiod`` folder."""
    if path.is_dir():
        return (path / "content.otio").read_text(encoding="utf-8")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as bundle:
            return bundle.read("content.otio").decode("utf-8")
    return path.read_text(encoding="utf-8")


def timeline_names(result) -> list[str]:
    """The names of the timelines an adapter's result holds, in order (one for a timeline)."""
    if isinstance(result, otio.schema.Timeline):
        return [result.name]
    if isinstance(result, otio.schema.SerializableCollection):
        return [child.name for child in result if isinstance(child, otio.schema.Timeline)]
    return []


def _pick(timelines: list, wanted: str | int, path: Path):
    """The timeline ``wanted`` names: an exact name, else a number from 1 (``"2"`` or 2)."""
    listing = "; ".join(f"{i} {t.name!r}" for i, t in enumerate(timelines, start=1))
    if isinstance(wanted, str):
        named = [t for t in timelines if t.name == wanted]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise TimelineError(f"{path}: {len(named)} timelines are named {wanted!r}; pick one by number "
                                f"with --timeline N ({listing})")
    try:
        number = int(wanted)
    except (TypeError, ValueError):
        number = None
    if number is not None and not isinstance(wanted, bool) and 1 <= number <= len(timelines):
        return timelines[number - 1]
    raise TimelineError(f"{path}: no timeline {wanted!r}; it holds {listing} "
                        "(--timeline NAME or NUMBER)")


def _as_timeline(result, path: Path, wanted: str | int | None = None) -> otio.schema.Timeline:
    """The one timeline an adapter's result holds, or the one ``wanted`` names."""
    if isinstance(result, otio.schema.Timeline):
        return result if wanted is None else _pick([result], wanted, path)
    if not isinstance(result, otio.schema.SerializableCollection):
        raise TimelineError(f"{path}: holds a {type(result).__name__}, not an edit")
    timelines = [child for child in result if isinstance(child, otio.schema.Timeline)]
    if wanted is not None and timelines:
        return _pick(timelines, wanted, path)
    if len(timelines) == 1:
        return timelines[0]
    if timelines:
        names = ", ".join(repr(t.name) for t in timelines)
        raise TimelineError(f"{path}: holds {len(timelines)} edits ({names}); pick one with "
                            "--timeline NAME or NUMBER (counted from 1)")
    if wanted is not None:
        raise TimelineError(f"{path}: holds a list of clips, not timelines; --timeline {wanted!r} "
                            "does not apply")
    timeline = otio.schema.Timeline(name=path.stem)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for clip in result.find_clips():
        track.append(clip.clone())
    timeline.tracks.append(track)
    return timeline
