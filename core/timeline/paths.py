"""Which paths are edits: the file suffixes the OpenTimelineIO adapters read.

The command line, ``shotfill info`` and the farm export ask it whether a source is
an edit (read with :func:`shotfill.timeline.load_edit`) or media.
"""
from __future__ import annotations

from pathlib import Path

EDIT_SUFFIXES = {".otio", ".otioz", ".otiod", ".edl", ".xml", ".fcpxml", ".ale", ".aaf", ".kdenlive",
                 ".xges", ".ma", ".m3u8"}


def is_edit(path: str) -> bool:
    """Whether ``path`` (a ``#frames=`` suffix aside) names an edit, by its suffix."""
    return Path(path.split("#", 1)[0]).suffix.lower() in EDIT_SUFFIXES
