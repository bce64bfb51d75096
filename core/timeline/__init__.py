"""Edits in and out: read an edit, find what shotfill can work on, write results back.

Any file OpenTimelineIO reads is an edit here: ``.otio``/``.otioz``/``.otiod``,
CMX 3600 EDL, FCP 7 XML, ALE, AAF, xges, through the installed adapter plugins.
All time arithmetic stays in :class:`~opentimelineio.opentime.RationalTime` and
:class:`~opentimelineio.opentime.TimeRange`; frame numbers appear only at the
edges, as whole numbers of media frames.

Targets, on the top-level video tracks (``V1`` is the first video track of the
timeline's stack, counting from the bottom as editors do)::

    V1      [ clip1 ][ gap1 ][ clip2 ][ gap2 ]
                     ^^^^^^^^                       V1.gap1        bridge: a gap between two clips
                                      ^^^^^^^^      (none)         a gap at a track's end
        <~~~[                                       V1.clip1.head  extend backward, before the in point
                    ]~~~>                           V1.clip1.tail  extend forward, after the out point
                             ^^^^^^^^^              V1.clip2.fill  fill, when clip2 has a linked mask

- Ids number a track's gaps and clips in order, counting every gap and every
  clip (including those that give no target), so the same edit always gives the
  same ids, and an id names one item of the track.
- A gap is a bridge target when both its neighbours are enabled clips with a
  length; gaps at a track's start or end, gaps touching a transition or a nested
  stack, and zero-length gaps are not.
- A clip gives extend targets (head and tail) when it is enabled, has a length,
  and its media is an image sequence, movie or image with a local path (whether
  or not the file is on disk: :attr:`ClipMedia.exists` says). Generators,
  missing references and remote URLs give none.
- A clip gives a fill target when, on top of that, a mask is linked to it: a
  media reference under the key ``"mask"`` (or ``"matte"``) of
  ``clip.media_references()``, or a path or frame pattern in
  ``clip.metadata["shotfill"]["mask"]`` (relative to the edit's folder).
- Nested stacks and tracks inside a track are left alone: only top-level video
  tracks are searched. Time effects (speed changes, freeze frames) are not
  applied: source frames are the clip's source range as written.

Record ranges are in track time, as ``Track.range_of_child`` gives them: 0 is the
timeline's first frame. :attr:`Target.timeline_start` (the timeline's
``global_start_time``) turns them into record timecodes.

Writing back never touches the input: the result is a new ``.otio`` next to it
(see :func:`write_back`).
"""
from __future__ import annotations

import dataclasses
import enum
import itertools
import os
import re
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from ..errors import MediaError, TimelineError
from ..plan import TaskKind

__all__ = [
    "publish",
    "ClipMedia",
    "MediaKind",
    "Placement",
    "Target",
    "find_targets",
    "load_edit",
    "write_back",
]

#: The rate an EDL or ALE is read at when none is given (the adapters' default).
DEFAULT_EDL_RATE = 24.0

#: Rates suggested when an EDL's timecodes count past the rate it was read at.
COMMON_EDL_RATES = (25.0, 30.0, 50.0, 60.0)

#: Write-back modes: a new track on top, or the bridged gap replaced in place.
WRITE_MODES = ("track", "replace")

#: Keys of ``clip.media_references()`` that hold a clip's mask, in order of preference.
MASK_REFERENCE_KEYS = ("mask", "matte")

#: Single-image formats: an external reference to one of these is a still image, not a movie.
IMAGE_SUFFIXES = frozenset({
    ".exr", ".dpx", ".cin", ".tif", ".tiff", ".png", ".jpg", ".jpeg", ".tga", ".bmp",
    ".hdr", ".sgi", ".rgb", ".jp2", ".webp",
})

#: Export formats by the names people use, mapped to OpenTimelineIO adapter names.
EXPORT_ALIASES = {"edl": "cmx_3600", "xml": "fcp_xml", "fcpxml": "fcpx_xml", "aaf": "AAF"}

#: Adapters that cannot write an ``ImageSequenceReference``, and what they do instead.
NO_IMAGE_SEQUENCES = {
    "fcp_xml": "it fails on ImageSequenceReference media",
    "AAF": "it only writes clips that came from an AAF (mob ids), not image sequences",
}


class MediaKind(str, enum.Enum):
    """What a clip's media is, as far as reading its frames goes."""

    SEQUENCE = "sequence"
    MOVIE = "movie"
    IMAGE = "image"
    MISSING = "missing"
    GENERATOR = "generator"


