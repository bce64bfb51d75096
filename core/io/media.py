"""Frame sources: the pictures a job reads, whatever they are stored as.

A :class:`FrameSource` gives numbered frames as float32 RGB arrays ``(H, W, 3)``
and masks as float32 ``(H, W)`` in {0, 1} (**1 = generate, 0 = keep**).
:func:`open_source` accepts

- a frame pattern: ``/shots/a.####.exr``, ``a.%04d.exr`` or ``a.@@@@.exr``
  (one ``#`` or ``@`` per digit of padding; a single ``#``, ``@`` or ``%d``
  means unpadded numbers);
- one file of a numbered sequence (``a.0012.exr`` opens the whole sequence);
- a directory holding one numbered sequence (``frames/00000.jpg ...``);
- a movie file (``.mp4 .mov .mkv .avi .m4v .mxf``, decoded with PyAV);
- a still image (a file name without a frame number);

optionally followed by ``#frames=A-B`` to keep only frames A to B (inclusive).
Sequence frames are numbered as their files are; movie frames from 0.

Pixels are not linearised here: integer images and movies are scaled to 0..1
as stored (sRGB-encoded, as ``default_colourspace`` says); EXR frames are read
with :mod:`shotfill.io.exr` and returned over their display window. Colour
transforms are :mod:`shotfill.io.colour`'s job. Frame patterns and sequence
discovery live in :mod:`shotfill.io.patterns`.
"""
from __future__ import annotations

import abc
import collections
import functools
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError, MediaError, MissingFrameError, UnsupportedMediaError
from .patterns import (EXR_SUFFIXES, RASTER_SUFFIXES, SEQUENCE_SUFFIXES, FramePattern, _describe_frames, _holes,
                       _pattern_of_directory, _pattern_of_file, _select_frames, _split_range_suffix, parse_pattern)

__all__ = [
    "EXR_SUFFIXES", "MOVIE_SUFFIXES", "RASTER_SUFFIXES", "SEQUENCE_SUFFIXES", "ExrSource", "FramePattern",
    "FrameSource", "ImageSource", "MovieSource", "open_source", "parse_pattern",
]

MOVIE_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".m4v", ".mxf"})

# Chromaticities (red, green, blue, white as x, y pairs) that name an ACES space.
_ACES_PRIMARIES = {
    "aces2065-1": (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767),
    "acescg": (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767),
}


