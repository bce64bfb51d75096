"""An edit (OpenTimelineIO) rendered by MLT, the engine of Kdenlive and Shotcut, through its ``melt`` command.

Why a converter of our own: the two OpenTimelineIO adapters for MLT on PyPI cannot play this
project's edits (tried 2026-12-07 with melt 7.12.0, Debian 12):

- ``otio-mlt-adapter`` 0.3.0 (adapter ``mlt_xml``) writes a clip's media time as the producer's
  frame index (``in="1009.0"`` for a clip that starts at frame 1009 of a sequence numbered from
  1001, where MLT wants ``8``), names ``image2`` as the MLT service (MLT has no such service),
  leaves the image2 demuxer at its default 25 fps and the profile without a frame size: the
  demo's published sample edit (64x36) renders at 720x576 with 104 of its 108 frames black and
  the other 4 not the frames the edit names.
- ``otio-kdenlive-adapter`` 0.0.3 says it is deprecated, and writes every clip whose media is not
  an ``ExternalReference`` as an "unsupported" title clip: image sequences never reach MLT.

So :func:`edit_to_mlt` writes the smallest MLT XML that plays an edit of video tracks of clips
and gaps: one ``<playlist>`` per track (``<entry>`` per clip, ``<blank>`` per gap), one
``avformat`` producer per clip whose media is an ``ImageSequenceReference`` (FFmpeg's image2
demuxer and EXR decoder), and a ``<tractor>`` whose ``<multitrack>`` holds a black background and
the tracks bottom to top. MLT shows the topmost track that has a clip at a frame, as an editor
does with opaque clips. Every frame number comes from OpenTimelineIO's own arithmetic
(``trimmed_range``, ``range_of_child_at_index``, ``ImageSequenceReference.frame_for_time``), so
what is tested is what the edit says. Audio tracks are left out (the render is pictures only);
anything else (transitions, effects, nested stacks, trimmed tracks, movies) is a
:class:`ConversionError`, not a guess.

What the engine does to EXR pixels (measured on half-float ZIP RGB files): FFmpeg's EXR decoder
applies no transfer function (its ``apply_trc`` is off), MLT clips to [0, 1] and quantises to 8
bits: an 8-bit value is the scene-linear value x 255, within 1 of :func:`decode_8bit`.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from fractions import Fraction
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import opentimelineio as otio
from opentimelineio.opentime import RationalTime
from PIL import Image

#: the melt command, or None when MLT is not installed (Debian: ``apt-get install -y melt``)
MELT = shutil.which("melt")
#: how long one melt render may take before it counts as hung
MELT_TIMEOUT_S = 120


class ConversionError(ValueError):
    """The edit holds something this converter does not play; the message names it."""


@dataclasses.dataclass(frozen=True)
class Sequence:
    """An image sequence on disk: ``pattern`` with ``%0Nd`` for the frame number, frames
    ``start_frame .. start_frame + count - 1``."""

    pattern: Path
    start_frame: int
    count: int

    def file(self, frame: int) -> Path:
        return Path(str(self.pattern) % frame)


@dataclasses.dataclass(frozen=True)
class Shown:
    """What an edit shows at one record frame: the topmost clip there and its media file
    (both None where every track has a gap: black)."""

    clip: otio.schema.Clip | None
    track: str | None
    path: Path | None

    @property
    def is_shotfill(self) -> bool:
        """Whether shotfill placed the clip (it carries ``metadata["shotfill"]``)."""
        return self.clip is not None and "shotfill" in self.clip.metadata


# -- reading the edit ------------------------------------------------------------------


def media_path(url: str, edit_path: Path) -> Path:
    """A media URL as a path: ``file:`` URLs as they are, relative ones from the edit's folder."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme:
        raise ConversionError(f"{url}: only file URLs and paths are played, not {parsed.scheme}:")
    path = Path(urllib.parse.unquote(url))
    return path if path.is_absolute() else Path(edit_path).absolute().parent / path


def sequence_of(clip: otio.schema.Clip, edit_path: Path) -> Sequence:
    """The image sequence a clip's media reference names."""
    ref = clip.media_reference
    if not isinstance(ref, otio.schema.ImageSequenceReference):
        raise ConversionError(f"clip '{clip.name}': media {type(ref).__name__} is not an image sequence")
    if ref.frame_step != 1:
        raise ConversionError(f"clip '{clip.name}': frame step {ref.frame_step} (only 1 is played)")
    if ref.available_range is None:
        raise ConversionError(f"clip '{clip.name}': its image sequence has no available range")
    first = media_path(ref.target_url_for_image_number(0), edit_path)
    digits = ref.frame_zero_padding
    number = f"{ref.start_frame:0{digits}d}"
    if not first.name.startswith(ref.name_prefix) or not first.name.endswith(number + ref.name_suffix):
        raise ConversionError(f"clip '{clip.name}': cannot make a frame pattern of {first}")
    stem = str(first.parent / ref.name_prefix).replace("%", "%%")
    pattern = Path(f"{stem}%0{digits}d{ref.name_suffix.replace('%', '%%')}" if digits else f"{stem}%d")
    return Sequence(pattern, ref.start_frame, ref.number_of_images_in_sequence())


