"""A fake of DaVinci Resolve's scripting objects for the host tests.

Only the calls shotfill makes, with the names, arguments and return types of
Resolve's scripting README (Developer/Scripting/README.txt, 18.5 and later):

- ``Resolve.GetProjectManager()``, ``GetVersion() -> [major, minor, patch, build, suffix]``,
  ``GetVersionString() -> str``, the ``EXPORT_OTIO`` constant (18.5+).
- ``ProjectManager.GetCurrentProject() -> Project``.
- ``Project.GetName()``, ``GetMediaPool()``, ``GetCurrentTimeline()``,
  ``SetCurrentTimeline(timeline) -> bool``, ``GetTimelineCount()``, ``GetTimelineByIndex(idx)``.
- ``MediaPool.GetRootFolder()``, ``AddSubFolder(folder, name) -> Folder``,
  ``GetCurrentFolder()``, ``SetCurrentFolder(folder) -> bool``,
  ``ImportMedia([{"FilePath": "a_%03d.exr", "StartIndex": 1, "EndIndex": 100}]) -> [MediaPoolItem]``
  (empty when the files are not there), ``AppendToTimeline([{clipInfo}]) -> [TimelineItem]``
  on the *current* timeline, with "mediaPoolItem", "startFrame", "endFrame",
  optional "mediaType", "trackIndex", "recordFrame" (empty when the place is taken),
  ``DeleteClips([clips]) -> bool``, ``CreateEmptyTimeline(name)``.
- ``Folder.GetName()``, ``GetClipList()``, ``GetSubFolderList()``.
- ``MediaPoolItem.GetName()``, ``GetClipProperty(propertyName=None) -> str | dict``
  ("File Path" is Resolve's ``name.[1001-1012].exr`` form; "Start", "End", "Frames", "FPS").
- ``Timeline.GetName()``, ``GetStartFrame()``, ``GetEndFrame()``, ``GetTrackCount(trackType)``,
  ``AddTrack(trackType, subTrackType=None) -> bool``, ``DeleteTrack(trackType, trackIndex) -> bool``,
  ``GetTrackName``/``SetTrackName``, ``GetItemListInTrack(trackType, index)``,
  ``GetSetting(settingName)``, ``GetCurrentVideoItem()``,
  ``Export(fileName, exportType, exportSubtype) -> bool`` (writes an OTIO file).
- ``TimelineItem.GetName()``, ``GetStart()``, ``GetEnd()``, ``GetDuration()``, ``GetMediaPoolItem()``.

Names starting with an underscore are the fake's own, for tests to set up and look at.
"""
from __future__ import annotations

import os
import re

import opentimelineio as otio

_PRINTF = re.compile(r"%0?(\d*)d")


class MediaPoolItem:
    def __init__(self, name: str, properties: dict[str, str]):
        self._name = name
        self._properties = properties

    def GetName(self) -> str:  # noqa: N802 - Resolve's names
        return self._name

    def GetClipProperty(self, propertyName=None):  # noqa: N802,N803
        if propertyName is None:
            return dict(self._properties)
        return self._properties.get(propertyName, "")


class Folder:
    def __init__(self, name: str):
        self._name = name
        self._clips: list[MediaPoolItem] = []
        self._subfolders: list[Folder] = []

    def GetName(self) -> str:  # noqa: N802
        return self._name

    def GetClipList(self) -> list[MediaPoolItem]:  # noqa: N802
        return list(self._clips)

    def GetSubFolderList(self) -> list["Folder"]:  # noqa: N802
        return list(self._subfolders)


class TimelineItem:
    def __init__(self, item: MediaPoolItem, start: int, duration: int, name: str | None = None):
        self._item = item
        self._start = start
        self._duration = duration
        self._name = name or item.GetName()

    def GetName(self) -> str:  # noqa: N802
        return self._name

    def GetStart(self) -> int:  # noqa: N802
        return self._start

    def GetEnd(self) -> int:  # noqa: N802
        return self._start + self._duration

    def GetDuration(self) -> int:  # noqa: N802
        return self._duration

    def GetMediaPoolItem(self) -> MediaPoolItem:  # noqa: N802
        return self._item