# ---------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------
class FrameSource(abc.ABC):
    """Numbered frames from one piece of media; see :func:`open_source`.

    ``frames`` lists the frame numbers that can be read, ascending: file numbers
    for sequences (holes left out), 0-based indices for movies. ``width`` and
    ``height`` are the size of what :meth:`read` returns.
    """

    kind: str
    #: True for a single unnumbered image, which answers every frame number.
    still: bool = False

    def __init__(self, path: str, frames: list[int], *, width: int, height: int,
                 default_colourspace: str, bit_depth: int | None, rate: Fraction | None = None):
        self.path = path
        self.frames = frames
        self.width = width
        self.height = height
        self.default_colourspace = default_colourspace
        self.bit_depth = bit_depth
        self.rate = rate
        self._frame_set = frozenset(frames)

    def read(self, frame: int) -> np.ndarray:
        """Frame ``frame`` as float32 ``(H, W, 3)`` RGB; raises MissingFrameError outside ``frames``."""
        self._require(frame)
        return self._read(frame)

    def read_mask(self, frame: int, size: tuple[int, int] | None = None) -> np.ndarray:
        """Frame ``frame`` as a float32 ``(H, W)`` mask: 1 (generate) where it is nonzero.

        Nonzero means any channel, or the alpha channel when the image has one; a
        palette image's nonzero colour indices. With ``size=(width, height)`` the
        mask is resized to it (nearest neighbour).
        """
        self._require(frame)
        mask = self._read_mask(frame)
        if size is not None and (mask.shape[1], mask.shape[0]) != tuple(size):
            import cv2

            mask = cv2.resize(mask, tuple(size), interpolation=cv2.INTER_NEAREST_EXACT)
        return mask

    def frame_header(self, frame: int) -> dict:
        """The frame's file header (EXR: windows and attributes); empty for other media."""
        self._require(frame)
        return {}

    def info(self) -> dict:
        """A json-serialisable summary (``shotfill info``)."""
        return {
            "path": self.path,
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "frames": {
                "first": self.frames[0],
                "last": self.frames[-1],
                "count": len(self.frames),
                "missing": _holes(self.frames),
            },
            "rate": str(self.rate) if self.rate is not None else None,
            "bit_depth": self.bit_depth,
            "default_colourspace": self.default_colourspace,
        }

    def close(self) -> None:
        """Release open files (movies); reading after this is an error."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.path!r} frames {_describe_frames(self.frames)} "
                f"{self.width}x{self.height}>")

    def _require(self, frame: int) -> None:
        if frame not in self._frame_set:
            raise self._missing(frame)

    def _missing(self, frame: int) -> MissingFrameError:
        return MissingFrameError(self.path, frame)

    @abc.abstractmethod
    def _read(self, frame: int) -> np.ndarray:
        """Float32 (H, W, 3) RGB of an available frame."""

    @abc.abstractmethod
    def _read_mask(self, frame: int) -> np.ndarray:
        """Float32 (H, W) {0, 1} mask of an available frame, at its own size."""


# --- raster images (PNG, JPEG, TIFF) ----------------------------------------
def _load_raster(file: Path) -> np.ndarray:
    """The pixels of an image file in its own dtype: (H, W) grey or (H, W, 3|4) RGB(A)."""
    import cv2

    try:
        data = np.frombuffer(file.read_bytes(), np.uint8)
    except OSError as e:
        raise MediaError(file, f"cannot be read: {e.strerror}") from None
    try:
        pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        raise MediaError(file, f"cannot be decoded: {e.err}") from None
    if pixels is None:
        raise MediaError(file, "is damaged or not an image (cannot be decoded)")
    if pixels.ndim == 3:
        channels = pixels.shape[2]
        if channels not in (3, 4):
            raise UnsupportedMediaError(file, f"has {channels} channels; expected 1, 3 or 4")
        pixels = pixels[..., [2, 1, 0, 3][:channels]]  # cv2's BGR(A) -> RGB(A)
    return pixels


def _check_samples(file: Path, pixels: np.ndarray) -> None:
    if not (pixels.dtype in (np.uint8, np.uint16) or pixels.dtype.kind == "f"):
        raise UnsupportedMediaError(file, f"has {pixels.dtype} samples; expected 8- or 16-bit "
                                          "unsigned integers or floats")


def _unit_float(file: Path, pixels: np.ndarray) -> np.ndarray:
    """Integer pixels scaled to 0..1, float pixels as they are; float32."""
    _check_samples(file, pixels)
    if pixels.dtype.kind == "u":
        return pixels.astype(np.float32) / np.iinfo(pixels.dtype).max
    return pixels.astype(np.float32)


def _palette_indices(file: Path) -> np.ndarray | None:
    """The colour indices of a palette PNG, None for a PNG of another kind."""
    from PIL import Image

    try:
        with Image.open(file) as image:
            return np.asarray(image) if image.mode == "P" else None
    except OSError as e:
        raise MediaError(file, f"is damaged or not an image ({e})") from None


def _nonzero(pixels: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) pixels -> float32 (H, W): 1 where any channel is nonzero."""
    if pixels.ndim == 3:
        return np.any(pixels != 0, axis=-1).astype(np.float32)
    return (pixels != 0).astype(np.float32)


