"""The bounded EXR header parser: the magic number, version flags, every attribute up to the
terminating null byte, the windows, channels and part types, and the chunk offset tables, read
in pure Python before the OpenEXR binding is trusted with a file.

Absurd or inconsistent headers (inverted windows, more than :data:`MAX_PIXELS` pixels,
truncated tables) are refused here as :class:`~shotfill.errors.MediaError`.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from ...errors import MediaError, UnsupportedMediaError

#: The most data-window pixels (and display-window pixels) per part we agree to read: 16K x 16K.
MAX_PIXELS = 16384 * 16384
#: The most channels per part we agree to read.
MAX_CHANNELS = 1024
#: The most parts per file we agree to read.
MAX_PARTS = 1024
#: The largest attribute value we read into memory, in bytes.
MAX_ATTRIBUTE_BYTES = 16 << 20

#: Header attributes that describe the file's layout. :func:`~shotfill.io.exr.write_exr` sets them
#: from its own arguments and refuses them in ``attributes``; filter them out when copying a
#: source's header.
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