#: Kinds whose frames shotfill can read, given a path.
READABLE_KINDS = frozenset({MediaKind.SEQUENCE, MediaKind.MOVIE, MediaKind.IMAGE})


# -- what the pipeline reads ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClipMedia:
    """The media behind one clip, as the pipeline needs it to read frames.

    ``path`` is an absolute path, or for an image sequence a frame pattern whose
    run of ``#`` is the frame number zero-padded to its length
    (``/plates/sh010.####.exr``; a single ``#`` for unpadded numbers). It is None
    when the media is not on this machine (missing reference, remote URL) or is a
    generator.

    Frame numbers are the media's own: for a sequence, file numbers (as
    ``ImageSequenceReference.frame_for_time`` gives them, continued past the
    available range); for a movie or image, 0-based frame indices counted from
    the start of ``available_range`` (from media time 0 when there is none).
    ``source_first..source_last`` (inclusive) are the frames the edit uses,
    ``available_first..available_last`` what the media holds (None when the
    media does not say)::

        media     |<-- handle -->|<====== used by the edit ======>|<-- handle -->|
                  available_first source_first        source_last  available_last

    A handle is negative when the edit uses frames the media does not hold.
    """

    clip_name: str
    path: str | None
    media_kind: MediaKind
    rate: float
    source_first: int
    source_last: int
    available_first: int | None
    available_last: int | None

    @property
    def handles_before(self) -> int | None:
        """Real frames in the media before the edit's in point."""
        if self.available_first is None:
            return None
        return self.source_first - self.available_first

    @property
    def handles_after(self) -> int | None:
        """Real frames in the media after the edit's out point."""
        if self.available_last is None:
            return None
        return self.available_last - self.source_last

    @property
    def readable(self) -> bool:
        """Whether this is media with pixels and a local path (on disk or not)."""
        return self.path is not None and self.media_kind in READABLE_KINDS

    def frame_path(self, frame: int) -> str:
        """The file holding ``frame``: the sequence pattern filled in, else ``path``."""
        if self.path is None:
            raise MediaError(self.clip_name,
                             f"the clip has no media on this machine ({self.media_kind.value})")
        if self.media_kind is not MediaKind.SEQUENCE:
            return self.path
        folder, name = os.path.split(self.path)
        run = list(re.finditer("#+", name))[-1]
        number = f"{frame:0{len(run.group())}d}"
        return os.path.join(folder, name[:run.start()] + number + name[run.end():])

    @property
    def exists(self) -> bool:
        """Whether the file (for a sequence: the first frame the edit uses) is on disk."""
        return self.path is not None and Path(self.frame_path(self.source_first)).is_file()

    def to_dict(self) -> dict:
        return {
            "clip_name": self.clip_name,
            "path": self.path,
            "media_kind": self.media_kind.value,
            "rate": self.rate,
            "source_first": self.source_first,
            "source_last": self.source_last,
            "available_first": self.available_first,
            "available_last": self.available_last,
            "handles_before": self.handles_before,
            "handles_after": self.handles_after,
            "exists": self.exists,
        }


@dataclasses.dataclass(frozen=True)
class Target:
    """One thing shotfill can do to an edit.

    ``record_range`` is where the target sits, in track time: the gap for a
    bridge, the clip for an extension or a fill. ``frames`` is the number of
    frames to make (the gap's length for a bridge, the clip's for a fill; None
    for an extension, whose length the user chooses). ``clip_a`` is the clip
    before the gap (bridge) or the clip itself; ``clip_b`` the clip after the
    gap; ``mask`` the mask linked to a fill's clip.
    """

    id: str
    kind: TaskKind
    track_name: str
    track_index: int                 # index in ``timeline.tracks`` (all tracks, audio too)
    record_range: TimeRange
    rate: float
    frames: int | None
    clip_a: ClipMedia | None
    clip_b: ClipMedia | None = None
    mask: ClipMedia | None = None
    timeline_start: RationalTime | None = None   # the timeline's global_start_time

    @property
    def ready(self) -> bool:
        """Whether every media file the target needs is on disk."""
        media = [m for m in (self.clip_a, self.clip_b, self.mask) if m is not None]
        return all(m.exists for m in media)

    def to_dict(self) -> dict:
        """A JSON-serialisable view: record frames in track time and as record timecodes.

        ``record_first``/``record_last`` are inclusive frame numbers at
        ``rate`` (0 = the timeline's first frame); the ``_tc`` twins add the
        timeline's start time, as an editor reads them (None when ``rate`` has no
        SMPTE timecode).
        """
        rate = self.rate
        start = self.record_range.start_time
        last = self.record_range.end_time_exclusive() - RationalTime(1, rate)
        offset = self.timeline_start if self.timeline_start is not None else RationalTime(0, rate)
        return {
            "id": self.id,
            "kind": self.kind.value,
            "track_name": self.track_name,
            "track_index": self.track_index,
            "rate": rate,
            "record_first": start.to_frames(rate),
            "record_last": last.to_frames(rate),
            "record_first_tc": _timecode(offset + start, rate),
            "record_last_tc": _timecode(offset + last, rate),
            "frames": self.frames,
            "ready": self.ready,
            "clip_a": self.clip_a.to_dict() if self.clip_a is not None else None,
            "clip_b": self.clip_b.to_dict() if self.clip_b is not None else None,
            "mask": self.mask.to_dict() if self.mask is not None else None,
        }


