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

Handles are real frames (:attr:`Target.handle_frames`): an extension uses the
handle frames on its side first, a bridge takes A's tail and B's head handles
(:func:`bridge_handles`) and generates only the rest (:attr:`Target.generated_frames`);
the placement puts the handle frames on the edit with the generated ones, so the
new edit has no hole.

shotfill's own results are never targets: its result tracks
(``track.metadata["shotfill"]["results"]``) are skipped and not counted as ``V``
tracks, and the clips it put in place of a gap (``clip.metadata["shotfill"]
["target_id"]``) count as that gap, so an edit and every version published from it
give the same target ids.

Writing back never touches the input: the result is a new ``.otio`` next to it,
built on the newest version shotfill wrote from the same input so results
accumulate, and also written in the input's format (EDL, FCP 7 XML, FCPXML) where
an adapter can (see :func:`write_back`).

One job per module: :mod:`.load` (reading an edit), :mod:`.targets` (targets and their clips'
media), :mod:`.writeback` (placements on a new version), :mod:`.versions` (which version a new one
builds on, and its name), :mod:`.export` (media references, export formats, staged writes),
:mod:`.publishing` (finished job results onto a new version) and :mod:`.paths` (which paths are edits).
"""
from __future__ import annotations

import importlib

#: each public name and the submodule it lives in: loaded on first use (PEP 562), so asking whether
#: a path is an edit (``shotfill info`` on an EXR) does not import OpenTimelineIO
_HOME = {
    "COMMON_EDL_RATES": "load", "DEFAULT_EDL_RATE": "load", "load_edit": "load",
    "EDIT_SUFFIXES": "paths", "is_edit": "paths",
    "publish": "publishing",
    "IMAGE_SUFFIXES": "targets", "MASK_REFERENCE_KEYS": "targets", "METADATA_KEY": "targets",
    "READABLE_KINDS": "targets", "ClipMedia": "targets", "MediaKind": "targets", "Target": "targets",
    "bridge_handles": "targets", "find_targets": "targets", "is_result_track": "targets",
    "result_target_id": "targets",
    "EXPORT_ALIASES": "export", "INPUT_FORMAT_EXPORTS": "export", "NO_IMAGE_SEQUENCES": "export",
    "version_path": "versions",
    "WRITE_MODES": "writeback", "Placement": "writeback", "write_back": "writeback",
}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))


__all__ = [
    "COMMON_EDL_RATES",
    "DEFAULT_EDL_RATE",
    "EDIT_SUFFIXES",
    "EXPORT_ALIASES",
    "IMAGE_SUFFIXES",
    "INPUT_FORMAT_EXPORTS",
    "MASK_REFERENCE_KEYS",
    "METADATA_KEY",
    "NO_IMAGE_SEQUENCES",
    "READABLE_KINDS",
    "WRITE_MODES",
    "ClipMedia",
    "MediaKind",
    "Placement",
    "Target",
    "bridge_handles",
    "find_targets",
    "is_edit",
    "is_result_track",
    "load_edit",
    "publish",
    "result_target_id",
    "version_path",
    "write_back",
]