def _frames(time: RationalTime, rate: float, what: str) -> int:
    value = time.rescaled_to(rate).value
    if value != round(value):
        raise ConversionError(f"{what}: {time} is not on a frame boundary at {rate} fps")
    return int(round(value))


def _video_tracks(timeline: otio.schema.Timeline) -> list[otio.schema.Track]:
    tracks = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video]
    for track in tracks:
        if track.source_range is not None:
            raise ConversionError(f"track '{track.name}': a trimmed track (source_range) is not played")
        for item in track:
            if isinstance(item, otio.schema.Transition):
                raise ConversionError(f"track '{track.name}': transition '{item.name}' is not played")
            if not isinstance(item, (otio.schema.Clip, otio.schema.Gap)):
                raise ConversionError(f"track '{track.name}': {type(item).__name__} '{item.name}' "
                                      "is not played (only clips and gaps)")
            if item.effects:
                raise ConversionError(f"track '{track.name}': '{item.name}' has effects "
                                      f"({', '.join(e.effect_name or e.name for e in item.effects)})")
    return tracks


def edit_rate(timeline: otio.schema.Timeline) -> float:
    """The one frame rate of the edit's clips (an edit that mixes rates is not played)."""
    rates = {item.trimmed_range().duration.rate for track in _video_tracks(timeline)
             for item in track if isinstance(item, otio.schema.Clip)}
    if len(rates) != 1:
        raise ConversionError(f"edit '{timeline.name}': clips at {sorted(rates) or 'no'} fps; one rate is played")
    return rates.pop()


def _clip_images(clip: otio.schema.Clip, seq: Sequence) -> tuple[int, int]:
    """The clip's first and last image numbers (0 = the sequence's first file)."""
    ref, trimmed = clip.media_reference, clip.trimmed_range()
    first = ref.frame_for_time(trimmed.start_time) - ref.start_frame
    last = ref.frame_for_time(trimmed.end_time_inclusive()) - ref.start_frame
    if first < 0 or last >= seq.count:
        raise ConversionError(f"clip '{clip.name}': plays images {first}..{last}, its sequence has 0..{seq.count - 1}")
    return first, last


def shown(timeline: otio.schema.Timeline, edit_path: Path) -> list[Shown]:
    """Per record frame (0 = the timeline's first), what the edit shows: the topmost clip.

    This is the edit read by OpenTimelineIO alone; a render is checked against it.
    Raises ConversionError for a clip whose media file is missing (offline).
    """
    rate = edit_rate(timeline)
    length = _frames(timeline.tracks.duration(), rate, f"edit '{timeline.name}'")
    frames = [Shown(None, None, None)] * length
    for track in _video_tracks(timeline):                       # bottom to top: the last one wins
        for index, item in enumerate(track):
            if not isinstance(item, otio.schema.Clip):
                continue
            seq = sequence_of(item, edit_path)
            first, last = _clip_images(item, seq)
            start = _frames(track.range_of_child_at_index(index).start_time, rate, f"clip '{item.name}'")
            for offset in range(last - first + 1):
                path = seq.file(seq.start_frame + first + offset)
                if not path.is_file():
                    raise ConversionError(f"clip '{item.name}' on track '{track.name}': media file {path} is missing")
                frames[start + offset] = Shown(item, track.name, path)
    return frames


# -- writing MLT XML -------------------------------------------------------------------------


def _property(parent: ET.Element, name: str, value) -> None:
    ET.SubElement(parent, "property", name=name).text = str(value)


def _document(width: int, height: int, rate: float) -> ET.Element:
    fps = Fraction(rate).limit_denominator(1001)
    # root="": resources are absolute already; MLT would otherwise prefix the XML's folder to
    # "image2:/..." (it takes the format prefix for a relative path) and show its INVALID card
    root = ET.Element("mlt", root="", LC_NUMERIC="C", title="shotfill test render")
    ET.SubElement(root, "profile", description="shotfill test", width=str(width), height=str(height),
                  progressive="1", sample_aspect_num="1", sample_aspect_den="1",
                  display_aspect_num=str(width), display_aspect_den=str(height),
                  frame_rate_num=str(fps.numerator), frame_rate_den=str(fps.denominator), colorspace="709")
    return root