@dataclasses.dataclass
class Placement:
    """A generated EXR sequence to put on the edit.

    Files are ``directory/<name_prefix><frame zero-padded><name_suffix>`` for
    ``start_frame..end_frame`` (inclusive). ``record_start`` is where the first
    generated frame goes, in the same track time as :attr:`Target.record_range`.
    ``metadata`` is stored under ``clip.metadata["shotfill"]``.
    """

    target_id: str
    directory: Path
    name_prefix: str
    name_suffix: str
    frame_zero_padding: int
    start_frame: int
    end_frame: int
    rate: float
    record_start: RationalTime
    metadata: dict = dataclasses.field(default_factory=dict)

    @property
    def duration(self) -> RationalTime:
        return RationalTime(self.end_frame - self.start_frame + 1, self.rate)


# -- reading ------------------------------------------------------------------------


def load_edit(path, *, rate: float | None = None) -> otio.schema.Timeline:
    """Read an edit in any format an installed OpenTimelineIO adapter reads.

    ``rate`` is the frame rate of formats that do not carry one: CMX 3600 EDL
    and ALE (default 24). Other formats carry their own rates and ignore it. An
    EDL read at 24 whose timecodes count 24 frames or more fails with a message
    asking for its rate; the rate is never guessed. (An EDL at another rate whose
    timecodes happen to stay below frame 24 cannot be told from a 24 fps one.)

    A file holding a list of clips rather than an edit (an ALE, a bin) becomes a
    timeline named after the file with one video track ``V1`` holding the clips
    one after the other. A file holding several edits is an error. An empty
    timeline is not: it simply has no targets.

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
    return _as_timeline(result, path)


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


def _as_timeline(result, path: Path) -> otio.schema.Timeline:
    """The one timeline an adapter's result holds."""
    if isinstance(result, otio.schema.Timeline):
        return result
    if not isinstance(result, otio.schema.SerializableCollection):
        raise TimelineError(f"{path}: holds a {type(result).__name__}, not an edit")
    timelines = [child for child in result if isinstance(child, otio.schema.Timeline)]
    if len(timelines) == 1:
        return timelines[0]
    if timelines:
        names = ", ".join(repr(t.name) for t in timelines)
        raise TimelineError(f"{path}: holds {len(timelines)} edits ({names}); "
                            "export the one to work on as its own file")
    timeline = otio.schema.Timeline(name=path.stem)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for clip in result.find_clips():
        track.append(clip.clone())
    timeline.tracks.append(track)
    return timeline


# -- targets ------------------------------------------------------------------------


def find_targets(timeline: otio.schema.Timeline, *, edit_path) -> list[Target]:
    """Every bridge, extension and fill target of ``timeline``, track by track, in time order.

    ``edit_path`` is the file the timeline was read from: relative media paths
    are resolved against its folder, and errors name it.
    """
    return [target for target, _ in _targets_with_items(timeline, Path(edit_path).absolute())]


def _targets_with_items(timeline: otio.schema.Timeline, edit_path: Path):
    """Yield ``(target, item)``: the target and the gap or clip it was found at."""
    start = timeline.global_start_time
    video = [(i, t) for i, t in enumerate(timeline.tracks) if t.kind == otio.schema.TrackKind.Video]
    for number, (track_index, track) in enumerate(video, start=1):
        label = f"V{number}"
        try:
            yield from _track_targets(track, label, track_index, edit_path, start)
        except otio.exceptions.OTIOError as err:
            raise TimelineError(f"{edit_path}: track {label} ({track.name!r}): {err}") from err


