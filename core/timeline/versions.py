"""The versions shotfill writes of an edit: ``cut.shotfill.otio``, ``cut.shotfill.v2.otio``..., each
recording the edit it was made from (``metadata["shotfill"]``: ``based_on``, its sha256, the versions so
far), so a new version builds on the newest one made from the input as it is now.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

import opentimelineio as otio

from .load import _reason
from .paths import is_edit
from .targets import METADATA_KEY


def version_path(root: Path, version: int) -> Path:
    """The ``version``-th version shotfill writes of the edit ``root``: ``cut.shotfill.otio``, ``cut.shotfill.v2.otio``..."""
    tag = "shotfill" if version == 1 else f"shotfill.v{version}"
    return root.with_name(f"{root.stem}.{tag}.otio")


def metadata_of(timeline) -> dict:
    ours = timeline.metadata.get(METADATA_KEY)
    return dict(ours) if isinstance(ours, Mapping) else {}


def versions_of(timeline) -> list[str]:
    versions = metadata_of(timeline).get("versions")
    if versions is None or isinstance(versions, (str, Mapping)):
        return []
    return [str(v) for v in versions]


def family(edit_path: Path, timeline, notes: list | None = None) -> tuple[Path, str | None]:
    """The edit whose versions these are, and its sha256 when they were made.

    An input shotfill wrote (``metadata["shotfill"]["based_on"]``) belongs to the edit it
    was made from, when that is an edit on disk; any other input is its own. So the metadata of
    a hostile or moved file cannot send the new version into a folder of its choosing beside a
    file that is not an edit (``/etc/passwd``): it is written beside the input instead, with a note.
    """
    ours = metadata_of(timeline)
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


def newest_version(root: Path, root_sha: str | None, notes: list):
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
        ours = metadata_of(timeline)
        if not isinstance(ours.get("based_on"), str):
            continue
        if os.path.abspath(family(path, timeline)[0]) != os.path.abspath(root):
            continue
        if root_sha is not None and ours.get("based_on_sha256") == root_sha:
            return path, timeline
        changed = changed or path
    if changed is not None:
        notes.append(f"{root.name} has changed since {changed.name} was made from it: the new version "
                     f"starts again from {root.name} and holds only these results")
    return None


def relative_or_absolute(path: Path, folder: Path) -> str:
    try:
        return Path(os.path.relpath(path.absolute(), folder.absolute())).as_posix()
    except ValueError:          # another drive
        return str(path.absolute())

