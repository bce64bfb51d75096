"""Writing back: generated sequences (and the handle frames they continue) placed on a new version
of the edit, never over the input, results of earlier runs kept, and exported beside it in the
input's own format (EDL, FCP 7 XML, FCPXML) where an adapter can write it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import re
import tempfile
import warnings as _warnings
from collections.abc import Mapping
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from ..errors import TimelineError
from ..plan import TaskKind
from .load import _reason
from .paths import is_edit
from .targets import (
    METADATA_KEY,
    _local_path,
    is_result_track,
    result_target_id,
    targets_with_sites,
)

#: Write-back modes: a new track on top, or the bridged gap replaced in place.
WRITE_MODES = ("track", "replace")

#: Export formats by the names people use, mapped to OpenTimelineIO adapter names.
EXPORT_ALIASES = {"edl": "cmx_3600", "xml": "fcp_xml", "fcpxml": "fcpx_xml", "aaf": "AAF"}

#: The export a new version gets by default, by the suffix of the edit it came from: the input's
#: own format, so the editor can open the result where the cut came from (the .otio is always written).
INPUT_FORMAT_EXPORTS = {".edl": "cmx_3600", ".xml": "fcp_xml", ".fcpxml": "fcpx_xml"}

#: Adapters that cannot write an ``ImageSequenceReference``, and what happens instead.
NO_IMAGE_SEQUENCES = {
    "fcp_xml": "it has no image-sequence media: each sequence is written as a reference to its first frame file",
    "fcpx_xml": "it has no image-sequence media: each sequence is written as a reference to its first frame file",
    "AAF": "it only writes clips that came from an AAF (mob ids), not image sequences",
}

#: Of those, the ones shotfill writes anyway, each sequence referenced by its first frame file.
FIRST_FRAME_EXPORTS = frozenset({"fcp_xml", "fcpx_xml"})

#: ``clip.metadata["shotfill"]["role"]`` of the clips a placement puts on the edit.
ROLE_GENERATED = "generated"
ROLE_HANDLES = "handles"


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
    root, root_sha = _family(edit_path, timeline, notes)
    export, required = None, False
    if export_format is not None:
        export, required = _export_adapter(export_format), True
    elif root.suffix.lower() in INPUT_FORMAT_EXPORTS:
        export = otio.adapters.from_name(INPUT_FORMAT_EXPORTS[root.suffix.lower()])

    base_path, base = edit_path, timeline
    if out_path is None:
        newest = _newest_version(root, root_sha, notes)
        if newest is not None:
            base_path, base = newest
    result = base.clone()
    _place_all(result, placements, mode, base_path, edit_path)
    relative = _mostly_relative(base, base_path.parent)

    def prepare(otio_path: Path) -> otio.schema.Timeline:
        final = result.clone()
        _reference_media(final, base_path.parent.absolute(), otio_path.parent.absolute(), relative)
        earlier = _versions_of(base) if base_path != root else []
        final.metadata[METADATA_KEY] = {
            **_metadata_of(base),
            "based_on": _relative_or_absolute(root, otio_path.parent),
            "based_on_sha256": root_sha,
            "versions": [*earlier, otio_path.name],
        }
        return final

    if out_path is not None:
        written = _write_explicit(prepare, Path(out_path), export, required, edit_path, notes)
    else:
        written = _write_next_version(prepare, root, export, required, notes)
    if warnings is not None:
        warnings.extend(notes)
    else:
        for note in notes:
            _warnings.warn(note, stacklevel=2)
    return written


def version_path(root: Path, version: int) -> Path:
    """The ``version``-th version shotfill writes of the edit ``root``: ``cut.shotfill.otio``, ``cut.shotfill.v2.otio``..."""
    tag = "shotfill" if version == 1 else f"shotfill.v{version}"
    return root.with_name(f"{root.stem}.{tag}.otio")


# -- versions ------------------------------------------------------------------------


def _metadata_of(timeline) -> dict:
    ours = timeline.metadata.get(METADATA_KEY)
    return dict(ours) if isinstance(ours, Mapping) else {}


def _versions_of(timeline) -> list[str]:
    versions = _metadata_of(timeline).get("versions")
    if versions is None or isinstance(versions, (str, Mapping)):
        return []
    return [str(v) for v in versions]


def _family(edit_path: Path, timeline, notes: list | None = None) -> tuple[Path, str | None]:
    """The edit whose versions these are, and its sha256 when they were made.

    An input shotfill wrote (``metadata["shotfill"]["based_on"]``) belongs to the edit it
    was made from, when that is an edit on disk; any other input is its own. So the metadata of
    a hostile or moved file cannot send the new version into a folder of its choosing beside a
    file that is not an edit (``/etc/passwd``): it is written beside the input instead, with a note.
    """
    ours = _metadata_of(timeline)
    based_on = ours.get("based_on")
    if isinstance(based_on, str) and based_on:
        root = Path(based_on) if "\0" not in based_on else None
        if root is not None and not root.is_absolute():
            root = edit_path.parent / root
        root = Path(os.path.normpath(root)) if root is not None else None
        if root is not None and is_edit(str(root)) and root.exists():
            sha = ours.get("based_on_sha256")
            return root, sha if isinstance(sha, str) else None
        if notes is not None:
            notes.append(f"{edit_path}: its metadata says it was made from {based_on!r}, which is not an edit "
                         "on disk here: the new version is written beside it, as a version of it")
    return edit_path, _sha256(edit_path)


def _sha256(path: Path) -> str | None:
    try:
        if path.is_dir():       # an .otiod bundle
            return _sha256(path / "content.otio")
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _newest_version(root: Path, root_sha: str | None, notes: list):
    """``(path, timeline)`` of the newest complete version of ``root`` made from it as it is now, or None."""
    pattern = re.compile(re.escape(root.stem) + r"\.shotfill(?:\.v(\d+))?\.otio")
    try:
        names = [p.name for p in root.parent.iterdir()] if root.parent.is_dir() else []
    except OSError:
        return None
    found = sorted(((int(m.group(1) or 1), name) for name in names if (m := pattern.fullmatch(name))),
                   reverse=True)
    changed = None
    for _, name in found:
        path = root.parent / name
        try:
            if path.stat().st_size == 0:
                continue                 # claimed by a writer that is still writing (or was killed)
            timeline = otio.adapters.read_from_file(str(path))
        except Exception as err:  # a damaged file is not built on; say so
            notes.append(f"{path}: not building on it, it cannot be read ({_reason(err)})")
            continue
        if not isinstance(timeline, otio.schema.Timeline):
            continue
        ours = _metadata_of(timeline)
        if not isinstance(ours.get("based_on"), str):
            continue
        if os.path.abspath(_family(path, timeline)[0]) != os.path.abspath(root):
            continue
        if root_sha is not None and ours.get("based_on_sha256") == root_sha:
            return path, timeline
        changed = changed or path
    if changed is not None:
        notes.append(f"{root.name} has changed since {changed.name} was made from it: the new version "
                     f"starts again from {root.name} and holds only these results")
    return None


def _relative_or_absolute(path: Path, folder: Path) -> str:
    try:
        return Path(os.path.relpath(path.absolute(), folder.absolute())).as_posix()
    except ValueError:          # another drive
        return str(path.absolute())


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


# -- media references --------------------------------------------------------------------


def _references(clip):
    for reference in clip.media_references().values():
        if isinstance(reference, otio.schema.ImageSequenceReference):
            yield reference, "target_url_base"
        elif isinstance(reference, otio.schema.ExternalReference):
            yield reference, "target_url"


def _is_relative(url: str) -> bool:
    return bool(url) and not re.match(r"[A-Za-z][A-Za-z0-9+.-]+:", url) and not Path(url).is_absolute() \
        and not url.startswith("/")


def _mostly_relative(timeline, folder: Path) -> bool:
    """Whether most of the edit's own local media references (shotfill's aside) are relative."""
    relative = absolute = 0
    for clip in timeline.find_clips():
        if result_target_id(clip) is not None:
            continue
        for reference, attribute in _references(clip):
            url = getattr(reference, attribute)
            if _is_relative(url):
                relative += 1
            elif _local_path(url, folder) is not None:
                absolute += 1
    return relative > absolute


def _reference_media(timeline, base_folder: Path, out_folder: Path, relative: bool) -> None:
    """Generated sequences referenced relative to ``out_folder`` (or absolute); other relative
    references moved from ``base_folder`` to ``out_folder``."""
    for clip in timeline.find_clips():
        ours = clip.metadata.get(METADATA_KEY)
        generated = result_target_id(clip) is not None and isinstance(ours, Mapping) \
            and ours.get("role", ROLE_GENERATED) == ROLE_GENERATED
        for reference, attribute in _references(clip):
            url = getattr(reference, attribute)
            folder_url = attribute == "target_url_base"
            if generated:
                path = Path(_local_path(url, base_folder) if url else base_folder)
                if relative:
                    new = _relative_or_absolute(path, out_folder)
                    new = new + "/" if folder_url and not new.endswith("/") else new
                else:
                    new = path.as_uri() + ("/" if folder_url else "")
            elif _is_relative(url) and base_folder != out_folder:
                new = _relative_or_absolute(Path(os.path.normpath(base_folder / url)), out_folder)
                new = new + "/" if folder_url and url.endswith("/") else new
            else:
                continue
            setattr(reference, attribute, new)


# -- writing -------------------------------------------------------------------------------


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


def _write_explicit(prepare, out_path: Path, export, required: bool, edit_path: Path, notes: list) -> Path:
    try:
        adapter = otio.adapters.from_filepath(str(out_path))
    except otio.exceptions.NoKnownAdapterForExtensionError:
        raise TimelineError(
            f"{out_path}: no OpenTimelineIO adapter writes '{out_path.suffix}' files") from None
    outputs = _outputs(out_path, adapter.name, export)
    for path, _ in outputs:
        if path.resolve() == edit_path.resolve():
            raise TimelineError(f"{path}: that is the input edit; shotfill never overwrites it")
    _write_files(prepare(out_path), outputs, required, notes)
    return out_path


def _write_next_version(prepare, root: Path, export, required: bool, notes: list) -> Path:
    """Write the first free ``<stem>.shotfill[.vN].otio`` (and its export) beside ``root``."""
    for version in itertools.count(1):
        otio_path = version_path(root, version)
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
            _write_files(prepare(otio_path), outputs, required, notes)
        except BaseException:
            otio_path.unlink()
            raise
        return otio_path


def _for_adapter(timeline, adapter: str, path: Path, otio_name: str, notes: list):
    """The timeline as ``adapter`` can write it, and a note of what the format leaves out."""
    if adapter == "cmx_3600":
        video = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video]
        if len(video) > 1:
            flat = timeline.clone()
            tracks = [t for t in flat.tracks if t.kind == otio.schema.TrackKind.Video]
            merged = otio.algorithms.flatten_stack(tracks)
            merged.name = tracks[0].name
            others = [t.clone() for t in flat.tracks if t.kind != otio.schema.TrackKind.Video]
            del flat.tracks[:]
            flat.tracks.append(merged)
            for track in others:
                flat.tracks.append(track)
            notes.append(f"{path.name}: an EDL holds one video track, so the {len(video)} video tracks are "
                         f"flattened onto one as the edit plays (top track first); {otio_name} keeps them apart")
            return flat
        return timeline
    if adapter in FIRST_FRAME_EXPORTS:
        out = timeline.clone()
        first = None
        for clip in out.find_clips():
            references = clip.media_references()
            changed = {}
            for key, reference in references.items():
                if isinstance(reference, otio.schema.ImageSequenceReference):
                    url = _first_frame_url(reference, path.parent)
                    if first is None or (result_target_id(clip) is not None and first[1] is None):
                        first = (url, result_target_id(clip))
                    changed[key] = otio.schema.ExternalReference(
                        target_url=url, available_range=reference.available_range)
                else:
                    changed[key] = reference.clone()
            if any(isinstance(r, otio.schema.ImageSequenceReference) for r in references.values()):
                clip.set_media_references(changed, clip.active_media_reference_key)
        if first is not None:
            notes.append(
                f"{path.name}: {'FCP 7 XML (Premiere)' if adapter == 'fcp_xml' else 'FCPXML'} holds no image "
                f"sequences, so each is referenced there by its first frame file ({first[0]}); an editing "
                f"application may read that as one still image (not checked here): import the sequence's "
                f"folder as an image sequence and relink, or use {otio_name}")
        return out
    return timeline


def _first_frame_url(reference, folder: Path) -> str:
    base = reference.target_url_base
    directory = Path(_local_path(base, folder) if base else folder)
    number = f"{reference.start_frame:0{reference.frame_zero_padding}d}"
    return (directory / f"{reference.name_prefix}{number}{reference.name_suffix}").absolute().as_uri()


def _write_files(timeline, outputs: list[tuple[Path, str]], required: bool, notes: list) -> None:
    """Write every ``(path, adapter)`` in a staging folder, then move them all into place.

    The first output (the ``.otio``) is always written; an export that is not ``required`` and
    fails is left out, with a note saying why.
    """
    for path, adapter in outputs[1:]:
        if adapter in NO_IMAGE_SEQUENCES and adapter not in FIRST_FRAME_EXPORTS:
            reason = (f"{path}: the {adapter} adapter cannot write the generated image "
                      f"sequences ({NO_IMAGE_SEQUENCES[adapter]}); use the .otio or export 'edl'")
            if required:
                raise TimelineError(reason)
            notes.append(reason)
            outputs = outputs[:1]
    folder = outputs[0][0].parent
    try:
        staging = tempfile.TemporaryDirectory(dir=folder, prefix=".shotfill-")
    except OSError as err:
        raise TimelineError(f"{folder}: cannot write there: {err}") from err
    with staging:
        staged = []
        for number, (path, adapter) in enumerate(outputs):
            temporary = Path(staging.name) / path.name
            own_notes: list[str] = []
            try:
                content = _for_adapter(timeline, adapter, path, outputs[0][0].name, own_notes) if number else timeline
                otio.adapters.write_to_file(content, str(temporary), adapter_name=adapter)
            except Exception as err:  # adapters are plugins and raise anything
                reason = f"{path}: the {adapter} adapter could not write it: {_reason(err)}"
                if number == 0 or required:
                    raise TimelineError(reason) from err
                notes.append(f"{reason}; only {outputs[0][0].name} is written")
                continue
            notes.extend(own_notes)
            staged.append((temporary, path))
        for temporary, path in staged:
            os.replace(temporary, path)
