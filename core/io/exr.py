"""OpenEXR frames in and out, through the official ``OpenEXR`` Python bindings.

Reading is done in two steps. First the header is parsed here, in pure Python, with strict
bounds: magic number, version flags, every attribute up to the terminating null byte, the
windows, channels and part types, and the chunk offset tables. Absurd or inconsistent headers
(inverted windows, more than :data:`MAX_PIXELS` pixels, truncated tables, deep data) are refused
before the binding allocates anything. Only then does the binding decode the pixels, and its
result is checked against the parsed header: on a damaged file the binding may print a warning
and return a file with parts or channels missing, which becomes a :class:`MediaError` here.

Pixels come back as float32 ``(H, W, C)`` arrays covering the *data* window, in R, G, B(, A)
order. Luminance-only files become grey RGB; luminance/chroma files (Y, RY, BY) are converted
to RGB the way OpenEXR's own RGBA interface does it.

Writing is half float RGB(A), scanline, with a chosen compression, into a temporary file in the
destination folder that is synced and then renamed: a frame exists whole or not at all.
"""
from __future__ import annotations

import contextlib
import io
import os
import struct
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import OpenEXR

from ..errors import MediaError, UnsupportedMediaError

#: The most data-window pixels (and display-window pixels) per part we agree to read: 16K x 16K.
MAX_PIXELS = 16384 * 16384
#: The most channels per part we agree to read.
MAX_CHANNELS = 1024
#: The most parts per file we agree to read.
MAX_PARTS = 1024
#: The most bytes the binding may decode for a whole file (it decodes every part): 8 GiB.
MAX_DECODED_BYTES = 8 << 30
#: The largest attribute value we read into memory, in bytes.
MAX_ATTRIBUTE_BYTES = 16 << 20

#: Compressions :func:`write_exr` offers, by the names the CLI and job specs use.
COMPRESSIONS: dict[str, OpenEXR.Compression] = {
    "none": OpenEXR.NO_COMPRESSION,
    "zip": OpenEXR.ZIP_COMPRESSION,
    "zips": OpenEXR.ZIPS_COMPRESSION,
    "piz": OpenEXR.PIZ_COMPRESSION,
    "dwaa": OpenEXR.DWAA_COMPRESSION,
    "dwab": OpenEXR.DWAB_COMPRESSION,
    "rle": OpenEXR.RLE_COMPRESSION,
    "pxr24": OpenEXR.PXR24_COMPRESSION,
    "b44": OpenEXR.B44_COMPRESSION,
}

#: Header attributes that describe the file's layout. :func:`write_exr` sets them from its own
#: arguments and refuses them in ``attributes``; filter them out when copying a source's header.
STRUCTURAL_ATTRIBUTES = frozenset(
    {"channels", "chunkCount", "compression", "dataWindow", "displayWindow", "lineOrder", "name",
     "tiles", "type", "version"}
)

_MAGIC = 20000630
_TILED_FLAG = 0x200
_LONG_NAMES_FLAG = 0x400
_DEEP_FLAG = 0x800
_MULTIPART_FLAG = 0x1000
_KNOWN_FLAGS = _TILED_FLAG | _LONG_NAMES_FLAG | _DEEP_FLAG | _MULTIPART_FLAG
#: OpenEXR keeps window coordinates within +-2^30 so that sizes fit an int.
_MAX_COORDINATE = 1 << 30

_COMPRESSION_NAMES = {
    0: "none", 1: "rle", 2: "zips", 3: "zip", 4: "piz", 5: "pxr24", 6: "b44", 7: "b44a",
    8: "dwaa", 9: "dwab", 10: "htj2k256", 11: "htj2k32", 12: "lj2k", 13: "zstd",
}
#: scanlines per chunk of each compression, as the 3.5.3 binding writes them
_LINES_PER_CHUNK = {
    "none": 1, "rle": 1, "zips": 1, "zip": 16, "piz": 32, "pxr24": 16, "b44": 32, "b44a": 32,
    "dwaa": 32, "dwab": 256, "htj2k256": 256, "htj2k32": 32, "lj2k": 256, "zstd": 1,
}
_LINE_ORDERS = {0: "increasing_y", 1: "decreasing_y", 2: "random_y"}
_LEVEL_MODES = {0: "one_level", 1: "mipmap_levels", 2: "ripmap_levels"}
_ROUNDING_MODES = {0: "round_down", 1: "round_up"}
_ENVMAPS = {0: "latlong", 1: "cube"}
_PIXEL_TYPES = {0: "uint", 1: "half", 2: "float"}
_SAMPLE_BYTES = {"uint": 4, "half": 2, "float": 4}
_PART_TYPES = ("scanlineimage", "tiledimage", "deepscanline", "deeptile")
_DEEP_TYPES = ("deepscanline", "deeptile")

#: attribute type -> struct format of its value (little-endian, fixed size)
_FIXED_FORMATS = {
    "int": "<i", "float": "<f", "double": "<d", "rational": "<iI",
    "v2i": "<2i", "v2f": "<2f", "v2d": "<2d", "v3i": "<3i", "v3f": "<3f", "v3d": "<3d",
    "box2i": "<4i", "box2f": "<4f", "m33f": "<9f", "m33d": "<9d", "m44f": "<16f", "m44d": "<16d",
    "chromaticities": "<8f", "timecode": "<2I", "keycode": "<7i",
    "compression": "<B", "lineOrder": "<B", "envmap": "<B", "tiledesc": "<IIB",
}
#: attributes whose type the file format fixes
_ATTRIBUTE_TYPES = {
    "channels": "chlist", "chunkCount": "int", "compression": "compression", "dataWindow": "box2i",
    "displayWindow": "box2i", "lineOrder": "lineOrder", "name": "string", "tiles": "tiledesc",
    "type": "string", "view": "string", "multiView": "stringvector", "chromaticities": "chromaticities",
}

