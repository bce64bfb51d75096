"""The panel's widgets, one job per module; they only render state (:mod:`shotfill_plugin.state`).

    timeline_strip   TimelineStrip: the edit's targets on their tracks; a click picks one
    progress         StageBars: the whole job's bar with ETA, and one bar per stage
    preview          PreviewView (the contact sheet), FrameScrubber (the window frame by
                     frame: FrameView, RoleStrip)
    takes            TakeRow (a take in the takes list), TrustStrip (its frames' trust)
    palette          the colours they draw with
"""
from .preview import FrameScrubber, FrameView, PreviewView, RoleStrip
from .progress import StageBars
from .takes import TakeRow, TrustStrip
from .timeline_strip import TimelineStrip

__all__ = ["FrameScrubber", "FrameView", "PreviewView", "RoleStrip", "StageBars", "TakeRow", "TimelineStrip",
           "TrustStrip"]
