"""Relinking offline media by file name, the way conform tools do.

An edit made on another machine names media that is not where it says (``/Volumes/EDIT/...``,
``C:\\media\\...``), or names it only by clip name (an EDL's ``FROM CLIP NAME``). Given folders to
search, :func:`relink` finds each offline clip's file by its name, case-insensitively, anywhere
below them (recursively, within :data:`MAX_DEPTH` folders and :data:`MAX_ENTRIES` entries), and
points the clip at it. The file name searched for is:

- an external reference's file name (``sh010_plate.mov`` of ``file:///Volumes/EDIT/sh010_plate.mov``);
- an image sequence's first frame (``sh010.1001.exr`` of ``sh010.####.exr`` starting at 1001);
  failing that, any file numbered like it (``sh010.<digits>.exr``), all in one folder;
- for a clip with no reference (or a missing one), as conform tools match an EDL's events: the
  clip's name when it is a media file name, an EDL's ``SOURCE FILE:`` comment, then any media
  file whose name without its suffix is the clip's name or its reel name (``A001_C002`` finds
  ``A001_C002.mov``), the first of these that finds anything.

A name found in two places is reported as ambiguous and left offline: nothing is guessed. Clips
whose media is on disk, generators and shotfill's result tracks are left alone. A clip's linked
mask reference (``clip.media_references()["mask"]``) is relinked the same way. The timeline
given is not changed; :func:`relink` works on a copy.
"""
from __future__ import annotations

import dataclasses
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path

import opentimelineio as otio

from ..errors import InputError
from .targets import IMAGE_SUFFIXES, MASK_REFERENCE_KEYS, _local_path, is_result_track

#: How many folders deep below a search path files are looked for.
MAX_DEPTH = 12
#: The most directory entries a search may list, over all search paths; more is an error
#: (name a narrower folder) rather than a search that silently stops.
MAX_ENTRIES = 1_000_000

#: Suffixes of single media files a clip name may be (besides the still-image ones).
MOVIE_SUFFIXES = frozenset({".mov", ".mp4", ".mxf", ".mkv", ".avi", ".m4v", ".r3d", ".braw", ".ari"})

_MEDIA_SUFFIXES = IMAGE_SUFFIXES | MOVIE_SUFFIXES

#: RelinkEntry.status values.
ONLINE, RELINKED, NOT_FOUND, AMBIGUOUS, NO_NAME = "online", "relinked", "not_found", "ambiguous", "no_name"


@dataclasses.dataclass(frozen=True)
class RelinkEntry:
    """What relinking did for one clip.

    ``status``: ``online`` (its media was on disk already), ``relinked`` (found at ``path``),
    ``not_found``, ``ambiguous`` (``candidates`` hold every place the name was found) or
    ``no_name`` (nothing to search for: no file name in its reference or its name).
    ``wanted`` is the file name searched for.
    """

    track: str
    clip: str
    status: str
    wanted: str | None = None
    path: str | None = None
    candidates: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "candidates": list(self.candidates)}


def relink(timeline: otio.schema.Timeline, search_paths, *, edit_path) -> tuple[otio.schema.Timeline,
                                                                                list[RelinkEntry]]:
    """A copy of ``timeline`` with its offline clips pointed at the media found in ``search_paths``.

    ``edit_path`` is the file the timeline was read from (relative media paths are resolved
    against its folder, as targets do). Returns the copy and one :class:`RelinkEntry` per clip
    of every video track (shotfill's result tracks and generators left out). A search path
    that is not a folder is an :class:`InputError`.
    """
    folder = Path(edit_path).absolute().parent
    index = _Index([Path(p) for p in search_paths])
    copy = timeline.deepcopy()
    report = []
    for track in copy.video_tracks():
        if is_result_track(track):
            continue
        for clip in track.find_clips():
            report += [dataclasses.replace(entry, track=track.name) for entry in _relink_clip(clip, folder, index)]
    return copy, report


def summary(report: list[RelinkEntry]) -> str:
    """One line: how many clips were relinked, not found, ambiguous."""
    counts = {status: sum(1 for e in report if e.status == status)
              for status in (RELINKED, NOT_FOUND, AMBIGUOUS, NO_NAME, ONLINE)}
    words = {RELINKED: "relinked", NOT_FOUND: "not found", AMBIGUOUS: "ambiguous (found in several places)",
             NO_NAME: "with no file name to search for", ONLINE: "online already"}
    return ", ".join(f"{n} {words[s]}" for s, n in counts.items() if n) or "no clips"