def _track_targets(track: otio.schema.Track, label: str, track_index: int, edit_path: Path,
                   timeline_start: RationalTime | None):
    ranges = track.range_of_all_children()
    children = list(track)
    common = dict(track_name=track.name, track_index=track_index, timeline_start=timeline_start)
    gaps = clips = 0
    for index, item in enumerate(children):
        record = ranges[item]
        rate = record.duration.rate
        if isinstance(item, otio.schema.Gap):
            gaps += 1
            before = children[index - 1] if index > 0 else None
            after = children[index + 1] if index + 1 < len(children) else None
            if record.duration.value > 0 and _plays(before) and _plays(after):
                yield Target(
                    id=f"{label}.gap{gaps}", kind=TaskKind.BRIDGE, record_range=record, rate=rate,
                    frames=record.duration.to_frames(), clip_a=_clip_media(before, edit_path),
                    clip_b=_clip_media(after, edit_path), **common), item
        elif isinstance(item, otio.schema.Clip):
            clips += 1
            if not _plays(item):
                continue
            media = _clip_media(item, edit_path)
            if not media.readable:
                continue
            name = f"{label}.clip{clips}"
            for suffix, kind in (("head", TaskKind.EXTEND_BACKWARD), ("tail", TaskKind.EXTEND_FORWARD)):
                yield Target(id=f"{name}.{suffix}", kind=kind, record_range=record, rate=rate,
                             frames=None, clip_a=media, **common), item
            mask = _linked_mask(item, media, edit_path)
            if mask is not None:
                yield Target(id=f"{name}.fill", kind=TaskKind.FILL, record_range=record, rate=rate,
                             frames=record.duration.to_frames(), clip_a=media, mask=mask, **common), item


def _plays(item) -> bool:
    """Whether ``item`` is an enabled clip with a length: something on screen."""
    return (isinstance(item, otio.schema.Clip) and item.enabled
            and item.trimmed_range().duration.value > 0)


def _clip_media(clip: otio.schema.Clip, edit_path: Path) -> ClipMedia:
    return _media(clip.name, clip.media_reference, clip.trimmed_range(), edit_path.parent)


def _media(name: str, reference, used: TimeRange, folder: Path) -> ClipMedia:
    """Describe ``reference`` and the frames of it that ``used`` covers.

    ``used`` is in the reference's media time (a clip's source range).
    """
    available = reference.available_range if reference is not None else None
    first_number = 0
    if isinstance(reference, otio.schema.ImageSequenceReference):
        rate = reference.rate
        first_number = reference.start_frame
        base = _local_path(reference.target_url_base, folder) if reference.target_url_base else str(folder)
        path = None
        if base is not None:
            padding = "#" * max(reference.frame_zero_padding, 1)
            path = os.path.join(base, f"{reference.name_prefix}{padding}{reference.name_suffix}")
        kind = MediaKind.SEQUENCE
    else:
        rate = (available if available is not None else used).start_time.rate
        if isinstance(reference, otio.schema.GeneratorReference):
            path, kind = None, MediaKind.GENERATOR
        elif isinstance(reference, otio.schema.ExternalReference):
            path = _local_path(reference.target_url, folder)
            kind = _kind_of_file(path)
        else:  # MissingReference, no reference, or a reference type we cannot read
            path, kind = None, MediaKind.MISSING
    if path is None and kind is not MediaKind.GENERATOR:
        kind = MediaKind.MISSING

    origin = available.start_time if available is not None else RationalTime(0, rate)

    def number(time: RationalTime) -> int:
        return first_number + (time - origin).to_frames(rate)

    one = RationalTime(1, rate)
    return ClipMedia(
        clip_name=name,
        path=path,
        media_kind=kind,
        rate=float(rate),
        source_first=number(used.start_time),
        source_last=number(used.end_time_exclusive() - one),
        available_first=number(available.start_time) if available is not None else None,
        available_last=number(available.end_time_exclusive() - one) if available is not None else None,
    )


def _kind_of_file(path: str | None) -> MediaKind:
    """A single file's kind, by its suffix: a still image, else a movie."""
    if path is None:
        return MediaKind.MISSING
    return MediaKind.IMAGE if Path(path).suffix.lower() in IMAGE_SUFFIXES else MediaKind.MOVIE


