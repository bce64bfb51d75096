"""The Resolve adapter, through the scripting API's ``resolve`` object (Resolve 18.5+).

    host = ResolveHost(resolve)            # resolve = bmd.scriptapp("Resolve")
    edit = host.current_edit(folder)       # Timeline.Export(path, resolve.EXPORT_OTIO)
    with host.preserved():                 # current timeline and media pool bin restored
        host.import_result(take)           # MediaPool.ImportMedia, a new video track,
                                           # MediaPool.AppendToTimeline at the record frame

Standard library only.
"""
from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Iterator

from ..base import Generated, Host, HostError, Media

#: OTIO export arrived in Resolve 18.5
OTIO_EXPORT_VERSION = (18, 5)
#: the media pool bin takes are imported into
BIN_NAME = "shotfill"
#: Resolve's name for a frame sequence: ``plate.[1001-1048].exr``
_RESOLVE_SEQUENCE = re.compile(r"\[(?P<first>\d+)-(?P<last>\d+)\]")
#: a frame token in our patterns: ``####`` or ``%04d``
_FRAME_TOKEN = re.compile(r"#+|%0?(\d*)d")


class ResolveHost(Host):
    name = "Resolve"

    def __init__(self, resolve):
        self.resolve = resolve
        self.project = resolve.GetProjectManager().GetCurrentProject()
        if not self.project:
            raise HostError("open a project in Resolve first")
        self.timeline = self.project.GetCurrentTimeline()
        if not self.timeline:
            raise HostError("open a timeline in Resolve first: shotfill works on the current timeline")

    def current_media(self) -> list[Media]:
        """The clip under the playhead on the current timeline (empty if none)."""
        item = self.timeline.GetCurrentVideoItem()
        pool_item = item.GetMediaPoolItem() if item else None
        if not pool_item:
            return []
        path = pool_item.GetClipProperty("File Path")
        match = _RESOLVE_SEQUENCE.search(path)
        if match:
            first, last = int(match["first"]), int(match["last"])
            path = path[:match.start()] + f"%0{len(match['first'])}d" + path[match.end():]
        else:
            first, last = int(pool_item.GetClipProperty("Start")), int(pool_item.GetClipProperty("End"))
        return [Media(name=item.GetName(), path=path, first=first, last=last,
                      rate=float(self.timeline.GetSetting("timelineFrameRate")))]

    def current_edit(self, folder: str) -> str:
        """The current timeline exported as OTIO into ``folder``."""
        version = self.resolve.GetVersion()
        if tuple(version[:2]) < OTIO_EXPORT_VERSION:
            raise HostError(f"Resolve {self.resolve.GetVersionString()} cannot export OTIO (18.5 and newer can): "
                            f"export the timeline as FCP 7 XML or EDL and open it with shotfill-panel")
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.timeline.GetName()) or "timeline"
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{name}.otio")
        if not self.timeline.Export(path, self.resolve.EXPORT_OTIO) or not os.path.isfile(path):
            raise HostError(f"Resolve could not export timeline {self.timeline.GetName()!r} to {path}")
        return path

    def import_result(self, generated: Generated) -> str:
        """Import the take's frames into the ``shotfill`` bin and, for an edit target, place
        them on a new video track at the target's record frame. A step that fails takes
        back what the earlier ones made."""
        pool = self.project.GetMediaPool()
        pool.SetCurrentFolder(self._bin(pool))
        items = pool.ImportMedia([{"FilePath": _printf_pattern(generated.pattern),
                                   "StartIndex": generated.first, "EndIndex": generated.last}])
        if not items:
            raise HostError(f"Resolve could not import {generated.pattern} "
                            f"(frames {generated.first}-{generated.last})")
        item = items[0]
        if generated.record_frame is None:
            return f"imported {item.GetName()} into the media pool bin '{BIN_NAME}'"
        self.project.SetCurrentTimeline(self.timeline)   # AppendToTimeline works on the current one
        if not self.timeline.AddTrack("video"):
            pool.DeleteClips([item])
            raise HostError(f"Resolve could not add a video track to {self.timeline.GetName()!r}")
        track = self.timeline.GetTrackCount("video")
        self.timeline.SetTrackName("video", track, f"shotfill {generated.target_id}")
        record = self.timeline.GetStartFrame() + generated.record_frame
        placed = pool.AppendToTimeline([{
            "mediaPoolItem": item,
            "startFrame": int(item.GetClipProperty("Start")),
            "endFrame": int(item.GetClipProperty("End")),
            "mediaType": 1,               # video only
            "trackIndex": track,
            "recordFrame": record,
        }])
        if not placed:
            self.timeline.DeleteTrack("video", track)
            pool.DeleteClips([item])
            raise HostError(f"Resolve could not place {generated.pattern} on video track {track} "
                            f"at frame {record}")
        message = f"placed {item.GetName()} on video track {track} at frame {record}"
        before, after = generated.handles
        if before or after:     # the published edit places them; here the editor trims them in
            message += (f"; the {before} frame(s) before it and {after} after are the clips' own handle "
                        f"frames, not placed here: trim the clip before it {before} frame(s) later and "
                        f"the clip after it {after} frame(s) earlier to play them")
        return message

    @contextlib.contextmanager
    def preserved(self) -> Iterator[None]:
        """The current timeline and media pool bin come back as they were."""
        pool = self.project.GetMediaPool()
        timeline = self.project.GetCurrentTimeline()
        folder = pool.GetCurrentFolder()
        try:
            yield
        finally:
            self.project.SetCurrentTimeline(timeline)
            pool.SetCurrentFolder(folder)

    def show_message(self, text: str, *, error: bool = False) -> None:
        """Printed to Resolve's console (Workspace > Console)."""
        print(("shotfill error: " if error else "shotfill: ") + text)

    @staticmethod
    def _bin(pool):
        root = pool.GetRootFolder()
        for folder in root.GetSubFolderList():
            if folder.GetName() == BIN_NAME:
                return folder
        return pool.AddSubFolder(root, BIN_NAME)


def _printf_pattern(pattern: str) -> str:
    """``shot.####.exr`` -> ``shot.%04d.exr`` (the form ``ImportMedia`` takes)."""
    match = _FRAME_TOKEN.search(Path(pattern).name)
    if match is None:
        raise HostError(f"{pattern} has no frame number token (#### or %04d)")
    width = len(match.group()) if match.group().startswith("#") else int(match.group(1) or 0)
    folder, name = os.path.split(pattern)
    name = name[:match.start()] + (f"%0{width}d" if width > 1 else "%d") + name[match.end():]
    return os.path.join(folder, name)
