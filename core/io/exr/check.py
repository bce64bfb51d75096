"""Whether an EXR file is whole: its chunk table, every chunk's own header, and (optionally) its
pixels decoded, for ``shotfill info`` and any caller that must know before it trusts a frame.

:func:`check_exr` goes further than :func:`~shotfill.io.exr.read_exr`'s checks, which stop at
the offset table: every chunk the table points to must start with a header that names this
part, a scanline or tile inside the data window, and a data size that ends inside the file.
A file whose header is whole but whose pixel data was cut short (a copy that stopped, a render
that died) fails there even when every offset still points inside the file. Then, unless asked
not to, every part's pixels are decoded by the binding and checked against the header (parts
present, every channel the data window's shape). Deep parts are checked up to their chunk
headers; their samples are not decoded (shotfill does not read deep data).

Every failure is a :class:`~shotfill.errors.MediaError` naming the file and saying what is
wrong (which part, which chunk).
"""
from __future__ import annotations

import contextlib
import io
import os
import struct

import numpy as np
import OpenEXR

from ...errors import MediaError
from .header import (
    _DEEP_TYPES,
    _SAMPLE_BYTES,
    _check_chunk_tables,
    _chunk_count,
    _Header,
    _parse_header,
    _Part,
)
from .image import _STDOUT_LOCK, MAX_DECODED_BYTES, _one_line, _select_layer


def check_exr(path: str | os.PathLike, *, decode: bool = True) -> dict:
    """Check that the EXR file at ``path`` is whole; return what was checked.

    Returns ``{"chunks": n, "decoded": bool, "deep": bool}``: the chunks whose headers were
    checked, whether the pixels were decoded (False with ``decode=False`` or for a file with a
    deep part). Raises :class:`MediaError` on the first damage found.
    """
    header = _parse_header(path)
    _check_chunk_tables(header)
    chunks = _check_chunks(header)
    deep = any(p.part_type in _DEEP_TYPES for p in header.parts)
    decoded = False
    if decode and not deep:
        _decode_all(header)
        decoded = True
    return {"chunks": chunks, "decoded": decoded, "deep": deep}


def frame_summary(path: str | os.PathLike) -> dict:
    """What one frame of a sequence is, for comparing frames (header only, no pixels):
    ``parts`` (how many), and of the part :func:`~shotfill.io.exr.read_exr` reads by default its
    ``part`` (name or index), ``compression``, ``channels`` (``"R:half"``...), ``pixel_types``,
    ``data_window`` and ``display_window``. Raises MediaError on a damaged header."""
    header = _parse_header(path)
    part = _select_layer(header, None, None).part
    return {
        "parts": len(header.parts),
        "part": part.name if part.name is not None else part.index,
        "compression": part.compression,
        "channels": [f"{c.name}:{c.pixel_type}" for c in part.channels],
        "pixel_types": sorted({c.pixel_type for c in part.channels}),
        "data_window": list(part.data_window),
        "display_window": list(part.display_window),
    }


def _offsets(header: _Header) -> list[np.ndarray]:
    counts = [_chunk_count(part) for part in header.parts]
    with open(header.path, "rb") as stream:
        stream.seek(header.tables_offset)
        return [np.frombuffer(stream.read(8 * count), dtype="<u8").astype(np.int64) for count in counts]


def _check_chunks(header: _Header) -> int:
    """Read the header of every chunk the offset tables point to; return how many."""
    tables = _offsets(header)
    size = header.file_size
    total = 0
    with open(header.path, "rb") as stream:
        for part, offsets in zip(header.parts, tables):
            deep = part.part_type in _DEEP_TYPES
            tiled = part.tiles is not None
            # the fixed fields before the data: (part number), y or 4 tile coordinates, then the sizes
            fields = ("<i" if header.multipart else "<") + ("4i" if tiled else "i") + ("3Q" if deep else "i")
            length = struct.calcsize(fields)
            where = f"part {part.index}, " if header.multipart else ""
            for number, offset in enumerate(offsets.tolist()):
                if offset + length > size:
                    raise MediaError(header.path, f"truncated: {where}chunk {number} of {len(offsets)} "
                                                  f"starts at byte {offset}, its header runs past the end "
                                                  f"of the file ({size} bytes)")
                stream.seek(offset)
                values = struct.unpack(fields, stream.read(length))
                if header.multipart:
                    if values[0] != part.index:
                        raise MediaError(header.path, f"damaged: {where}chunk {number} says it belongs to "
                                                      f"part {values[0]}")
                    values = values[1:]
                _check_chunk_place(header.path, where, number, part, values, tiled)
                data = sum(values[-3:-1]) if deep else values[-1]   # deep: offset table + samples
                if data < 0 or offset + length + data > size:
                    raise MediaError(header.path, f"truncated pixel data: {where}chunk {number} of "
                                                  f"{len(offsets)} at byte {offset} holds {data} bytes, "
                                                  f"past the end of the file ({size} bytes)")
            total += len(offsets)
    return total


def _check_chunk_place(path: str, where: str, number: int, part: _Part, values: tuple, tiled: bool) -> None:
    """A scanline chunk's first line inside the data window; a tile's coordinates not negative."""
    if tiled:
        if min(values[:4]) < 0:
            raise MediaError(path, f"damaged: {where}chunk {number} has tile coordinates {tuple(values[:4])}")
        return
    y = values[0]
    if not part.data_window[1] <= y <= part.data_window[3]:
        raise MediaError(path, f"damaged: {where}chunk {number} starts at scanline {y}, outside the data "
                               f"window's lines {part.data_window[1]}..{part.data_window[3]}")


def _decode_all(header: _Header) -> None:
    """Decode every part with the binding; every channel must come back the data window's shape."""
    path = header.path
    needed = sum(p.height // c.y_sampling * (p.width // c.x_sampling) * _SAMPLE_BYTES[c.pixel_type]
                 for p in header.parts for c in p.channels)
    if needed > MAX_DECODED_BYTES:
        raise MediaError(path, f"decoding needs {needed / 2**30:.1f} GiB, more than the "
                               f"{MAX_DECODED_BYTES / 2**30:.0f} GiB we agree to")
    printed = io.StringIO()
    try:
        with _STDOUT_LOCK, contextlib.redirect_stdout(printed):
            exr_file = OpenEXR.File(path, separate_channels=True)
    except (RuntimeError, ValueError, MemoryError) as exc:
        raise MediaError(path, f"cannot decode: {_one_line(str(exc) or type(exc).__name__)}") from None
    warning = _one_line(printed.getvalue())
    note = f" ({warning})" if warning else ""
    with exr_file:
        if len(exr_file.parts) != len(header.parts):
            raise MediaError(path, f"damaged pixel data: the binding returned {len(exr_file.parts)} of "
                                   f"{len(header.parts)} parts{note}")
        for part, decoded in zip(header.parts, exr_file.parts):
            for channel in part.channels:
                pixels = getattr(decoded.channels.get(channel.name), "pixels", None)
                expected = part.samples_shape(channel)
                if not isinstance(pixels, np.ndarray) or pixels.shape != expected:
                    got = "nothing" if not isinstance(pixels, np.ndarray) else f"shape {pixels.shape}"
                    where = f"part {part.index} " if header.multipart else ""
                    raise MediaError(path, f"damaged pixel data: {where}channel '{channel.name}' decoded to "
                                           f"{got}, expected {expected}{note}")
        if warning:
            raise MediaError(path, f"damaged pixel data: {warning}")