#: OpenEXR's default chromaticities (Rec.709 primaries, D65 white), used when a file has none.
REC709_CHROMATICITIES = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)
#: OpenEXR's chroma reconstruction filter (ImfRgbaYca.cpp): the weights of the 14 chroma samples
#: around a missing one, 13, 11, ..., 1 pixels before it and 1, 3, ..., 13 pixels after it.
_CHROMA_TAPS = np.array(
    [0.002128, -0.007540, 0.019597, -0.043159, 0.087929, -0.186077, 0.627123,
     0.627123, -0.186077, 0.087929, -0.043159, 0.019597, -0.007540, 0.002128], dtype=np.float32)

#: The binding reports damaged pixel data with a Python ``print`` and carries on, which would
#: land in a worker's JSON-lines event stream. Reads capture ``sys.stdout`` while the binding
#: decodes (the message goes into the error instead); the swap is process-wide, so one at a time.
_STDOUT_LOCK = threading.Lock()


# ---------------------------------------------------------------------------
# the header, parsed in pure Python
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Channel:
    name: str
    pixel_type: str   # "uint", "half" or "float"
    x_sampling: int
    y_sampling: int

    @property
    def layer(self) -> str:
        """The layer prefix: "diffuse" for "diffuse.R", "" for "R"."""
        return self.name.rpartition(".")[0]

    @property
    def suffix(self) -> str:
        return self.name.rpartition(".")[2]


@dataclass(frozen=True)
class _Tiles:
    x_size: int
    y_size: int
    level_mode: str     # "one_level", "mipmap_levels" or "ripmap_levels"
    rounding_mode: str  # "round_down" or "round_up"


@dataclass(frozen=True)
class _Part:
    index: int
    name: str | None
    part_type: str
    compression: str
    data_window: tuple[int, int, int, int]
    display_window: tuple[int, int, int, int]
    channels: tuple[_Channel, ...]
    tiles: _Tiles | None
    attributes: dict[str, Any] = field(repr=False)

    @property
    def width(self) -> int:
        return self.data_window[2] - self.data_window[0] + 1

    @property
    def height(self) -> int:
        return self.data_window[3] - self.data_window[1] + 1

    def samples_shape(self, channel: _Channel) -> tuple[int, int]:
        """(rows, columns) of the channel's pixel array: the data window over its sampling."""
        return self.height // channel.y_sampling, self.width // channel.x_sampling


@dataclass(frozen=True)
class _Header:
    path: str
    version_flags: int
    parts: tuple[_Part, ...]
    tables_offset: int   # where the chunk offset tables start
    file_size: int

    @property
    def multipart(self) -> bool:
        return bool(self.version_flags & _MULTIPART_FLAG)


class _HeaderReader:
    """Bounded little-endian reads from the start of a file; every failure is a MediaError."""

    def __init__(self, path: str, stream: BinaryIO, file_size: int):
        self.path = path
        self.stream = stream
        self.file_size = file_size

    def error(self, reason: str) -> MediaError:
        return MediaError(self.path, reason)

    @property
    def position(self) -> int:
        return self.stream.tell()

    def read(self, size: int, what: str) -> bytes:
        if size > self.file_size - self.position:
            raise self.error(f"truncated header: {what} runs past the end of the file")
        return self.stream.read(size)

    def skip(self, size: int, what: str) -> None:
        if size > self.file_size - self.position:
            raise self.error(f"truncated header: {what} runs past the end of the file")
        self.stream.seek(size, os.SEEK_CUR)

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt), what))

    def name(self, max_length: int, what: str) -> str:
        """A null-terminated name of at most ``max_length`` bytes ("" for a lone null byte)."""
        raw = bytearray()
        while True:
            byte = self.read(1, what)
            if byte == b"\0":
                break
            if len(raw) == max_length:
                raise self.error(f"{what} is longer than {max_length} bytes or not terminated")
            raw += byte
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(f"{what} is not valid UTF-8") from None


def _parse_header(path: str | os.PathLike) -> _Header:
    """Parse and check every part header of an EXR file without decoding any pixels."""
    path = str(path)
    try:
        stream = open(path, "rb")
    except FileNotFoundError:
        raise MediaError(path, "no such file") from None
    except OSError as exc:
        raise MediaError(path, f"cannot open: {exc.strerror or exc}") from None
    with stream:
        reader = _HeaderReader(path, stream, os.fstat(stream.fileno()).st_size)
        if reader.file_size < 8:
            raise MediaError(path, "not an OpenEXR file (too short)")
        magic, version = struct.unpack("<iI", stream.read(8))
        if magic != _MAGIC:
            raise MediaError(path, "not an OpenEXR file (bad magic number)")
        if version & 0xFF != 2:
            raise MediaError(path, f"unsupported OpenEXR file version {version & 0xFF}")
        flags = version & ~0xFF
        if flags & ~_KNOWN_FLAGS:
            raise MediaError(path, f"unknown version flags 0x{flags & ~_KNOWN_FLAGS:x}")
        if flags & _MULTIPART_FLAG and flags & _TILED_FLAG:
            raise MediaError(path, "version flags say both multi-part and single-part tiled")
        max_name = 255 if flags & _LONG_NAMES_FLAG else 31

        raw_parts = []
        while True:
            attributes = _read_attributes(reader, max_name)
            if not flags & _MULTIPART_FLAG:
                raw_parts.append(attributes)
                break
            if not attributes:   # the empty header that ends a multi-part list
                break
            if len(raw_parts) == MAX_PARTS:
                raise MediaError(path, f"more than {MAX_PARTS} parts")
            raw_parts.append(attributes)
        if not raw_parts:
            raise MediaError(path, "multi-part file with no parts")
        parts = tuple(_check_part(path, i, attrs, flags) for i, attrs in enumerate(raw_parts))
        names = [p.name for p in parts if p.name is not None]
        if len(set(names)) != len(names):
            raise MediaError(path, "two parts have the same name")
        return _Header(path, flags, parts, reader.position, reader.file_size)