# -- the search ------------------------------------------------------------------------


class _Index:
    """Every file below the search paths by case-folded name (built on first use)."""

    def __init__(self, roots: list[Path]):
        for root in roots:
            if not root.is_dir():
                raise InputError(f"--search-path {root}: not a folder")
        self.roots = roots
        self._names: dict[str, list[str]] | None = None
        self._stems: dict[str, list[str]] | None = None

    @property
    def names(self) -> dict[str, list[str]]:
        if self._names is None:
            self._names = self._build()
        return self._names

    def _build(self) -> dict[str, list[str]]:
        names: dict[str, set[str]] = {}
        entries = 0
        for root in self.roots:
            base = len(root.resolve().parts)
            for directory, folders, files in os.walk(root.resolve()):
                entries += len(folders) + len(files)
                if entries > MAX_ENTRIES:
                    raise InputError(f"--search-path {root}: more than {MAX_ENTRIES} files and folders to "
                                     "search; name a narrower folder")
                if len(Path(directory).parts) - base >= MAX_DEPTH:
                    folders[:] = []
                folders[:] = [f for f in folders if not f.startswith(".")]
                for name in files:
                    names.setdefault(name.casefold(), set()).add(os.path.realpath(os.path.join(directory, name)))
        return {name: sorted(paths) for name, paths in names.items()}

    def find(self, name: str) -> list[str]:
        return self.names.get(name.casefold(), [])

    def find_stem(self, stem: str) -> list[str]:
        """Media files (by suffix) whose name without its suffix is ``stem``, case-insensitively."""
        if self._stems is None:
            self._stems = {}
            for name, paths in self.names.items():
                base, suffix = os.path.splitext(name)
                if suffix in _MEDIA_SUFFIXES:
                    self._stems.setdefault(base, []).extend(paths)
        return sorted(self._stems.get(stem.casefold(), []))

    def find_numbered(self, prefix: str, suffix: str) -> dict[str, list[str]]:
        """Files named ``prefix<digits>suffix`` (case-insensitive), by folder."""
        numbered = re.compile(re.escape(prefix.casefold()) + r"\d+" + re.escape(suffix.casefold()))
        folders: dict[str, list[str]] = {}
        for name, paths in self.names.items():
            if numbered.fullmatch(name):
                for path in paths:
                    folders.setdefault(os.path.dirname(path), []).append(path)
        return folders


def _file_name(url: str) -> str | None:
    """The last component of a path or URL (either slash; ``%20`` decoded), None when there is none."""
    parts = urllib.parse.urlsplit(url, allow_fragments=False)
    text = urllib.parse.unquote(parts.path) if parts.scheme and len(parts.scheme) > 1 else url
    name = re.split(r"[\\/]", text)[-1]
    return name or None


def _media_name(name: str | None) -> str | None:
    """``name`` when it is a media file name (a known suffix), else None."""
    if not name:
        return None
    suffix = os.path.splitext(name.strip())[1].lower()
    return name.strip() if suffix in IMAGE_SUFFIXES | MOVIE_SUFFIXES else None


def _relink_clip(clip: otio.schema.Clip, folder: Path, index: _Index) -> list[RelinkEntry]:
    """Relink the clip's media and its linked mask (``media_references()["mask"]``), each reported."""
    entries = []
    active = _relink_reference(clip, clip.media_reference, folder, index, {"track": "", "clip": clip.name})
    if active is not None:
        entries.append(active)
    for key, ref in clip.media_references().items():
        if key in MASK_REFERENCE_KEYS and isinstance(ref, (otio.schema.ExternalReference,
                                                           otio.schema.ImageSequenceReference)):
            mask = _relink_reference(None, ref, folder, index, {"track": "", "clip": f"{clip.name} ({key})"})
            if mask is not None:
                entries.append(mask)
    return entries