class ImageSource(FrameSource):
    """A sequence of numbered image files (PNG, JPEG, TIFF), or one still image.

    Integer images are scaled to 0..1 (``default_colourspace`` "srgb"); float
    TIFFs are taken as they are ("lin_rec709"). Grey images are replicated to RGB;
    alpha is dropped by :meth:`read` and is the mask in :meth:`read_mask`.
    A still has ``frames == [0]`` and returns its one picture for any frame
    number, so one static mask covers a whole shot.
    """

    kind = "image"

    def __init__(self, path: str, files: FramePattern | Path, frames: list[int]):
        self._pattern = files if isinstance(files, FramePattern) else None
        self._still_file = files if isinstance(files, Path) else None
        self.still = self._pattern is None
        width, height, bit_depth, colourspace, rate = self._probe(self._file(frames[0]))
        super().__init__(path, frames, width=width, height=height, bit_depth=bit_depth,
                         default_colourspace=colourspace, rate=rate)

    def info(self) -> dict:
        if self.still:
            return {**super().info(), "still": True}
        return {**super().info(), "pattern": str(self._pattern)}

    def _file(self, frame: int) -> Path:
        return self._still_file if self._pattern is None else self._pattern.path(frame)

    def _require(self, frame: int) -> None:
        if not self.still:
            super()._require(frame)

    def _missing(self, frame: int) -> MissingFrameError:
        return MissingFrameError(self._file(frame), frame)

    def _check_size(self, file: Path, height: int, width: int) -> None:
        if (width, height) != (self.width, self.height):
            raise MediaError(file, f"is {width}x{height}, but the sequence's first frame is "
                                   f"{self.width}x{self.height}")

    def _probe(self, file: Path) -> tuple[int, int, int, str, Fraction | None]:
        """(width, height, bit depth, default colour space, rate) of one file."""
        pixels = _load_raster(file)
        _check_samples(file, pixels)
        return (pixels.shape[1], pixels.shape[0], pixels.dtype.itemsize * 8,
                "lin_rec709" if pixels.dtype.kind == "f" else "srgb", None)

    def _read(self, frame: int) -> np.ndarray:
        file = self._file(frame)
        pixels = _unit_float(file, _load_raster(file))
        self._check_size(file, *pixels.shape[:2])
        if pixels.ndim == 2:
            return np.repeat(pixels[..., None], 3, axis=-1)
        return np.ascontiguousarray(pixels[..., :3])

    def _read_mask(self, frame: int) -> np.ndarray:
        file = self._file(frame)
        if file.suffix.lower() == ".png":
            indices = _palette_indices(file)
            if indices is not None:  # nonzero indices, whatever colours the palette gives them
                self._check_size(file, *indices.shape)
                return _nonzero(indices)
        pixels = _load_raster(file)
        self._check_size(file, *pixels.shape[:2])
        if pixels.ndim == 3 and pixels.shape[2] == 4:
            return _nonzero(pixels[..., 3])
        return _nonzero(pixels)


# --- EXR ---------------------------------------------------------------------
def _exr_colourspace(chromaticities) -> str:
    """"acescg" / "aces2065-1" when the chromaticities are ACES AP1 / AP0, else "lin_rec709"."""
    if chromaticities is None:
        return "lin_rec709"
    for name, primaries in _ACES_PRIMARIES.items():
        if np.allclose(chromaticities, primaries, atol=1e-3):
            return name
    return "lin_rec709"


class ExrSource(ImageSource):
    """A sequence of EXR files (or one EXR still), read over each frame's display window.

    Frames are read with :func:`shotfill.io.exr.read_exr` (its default layer). The
    colour space defaults to linear Rec.709 unless the first frame's
    ``chromaticities`` are ACES AP1 ("acescg") or AP0 ("aces2065-1"); the rate
    comes from its ``framesPerSecond`` when present; the bit depth is 16 when all
    the channels of the part read are half floats, else 32.
    """

    kind = "exr"
    #: the part read_exr chose in the first frame; every frame is read from it
    _part: str | int

    def frame_header(self, frame: int) -> dict:
        """``{"data_window", "display_window", "attributes"}`` of the part read from the frame's file.

        The attributes leave out the ones that describe the file's layout
        (:data:`shotfill.io.exr.STRUCTURAL_ATTRIBUTES`), so they can be written on.
        """
        from .exr import STRUCTURAL_ATTRIBUTES, read_exr_header

        self._require(frame)
        header = read_exr_header(self._file(frame), part=self._part)
        return {
            "data_window": header["dataWindow"],
            "display_window": header["displayWindow"],
            "attributes": {k: v for k, v in header.items() if k not in STRUCTURAL_ATTRIBUTES},
        }

    def _probe(self, file: Path) -> tuple[int, int, int, str, Fraction | None]:
        from .exr import exr_info, read_exr

        image = read_exr(file)
        self._part = image.part
        part = next(p for p in exr_info(file)["parts"] if image.part in (p["name"], p["index"]))
        bit_depth = 16 if all(c["type"] == "half" for c in part["channels"]) else 32
        xmin, ymin, xmax, ymax = image.display_window
        fps = image.attributes.get("framesPerSecond")
        return (xmax - xmin + 1, ymax - ymin + 1, bit_depth,
                _exr_colourspace(image.attributes.get("chromaticities")),
                Fraction(*fps) if fps is not None else None)

    def _read(self, frame: int) -> np.ndarray:
        from .exr import read_exr

        file = self._file(frame)
        rgb = read_exr(file, part=self._part).display_rgb()
        self._check_size(file, *rgb.shape[:2])
        return rgb

    def _read_mask(self, frame: int) -> np.ndarray:
        from .exr import read_exr

        file = self._file(frame)
        image = read_exr(file, part=self._part)
        alpha = image.display_alpha()
        mask = _nonzero(alpha if alpha is not None else image.display_rgb())
        self._check_size(file, *mask.shape)
        return mask


