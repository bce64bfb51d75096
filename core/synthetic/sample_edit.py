"""The sample edit the demo and the tests run on: three procedural shots (:mod:`.render`) written
as EXR frames, a PNG mask and a ground truth, and an ``.otio`` edit linking them.
"""
from __future__ import annotations

import dataclasses
import math
import os
import uuid
from pathlib import Path

import numpy as np
import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from ..errors import InputError, MediaError
from ..io.contact import write_png
from ..io.exr import REC709_CHROMATICITIES, write_exr
from .render import CameraMove, ShotSpec, render_frame

#: first frame number of every sample shot, as on a real plate
SAMPLE_FIRST_FRAME = 1001
#: frames in the gap between clips A and B (the bridge target): A's 8 tail handles and B's 8 head
#: handles are real frames of it, the 4 between them are generated
SAMPLE_GAP_FRAMES = 20


@dataclasses.dataclass(frozen=True)
class SampleShot:
    """One shot of the sample edit and where its files are.

    ``media`` (and ``mask``, ``truth``) are frame patterns with ``####`` for the
    frame number. ``available`` is the inclusive range of frames on disk,
    ``used`` the frames the edit's clip plays.
    """

    name: str
    spec: ShotSpec
    media: Path
    available: tuple[int, int]
    used: tuple[int, int]
    mask: Path | None = None
    truth: Path | None = None

    def frame_path(self, pattern: Path, frame: int) -> Path:
        return pattern.with_name(pattern.name.replace("####", f"{frame:04d}"))


@dataclasses.dataclass(frozen=True)
class SampleEdit:
    """The sample edit :func:`make_sample_edit` wrote: ``edit`` (the ``.otio``), its
    ``media_dir`` and the ``truth_dir`` that holds what a fill should give."""

    edit: Path
    media_dir: Path
    truth_dir: Path
    rate: float
    gap_frames: int
    shots: tuple[SampleShot, ...]

    def shot(self, name: str) -> SampleShot:
        for shot in self.shots:
            if shot.name == name:
                return shot
        raise KeyError(name)


