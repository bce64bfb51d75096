"""Procedural material the project makes itself: the scene renderer and the sample edit.

:mod:`.render` renders procedural shots (:class:`ShotSpec` -> :func:`render_frame`,
:func:`render_shot`); :mod:`.sample_edit` writes the sample edit the demo and the tests run on
(:func:`make_sample_edit`).
"""
from .render import (MAX_SPEED, MAX_TRAVEL, REFERENCE_DEPTH, CameraMove, FrameSample, ShotFrames, ShotSpec,
                     render_frame, render_shot)
from .sample_edit import SAMPLE_FIRST_FRAME, SAMPLE_GAP_FRAMES, SampleEdit, SampleShot, make_sample_edit

__all__ = [
    "MAX_SPEED", "MAX_TRAVEL", "REFERENCE_DEPTH", "SAMPLE_FIRST_FRAME", "SAMPLE_GAP_FRAMES", "CameraMove",
    "FrameSample", "SampleEdit", "SampleShot", "ShotFrames", "ShotSpec", "make_sample_edit", "render_frame",
    "render_shot",
]