def _read_attributes(reader: _HeaderReader, max_name: int) -> dict[str, tuple[str, Any]]:
    """One header: attribute name -> (type name, plain value or None where not decoded)."""
    attributes: dict[str, tuple[str, Any]] = {}
    while True:
        name = reader.name(max_name, "an attribute name")
        if not name:
            return attributes
        type_name = reader.name(max_name, f"the type of attribute '{name}'")
        (size,) = reader.unpack("<i", f"the size of attribute '{name}'")
        if size < 0:
            raise reader.error(f"attribute '{name}' has a negative size")
        if name in attributes:
            raise reader.error(f"attribute '{name}' appears twice in one header")
        expected_type = _ATTRIBUTE_TYPES.get(name)
        if expected_type is not None and type_name != expected_type:
            raise reader.error(f"attribute '{name}' has type '{type_name}', expected '{expected_type}'")
        if type_name in _FIXED_FORMATS or type_name in ("string", "stringvector", "chlist"):
            if size > MAX_ATTRIBUTE_BYTES:
                raise reader.error(f"attribute '{name}' is {size} bytes, more than we accept")
            raw = reader.read(size, f"attribute '{name}'")
            attributes[name] = (type_name, _decode_attribute(reader, name, type_name, raw))
        else:   # previews, opaque and newer types: kept out of the plain attributes
            reader.skip(size, f"attribute '{name}'")
            attributes[name] = (type_name, None)


