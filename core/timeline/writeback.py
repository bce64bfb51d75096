"""Writing back: generated sequences (and the handle frames they continue) placed on a new version
of the edit, never over the input, results of earlier runs kept, and exported beside it in the
input's own format (EDL, FCP 7 XML, FCPXML) where an adapter can write it.
"""
from __future__ import annotations

import dataclasses
import warnings as _warnings
from collections.abc import Mapping
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from ..errors import TimelineError
from ..plan import TaskKind
from .export import (INPUT_FORMAT_EXPORTS, export_adapter, mostly_relative, reference_media, write_explicit,
                     write_next_version)
from .targets import (
    METADATA_KEY,
    ROLE_GENERATED,
    ROLE_HANDLES,
    is_result_track,
    result_target_id,
    targets_with_sites,
)
from .versions import family, metadata_of, newest_version, relative_or_absolute, versions_of

#: Write-back modes: a new track on top, or the bridged gap replaced in place.
WRITE_MODES = ("track", "replace")


@dataclasses.dataclass
class Placement:
    """A generated EXR sequence to put on the edit, with the handle frames around it.

    Files are ``directory/<name_prefix><frame zero-padded><name_suffix>`` for
    ``start_frame..end_frame`` (inclusive). ``record_start`` is where the first
    generated frame goes, in the same track time as
    :attr:`~shotfill.timeline.Target.record_range`. ``metadata`` is stored under
    ``clip.metadata["shotfill"]``.

    ``handles_before``/``handles_after`` are real media frames placed right before and after
    the generated ones: before, the frames after the out point of the clip before (a bridge's
    A, a forward extension's own clip); after, the frames before the in point of the clip after
    (a bridge's B, a backward extension's own clip)::

        forward extension   [ clip ][ handles_before ][ generated ]
        backward extension             [ generated ][ handles_after ][ clip ]
        bridge              [ A ][ handles_before ][ generated ][ handles_after ][ B ]
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
    handles_before: int = 0
    handles_after: int = 0

    @property
    def duration(self) -> RationalTime:
        """The generated frames' length (handles not counted)."""
        return RationalTime(self.end_frame - self.start_frame + 1, self.rate)

    @property
    def block_range(self) -> TimeRange:
        """Where the placement goes on the edit, handles included."""
        start = self.record_start - RationalTime(self.handles_before, self.rate)
        frames = self.handles_before + self.end_frame - self.start_frame + 1 + self.handles_after
        return TimeRange(start, RationalTime(frames, self.rate))


# -- writing back -------------------------------------------------------------------


def write_back(edit_path, timeline: otio.schema.Timeline, placements: list[Placement], *,
               mode: str = "track", out_path=None, export_format: str | None = None,
               warnings: list | None = None) -> Path:
    """Put generated sequences on a new version of the edit; return the new ``.otio``.

    ``timeline`` is the edit as read from ``edit_path``; neither is changed.
    Each placement becomes a clip whose media is an ``ImageSequenceReference``
    to its EXR files, with ``clip.metadata["shotfill"]`` = the placement's
    metadata, its ``target_id`` and ``role: generated``; its handle frames become
    clones of the neighbouring clip over those frames (``role: handles``).

    ``mode="track"`` puts each target's clips on a video track of its own on top,
    named ``shotfill <target id>`` (``track.metadata["shotfill"]`` =
    ``{"results": True, "target_id": ...}``), at their record starts::

        shotfill V1.clip2.tail                               [ hnd ][ gen ]
        shotfill V1.gap1            [ hnd ][ gen ][ hnd ]
        V1                  [ clip1 ][      gap1        ][ clip2 ]

    ``mode="replace"`` puts each bridge's clips in place of its gap, on the gap's
    own track; they must cover the gap exactly.

    A target that already has a placement (an earlier take) has it replaced: its
    clips become a gap again (the gap itself, in replace mode) and its track is
    refilled, so one target never has two results on an edit.

    **Versions.** The result is saved next to the input as ``<stem>.shotfill.otio``,
    then ``<stem>.shotfill.v2.otio``, ``.v3``...: an earlier version is never
    overwritten, and a concurrent writer gets another version. A new version builds
    on the newest version shotfill wrote from the same input (the input unchanged
    since: ``timeline.metadata["shotfill"]`` records ``based_on``, the input's path
    relative to the version, its ``based_on_sha256`` and the ``versions`` so far), so
    results accumulate; when the input is itself such a version, its input is the
    one whose versions count. ``out_path`` names the file instead (written with the
    adapter its suffix names; it may overwrite, but never the input), built on
    ``timeline`` alone.

    **Media references** of the new clips follow the input's: relative to the new
    file's folder when most of the input's local media references are relative,
    absolute ``file://`` URLs otherwise. Relative references of the input are
    rebased when the new file is written in another folder.

    **Exports.** ``export_format`` (``"edl"``, ``"fcp_xml"``, an adapter name...) also
    writes the result through that adapter, beside the ``.otio`` with the same stem
    and the adapter's suffix (``cut.shotfill.edl``); files appear all together or not
    at all. Without it, an edit read from an EDL, FCP 7 XML or FCPXML is also written
    in that format when the adapter can write it; when it cannot, the ``.otio`` is
    written alone and a warning says why. What a format cannot carry is said in a
    warning: an EDL holds one video track (the result tracks are flattened onto it,
    as the edit plays), FCP 7 XML and FCPXML hold no image sequences (each is
    referenced by its first frame file).

    Warnings go to ``warnings`` (a list the caller shows) or, without one, through
    :func:`warnings.warn`.
    """
    edit_path = Path(edit_path)
    notes: list[str] = []
    if mode not in WRITE_MODES:
        raise TimelineError(f"unknown write-back mode {mode!r} (use {' or '.join(WRITE_MODES)})")
    if not placements:
        raise TimelineError(f"{edit_path}: nothing to write back (no placements)")
    root, root_sha = family(edit_path, timeline, notes)
    export, required = None, False
    if export_format is not None:
        export, required = export_adapter(export_format), True
    elif root.suffix.lower() in INPUT_FORMAT_EXPORTS:
        export = otio.adapters.from_name(INPUT_FORMAT_EXPORTS[root.suffix.lower()])

    base_path, base = edit_path, timeline
    if out_path is None:
        newest = newest_version(root, root_sha, notes)
        if newest is not None:
            base_path, base = newest
    result = base.clone()
    _place_all(result, placements, mode, base_path, edit_path)
    relative = mostly_relative(base, base_path.parent)

    def prepare(otio_path: Path) -> otio.schema.Timeline:
        final = result.clone()
        reference_media(final, base_path.parent.absolute(), otio_path.parent.absolute(), relative)
        earlier = versions_of(base) if base_path != root else []
        final.metadata[METADATA_KEY] = {
            **metadata_of(base),
            "based_on": relative_or_absolute(root, otio_path.parent),
            "based_on_sha256": root_sha,
            "versions": [*earlier, otio_path.name],
        }
        return final

    if out_path is not None:
        written = write_explicit(prepare, Path(out_path), export, required, edit_path, notes)
    else:
        written = write_next_version(prepare, root, export, required, notes)
    if warnings is not None:
        warnings.extend(notes)
    else:
        for note in notes:
            _warnings.warn(note, stacklevel=2)
    return written