class Timeline:
    def __init__(self, name: str, start_frame: int = 86400, rate: float = 24.0):
        self._name = name
        self._start = start_frame
        self._rate = rate
        self._tracks = {"video": [[]], "audio": [[]], "subtitle": []}
        self._track_names = {"video": ["Video 1"], "audio": ["Audio 1"], "subtitle": []}
        self._playhead_item: TimelineItem | None = None
        self._exports: list[tuple[str, int]] = []

    def GetName(self) -> str:  # noqa: N802
        return self._name

    def GetStartFrame(self) -> int:  # noqa: N802
        return self._start

    def GetEndFrame(self) -> int:  # noqa: N802
        ends = [i.GetEnd() for track in self._tracks["video"] for i in track]
        return max(ends, default=self._start)

    def GetTrackCount(self, trackType) -> int:  # noqa: N802,N803
        return len(self._tracks[trackType])

    def AddTrack(self, trackType, subTrackType=None) -> bool:  # noqa: N802,N803
        self._tracks[trackType].append([])
        self._track_names[trackType].append(f"{trackType.title()} {len(self._tracks[trackType])}")
        return True

    def DeleteTrack(self, trackType, trackIndex) -> bool:  # noqa: N802,N803
        if not 1 <= trackIndex <= len(self._tracks[trackType]):
            return False
        del self._tracks[trackType][trackIndex - 1]
        del self._track_names[trackType][trackIndex - 1]
        return True

    def GetTrackName(self, trackType, trackIndex) -> str:  # noqa: N802,N803
        return self._track_names[trackType][trackIndex - 1]

    def SetTrackName(self, trackType, trackIndex, name) -> bool:  # noqa: N802,N803
        self._track_names[trackType][trackIndex - 1] = name
        return True

    def GetItemListInTrack(self, trackType, index) -> list[TimelineItem]:  # noqa: N802,N803
        return list(self._tracks[trackType][index - 1])

    def GetSetting(self, settingName=None):  # noqa: N802,N803
        settings = {"timelineFrameRate": f"{self._rate:g}"}
        return settings if settingName is None else settings.get(settingName, "")

    def GetCurrentVideoItem(self) -> TimelineItem | None:  # noqa: N802
        return self._playhead_item

    def Export(self, fileName, exportType, exportSubtype=None) -> bool:  # noqa: N802,N803
        """Writes the timeline as OTIO (the only export type the fake knows)."""
        if exportType != Resolve.EXPORT_OTIO:
            return False
        timeline = otio.schema.Timeline(name=self._name, global_start_time=otio.opentime.RationalTime(
            self._start, self._rate))
        for index, items in enumerate(self._tracks["video"], 1):
            track = otio.schema.Track(name=self._track_names["video"][index - 1])
            cursor = self._start
            for item in sorted(items, key=TimelineItem.GetStart):
                if item.GetStart() > cursor:
                    track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
                        duration=otio.opentime.RationalTime(item.GetStart() - cursor, self._rate))))
                track.append(otio.schema.Clip(name=item.GetName(), source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(0, self._rate),
                    otio.opentime.RationalTime(item.GetDuration(), self._rate))))
                cursor = item.GetEnd()
            timeline.tracks.append(track)
        try:
            otio.adapters.write_to_file(timeline, fileName)
        except OSError:
            return False
        self._exports.append((fileName, exportType))
        return True

    def _place(self, item: TimelineItem, track_index: int) -> bool:
        track = self._tracks["video"][track_index - 1]
        if any(i.GetStart() < item.GetEnd() and item.GetStart() < i.GetEnd() for i in track):
            return False
        track.append(item)
        return True


