"""Writing back: generated sequences placed on a new version of the edit, never over the input,
and exported through other adapters (EDL...) beside it.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import tempfile
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from ..errors import TimelineError
from ..plan import TaskKind
from .load import _reason
from .targets import _targets_with_items

#: Write-back modes: a new track on top, or the bridged gap replaced in place.
WRITE_MODES = ("track", "replace")

#: Export formats by the names people use, mapped to OpenTimelineIO adapter names.
EXPORT_ALIASES = {"edl": "cmx_3600", "xml": "fcp_xml", "fcpxml": "fcpx_xml", "aaf": "AAF"}

#: Adapters that cannot write an ``ImageSequenceReference``, and what they do instead.
NO_IMAGE_SEQUENCES = {
    "fcp_xml": "it fails on ImageSequenceReference media",
    "AAF": "it only writes clips that came from an AAF (mob ids), not image sequences",
}


@dataclasses.dataclass
class Placement:
    """A generated EXR sequence to put on the edit.

    Files are ``directory/<name_prefix><frame zero-padded><name_suffix>`` for
    ``start_frame..end_frame`` (inclusive). ``record_start`` is where the first
    generated frame goes, in the same track time as
    :attr:`~shotfill.timeline.Target.record_range`. ``metadata`` is stored under
    ``clip.metadata["shotfill"]``.
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