def _local_path(url: str, folder: Path) -> str | None:
    """The local path a media URL names; relative ones are resolved against ``folder``.

    ``file://`` URLs are decoded (``%20`` -> space); a plain path is taken as it
    is; other schemes (``http``, ``s3``...) are not on this machine: None.
    """
    if not url:
        return None
    parts = urllib.parse.urlsplit(url, allow_fragments=False)
    if parts.scheme == "file":
        host = parts.netloc if parts.netloc not in ("", "localhost") else ""
        return urllib.request.url2pathname(f"//{host}{parts.path}" if host else parts.path)
    if len(parts.scheme) > 1:  # a one-letter scheme is a Windows drive ("C:/plates")
        return None
    return url if Path(url).is_absolute() else os.path.normpath(folder / url)


def _linked_mask(clip: otio.schema.Clip, media: ClipMedia, edit_path: Path) -> ClipMedia | None:
    """The mask linked to ``clip``, numbered frame for frame like the clip's media.

    A mask reference (``clip.media_references()["mask"]``) is described on its
    own, over the clip's source range, so its numbers are its own files'. A
    mask path in ``clip.metadata["shotfill"]["mask"]`` uses the clip's
    numbering: mask file N goes with clip frame N.
    """
    references = clip.media_references()
    for key in MASK_REFERENCE_KEYS:
        if key in references:
            return _media(clip.name, references[key], clip.trimmed_range(), edit_path.parent)
    ours = clip.metadata.get("shotfill")
    if not isinstance(ours, Mapping) or "mask" not in ours:
        return None
    pattern = ours["mask"]
    if not isinstance(pattern, str) or not pattern:
        raise TimelineError(f"{edit_path}: clip '{clip.name}': metadata shotfill.mask must be a path "
                            f"or frame pattern, got {pattern!r}")
    pattern = re.sub(r"%0?(\d*)d", lambda m: "#" * max(int(m.group(1) or 1), 1), pattern)
    path = _local_path(pattern, edit_path.parent)
    if path is not None and "#" in os.path.basename(path):
        kind = MediaKind.SEQUENCE
    else:
        kind = _kind_of_file(path)
    return dataclasses.replace(media, path=path, media_kind=kind)


def _timecode(time: RationalTime, rate: float) -> str | None:
    if not RationalTime.is_valid_timecode_rate(rate):
        return None
    return otio.opentime.to_timecode(time, rate)


# -- writing back -------------------------------------------------------------------


def write_back(edit_path, timeline: otio.schema.Timeline, placements: list[Placement], *,
               mode: str = "track", out_path=None, export_format: str | None = None) -> Path:
    """Put generated sequences on a new version of the edit; return the new ``.otio``.

    ``timeline`` is the edit as read from ``edit_path``; neither is changed.
    Each placement becomes a clip whose media is an ``ImageSequenceReference``
    to its EXR files, with ``clip.metadata["shotfill"]`` = the placement's
    metadata plus its ``target_id``.

    ``mode="track"`` puts the clips on a new video track on top, named
    ``shotfill`` (``shotfill 2``... when taken), at their record starts, with
    gaps between::

        shotfill           [ gen: gap1 ]              [ gen: clip2.tail ]
        V1        [ clip1 ][   gap1    ][ clip2      ]

    ``mode="replace"`` puts each bridge's clip in place of its gap, on the gap's
    own track; the placement must start where the gap does and last as long.

    The result is saved next to the input as ``<stem>.shotfill.otio``, or
    ``<stem>.shotfill.v2.otio``, ``.v3``... when taken; an earlier version is never
    overwritten. ``out_path`` names the file instead (written with the adapter
    its suffix names; it may overwrite, but never the input). ``export_format``
    (``"edl"``, ``"fcp_xml"``, an adapter name...) also writes the result
    through that adapter, beside the ``.otio`` with the same stem and the
    adapter's suffix (``cut.shotfill.edl``). Files appear all together or not at
    all.
    """
    edit_path = Path(edit_path)
    if mode not in WRITE_MODES:
        raise TimelineError(f"unknown write-back mode {mode!r} (use {' or '.join(WRITE_MODES)})")
    if not placements:
        raise TimelineError(f"{edit_path}: nothing to write back (no placements)")
    result = timeline.clone()
    targets = {target.id: (target, item)
               for target, item in _targets_with_items(result, edit_path.absolute())}
    for placement in placements:
        _check_placement(placement, targets, edit_path)
    if mode == "track":
        _add_track(result, placements)
    else:
        _replace_gaps(placements, targets, edit_path)
    export = _export_adapter(export_format) if export_format is not None else None
    if out_path is not None:
        return _write_explicit(result, Path(out_path), export, edit_path)
    return _write_next_version(result, edit_path, export)