def _sequence_producer(root: ET.Element, ident: str, seq: Sequence, rate: float) -> None:
    """An avformat producer reading ``seq`` through FFmpeg's image2 demuxer at the edit's rate."""
    text = str(seq.pattern)
    if "?" in text or "&" in text:
        raise ConversionError(f"{text}: '?' and '&' in media paths are not passed to MLT")
    fps = Fraction(rate).limit_denominator(1001)
    producer = ET.SubElement(root, "producer", id=ident, attrib={"in": "0", "out": str(seq.count - 1)})
    _property(producer, "mlt_service", "avformat")
    _property(producer, "resource",
              f"image2:{text}?start_number={seq.start_frame}&framerate={fps.numerator}/{fps.denominator}")
    _property(producer, "length", seq.count)


def edit_to_mlt(timeline: otio.schema.Timeline, edit_path: Path, *, width: int, height: int) -> str:
    """MLT XML that plays ``timeline`` (read from ``edit_path``; relative media from its folder)."""
    rate = edit_rate(timeline)
    length = _frames(timeline.tracks.duration(), rate, f"edit '{timeline.name}'")
    root = _document(width, height, rate)
    black = ET.SubElement(root, "producer", id="black", attrib={"in": "0", "out": str(length - 1)})
    _property(black, "mlt_service", "color")
    _property(black, "resource", "0x000000ff")
    _property(black, "length", length)
    background = ET.SubElement(root, "playlist", id="background")
    ET.SubElement(background, "entry", producer="black", attrib={"in": "0", "out": str(length - 1)})
    playlists = [background]
    for t, track in enumerate(_video_tracks(timeline)):
        playlist = ET.Element("playlist", id=f"track{t}")
        for index, item in enumerate(track):
            frames = _frames(item.trimmed_range().duration, rate, f"'{item.name}' on track '{track.name}'")
            if isinstance(item, otio.schema.Gap):
                ET.SubElement(playlist, "blank", length=str(frames))
                continue
            seq = sequence_of(item, edit_path)
            first, last = _clip_images(item, seq)
            ident = f"track{t}_clip{index}"
            _sequence_producer(root, ident, seq, rate)
            ET.SubElement(playlist, "entry", producer=ident, attrib={"in": str(first), "out": str(last)})
        root.append(playlist)
        playlists.append(playlist)
    tractor = ET.SubElement(root, "tractor", id="edit", attrib={"in": "0", "out": str(length - 1)})
    multitrack = ET.SubElement(tractor, "multitrack")
    for playlist in playlists:
        ET.SubElement(multitrack, "track", producer=playlist.get("id"))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def sequence_to_mlt(seq: Sequence, *, width: int, height: int, rate: float) -> str:
    """MLT XML that plays one image sequence alone, every frame of it."""
    root = _document(width, height, rate)
    _sequence_producer(root, "alone", seq, rate)
    playlist = ET.SubElement(root, "playlist", id="main")
    ET.SubElement(playlist, "entry", producer="alone", attrib={"in": "0", "out": str(seq.count - 1)})
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


# -- rendering -------------------------------------------------------------------------------


def render(xml: str, folder: Path, *, frames: int) -> list[np.ndarray]:
    """Render MLT XML with melt to 8-bit RGB PNGs in ``folder``; return them in order.

    ``folder/render.mlt`` keeps the XML, ``folder/frame.NNNNNN.png`` the frames (from 1, as
    FFmpeg numbers them). Raises RuntimeError when melt fails or renders another count of frames.
    """
    if MELT is None:
        raise RuntimeError("melt is not installed (Debian: apt-get install -y melt)")
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.glob("frame.*.png")):
        raise RuntimeError(f"{folder}: holds frames of an earlier render; render into an empty folder")
    source = folder / "render.mlt"
    source.write_text(xml)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [MELT, "-quiet", str(source), "-consumer", f"avformat:{folder}/frame.%06d.png", "vcodec=png",
         "pix_fmt=rgb24", "real_time=0"],
        capture_output=True, text=True, timeout=MELT_TIMEOUT_S, env=env, stdin=subprocess.DEVNULL)
    written = sorted(folder.glob("frame.*.png"))
    if done.returncode != 0 or len(written) != frames:
        raise RuntimeError(f"melt rendered {len(written)} of {frames} frames of {source} "
                           f"(exit {done.returncode}): {done.stderr[-2000:]}")
    return [np.asarray(Image.open(path).convert("RGB")) for path in written]


def render_sequence(seq: Sequence, folder: Path, *, width: int, height: int, rate: float) -> dict[Path, np.ndarray]:
    """Every file of ``seq`` as melt renders it alone, by path."""
    images = render(sequence_to_mlt(seq, width=width, height=height, rate=rate), folder, frames=seq.count)
    return {seq.file(seq.start_frame + i): image for i, image in enumerate(images)}


def decode_8bit(path: Path) -> np.ndarray:
    """An EXR frame decoded as the engine does it: RGB clipped to [0, 1], x 255, rounded."""
    from shotfill.io.exr import read_exr

    rgb = read_exr(path).pixels[..., :3].astype(np.float64)
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
