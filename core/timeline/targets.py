"""Targets: the gaps, heads and tails, and fills of an edit that shotfill can work on, and the
media behind their clips (paths, frame numbers, handles, linked masks).

The rules that make a gap, a clip or a mask a target are drawn in :mod:`shotfill.timeline`.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from ..errors import MediaError, TimelineError
from ..plan import TaskKind

#: Keys of ``clip.media_references()`` that hold a clip's mask, in order of preference.
MASK_REFERENCE_KEYS = ("mask", "matte")

#: Single-image formats: an external reference to one of these is a still image, not a movie.
IMAGE_SUFFIXES = frozenset({
    ".exr", ".dpx", ".cin", ".tif", ".tiff", ".png", ".jpg", ".jpeg", ".tga", ".bmp",
    ".hdr", ".sgi", ".rgb", ".jp2", ".webp",
})


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

    def damage(self) -> list[str]:
        """What is wrong with the EXR files at the ends of the frames the edit uses, as far as their
        headers, chunk tables and chunk headers tell (pixels are decoded only when a job reads them): one
        ``"file: reason"`` per damaged file; empty for sound files, other media and files not on disk."""
        if self.path is None or self.media_kind not in (MediaKind.SEQUENCE, MediaKind.IMAGE):
            return []
        files = {self.frame_path(self.source_first), self.frame_path(self.source_last)}
        return [reason for file in sorted(files) if (reason := _exr_damage(file)) is not None]

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
            "damaged": self.damage(),
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

    def damage(self) -> list[str]:
        """``"file: reason"`` for each damaged EXR at the ends of the media the target reads (see
        :meth:`ClipMedia.damage`): a job on the target would stop there with exit 2."""
        media = [m for m in (self.clip_a, self.clip_b, self.mask) if m is not None]
        return [reason for m in media for reason in m.damage()]

    @property
    def handle_frames(self) -> dict | None:
        """Real media frames the target uses from handles, placed on the edit with the result.

        A bridge: ``{"a": n, "b": m}``, the frames it takes from A's tail and B's head
        handles (:func:`bridge_handles`). An extension: ``{"available": n}``, the handle
        frames on its side (it uses up to that many, as the length asked for allows). A
        fill: None.
        """
        if self.kind is TaskKind.BRIDGE:
            from_a, from_b = bridge_handles(self.frames, self.clip_a.handles_after, self.clip_b.handles_before)
            return {"a": from_a, "b": from_b}
        if self.kind is TaskKind.EXTEND_FORWARD:
            return {"available": max(self.clip_a.handles_after or 0, 0)}
        if self.kind is TaskKind.EXTEND_BACKWARD:
            return {"available": max(self.clip_a.handles_before or 0, 0)}
        return None

    @property
    def generated_frames(self) -> int | None:
        """Frames left to generate: a bridge's gap less its handles (0: the handles cover
        it), a fill's clip length; None for an extension (the user picks its length)."""
        if self.kind is TaskKind.BRIDGE:
            handles = self.handle_frames
            return self.frames - handles["a"] - handles["b"]
        if self.kind is TaskKind.FILL:
            return self.frames
        return None

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
            "handle_frames": self.handle_frames,
            "generated_frames": self.generated_frames,
            "ready": self.ready,
            "damaged": self.damage(),
            "clip_a": self.clip_a.to_dict() if self.clip_a is not None else None,
            "clip_b": self.clip_b.to_dict() if self.clip_b is not None else None,
            "mask": self.mask.to_dict() if self.mask is not None else None,
        }


# -- shotfill's own results ----------------------------------------------------------

#: The metadata key of everything shotfill writes on an edit.
METADATA_KEY = "shotfill"
#: ``clip.metadata["shotfill"]["role"]`` of the clips a placement puts on the edit: the generated
#: sequence, and the real handle frames it continues.
ROLE_GENERATED = "generated"
ROLE_HANDLES = "handles"


def result_target_id(item) -> str | None:
    """The target a clip shotfill placed belongs to (``metadata["shotfill"]["target_id"]``), else None."""
    if not isinstance(item, otio.schema.Clip):
        return None
    ours = item.metadata.get(METADATA_KEY)
    if not isinstance(ours, Mapping):
        return None
    target_id = ours.get("target_id")
    return target_id if isinstance(target_id, str) and target_id else None


def is_result_track(track) -> bool:
    """Whether ``track`` is one of shotfill's result tracks.

    It says so in ``track.metadata["shotfill"]["results"]``; a track written before that
    (named ``shotfill``...) is recognised by its clips: it holds some, all placed by shotfill.
    """
    ours = track.metadata.get(METADATA_KEY)
    if isinstance(ours, Mapping) and ours.get("results"):
        return True
    clips = [item for item in track if isinstance(item, otio.schema.Clip)]
    return bool(clips) and all(result_target_id(clip) is not None for clip in clips)