def _check_placement(placement: Placement, targets: dict, edit_path: Path) -> None:
    name = f"placement for '{placement.target_id}'"
    if placement.target_id not in targets:
        listing = ", ".join(targets) or "none"
        raise TimelineError(f"{edit_path}: {name}: no such target in the edit (targets: {listing})")
    if placement.end_frame < placement.start_frame:
        raise TimelineError(f"{edit_path}: {name}: end frame {placement.end_frame} is before "
                            f"start frame {placement.start_frame}")
    if not placement.rate > 0:
        raise TimelineError(f"{edit_path}: {name}: the frame rate must be positive, got {placement.rate!r}")
    if placement.frame_zero_padding < 0:
        raise TimelineError(f"{edit_path}: {name}: frame_zero_padding must be 0 or more, "
                            f"got {placement.frame_zero_padding}")
    if placement.record_start.value < 0:
        raise TimelineError(f"{edit_path}: {name}: it would start {-placement.record_start.to_frames()} "
                            "frames before the timeline's first frame")


def _sequence_clip(placement: Placement) -> otio.schema.Clip:
    """A clip showing the whole generated sequence; media time = file frame number."""
    available = TimeRange(RationalTime(placement.start_frame, placement.rate), placement.duration)
    reference = otio.schema.ImageSequenceReference(
        target_url_base=Path(placement.directory).absolute().as_uri() + "/",
        name_prefix=placement.name_prefix,
        name_suffix=placement.name_suffix,
        start_frame=placement.start_frame,
        frame_step=1,
        rate=placement.rate,
        frame_zero_padding=placement.frame_zero_padding,
        available_range=available,
    )
    return otio.schema.Clip(
        name=placement.target_id,
        media_reference=reference,
        source_range=available,
        metadata={"shotfill": {**placement.metadata, "target_id": placement.target_id}},
    )


def _add_track(timeline: otio.schema.Timeline, placements: list[Placement]) -> None:
    """Append ``shotfill`` video tracks with each placement at its record start.

    Placements that overlap in time (an extension running into the next clip's
    fill, say) go on further tracks, ``shotfill 2`` and on: each lands on the
    first track where it fits::

        shotfill 2                              [ gen: clip3.fill ]
        shotfill     [ gen: gap1 ]   [ gen: clip2.tail ]
        V1  [ clip1 ][    gap1   ][ clip2  ][ clip3   ]
    """
    taken = {track.name for track in timeline.tracks}
    names = (n for n in itertools.chain(["shotfill"], (f"shotfill {i}" for i in itertools.count(2)))
             if n not in taken)
    ordered = sorted(placements, key=lambda p: p.record_start)
    lanes: list[tuple[otio.schema.Track, list]] = []   # track and its end time (a one-item list)
    for placement in ordered:
        lane = next((lane for lane in lanes if (placement.record_start - lane[1][0]).value >= 0), None)
        if lane is None:
            lane = (otio.schema.Track(name=next(names), kind=otio.schema.TrackKind.Video),
                    [RationalTime(0, placement.rate)])
            lanes.append(lane)
        track, end = lane
        lead = placement.record_start - end[0]
        if lead.value > 0:
            track.append(otio.schema.Gap(source_range=TimeRange(RationalTime(0, lead.rate), lead)))
        track.append(_sequence_clip(placement))
        end[0] = placement.record_start + placement.duration
    for track, _ in lanes:
        timeline.tracks.append(track)


