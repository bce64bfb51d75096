"""OpenEXR frames in and out, through the official ``OpenEXR`` Python bindings.

Reading is done in two steps. First the header is parsed here, in pure Python, with strict
bounds: magic number, version flags, every attribute up to the terminating null byte, the
windows, channels and part types, and the chunk offset tables. Absurd or inconsistent headers
(inverted windows, more than :data:`MAX_PIXELS` pixels, truncated tables, deep data) are refused
before the binding allocates anything. Only then does the binding decode the pixels, and its
result is checked against the parsed header: on a damaged file the binding may print a warning
and return a file with parts or channels missing, which becomes a
:class:`~shotfill.errors.MediaError` here.

Pixels come back as float32 ``(H, W, C)`` arrays covering the *data* window, in R, G, B(, A)
order. Luminance-only files become grey RGB; luminance/chroma files (Y, RY, BY) are converted
to RGB the way OpenEXR's own RGBA interface does it.

Writing is half float RGB(A), scanline, with a chosen compression, into a temporary file in the
destination folder that is synced and then renamed: a frame exists whole or not at all.

One job per module: :mod:`.header` (the bounded parser), :mod:`.image` (layers, pixels, reading
and info), :mod:`.check` (is a file whole: every chunk's header, every part decoded),
:mod:`.write` (writing, atomically).
"""
from .check import check_exr, frame_summary
from .header import (
    MAX_ATTRIBUTE_BYTES,
    MAX_CHANNELS,
    MAX_PARTS,
    MAX_PIXELS,
    STRUCTURAL_ATTRIBUTES,
)
from .image import (
    MAX_DECODED_BYTES,
    REC709_CHROMATICITIES,
    ExrImage,
    exr_info,
    read_exr,
    read_exr_header,
)
from .write import COMPRESSIONS, write_exr

__all__ = [
    "COMPRESSIONS",
    "MAX_ATTRIBUTE_BYTES",
    "MAX_CHANNELS",
    "MAX_DECODED_BYTES",
    "MAX_PARTS",
    "MAX_PIXELS",
    "REC709_CHROMATICITIES",
    "STRUCTURAL_ATTRIBUTES",
    "ExrImage",
    "check_exr",
    "exr_info",
    "frame_summary",
    "read_exr",
    "read_exr_header",
    "write_exr",
]