def bridge_handles(gap: int, a_handles: int | None, b_handles: int | None) -> tuple[int, int]:
    """``(from_a, from_b)``: the real frames a bridge of ``gap`` frames takes from A's tail
    handles and B's head handles; the ``gap - from_a - from_b`` frames between are generated.

    The handles share the gap evenly (A takes the odd frame) as far as both reach; when one
    side has fewer, the other takes the rest. So the frames that are generated sit where the
    handles run out, and a cut between the two shots' handles (when they cover the gap) falls
    near its middle::

        gap 20, handles 8 + 8    A A A A A A A A . . . . B B B B B B B B    4 generated
        gap 12, handles 8 + 8    A A A A A A B B B B B B                    0: covered
        gap 12, handles 2 + 30   A A B B B B B B B B B B                    0: covered
        gap 12, handles 0 + 5    . . . . . . . B B B B B                    7 generated

    Unknown (None) and negative handles count as none.
    """
    ha, hb = max(a_handles or 0, 0), max(b_handles or 0, 0)
    from_a = min(ha, gap - min(hb, gap // 2))
    from_b = min(hb, gap - from_a)
    return from_a, from_b


# -- targets ------------------------------------------------------------------------


@dataclasses.dataclass
class Site:
    """Where a target sits in a timeline: what :func:`~shotfill.timeline.write_back` changes.

    ``items`` are the track's children the target covers: the gap (or the clips an earlier
    placement put in its place), or the clip. ``before``/``after`` are the clips either side of
    a bridge's gap; for an extension or a fill, ``before`` and ``after`` are the clip itself.
    """

    track: otio.schema.Track
    items: list
    before: otio.schema.Clip | None
    after: otio.schema.Clip | None


def find_targets(timeline: otio.schema.Timeline, *, edit_path) -> list[Target]:
    """Every bridge, extension and fill target of ``timeline``, track by track, in time order.

    ``edit_path`` is the file the timeline was read from: relative media paths
    are resolved against its folder, and errors name it.

    shotfill's own results are never targets: result tracks are skipped (and not counted
    as ``V`` tracks), and the clips a placement put in place of a gap count as that gap,
    so an edit and every version published from it give the same ids.
    """
    return [target for target, _ in targets_with_sites(timeline, Path(edit_path).absolute())]


def targets_with_sites(timeline: otio.schema.Timeline, edit_path: Path):
    """Yield ``(target, site)``: the target and the :class:`Site` it was found at."""
    start = timeline.global_start_time
    video = [(i, t) for i, t in enumerate(timeline.tracks)
             if t.kind == otio.schema.TrackKind.Video and not is_result_track(t)]
    for number, (track_index, track) in enumerate(video, start=1):
        label = f"V{number}"
        try:
            yield from _track_targets(track, label, track_index, edit_path, start)
        except otio.exceptions.OTIOError as err:
            raise TimelineError(f"{edit_path}: track {label} ({track.name!r}): {err}") from err


def _slots(track: otio.schema.Track):
    """The track's children as ``(item, record range, items)``, each run of result clips of one
    target made one gap-like slot (``item`` None, ``items`` the clips)."""
    ranges = track.range_of_all_children()
    slots = []
    for item in track:
        target_id = result_target_id(item)
        if target_id is not None and slots and slots[-1][0] is None and slots[-1][3] == target_id:
            _, record, items, _ = slots[-1]
            slots[-1] = (None, TimeRange(record.start_time, record.duration + ranges[item].duration),
                         items + [item], target_id)
        elif target_id is not None:
            slots.append((None, ranges[item], [item], target_id))
        else:
            slots.append((item, ranges[item], [item], None))
    return [(item, record, items) for item, record, items, _ in slots]


def _track_targets(track: otio.schema.Track, label: str, track_index: int, edit_path: Path,
                   timeline_start: RationalTime | None):
    slots = _slots(track)
    common = dict(track_name=track.name, track_index=track_index, timeline_start=timeline_start)
    gaps = clips = 0
    for index, (item, record, items) in enumerate(slots):
        rate = record.duration.rate
        if item is None or isinstance(item, otio.schema.Gap):
            gaps += 1
            before = slots[index - 1][0] if index > 0 else None
            after = slots[index + 1][0] if index + 1 < len(slots) else None
            if record.duration.value > 0 and _plays(before) and _plays(after):
                yield Target(
                    id=f"{label}.gap{gaps}", kind=TaskKind.BRIDGE, record_range=record, rate=rate,
                    frames=record.duration.to_frames(), clip_a=_clip_media(before, edit_path),
                    clip_b=_clip_media(after, edit_path), **common), Site(track, items, before, after)
        elif isinstance(item, otio.schema.Clip):
            clips += 1
            if not _plays(item):
                continue
            media = _clip_media(item, edit_path)
            if not media.readable:
                continue
            name = f"{label}.clip{clips}"
            site = Site(track, items, item, item)
            for suffix, kind in (("head", TaskKind.EXTEND_BACKWARD), ("tail", TaskKind.EXTEND_FORWARD)):
                yield Target(id=f"{name}.{suffix}", kind=kind, record_range=record, rate=rate,
                             frames=None, clip_a=media, **common), site
            mask = _linked_mask(item, media, edit_path)
            if mask is not None:
                yield Target(id=f"{name}.fill", kind=TaskKind.FILL, record_range=record, rate=rate,
                             frames=record.duration.to_frames(), clip_a=media, mask=mask, **common), site


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


def _exr_damage(file: str) -> str | None:
    """The header or chunk-table damage of an EXR file on disk, else None (see :func:`_header_damage`)."""
    if Path(file).suffix.lower() != ".exr":
        return None
    try:
        stat = os.stat(file)
    except (OSError, ValueError):
        return None
    return _header_damage(file, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _header_damage(file: str, size: int, mtime_ns: int) -> str | None:
    """The verdict on ``file`` (as it was at ``size`` and ``mtime_ns``) of the bounded header parser,
    the chunk tables and every chunk's own header, pixels not decoded: a copy that stopped short fails."""
    from ..io.exr import check_exr

    try:
        check_exr(file, decode=False)
    except MediaError as err:
        return str(err)
    return None


def _timecode(time: RationalTime, rate: float) -> str | None:
    if not RationalTime.is_valid_timecode_rate(rate):
        return None
    return otio.opentime.to_timecode(time, rate)
