"""Reading EXR frames: choosing the part and layer, decoding its pixels through the OpenEXR
binding (checked against the parsed header), luminance/chroma to RGB, and the header and
``shotfill info`` descriptions.

Pixels come back as float32 ``(H, W, C)`` arrays covering the *data* window, in R, G, B(, A)
order. Luminance-only files become grey RGB; luminance/chroma files (Y, RY, BY) are converted
to RGB the way OpenEXR's own RGBA interface does it.
"""
from __future__ import annotations

import contextlib
import io
import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import OpenEXR

from ...errors import MediaError, UnsupportedMediaError
from .header import (_DEEP_TYPES, _SAMPLE_BYTES, STRUCTURAL_ATTRIBUTES, _Channel, _check_chunk_tables, _Header,
                     _parse_header, _Part)

#: The most bytes the binding may decode for a whole file (it decodes every part): 8 GiB.
MAX_DECODED_BYTES = 8 << 30

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