def _replace_gaps(placements: list[Placement], targets: dict, edit_path: Path) -> None:
    """Put each bridge's clip in place of its gap (ids were resolved before any change)."""
    done = set()
    for placement in placements:
        target, gap = targets[placement.target_id]
        name = f"placement for '{target.id}'"
        if target.kind is not TaskKind.BRIDGE:
            raise TimelineError(f"{edit_path}: {name}: only a bridge can replace its gap; "
                                f"this target is a {target.kind.value} (use mode 'track')")
        if target.id in done:
            raise TimelineError(f"{edit_path}: {name}: the gap is already replaced by another placement")
        if placement.duration != target.record_range.duration:
            raise TimelineError(f"{edit_path}: {name}: it holds {placement.duration.to_frames()} frames, "
                                f"the gap {target.frames}; only a sequence as long as the gap replaces it")
        if placement.record_start != target.record_range.start_time:
            raise TimelineError(f"{edit_path}: {name}: it starts at frame "
                                f"{placement.record_start.to_frames(target.rate)}, the gap at "
                                f"{target.record_range.start_time.to_frames(target.rate)}")
        track = gap.parent()
        track[track.index(gap)] = _sequence_clip(placement)
        done.add(target.id)


def _export_adapter(export_format: str) -> otio.adapters.Adapter:
    name = EXPORT_ALIASES.get(export_format.lower(), export_format)
    try:
        adapter = otio.adapters.from_name(name)
    except otio.exceptions.NotSupportedError:
        installed = ", ".join(otio.adapters.available_adapter_names())
        raise TimelineError(f"export format {export_format!r}: no such OpenTimelineIO adapter is "
                            f"installed (installed: {installed})") from None
    if adapter.name == "otio_json":
        raise TimelineError(f"export format {export_format!r}: the result is always saved as .otio")
    if not adapter.has_feature("write"):
        raise TimelineError(f"export format {export_format!r}: the {adapter.name} adapter cannot write")
    return adapter


def _outputs(otio_path: Path, otio_adapter: str, export) -> list[tuple[Path, str]]:
    outputs = [(otio_path, otio_adapter)]
    if export is not None:
        outputs.append((otio_path.with_suffix(f".{export.suffixes[0]}"), export.name))
    return outputs


def _write_explicit(timeline, out_path: Path, export, edit_path: Path) -> Path:
    try:
        adapter = otio.adapters.from_filepath(str(out_path))
    except otio.exceptions.NoKnownAdapterForExtensionError:
        raise TimelineError(
            f"{out_path}: no OpenTimelineIO adapter writes '{out_path.suffix}' files") from None
    outputs = _outputs(out_path, adapter.name, export)
    for path, _ in outputs:
        if path.resolve() == edit_path.resolve():
            raise TimelineError(f"{path}: that is the input edit; shotfill never overwrites it")
    _write_files(timeline, outputs)
    return out_path


def _write_next_version(timeline, edit_path: Path, export) -> Path:
    """Write ``<stem>.shotfill.otio``, or the first free ``<stem>.shotfill.vN.otio``."""
    for version in itertools.count(1):
        tag = "shotfill" if version == 1 else f"shotfill.v{version}"
        otio_path = edit_path.with_name(f"{edit_path.stem}.{tag}.otio")
        outputs = _outputs(otio_path, "otio_json", export)
        if any(path.exists() for path, _ in outputs):
            continue
        try:
            otio_path.open("x").close()   # claim this version against a concurrent writer
        except FileExistsError:
            continue
        except OSError as err:
            raise TimelineError(f"{otio_path}: cannot write next to the edit: {err}") from err
        try:
            _write_files(timeline, outputs)
        except BaseException:
            otio_path.unlink()
            raise
        return otio_path


def _write_files(timeline, outputs: list[tuple[Path, str]]) -> None:
    """Write every ``(path, adapter)`` in a staging folder, then move them all into place."""
    for path, adapter in outputs:
        if adapter in NO_IMAGE_SEQUENCES:
            raise TimelineError(f"{path}: the {adapter} adapter cannot write the generated image "
                                f"sequences ({NO_IMAGE_SEQUENCES[adapter]}); use the .otio or export 'edl'")
    folder = outputs[0][0].parent
    try:
        staging = tempfile.TemporaryDirectory(dir=folder, prefix=".shotfill-")
    except OSError as err:
        raise TimelineError(f"{folder}: cannot write there: {err}") from err
    with staging:
        staged = []
        for path, adapter in outputs:
            temporary = Path(staging.name) / path.name
            try:
                otio.adapters.write_to_file(timeline, str(temporary), adapter_name=adapter)
            except Exception as err:  # adapters are plugins and raise anything
                raise TimelineError(
                    f"{path}: the {adapter} adapter could not write it: {_reason(err)}") from err
            staged.append((temporary, path))
        for temporary, path in staged:
            os.replace(temporary, path)


from .publish import publish  # noqa: E402  (publishing reads and writes edits with the functions above)
