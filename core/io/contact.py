"""Contact sheets: rows of small pictures, for looking at seams and fills at a glance.

A sheet has one row per target, for example a bridge::

    V1.gap1 bridge
    +-----+ +-----+   +=====+ +=====+ +=====+   +-----+ +-----+
    | A-2 | | A-1 | | | G1  | | G2  | | G3  | | | B+0 | | B+1 |
    +-----+ +-----+   +=====+ +=====+ +=====+   +-----+ +-----+
      A-2     A-1        G1      G2      G3       B+0     B+1

Generated pictures are outlined in :data:`GENERATED_COLOUR`; a thin line
separates a run of known pictures from a run of generated ones.

The pictures are display-referred float32 ``(H, W, 3)`` in [0, 1] (the caller
converts scene-linear frames first, with :mod:`shotfill.io.colour`); values
outside [0, 1] are clipped, as any 8-bit encoding does.

Geometry, in pixels, so a caller can predict the size: every thumbnail is
``thumb_height`` tall and keeps its picture's aspect ratio (width rounded, at
least 1). A row is ``PAD`` + each thumbnail's width + ``PAD`` after each, plus
``GROUP_GAP`` wherever the row switches between known and generated; the sheet
is as wide as its widest row (or title). Each row is ``thumb_height + PAD``
tall, plus two text lines of :func:`line_height` with ``labels``; the sheet
adds ``PAD`` at the top.
"""
from __future__ import annotations

import functools
import os
import uuid
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import InputError, MediaError

#: space around and between thumbnails
PAD = 6
#: extra space (with a separator line) where known and generated pictures meet
GROUP_GAP = 10
#: width of the outline around a generated picture (drawn in the padding)
OUTLINE = 3
#: outline colour of generated pictures (RGB, 8-bit)
GENERATED_COLOUR = (255, 150, 0)
_BACKGROUND = (30, 30, 30)
_TEXT = (225, 225, 225)
_SEPARATOR = (110, 110, 110)


class Thumb(NamedTuple):
    """One picture of a row: its caption, the picture, and whether it was generated."""

    caption: str
    image: np.ndarray
    generated: bool = False


def line_height() -> int:
    """Height of one line of text (a row title or a caption), in pixels."""
    left, top, right, bottom = _font().getbbox("Ag|")
    return bottom + 3


def contact_sheet(rows: Sequence[tuple[str, Sequence[Thumb | tuple]]], path: str | os.PathLike,
                  *, thumb_height: int = 120, labels: bool = True) -> Path:
    """Write a contact sheet as an 8-bit RGB PNG at ``path`` (atomically) and return the path.

    ``rows`` is a list of ``(title, thumbs)``; each thumb is a :class:`Thumb` or a
    tuple ``(caption, image)`` / ``(caption, image, generated)``. With
    ``labels=False`` no text is drawn (titles and captions take no space).
    """
    if isinstance(thumb_height, bool) or not isinstance(thumb_height, int) or thumb_height < 8:
        raise InputError(f"contact sheet: thumb_height must be an integer >= 8, got {thumb_height!r}")
    if not rows:
        raise InputError("contact sheet: no rows to draw")
    prepared = [(str(title), [_thumbnail(str(title), Thumb(*item), thumb_height) for item in thumbs])
                for title, thumbs in rows]
    for title, thumbs in prepared:
        if not thumbs:
            raise InputError(f"contact sheet: row '{title}' has no pictures")

    font = _font()
    text_h = line_height() if labels else 0
    row_h = text_h + thumb_height + text_h + PAD
    widths = [_row_width(thumbs) for _, thumbs in prepared]
    if labels:
        widths += [2 * PAD + int(font.getlength(title)) for title, _ in prepared]
    sheet = Image.new("RGB", (max(widths), PAD + row_h * len(prepared)), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)

    for index, (title, thumbs) in enumerate(prepared):
        top = PAD + index * row_h
        if labels:
            draw.text((PAD, top), title, fill=_TEXT, font=font)
        y = top + text_h
        x = PAD
        for position, (caption, picture, generated) in enumerate(thumbs):
            if position and generated != thumbs[position - 1][2]:
                middle = x - PAD // 2 + GROUP_GAP // 2
                draw.line([(middle, y), (middle, y + thumb_height - 1)], fill=_SEPARATOR)
                x += GROUP_GAP
            sheet.paste(picture, (x, y))
            if generated:
                draw.rectangle([x - OUTLINE, y - OUTLINE, x + picture.width - 1 + OUTLINE,
                                y + thumb_height - 1 + OUTLINE], outline=GENERATED_COLOUR,
                               width=OUTLINE)
            if labels:
                text = _fit(caption, picture.width + PAD - 1, font)
                draw.text((x, y + thumb_height + 1), text, fill=_TEXT, font=font)
            x += picture.width + PAD
    return write_png(path, np.asarray(sheet))


def write_png(path: str | os.PathLike, pixels: np.ndarray) -> Path:
    """Write 8-bit pixels, (H, W) grey or (H, W, 3) RGB, as a PNG: to a temporary file in
    the same folder, then renamed onto ``path``, so the file exists whole or not at all."""
    path = Path(path)
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"pixels must be uint8 (H, W) or (H, W, 3), got {pixels.dtype} {pixels.shape}")
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
    try:
        Image.fromarray(pixels).save(temporary, format="PNG")
        os.replace(temporary, path)
    except OSError as e:
        temporary.unlink(missing_ok=True)
        raise MediaError(path, f"cannot be written: {e.strerror or e}") from None
    return path


def _thumbnail(title: str, thumb: Thumb, height: int) -> tuple[str, Image.Image, bool]:
    """(caption, resized 8-bit picture, generated), or InputError naming the picture."""
    image = np.asarray(thumb.image)
    where = f"contact sheet: row '{title}', picture '{thumb.caption}'"
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise InputError(f"{where}: expected an (H, W, 3) picture, got shape {image.shape}")
    if image.dtype.kind != "f":
        raise InputError(f"{where}: expected float pixels in [0, 1], got {image.dtype}")
    if not np.isfinite(image).all():
        raise InputError(f"{where}: has NaN or infinite pixels")
    codes = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    picture = Image.fromarray(codes).resize((width, height), Image.Resampling.LANCZOS)
    return str(thumb.caption), picture, bool(thumb.generated)


def _row_width(thumbs: list[tuple[str, Image.Image, bool]]) -> int:
    switches = sum(a[2] != b[2] for a, b in zip(thumbs, thumbs[1:]))
    return PAD + sum(picture.width + PAD for _, picture, _ in thumbs) + GROUP_GAP * switches


def _fit(text: str, width: int, font) -> str:
    """``text``, shortened (ending in "..") until it fits ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "..") > width:
        text = text[:-1]
    return text + ".." if text else ""


@functools.lru_cache(maxsize=1)
def _font():
    """Pillow's default font: no font file to ship or find."""
    return ImageFont.load_default()