def make_sample_edit(out_dir: str | os.PathLike, *, width: int = 640, height: int = 360,
                     rate: float = 24, seed: int = 0) -> SampleEdit:
    """Render three procedural shots and write the edit the demo runs on.

    Under ``out_dir``::

        media/shotA.1001-1048.exr        pan, 48 frames
        media/shotB.1001-1040.exr        orbit, 40 frames
        media/shotC.1001-1024.exr        slow pan with a light stand in frame, 24 frames
        media/shotC_mask.1001-1024.png   the stand's mask: 8-bit grey, 255 = fill
        truth/shotC_clean.1001-1024.exr  shot C without the stand (to score a fill; not media)
        sample_edit.otio

    EXR frames are half float, ZIP, scene-linear Rec.709 (``chromaticities`` set).
    The edit (starting at 01:00:00:00) has one video track::

        media A  1001 [======== clip A: 1001-1040 ========]1048      (8 tail handle frames)
        media B                                    1001[ clip B: 1009-1040 ]  (8 head handle frames)
        V1              [ shotA, 40 ][ gap, 20 ][ shotB, 32 ][ shotC, 24 ]

    Clip C links its mask both ways :mod:`shotfill.timeline` reads: a media
    reference under the key ``"mask"`` and ``metadata["shotfill"]["mask"]``
    (``media/shotC_mask.####.png``, relative to the edit). Media paths in the
    edit are relative (``media/``), so the folder can be moved as a whole.
    """
    if not math.isfinite(rate) or rate <= 0:
        raise InputError(f"sample edit: rate must be a positive number of frames per second, "
                         f"got {rate!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"sample edit: seed must be an integer >= 0, got {seed!r}")
    out_dir = Path(out_dir)
    media_dir, truth_dir = out_dir / "media", out_dir / "truth"
    for folder in (media_dir, truth_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MediaError(folder, f"cannot be created: {e.strerror or e}") from None
    seeds = np.random.SeedSequence(seed).generate_state(3)
    first = SAMPLE_FIRST_FRAME

    def spec(index: int, frames: int, camera: CameraMove, speed: float, rig: bool) -> ShotSpec:
        return ShotSpec(seed=int(seeds[index]), width=width, height=height, frames=frames,
                        camera=camera, speed=speed, with_object=True, with_rig=rig)

    shots = (
        SampleShot("shotA", spec(0, 48, CameraMove.PAN, 0.004, False),
                   media_dir / "shotA.####.exr", (first, first + 47), (first, first + 39)),
        SampleShot("shotB", spec(1, 40, CameraMove.ORBIT, 0.003, False),
                   media_dir / "shotB.####.exr", (first, first + 39), (first + 8, first + 39)),
        SampleShot("shotC", spec(2, 24, CameraMove.PAN, 0.002, True),
                   media_dir / "shotC.####.exr", (first, first + 23), (first, first + 23),
                   mask=media_dir / "shotC_mask.####.png",
                   truth=truth_dir / "shotC_clean.####.exr"),
    )
    for shot in shots:
        _write_sample_shot(shot)
    edit = out_dir / "sample_edit.otio"
    _write_otio(_sample_timeline(shots, rate, seed), edit)
    return SampleEdit(edit=edit, media_dir=media_dir, truth_dir=truth_dir, rate=float(rate),
                      gap_frames=SAMPLE_GAP_FRAMES, shots=shots)


def _write_sample_shot(shot: SampleShot) -> None:
    """Render ``shot`` frame by frame and write its media (and mask and truth)."""
    attributes = {
        "chromaticities": REC709_CHROMATICITIES,
        "owner": "shotfill",
        "comments": (f"shotfill procedural sample {shot.name}: seed {shot.spec.seed}, "
                     f"camera {shot.spec.camera.value}, scene-linear Rec.709"),
    }
    for t, frame in enumerate(range(shot.available[0], shot.available[1] + 1)):
        sample = render_frame(shot.spec, t)
        write_exr(shot.frame_path(shot.media, frame), sample.frame, compression="zip",
                  attributes=attributes)
        if shot.mask is not None:
            write_png(shot.frame_path(shot.mask, frame),
                      (sample.rig_mask * 255).astype(np.uint8))
        if shot.truth is not None:
            write_exr(shot.frame_path(shot.truth, frame), sample.clean, compression="zip",
                      attributes={**attributes, "comments": attributes["comments"]
                                  + ", without the rig (ground truth for the fill)"})


def _sequence_reference(pattern: Path, available: tuple[int, int],
                        rate: float) -> otio.schema.ImageSequenceReference:
    """An image sequence reference to ``media/<prefix>####<suffix>``, relative to the edit."""
    prefix, suffix = pattern.name.split("####")
    return otio.schema.ImageSequenceReference(
        target_url_base=f"{pattern.parent.name}/", name_prefix=prefix, name_suffix=suffix,
        start_frame=available[0], frame_step=1, rate=rate, frame_zero_padding=4,
        available_range=_frames(available, rate))


def _frames(frames: tuple[int, int], rate: float) -> TimeRange:
    """Inclusive frame numbers -> a TimeRange in media time (frame N at N / rate)."""
    return TimeRange(RationalTime(frames[0], rate), RationalTime(frames[1] - frames[0] + 1, rate))


def _sample_timeline(shots: tuple[SampleShot, ...], rate: float, seed: int) -> otio.schema.Timeline:
    a, b, c = shots
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for shot in shots:
        clip = otio.schema.Clip(name=shot.name, source_range=_frames(shot.used, rate))
        references = {otio.schema.Clip.DEFAULT_MEDIA_KEY:
                      _sequence_reference(shot.media, shot.available, rate)}
        if shot.mask is not None:
            references["mask"] = _sequence_reference(shot.mask, shot.available, rate)
            clip.metadata["shotfill"] = {"mask": f"{shot.mask.parent.name}/{shot.mask.name}"}
        clip.set_media_references(references, otio.schema.Clip.DEFAULT_MEDIA_KEY)
        track.append(clip)
        if shot is a:
            track.append(otio.schema.Gap(
                source_range=TimeRange(RationalTime(0, rate), RationalTime(SAMPLE_GAP_FRAMES, rate))))
    timeline = otio.schema.Timeline(
        name="shotfill sample edit",
        global_start_time=RationalTime(3600 * round(rate), rate),    # 01:00:00:00
        metadata={"shotfill": {"sample_edit": {"seed": seed}}})
    timeline.tracks.append(track)
    return timeline


def _write_otio(timeline: otio.schema.Timeline, path: Path) -> None:
    """Write ``timeline`` as OTIO JSON to a temporary file, then rename it onto ``path``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
    try:
        otio.adapters.write_to_file(timeline, str(temporary), adapter_name="otio_json")
        os.replace(temporary, path)
    except OSError as e:
        temporary.unlink(missing_ok=True)
        raise MediaError(path, f"cannot be written: {e.strerror or e}") from None