def _decode_attribute(reader: _HeaderReader, name: str, type_name: str, raw: bytes) -> Any:
    """The plain Python value of one attribute."""
    def utf8(data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise reader.error(f"attribute '{name}' is not valid UTF-8") from None

    if type_name == "string":
        return utf8(raw)
    if type_name == "stringvector":
        strings, pos = [], 0
        while pos < len(raw):
            if len(raw) - pos < 4:
                raise reader.error(f"attribute '{name}' is a truncated string vector")
            (length,) = struct.unpack_from("<i", raw, pos)
            if length < 0 or length > len(raw) - pos - 4:
                raise reader.error(f"attribute '{name}' is a malformed string vector")
            strings.append(utf8(raw[pos + 4:pos + 4 + length]))
            pos += 4 + length
        return strings
    if type_name == "chlist":
        return _decode_channels(reader, name, raw)
    fmt = _FIXED_FORMATS[type_name]
    if len(raw) != struct.calcsize(fmt):
        raise reader.error(f"attribute '{name}' of type {type_name} has {len(raw)} bytes, "
                           f"expected {struct.calcsize(fmt)}")
    values = struct.unpack(fmt, raw)
    if fmt.endswith("f"):   # 32-bit floats: the shortest decimal that reads back the same (0.1, not 0.1000000015)
        values = tuple(float(str(np.float32(v))) for v in values)
    enumerations = {"compression": _COMPRESSION_NAMES, "lineOrder": _LINE_ORDERS, "envmap": _ENVMAPS}
    if type_name in enumerations:
        if values[0] not in enumerations[type_name]:
            raise reader.error(f"attribute '{name}' has an unknown {type_name} value {values[0]}")
        return enumerations[type_name][values[0]]
    if type_name == "tiledesc":
        x_size, y_size, mode = values
        if mode & 0xF not in _LEVEL_MODES or mode >> 4 not in _ROUNDING_MODES:
            raise reader.error(f"attribute '{name}' has an unknown tile level mode {mode}")
        return x_size, y_size, _LEVEL_MODES[mode & 0xF], _ROUNDING_MODES[mode >> 4]
    return values[0] if len(values) == 1 else values


def _decode_channels(reader: _HeaderReader, name: str, raw: bytes) -> tuple[_Channel, ...]:
    """A channel list: per channel a null-terminated name, pixel type, pLinear, 3 reserved
    bytes and the x/y sampling, ended by a null byte."""
    channels, pos = [], 0
    while True:
        end = raw.find(b"\0", pos)
        if end < 0:
            raise reader.error(f"attribute '{name}' is a truncated channel list")
        if end == pos:
            if end != len(raw) - 1:
                raise reader.error(f"attribute '{name}' has bytes after the end of the channel list")
            return tuple(channels)
        if end - pos > 255:
            raise reader.error(f"attribute '{name}' has a channel name longer than 255 bytes")
        try:
            channel_name = raw[pos:end].decode("utf-8")
        except UnicodeDecodeError:
            raise reader.error(f"attribute '{name}' has a channel name that is not valid UTF-8") from None
        if len(raw) - end - 1 < 16:
            raise reader.error(f"attribute '{name}' is a truncated channel list")
        pixel_type, _p_linear, x_sampling, y_sampling = struct.unpack_from("<iB3xii", raw, end + 1)
        if pixel_type not in _PIXEL_TYPES:
            raise reader.error(f"channel '{channel_name}' has an unknown pixel type {pixel_type}")
        channels.append(_Channel(channel_name, _PIXEL_TYPES[pixel_type], x_sampling, y_sampling))
        if len(channels) > MAX_CHANNELS:
            raise reader.error(f"more than {MAX_CHANNELS} channels in one part")
        pos = end + 17


def _check_part(path: str, index: int, raw: dict[str, tuple[str, Any]], flags: int) -> _Part:
    """Build one part from its raw attributes, refusing anything inconsistent or absurd."""
    where = f"part {index}: " if flags & _MULTIPART_FLAG else ""

    def fail(reason: str) -> MediaError:
        return MediaError(path, where + reason)

    required = ["channels", "compression", "dataWindow", "displayWindow"]
    if flags & _MULTIPART_FLAG:
        required += ["name", "type", "chunkCount"]
    for name in required:
        if name not in raw:
            raise fail(f"required attribute '{name}' is missing")
    values = {name: value for name, (_, value) in raw.items()}

    part_type = values.get("type")
    if part_type is None:
        if flags & _DEEP_FLAG:
            raise fail("deep file without a 'type' attribute")
        part_type = "tiledimage" if flags & _TILED_FLAG else "scanlineimage"
    elif part_type not in _PART_TYPES:
        raise fail(f"unknown part type '{part_type}'")
    elif not flags & _MULTIPART_FLAG and part_type == "tiledimage" and not flags & _TILED_FLAG:
        raise fail("'type' says tiled but the version flags say scanline")
    elif not flags & _MULTIPART_FLAG and part_type == "scanlineimage" and flags & _TILED_FLAG:
        raise fail("'type' says scanline but the version flags say tiled")
    elif not flags & _MULTIPART_FLAG and part_type not in _DEEP_TYPES and flags & _DEEP_FLAG:
        raise fail(f"'type' says {part_type} but the version flags say deep")

    data_window = _check_window(path, where, "data window", values["dataWindow"])
    display_window = _check_window(path, where, "display window", values["displayWindow"])

    channels = values["channels"]
    if not channels:
        raise fail("the channel list is empty")
    if len({c.name for c in channels}) != len(channels):
        raise fail("two channels have the same name")
    width = data_window[2] - data_window[0] + 1
    height = data_window[3] - data_window[1] + 1
    for c in channels:
        if not c.name:
            raise fail("a channel has an empty name")
        if not (1 <= c.x_sampling <= width and 1 <= c.y_sampling <= height):
            raise fail(f"channel '{c.name}' has sampling {c.x_sampling}x{c.y_sampling} "
                       f"outside 1..{width}x{height}")
        if (data_window[0] % c.x_sampling or data_window[1] % c.y_sampling
                or width % c.x_sampling or height % c.y_sampling):
            raise fail(f"channel '{c.name}': the data window is not a multiple of its "
                       f"{c.x_sampling}x{c.y_sampling} sampling")

    tiles = None
    if part_type in ("tiledimage", "deeptile"):
        if "tiles" not in raw:
            raise fail("tiled part without a 'tiles' attribute")
        tiles = _Tiles(*values["tiles"])
        if not (1 <= tiles.x_size <= _MAX_COORDINATE and 1 <= tiles.y_size <= _MAX_COORDINATE):
            raise fail(f"tile size {tiles.x_size}x{tiles.y_size} is out of range")
        if any(c.x_sampling != 1 or c.y_sampling != 1 for c in channels):
            raise fail("tiled part with subsampled channels")

    part = _Part(index, values.get("name") or None, part_type, values["compression"], data_window,
                 display_window, channels, tiles,
                 {name: _plain(value) for name, value in values.items() if value is not None})
    if "chunkCount" in values and part_type not in _DEEP_TYPES:
        expected = _chunk_count(part)
        if values["chunkCount"] != expected:
            raise fail(f"chunkCount is {values['chunkCount']}, the data window needs {expected}")
    return part


def _check_window(path: str, where: str, what: str, window: tuple[int, ...]) -> tuple[int, int, int, int]:
    xmin, ymin, xmax, ymax = window
    if any(abs(v) > _MAX_COORDINATE for v in window):
        raise MediaError(path, f"{where}{what} {window} has coordinates beyond +-2^30")
    if xmax < xmin or ymax < ymin:
        raise MediaError(path, f"{where}{what} {window} is inverted")
    pixels = (xmax - xmin + 1) * (ymax - ymin + 1)
    if pixels > MAX_PIXELS:
        raise UnsupportedMediaError(path, f"{where}{what} {window} has {pixels} pixels, "
                                          f"more than the {MAX_PIXELS} we agree to read")
    return window


def _plain(value: Any) -> Any:
    """Attribute values as the public dicts show them: channel lists become channel names."""
    if isinstance(value, tuple) and value and isinstance(value[0], _Channel):
        return tuple(c.name for c in value)
    return value


def _chunk_count(part: _Part) -> int:
    """How many chunks the part's offset table lists: scanline blocks, or the tiles of every
    mip or rip level."""
    if part.tiles is None:
        return -(-part.height // _LINES_PER_CHUNK[part.compression])
    tiles = part.tiles
    up = tiles.rounding_mode == "round_up"

    def level_count(size: int) -> int:
        return ((size - 1).bit_length() if up else size.bit_length() - 1) + 1

    def tiles_per_level(size: int, tile: int, levels: int) -> list[int]:
        counts = []
        for level in range(levels):
            level_size = size >> level
            if up and level_size << level < size:
                level_size += 1
            counts.append(-(-max(level_size, 1) // tile))
        return counts

    w, h = part.width, part.height
    if tiles.level_mode == "one_level":
        return tiles_per_level(w, tiles.x_size, 1)[0] * tiles_per_level(h, tiles.y_size, 1)[0]
    if tiles.level_mode == "mipmap_levels":
        levels = level_count(max(w, h))
        return sum(x * y for x, y in zip(tiles_per_level(w, tiles.x_size, levels),
                                         tiles_per_level(h, tiles.y_size, levels)))
    return (sum(tiles_per_level(w, tiles.x_size, level_count(w)))
            * sum(tiles_per_level(h, tiles.y_size, level_count(h))))


def _check_chunk_tables(header: _Header) -> None:
    """The offset tables must fit in the file and every chunk offset must point inside it,
    past the tables.

    A truncated or unfinished file (chunks never written, offsets left at zero) fails here,
    before any pixel is decoded.
    """
    counts = [_chunk_count(part) for part in header.parts]
    tables_end = header.tables_offset + 8 * sum(counts)
    if tables_end > header.file_size:
        raise MediaError(header.path, f"truncated: the chunk offset tables need {tables_end} bytes, "
                                      f"the file has {header.file_size}")
    with open(header.path, "rb") as stream:
        stream.seek(header.tables_offset)
        for part, count in zip(header.parts, counts):
            offsets = np.frombuffer(stream.read(8 * count), dtype="<u8")
            bad = np.flatnonzero((offsets < tables_end) | (offsets >= header.file_size))
            if bad.size:
                where = f"part {part.index}, " if header.multipart else ""
                raise MediaError(header.path, f"truncated or unfinished: {where}chunk {int(bad[0])} of "
                                              f"{count} has offset {int(offsets[bad[0]])} outside the file")


# ---------------------------------------------------------------------------
# choosing the part and layer to read
# ---------------------------------------------------------------------------
#: the channels (by suffix) each kind of colour layer is made from, besides an optional A
_COLOUR_CHANNELS = {"rgb": ("R", "G", "B"), "luminance": ("Y",), "luminance_chroma": ("Y", "RY", "BY")}


@dataclass(frozen=True)
class _Layer:
    part: _Part
    prefix: str                    # "" for top-level channels
    kind: str                      # a key of _COLOUR_CHANNELS
    channels: dict[str, _Channel]  # the channels to decode, by suffix ("R", "Y", "RY", "A", ...)

    @classmethod
    def of(cls, part: _Part, prefix: str, kind: str, group: dict[str, _Channel]) -> _Layer:
        wanted = _COLOUR_CHANNELS[kind] + (("A",) if "A" in group else ())
        return cls(part, prefix, kind, {suffix: group[suffix] for suffix in wanted})


def _select_layer(header: _Header, part: str | int | None, layer: str | None) -> _Layer:
    """The part and layer to read: the ones asked for, else the first RGB(A) or Y layer of the
    default view (top-level channels first, then layers in channel-list order)."""
    path = header.path
    candidates = _parts_in_view_order(header.parts) if part is None else [_find_part(header, part)]
    layers_seen: list[str] = []
    for p in candidates:
        groups = _channel_groups(p)
        if layer is None:
            for prefix, channels in groups.items():
                kind = _layer_kind(path, prefix, channels)
                if kind is not None:
                    return _Layer.of(p, prefix, kind, channels)
        elif layer in groups:
            kind = _layer_kind(path, layer, groups[layer])
            if kind is None:
                names = ", ".join(c.name for c in groups[layer].values())
                raise UnsupportedMediaError(path, f"layer '{layer}' has no R, G, B or Y channels (channels: {names})")
            return _Layer.of(p, layer, kind, groups[layer])
        else:
            layers_seen += [g for g in groups if g not in layers_seen]
    if layer is not None:
        raise MediaError(path, f"no layer '{layer}' (layers: {', '.join(map(repr, layers_seen))})")
    names = ", ".join(c.name for p in candidates for c in p.channels)
    raise UnsupportedMediaError(path, f"no RGB or Y channels to read (channels: {names})")


def _channel_groups(part: _Part) -> dict[str, dict[str, _Channel]]:
    """The part's channels by layer prefix and suffix: top-level ("") first, then the layers
    in channel-list order."""
    groups: dict[str, dict[str, _Channel]] = {"": {}} if any(not c.layer for c in part.channels) else {}
    for c in part.channels:
        groups.setdefault(c.layer, {})[c.suffix] = c
    return groups


def _parts_in_view_order(parts: tuple[_Part, ...]) -> list[_Part]:
    """Parts of the default view (the first one ``multiView`` lists) first, else file order."""
    views = parts[0].attributes.get("multiView")
    if not views:
        return list(parts)
    return sorted(parts, key=lambda p: p.attributes.get("view", views[0]) != views[0])


def _find_part(header: _Header, part: str | int) -> _Part:
    names = [p.name if p.name is not None else p.index for p in header.parts]
    if isinstance(part, int):
        if 0 <= part < len(header.parts):
            return header.parts[part]
    else:
        for p in header.parts:
            if p.name == part:
                return p
    raise MediaError(header.path, f"no part {part!r} (parts: {', '.join(map(repr, names))})")


def _layer_kind(path: str, prefix: str, channels: dict[str, _Channel]) -> str | None:
    """How to turn a layer into RGB, or None if it holds no colour."""
    what = f"layer '{prefix}'" if prefix else "the top-level channels"
    if {"R", "G", "B"} <= channels.keys():
        kind = "rgb"
    elif "Y" in channels:
        chroma = {"RY", "BY"} & channels.keys()
        if len(chroma) == 1:
            raise UnsupportedMediaError(path, f"{what} has {chroma.pop()} without its partner chroma channel")
        kind = "luminance_chroma" if chroma else "luminance"
        if chroma:
            ry, by = channels["RY"], channels["BY"]
            if (ry.x_sampling, ry.y_sampling) != (by.x_sampling, by.y_sampling) or not (
                    ry.x_sampling in (1, 2) and ry.y_sampling in (1, 2)):
                raise UnsupportedMediaError(path, f"{what}: chroma sampling {ry.x_sampling}x{ry.y_sampling} / "
                                                  f"{by.x_sampling}x{by.y_sampling} (only 1 or 2, alike, is supported)")
    else:
        return None
    for suffix in _COLOUR_CHANNELS[kind] + ("A",):
        c = channels.get(suffix)
        if c is not None and suffix not in ("RY", "BY") and (c.x_sampling, c.y_sampling) != (1, 1):
            raise UnsupportedMediaError(path, f"channel '{c.name}' is subsampled {c.x_sampling}x{c.y_sampling}")
    return kind


# ---------------------------------------------------------------------------
# decoding pixels through the binding
# ---------------------------------------------------------------------------
def _decode_channels_of(header: _Header, layer: _Layer) -> dict[str, np.ndarray]:
    """Decode the file with the binding and return the layer's arrays by suffix, checked
    against the parsed header (the binding may return parts or channels missing)."""
    path = header.path
    printed = io.StringIO()
    try:
        with _STDOUT_LOCK, contextlib.redirect_stdout(printed):
            exr_file = OpenEXR.File(path, separate_channels=True)
    except (RuntimeError, ValueError, MemoryError) as exc:   # UnicodeDecodeError is a ValueError
        raise MediaError(path, f"cannot decode: {_one_line(str(exc) or type(exc).__name__)}") from None
    warning = _one_line(printed.getvalue())
    with exr_file:
        if len(exr_file.parts) != len(header.parts):
            raise MediaError(path, f"damaged pixel data: the binding returned {len(exr_file.parts)} of "
                                   f"{len(header.parts)} parts" + (f" ({warning})" if warning else ""))
        decoded = exr_file.parts[layer.part.index].channels
        arrays = {}
        for suffix, channel in layer.channels.items():
            pixels = getattr(decoded.get(channel.name), "pixels", None)
            expected = layer.part.samples_shape(channel)
            if not isinstance(pixels, np.ndarray) or pixels.shape != expected:
                got = "nothing" if not isinstance(pixels, np.ndarray) else f"shape {pixels.shape}"
                raise MediaError(path, f"damaged pixel data: channel '{channel.name}' decoded to {got}, "
                                       f"expected {expected}" + (f" ({warning})" if warning else ""))
            arrays[suffix] = pixels.astype(np.float32)
    return arrays


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _chroma_upsampled(chroma: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Double ``chroma`` along ``axis`` to ``size`` samples the way OpenEXR's RGBA interface does:
    existing samples land on even positions, odd ones come from the 27-tap reconstruction
    filter (edges repeat the outermost sample)."""
    chroma = np.moveaxis(chroma, axis, 0)
    padded = np.pad(chroma, [(6, 7)] + [(0, 0)] * (chroma.ndim - 1), mode="edge")
    odd = size // 2
    out = np.empty((size, *chroma.shape[1:]), dtype=np.float32)
    out[0::2] = chroma
    out[1::2] = sum(weight * padded[tap:tap + odd] for tap, weight in enumerate(_CHROMA_TAPS))
    return np.moveaxis(out, 0, axis)


def _luminance_weights(path: str, chromaticities: tuple[float, ...]) -> np.ndarray:
    """The Y row of the RGB to XYZ matrix the chromaticities define, normalised to sum 1
    (OpenEXR's ``RgbaYca::computeYw``); Rec.709 gives (0.2126, 0.7152, 0.0722)."""
    x, y = np.asarray(chromaticities, dtype=np.float64).reshape(4, 2).T   # red, green, blue, white
    with np.errstate(all="ignore"):
        xyz = np.stack([x / y, np.ones(4), (1 - x - y) / y])   # (3, 4): XYZ of each with Y = 1
        try:
            scale = np.linalg.solve(xyz[:, :3], xyz[:, 3])
        except np.linalg.LinAlgError:
            scale = np.full(3, np.nan)
    if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise UnsupportedMediaError(path, f"chromaticities {chromaticities} give no usable luminance "
                                          "weights for luminance/chroma conversion")
    return (scale / scale.sum()).astype(np.float32)


def _luminance_chroma_to_rgb(y: np.ndarray, ry: np.ndarray, by: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Full-resolution Y, RY, BY to RGB (``RgbaYca::YCAtoRGBA``), then OpenEXR's
    ``fixSaturation``, which desaturates pixels much more saturated than their diagonal
    neighbours (ringing of the chroma filter)."""
    wr, wg, wb = weights
    with np.errstate(all="ignore"):
        r = (ry + 1) * y
        b = (by + 1) * y
        g = (y - r * wr - b * wb) / wg
        grey = (ry == 0) & (by == 0)
        rgb = np.where(grey[..., None], y[..., None], np.stack([r, g, b], axis=-1)).astype(np.float32)

        rgb_max, rgb_min = rgb.max(axis=-1), rgb.min(axis=-1)
        saturation = np.where(rgb_max > 0, 1 - rgb_min / rgb_max, 0).astype(np.float32)
        s = np.pad(saturation, 1, mode="edge")
        mean = np.minimum(1, 0.25 * (s[:-2, :-2] + s[:-2, 2:] + s[2:, :-2] + s[2:, 2:]))
        limit = np.minimum(1, 1 - (1 - mean) * 0.25)
        fix = (saturation > mean) & (saturation > limit)
        if fix.any():
            src, peak = rgb[fix], rgb_max[fix][:, None]
            factor = (limit[fix] / saturation[fix])[:, None]
            out = np.maximum(peak - (peak - src) * factor, 0)
            y_in, y_out = src @ weights, out @ weights
            scale = np.where(y_out > 0, y_in / y_out, 1)
            rgb[fix] = out * scale[:, None]
    return rgb


def _layer_pixels(header: _Header, layer: _Layer, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The layer's arrays as one float32 (H, W, 3 or 4) RGB(A) image."""
    alpha = [arrays["A"]] if "A" in arrays else []
    if layer.kind == "rgb":
        planes = [arrays["R"], arrays["G"], arrays["B"]]
    elif layer.kind == "luminance":
        planes = [arrays["Y"]] * 3
    else:
        ry, by = arrays["RY"], arrays["BY"]
        part, chroma = layer.part, layer.channels["RY"]
        if chroma.x_sampling == 2:
            ry, by = (_chroma_upsampled(c, part.width, axis=1) for c in (ry, by))
        if chroma.y_sampling == 2:
            ry, by = (_chroma_upsampled(c, part.height, axis=0) for c in (ry, by))
        chromaticities = part.attributes.get("chromaticities", REC709_CHROMATICITIES)
        rgb = _luminance_chroma_to_rgb(arrays["Y"], ry, by, _luminance_weights(header.path, chromaticities))
        planes = [rgb[..., 0], rgb[..., 1], rgb[..., 2]]
    return np.stack(planes + alpha, axis=-1).astype(np.float32, copy=False)


# ---------------------------------------------------------------------------
# public API: reading
# ---------------------------------------------------------------------------
@dataclass
class ExrImage:
    """One RGB(A) layer of an EXR file.

    ``pixels`` covers the data window, float32 ``(H, W, C)`` in ``channels`` order. The display
    window may be larger, smaller, offset or even disjoint; :meth:`display_rgb` composes the two.
    """

    path: str
    pixels: np.ndarray
    channels: tuple[str, ...]
    data_window: tuple[int, int, int, int]
    display_window: tuple[int, int, int, int]
    attributes: dict
    part: str | int
    layer: str

    def display_rgb(self) -> np.ndarray:
        """float32 (Hd, Wd, 3) over the display window; zeros where there is no data."""
        return self._in_display_window(self.pixels[..., :3])

    def display_alpha(self) -> np.ndarray | None:
        """float32 (Hd, Wd) alpha over the display window (zeros where there is no data),
        or None when the layer has no alpha."""
        if "A" not in self.channels:
            return None
        a = self.channels.index("A")
        return self._in_display_window(self.pixels[..., a:a + 1])[..., 0]

    def _in_display_window(self, planes: np.ndarray) -> np.ndarray:
        dx0, dy0, dx1, dy1 = self.display_window
        x0, y0, x1, y1 = self.data_window
        out = np.zeros((dy1 - dy0 + 1, dx1 - dx0 + 1, planes.shape[-1]), dtype=np.float32)
        ix0, iy0, ix1, iy1 = max(x0, dx0), max(y0, dy0), min(x1, dx1), min(y1, dy1)
        if ix0 <= ix1 and iy0 <= iy1:
            out[iy0 - dy0:iy1 - dy0 + 1, ix0 - dx0:ix1 - dx0 + 1] = \
                planes[iy0 - y0:iy1 - y0 + 1, ix0 - x0:ix1 - x0 + 1]
        return out


def read_exr(path: str | os.PathLike, *, part: str | int | None = None, layer: str | None = None) -> ExrImage:
    """Read one RGB(A) layer of an EXR file.

    Without ``part``/``layer``: the first RGB(A) (or luminance) layer of the default view,
    top-level channels first, over the parts in order. ``part`` is a part name or index;
    ``layer`` a channel prefix ("diffuse" for "diffuse.R", a view name in multi-view files).
    Scanline and tiled files are read (mipmapped ones at level 0), with half, float or uint
    channels; Y-only layers become grey RGB and Y/RY/BY layers are converted to RGB.

    Raises:
        MediaError: the file is missing, damaged or lacks the part/layer asked for.
        UnsupportedMediaError: deep data, no usable colour channels, or beyond our size limits.
    """
    header = _parse_header(path)
    _check_decodable(header)
    chosen = _select_layer(header, part, layer)
    arrays = _decode_channels_of(header, chosen)
    pixels = _layer_pixels(header, chosen, arrays)
    p = chosen.part
    return ExrImage(
        path=header.path,
        pixels=pixels,
        channels=("R", "G", "B", "A")[:pixels.shape[-1]],
        data_window=p.data_window,
        display_window=p.display_window,
        attributes=dict(p.attributes),
        part=p.name if p.name is not None else p.index,
        layer=chosen.prefix,
    )


def _check_decodable(header: _Header) -> None:
    """Refuse what the binding should not be asked to decode: deep parts (a ``type`` that says
    deep is believed, whatever the data), more than MAX_DECODED_BYTES in all, broken offset tables."""
    for p in header.parts:
        if p.part_type in _DEEP_TYPES:
            raise UnsupportedMediaError(header.path, f"deep data (part {p.index} is '{p.part_type}') "
                                                     "is not supported")
    decoded = sum(p.height // c.y_sampling * (p.width // c.x_sampling) * _SAMPLE_BYTES[c.pixel_type]
                  for p in header.parts for c in p.channels)
    if decoded > MAX_DECODED_BYTES:
        raise UnsupportedMediaError(header.path, f"decoding needs {decoded / 2**30:.1f} GiB, more than the "
                                                 f"{MAX_DECODED_BYTES / 2**30:.0f} GiB we agree to")
    _check_chunk_tables(header)


def read_exr_header(path: str | os.PathLike, *, part: str | int | None = None) -> dict:
    """The attributes of one part (the first unless ``part`` names another) as plain values,
    without decoding pixels. Windows are ``(xmin, ymin, xmax, ymax)`` tuples, ``channels`` a
    tuple of names, ``compression`` a name such as "zip"; previews and opaque attributes are left
    out. Raises MediaError on a damaged header."""
    header = _parse_header(path)
    chosen = header.parts[0] if part is None else _find_part(header, part)
    return dict(chosen.attributes)


def exr_info(path: str | os.PathLike) -> dict:
    """A json-serialisable description of an EXR file for ``shotfill info`` (deep files too):
    its parts with name, type, compression, windows, channels with pixel types and sampling,
    tiling and view, the multi-view list and each part's other attributes."""
    header = _parse_header(path)
    parts = []
    for p in header.parts:
        tiles = None
        if p.tiles is not None:
            tiles = {"size": [p.tiles.x_size, p.tiles.y_size], "levels": p.tiles.level_mode,
                     "rounding": p.tiles.rounding_mode}
        parts.append({
            "index": p.index,
            "name": p.name,
            "type": p.part_type,
            "compression": p.compression,
            "data_window": list(p.data_window),
            "display_window": list(p.display_window),
            "line_order": p.attributes.get("lineOrder", "increasing_y"),
            "channels": [{"name": c.name, "type": c.pixel_type, "sampling": [c.x_sampling, c.y_sampling]}
                         for c in p.channels],
            "tiled": p.tiles is not None,
            "tiles": tiles,
            "view": p.attributes.get("view"),
            "attributes": {name: _json_safe(value) for name, value in p.attributes.items()
                           if name not in STRUCTURAL_ATTRIBUTES | {"view", "multiView"}},
        })
    return {
        "multipart": header.multipart,
        "deep": any(p.part_type in _DEEP_TYPES for p in header.parts),
        "views": list(header.parts[0].attributes.get("multiView", [])),
        "parts": parts,
    }


def _json_safe(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# ---------------------------------------------------------------------------
# public API: writing
# ---------------------------------------------------------------------------
def write_exr(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    data_window: tuple[int, int, int, int] | None = None,
    display_window: tuple[int, int, int, int] | None = None,
    compression: str = "zip",
    attributes: dict | None = None,
    channels: tuple[str, ...] | None = None,
) -> Path:
    """Write ``pixels`` (H, W, 3 or 4) as a half-float scanline EXR, atomically.

    ``data_window`` defaults to ``(0, 0, W - 1, H - 1)`` and ``display_window`` to the data
    window. ``channels`` defaults to R, G, B(, A). ``attributes`` go into the header: str, int,
    float (stored as 32-bit float), 2- or 3-tuples of numbers (v2i/v3i when all ints, else
    v2f/v3f), 8 numbers for ``chromaticities``, lists of str; numpy scalars are accepted.

    Values are rounded to half: NaN and Inf pass through, and magnitudes beyond the half range
    (65504 is the largest half; from 65520 on) become Inf.
    The file is written to ``.<name>.<pid>-<random>.tmp`` in the same folder, synced and renamed
    onto ``path``; on any failure the temporary file is removed and ``path`` is left as it was.

    Raises:
        ValueError: bad pixels, windows, channels, compression or attributes (a caller's bug).
        MediaError: the file cannot be written.
    """
    path = Path(path)
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or 0 in pixels.shape:
        raise ValueError(f"pixels must be (H, W, 3) or (H, W, 4), got shape {pixels.shape}")
    if not np.issubdtype(pixels.dtype, np.floating):
        raise ValueError(f"pixels must be floating point, got {pixels.dtype}")
    height, width, depth = pixels.shape
    names = tuple(channels) if channels is not None else ("R", "G", "B", "A")[:depth]
    if len(names) != depth or len(set(names)) != depth or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"channels {names!r} must be {depth} distinct non-empty names")
    if data_window is None:
        data_window = (0, 0, width - 1, height - 1)
    data_window = _window_argument("data_window", data_window)
    if (data_window[2] - data_window[0] + 1, data_window[3] - data_window[1] + 1) != (width, height):
        raise ValueError(f"data_window {data_window} is not {width}x{height} like the pixels")
    display_window = data_window if display_window is None else _window_argument("display_window", display_window)
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression {compression!r} is not one of {', '.join(COMPRESSIONS)}")

    header = {name: _header_value(name, value) for name, value in (attributes or {}).items()}
    header.update({
        "compression": COMPRESSIONS[compression],
        "type": OpenEXR.scanlineimage,
        "dataWindow": _box(data_window),
        "displayWindow": _box(display_window),
    })
    with np.errstate(over="ignore"):   # above 65504 becomes inf, as documented
        half = pixels.astype(np.float16)
    # one contiguous array per channel: the binding reads the buffer and ignores strides
    planes = {name: np.ascontiguousarray(half[..., i]) for i, name in enumerate(names)}
    _write_atomically(path, OpenEXR.File(header, planes))
    return path


def _window_argument(what: str, window: tuple[int, ...]) -> tuple[int, int, int, int]:
    values = tuple(int(v) for v in window)
    if len(values) != 4 or values[2] < values[0] or values[3] < values[1]:
        raise ValueError(f"{what} {tuple(window)} must be (xmin, ymin, xmax, ymax) with max >= min")
    if any(abs(v) > _MAX_COORDINATE for v in values):
        raise ValueError(f"{what} {values} has coordinates beyond +-2^30")
    return values  # type: ignore[return-value]


def _box(window: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(window[:2], dtype=np.int32), np.array(window[2:], dtype=np.int32)


def _header_value(name: str, value: Any) -> Any:
    """A caller's attribute value as the binding stores it, or ValueError naming the attribute."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"attribute name {name!r} must be a non-empty string")
    if name in STRUCTURAL_ATTRIBUTES:
        raise ValueError(f"attribute '{name}' is set by write_exr itself, not through attributes")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return _int32(name, value)
    if isinstance(value, float):
        return value
    if isinstance(value, (tuple, list, np.ndarray)):
        items = [v.item() if isinstance(v, np.generic) else v for v in value]
        if items and all(isinstance(v, str) for v in items):
            return items
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items)
        if numbers and name == "chromaticities" and len(items) == 8:
            return tuple(float(v) for v in items)
        if numbers and name != "chromaticities" and len(items) in (2, 3):
            if all(isinstance(v, int) for v in items):
                return tuple(_int32(name, v) for v in items)
            return tuple(float(v) for v in items)
    raise ValueError(f"attribute '{name}': cannot store {value!r} in an EXR header (use str, int, float, "
                     "2 or 3 numbers, 8 numbers for chromaticities, or a list of str)")


def _int32(name: str, value: int) -> int:
    if not -2**31 <= value < 2**31:
        raise ValueError(f"attribute '{name}': {value} does not fit a 32-bit int")
    return value


def _write_atomically(path: Path, exr_file: OpenEXR.File) -> None:
    """Write to a temporary file beside ``path``, sync it, then rename it onto ``path``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
    try:
        exr_file.write(str(temporary))
        descriptor = os.open(temporary, os.O_RDWR)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(exc, (OSError, RuntimeError)):
            raise MediaError(path, f"cannot write: {exc}") from exc
        raise
    if os.name == "posix":   # make the rename itself durable
        descriptor = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