# --- movies --------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _decoded_frame_count(file: str, size: int, mtime_ns: int) -> int:
    """How many frames the first video stream of ``file`` decodes to (keyed on its size and time)."""
    import av

    with av.open(file) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


class MovieSource(FrameSource):
    """The first video stream of a movie file, decoded with PyAV; frames numbered from 0.

    Random access is frame-accurate: a read seeks to the keyframe at or before
    the frame's time and decodes forward to the frame whose timestamp maps to
    it. Reads of the frames just ahead of the last one decode on without
    seeking, so reading in order costs one decode per frame. The last few frames
    read are kept in a small cache. Close the source (or use it as a context
    manager) to release the file.
    """

    kind = "movie"
    #: frames kept decoded (RGB24) for repeated reads
    CACHE_FRAMES = 8
    #: a frame at most this far ahead of the decoder is reached by decoding on, not seeking
    DECODE_AHEAD = 32

    def __init__(self, path: str, file: Path, frame_range: tuple[int, int] | None = None):
        import av

        self._file = file
        try:
            self._container = av.open(str(file))
        except av.FFmpegError as e:
            raise MediaError(file, f"cannot be opened as a movie: {e}") from None
        try:
            if not self._container.streams.video:
                raise MediaError(file, "has no video stream")
            self._stream = stream = self._container.streams.video[0]
            stream.thread_type = "AUTO"
            if not stream.average_rate:
                raise MediaError(file, "has no frame rate")
            count = stream.frames
            if count == 0:  # the container does not say (Matroska, for one): count by decoding
                stat = file.stat()
                count = _decoded_frame_count(str(file), stat.st_size, stat.st_mtime_ns)
            if count == 0:
                raise MediaError(file, "has no video frames")
            frames = _select_frames(path, list(range(count)), frame_range)
            super().__init__(path, frames, width=stream.codec_context.width,
                             height=stream.codec_context.height, default_colourspace="srgb",
                             bit_depth=8, rate=Fraction(stream.average_rate))
        except BaseException:
            self._container.close()
            raise
        self._start_pts = stream.start_time or 0
        # seconds per timestamp unit times frames per second: frames per timestamp unit
        self._frames_per_tick = Fraction(stream.time_base) * self.rate
        self._decoder = None  # the running frame iterator, None before the first seek
        self._next_index: int | None = None  # the frame the decoder gives next, when known
        self._cache: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()

    def info(self) -> dict:
        return {**super().info(), "codec": self._stream.codec_context.name}

    def close(self) -> None:
        self._decoder = None
        self._container.close()

    def _read(self, frame: int) -> np.ndarray:
        return self._rgb24(frame).astype(np.float32) / 255.0

    def _read_mask(self, frame: int) -> np.ndarray:
        return _nonzero(self._rgb24(frame))

    def _rgb24(self, index: int) -> np.ndarray:
        """The frame at ``index`` as uint8 RGB, from the cache or the decoder."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        pixels = self._decode(index)
        self._cache[index] = pixels
        if len(self._cache) > self.CACHE_FRAMES:
            self._cache.popitem(last=False)
        return pixels

    def _decode(self, index: int) -> np.ndarray:
        if self._next_index is None or not 0 <= index - self._next_index <= self.DECODE_AHEAD:
            self._seek(index)
        pixels = self._decode_on_to(index)
        if pixels is None:
            # The decoder went past the frame: some demuxers seek by decoding time and land
            # on a keyframe shown after it. Decode from the start of the stream instead.
            self._seek(0)
            pixels = self._decode_on_to(index)
        if pixels is None:
            raise MediaError(self._file, f"frame {index} cannot be decoded: no frame of the stream "
                                         "has its timestamp")
        return pixels

    def _seek(self, index: int) -> None:
        """Position the demuxer on the keyframe at or before frame ``index``."""
        import av

        target = self._start_pts + round(index / self._frames_per_tick)
        try:
            self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        except av.FFmpegError as e:
            raise MediaError(self._file, f"cannot seek to frame {index}: {e}") from None
        self._decoder = self._container.decode(self._stream)
        self._next_index = None

    def _decode_on_to(self, index: int) -> np.ndarray | None:
        """Decode until frame ``index``; None when the decoder passes it or the stream ends."""
        import av

        try:
            for frame in self._decoder:
                if frame.pts is None:
                    raise MediaError(self._file, "its video frames carry no timestamps")
                current = round((frame.pts - self._start_pts) * self._frames_per_tick)
                self._next_index = current + 1
                if current == index:
                    return frame.to_ndarray(format="rgb24")
                if current > index:
                    return None
        except av.FFmpegError as e:
            raise MediaError(self._file, f"cannot decode frame {index}: {e}") from None
        self._next_index = None
        return None


# ---------------------------------------------------------------------------
# opening
# ---------------------------------------------------------------------------
def open_source(spec: str | Path, *, frame_range: tuple[int, int] | None = None) -> FrameSource:
    """Open a pattern, numbered file, directory of numbered images, movie or still image.

    ``spec`` may end in ``#frames=A-B``; that, or ``frame_range=(A, B)``, keeps
    frames A to B inclusive. Raises MediaError for a missing path or a pattern
    without files, InputError for a range that is empty or outside the frames
    available, UnsupportedMediaError for a file type not handled here.
    """
    text, suffix_range = _split_range_suffix(str(spec))
    if suffix_range is not None and frame_range is not None:
        raise InputError(f"{spec}: the frame range is given twice (in '#frames=' and as an argument)")
    frame_range = frame_range or suffix_range

    pattern = parse_pattern(text)
    if pattern is None:
        path = Path(text)
        if not path.exists():
            raise MediaError(path, "no such file or directory")
        if path.is_dir():
            pattern = _pattern_of_directory(path)
        elif path.suffix.lower() in MOVIE_SUFFIXES:
            return MovieSource(text, path, frame_range)
        elif path.suffix.lower() not in SEQUENCE_SUFFIXES:
            known = " ".join(sorted(SEQUENCE_SUFFIXES | MOVIE_SUFFIXES))
            raise UnsupportedMediaError(path, f"unknown file type '{path.suffix}' (known: {known})")
        else:
            pattern = _pattern_of_file(path)
        if pattern is None:
            if frame_range is not None:
                raise InputError(f"{spec}: a still image has no frame range")
            return _image_source_class(path.suffix)(text, path, [0])
    elif pattern.suffix.lower() not in SEQUENCE_SUFFIXES:
        known = " ".join(sorted(SEQUENCE_SUFFIXES))
        raise UnsupportedMediaError(pattern, f"unknown image type '{pattern.suffix}' (known: {known})")
    elif not pattern.directory.is_dir():
        raise MediaError(text, f"its folder {pattern.directory} does not exist")

    available = pattern.glob_frames()
    if not available:
        raise MediaError(pattern, "no files match this pattern")
    frames = _select_frames(text, available, frame_range)
    return _image_source_class(pattern.suffix)(text, pattern, frames)


def _image_source_class(suffix: str) -> type[ImageSource]:
    return ExrSource if suffix.lower() in EXR_SUFFIXES else ImageSource