# -- placing ----------------------------------------------------------------------------


def _place_all(timeline, placements: list[Placement], mode: str, base_path: Path, edit_path: Path) -> None:
    sites = {t.id: (t, site) for t, site in targets_with_sites(timeline, base_path.absolute())}
    seen = set()
    for placement in placements:
        if placement.target_id in seen:
            raise TimelineError(f"{edit_path}: two placements for '{placement.target_id}'; one target "
                                "takes one result")
        seen.add(placement.target_id)
        _check_placement(placement, sites, edit_path)
    for placement in placements:
        _remove_placement(timeline, placement.target_id)
    sites = {t.id: (t, site) for t, site in targets_with_sites(timeline, base_path.absolute())}
    for placement in placements:
        target, site = sites[placement.target_id]
        clips = _placement_clips(placement, target, site, edit_path)
        if mode == "track":
            _put_on_track(timeline, placement, clips)
        else:
            _replace_gap(placement, target, site, clips, edit_path)
    for track in list(timeline.tracks):
        ours = track.metadata.get(METADATA_KEY)
        if isinstance(ours, Mapping) and ours.get("results") and not list(track.find_clips()):
            timeline.tracks.remove(track)


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
    for side in ("handles_before", "handles_after"):
        value = getattr(placement, side)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise TimelineError(f"{edit_path}: {name}: {side} must be a whole number 0 or more, got {value!r}")
    start = placement.block_range.start_time
    if start.value < 0:
        raise TimelineError(f"{edit_path}: {name}: it would start {-start.to_frames()} "
                            "frames before the timeline's first frame")


def _remove_placement(timeline, target_id: str) -> None:
    """Take an earlier placement of ``target_id`` off the edit: its clips become a gap, its track
    is emptied (refilled by a track placement, else removed), an old-style result track left with
    no clips is removed."""
    for track in list(timeline.tracks):
        ours = track.metadata.get(METADATA_KEY)
        if isinstance(ours, Mapping) and ours.get("results") and ours.get("target_id") == target_id:
            del track[:]
            continue
        was_results = is_result_track(track)
        runs, index = [], 0
        children = list(track)
        while index < len(children):
            if result_target_id(children[index]) == target_id:
                end = index
                while end < len(children) and result_target_id(children[end]) == target_id:
                    end += 1
                runs.append((index, end))
                index = end
            else:
                index += 1
        if not runs:
            continue
        for first, end in reversed(runs):
            duration = sum((child.duration() for child in children[first:end]),
                           RationalTime(0, children[first].duration().rate))
            for position in range(end - 1, first - 1, -1):
                del track[position]
            track.insert(first, otio.schema.Gap(source_range=TimeRange(RationalTime(0, duration.rate), duration)))
        if was_results and not list(track.find_clips()):
            timeline.tracks.remove(track)