def _relink_reference(clip, ref, folder: Path, index: _Index, entry: dict) -> RelinkEntry | None:
    """Relink one reference in place (``clip``: the clip whose active reference it is, so a
    missing reference can be replaced; None for a mask)."""
    if isinstance(ref, otio.schema.GeneratorReference):
        return None
    if isinstance(ref, otio.schema.ImageSequenceReference):
        return _relink_sequence(clip, ref, folder, index, entry)
    if isinstance(ref, otio.schema.ExternalReference) and ref.target_url:
        local = _local_path(ref.target_url, folder)
        if local is not None and Path(local).is_file():
            return RelinkEntry(**entry, status=ONLINE, path=local)
        wanted = _file_name(ref.target_url)
    elif clip is not None:    # a missing reference, or none: what an EDL event says of its source
        return _relink_by_name(clip, ref, index, entry)
    else:
        return None
    if not wanted:
        return RelinkEntry(**entry, status=NO_NAME)
    return _point_at(clip, ref, wanted, index.find(wanted), entry)


def _relink_by_name(clip, ref, index: _Index, entry: dict) -> RelinkEntry:
    """A clip without a file reference, found by the names an edit gives its source, in order."""
    cmx = clip.metadata.get("cmx_3600")
    cmx = cmx if isinstance(cmx, Mapping) else {}
    comments = cmx.get("comments")
    comments = list(comments) if isinstance(comments, Sequence) and not isinstance(comments, str) else []
    source_files = [str(c).split(":", 1)[1].strip() for c in comments
                    if str(c).upper().startswith("SOURCE FILE:")]
    tries = [(name, index.find) for name in (_media_name(clip.name), _media_name(getattr(ref, "name", None)),
                                             *source_files) if name]
    tries += [(stem, index.find_stem) for stem in (clip.name.strip(), *source_files, str(cmx.get("reel") or ""))
              if stem]
    if not tries:
        return RelinkEntry(**entry, status=NO_NAME)
    for wanted, find in tries:
        found = find(wanted)
        if found:
            return _point_at(clip, ref, wanted, found, entry)
    return RelinkEntry(**entry, status=NOT_FOUND, wanted=tries[0][0])


def _point_at(clip, ref, wanted: str, found: list[str], entry: dict) -> RelinkEntry:
    """Point ``clip`` at the one file found; report none found or several."""
    if not found:
        return RelinkEntry(**entry, status=NOT_FOUND, wanted=wanted)
    if len(found) > 1:
        return RelinkEntry(**entry, status=AMBIGUOUS, wanted=wanted, candidates=tuple(found))
    if isinstance(ref, otio.schema.ExternalReference):
        ref.target_url = found[0]
        return RelinkEntry(**entry, status=RELINKED, wanted=wanted, path=found[0])
    available = ref.available_range if ref is not None else None
    clip.media_reference = otio.schema.ExternalReference(
        target_url=found[0], available_range=available,
        metadata=dict(ref.metadata) if ref is not None else {})
    return RelinkEntry(**entry, status=RELINKED, wanted=wanted, path=found[0])


def _relink_sequence(clip, ref: otio.schema.ImageSequenceReference, folder: Path, index: _Index,
                     entry: dict) -> RelinkEntry:
    padding = max(ref.frame_zero_padding, 1)
    first = f"{ref.name_prefix}{ref.start_frame:0{padding}d}{ref.name_suffix}"
    base = _local_path(ref.target_url_base, folder) if ref.target_url_base else str(folder)
    if base is not None and Path(base, first).is_file():
        return RelinkEntry(**entry, status=ONLINE, path=os.path.join(base, first))
    found = index.find(first)
    if len(found) > 1:
        return RelinkEntry(**entry, status=AMBIGUOUS, wanted=first, candidates=tuple(found))
    if found:
        path = found[0]
    else:   # the first frame is not there: any frame of the sequence, all in one folder
        folders = index.find_numbered(ref.name_prefix, ref.name_suffix)
        if len(folders) > 1:
            return RelinkEntry(**entry, status=AMBIGUOUS, wanted=first,
                               candidates=tuple(sorted(os.path.join(f, "") for f in folders)))
        if not folders:
            return RelinkEntry(**entry, status=NOT_FOUND, wanted=first)
        path = min(next(iter(folders.values())))
    directory, name = os.path.split(path)
    # the names as they are on disk (the search ignored case; the file system may not)
    prefix = name[:len(ref.name_prefix)]
    suffix = name[len(name) - len(ref.name_suffix):] if ref.name_suffix else ""
    ref.target_url_base = os.path.join(directory, "")
    ref.name_prefix, ref.name_suffix = prefix, suffix
    return RelinkEntry(**entry, status=RELINKED, wanted=first, path=path)
