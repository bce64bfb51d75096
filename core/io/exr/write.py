"""Writing EXR frames: half float RGB(A), scanline, with a chosen compression, into a
temporary file in the destination folder that is synced and then renamed: a frame exists whole
or not at all.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import OpenEXR

from ...errors import MediaError, no_room_hint
from .header import _MAX_COORDINATE, STRUCTURAL_ATTRIBUTES

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


def _cause(exc: BaseException, temporary: Path) -> str:
    """The failure in one line (the temporary file, removed by then, named as such), with what it
    means when the disk is full (:func:`~shotfill.errors.no_room_hint`)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = " ".join(str(exc).replace(f' "{temporary}"', "").replace(f'"{temporary}"', "its temporary file")
                        .split()).rstrip(". ")
    return text + no_room_hint(exc)


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
            raise MediaError(path, f"cannot write: {_cause(exc, temporary)}; nothing of it is left on disk") from exc
        raise
    if os.name == "posix":   # make the rename itself durable
        descriptor = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