def _placement_clips(placement: Placement, target, site, edit_path: Path) -> list:
    """The clips a placement puts on the edit: handles before, the generated sequence, handles after."""
    name = f"{edit_path}: placement for '{target.id}'"
    kind = target.kind
    clips = [_sequence_clip(placement)]
    block = placement.block_range
    if placement.handles_before:
        if kind is TaskKind.BRIDGE:
            media, where, edge = target.clip_a, "after the out point of the clip before the gap", \
                target.record_range.start_time
        elif kind is TaskKind.EXTEND_FORWARD:
            media, where, edge = target.clip_a, "after the clip's out point", target.record_range.end_time_exclusive()
        else:
            raise TimelineError(f"{name}: a {kind.value} has no handle frames before its generated frames")
        _check_handles(name, placement.handles_before, media.handles_after, where)
        if block.start_time != edge:
            raise TimelineError(f"{name}: its handle frames would start at frame "
                                f"{block.start_time.to_frames(target.rate)}, not at frame "
                                f"{edge.to_frames(target.rate)} where the clip ends")
        clips.insert(0, _handle_clip(site.before, placement, placement.handles_before, after_out=True))
    if placement.handles_after:
        if kind is TaskKind.BRIDGE:
            media, where, edge = target.clip_b, "before the in point of the clip after the gap", \
                target.record_range.end_time_exclusive()
        elif kind is TaskKind.EXTEND_BACKWARD:
            media, where, edge = target.clip_a, "before the clip's in point", target.record_range.start_time
        else:
            raise TimelineError(f"{name}: a {kind.value} has no handle frames after its generated frames")
        _check_handles(name, placement.handles_after, media.handles_before, where)
        if block.end_time_exclusive() != edge:
            raise TimelineError(f"{name}: its handle frames would end before frame "
                                f"{block.end_time_exclusive().to_frames(target.rate)}, not at frame "
                                f"{edge.to_frames(target.rate)} where the clip starts")
        clips.append(_handle_clip(site.after, placement, placement.handles_after, after_out=False))
    return clips


def _check_handles(name: str, used: int, available: int | None, where: str) -> None:
    if available is None or used > available:
        held = ("does not say how many (offline here? publish with the jobs' --search-path)"
                if available is None else f"holds {max(available, 0)}")
        raise TimelineError(f"{name}: it places {used} handle frames {where}; the media {held}")


def _handle_clip(source: otio.schema.Clip, placement: Placement, frames: int, *, after_out: bool):
    """A clone of ``source`` over ``frames`` handle frames just after its out point (or before its in point)."""
    used = source.trimmed_range()
    length = RationalTime(frames, used.duration.rate)
    start = used.end_time_exclusive() if after_out else used.start_time - length
    clip = source.clone()
    clip.source_range = TimeRange(start, length)
    del clip.markers[:]
    clip.metadata[METADATA_KEY] = {"role": ROLE_HANDLES, "target_id": placement.target_id,
                                   "handles_of": source.name}
    return clip


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
        metadata={METADATA_KEY: {**placement.metadata, "target_id": placement.target_id,
                                 "role": ROLE_GENERATED}},
    )


def _put_on_track(timeline: otio.schema.Timeline, placement: Placement, clips: list) -> None:
    """The target's own result track (refilled if it has one, else a new one on top)."""
    track = next((t for t in timeline.tracks if _result_track_of(t) == placement.target_id), None)
    if track is None:
        track = otio.schema.Track(name=f"shotfill {placement.target_id}", kind=otio.schema.TrackKind.Video,
                                  metadata={METADATA_KEY: {"results": True, "target_id": placement.target_id}})
        timeline.tracks.append(track)
    lead = placement.block_range.start_time
    if lead.value > 0:
        track.append(otio.schema.Gap(source_range=TimeRange(RationalTime(0, lead.rate), lead)))
    track.extend(clips)


def _result_track_of(track) -> str | None:
    ours = track.metadata.get(METADATA_KEY)
    if isinstance(ours, Mapping) and ours.get("results"):
        return ours.get("target_id")
    return None


def _replace_gap(placement: Placement, target, site, clips: list, edit_path: Path) -> None:
    """Put a bridge's clips in place of its gap."""
    name = f"placement for '{target.id}'"
    if target.kind is not TaskKind.BRIDGE:
        raise TimelineError(f"{edit_path}: {name}: only a bridge can replace its gap; "
                            f"this target is a {target.kind.value} (use mode 'track')")
    block = placement.block_range
    if block.duration != target.record_range.duration:
        handles = placement.handles_before + placement.handles_after
        held = f"{placement.duration.to_frames()} frames" + (f" and {handles} handle frames" if handles else "")
        raise TimelineError(f"{edit_path}: {name}: it holds {held}, the gap {target.frames}; "
                            "only as many frames as the gap replace it")
    if block.start_time != target.record_range.start_time:
        raise TimelineError(f"{edit_path}: {name}: it starts at frame "
                            f"{block.start_time.to_frames(target.rate)}, the gap at "
                            f"{target.record_range.start_time.to_frames(target.rate)}")
    [gap] = site.items
    track = site.track
    index = track.index(gap)
    del track[index]
    for offset, clip in enumerate(clips):
        track.insert(index + offset, clip)