class MediaPool:
    def __init__(self, project: "Project"):
        self._project = project
        self._root = Folder("Master")
        self._current = self._root

    def GetRootFolder(self) -> Folder:  # noqa: N802
        return self._root

    def AddSubFolder(self, folder, name) -> Folder:  # noqa: N802
        sub = Folder(name)
        folder._subfolders.append(sub)
        return sub

    def GetCurrentFolder(self) -> Folder:  # noqa: N802
        return self._current

    def SetCurrentFolder(self, folder) -> bool:  # noqa: N802
        self._current = folder
        return True

    def CreateEmptyTimeline(self, name) -> Timeline:  # noqa: N802
        timeline = Timeline(name)
        self._project._timelines.append(timeline)
        return timeline

    def ImportMedia(self, items) -> list[MediaPoolItem]:  # noqa: N802
        imported = []
        for info in items:
            if isinstance(info, str):
                raise NotImplementedError("the fake imports clipInfo dicts only")
            pattern, first, last = info["FilePath"], int(info["StartIndex"]), int(info["EndIndex"])
            match = _PRINTF.search(os.path.basename(pattern))
            if match is None:
                return []
            width = int(match.group(1) or 1)
            frames = [pattern.replace(match.group(), f"{f:0{width}d}") for f in range(first, last + 1)]
            if not all(os.path.isfile(f) for f in frames):
                return []                                  # Resolve imports nothing it cannot find
            shown = pattern.replace(match.group(), f"[{first:0{width}d}-{last:0{width}d}]")
            item = MediaPoolItem(os.path.basename(shown), {
                "File Path": shown, "Start": str(first), "End": str(last),
                "Frames": str(last - first + 1), "FPS": "24", "Type": "Still"})
            self._current._clips.append(item)
            imported.append(item)
        return imported

    def AppendToTimeline(self, items) -> list[TimelineItem]:  # noqa: N802
        timeline = self._project.GetCurrentTimeline()
        placed = []
        for info in items:
            unknown = set(info) - {"mediaPoolItem", "startFrame", "endFrame", "mediaType", "trackIndex",
                                   "recordFrame"}
            if unknown:
                raise TypeError(f"unknown clipInfo keys {sorted(unknown)}")
            item = info["mediaPoolItem"]
            duration = int(info["endFrame"]) - int(info["startFrame"]) + 1
            track = int(info.get("trackIndex", 1))
            if not 1 <= track <= timeline.GetTrackCount("video"):
                return []
            record = int(info.get("recordFrame", timeline.GetEndFrame()))
            timeline_item = TimelineItem(item, record, duration)
            if not timeline._place(timeline_item, track):
                return []                                  # something is already there
            placed.append(timeline_item)
        return placed

    def DeleteClips(self, clips) -> bool:  # noqa: N802
        for folder in self._all_folders(self._root):
            folder._clips = [c for c in folder._clips if c not in clips]
        return True

    def _all_folders(self, folder: Folder):
        yield folder
        for sub in folder._subfolders:
            yield from self._all_folders(sub)


class Project:
    def __init__(self, name: str = "shots"):
        self._name = name
        self._timelines: list[Timeline] = []
        self._current: Timeline | None = None
        self._pool = MediaPool(self)

    def GetName(self) -> str:  # noqa: N802
        return self._name

    def GetMediaPool(self) -> MediaPool:  # noqa: N802
        return self._pool

    def GetTimelineCount(self) -> int:  # noqa: N802
        return len(self._timelines)

    def GetTimelineByIndex(self, idx) -> Timeline:  # noqa: N802
        return self._timelines[idx - 1]

    def GetCurrentTimeline(self) -> Timeline | None:  # noqa: N802
        return self._current

    def SetCurrentTimeline(self, timeline) -> bool:  # noqa: N802
        if timeline not in self._timelines:
            return False
        self._current = timeline
        return True


class ProjectManager:
    def __init__(self, project: Project | None):
        self._project = project

    def GetCurrentProject(self) -> Project | None:  # noqa: N802
        return self._project


class Resolve:
    EXPORT_AAF, EXPORT_DRT, EXPORT_EDL, EXPORT_FCP_7_XML = 0, 1, 2, 3
    EXPORT_OTIO = 17
    EXPORT_NONE = 0

    def __init__(self, project: Project | None, version: tuple = (19, 1, 3, 7, "")):
        self._manager = ProjectManager(project)
        self._version = list(version)

    def GetProjectManager(self) -> ProjectManager:  # noqa: N802
        return self._manager

    def GetVersion(self) -> list:  # noqa: N802
        return list(self._version)

    def GetVersionString(self) -> str:  # noqa: N802
        major, minor, patch, build, suffix = self._version
        return f"{major}.{minor}.{patch}{suffix}.{build}"
