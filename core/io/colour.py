"""Colour management: scene-linear plates in, the engines' working encoding, and back.

EXR plates hold scene-linear light with no upper bound; the engines work
display-referred, in about [0, 1]. This module converts between the two through
OpenColorIO's built-in CG config (``ocio://cg-config-latest``, nothing on disk)
and one analytic, invertible curve. Nothing is clipped on the way in: highlights
above 1 are rolled off below 1 and come back out exactly (to float precision).

The path of a pixel::

    source space --OCIO matrix/curve--> linear Rec.709 --W--> working encoding
    working encoding --W^-1--> linear Rec.709 --OCIO--> output space

The OCIO processors are plain space conversions (matrices, and the decode of
sRGB or ACEScct sources); no ACES view transform is involved. They are built
once per :class:`ColourTransform` and reused for every frame.

The working curve
-----------------
``W = R o E``: the sRGB encoding ``E`` followed by a highlight roll-off ``R``.
Both are odd functions (``f(-x) = -f(x)``), so negative, out-of-gamut values
(a saturated ACEScg colour seen in Rec.709) are carried through, not clipped::

    E(x) = phi * x                          for 0 <= x <= x_b
         = (1 + a) * x**(1/g) - a           for x > x_b

      with g = 2.4, a = 0.055 and the break point where the two pieces meet
      with the same slope: e_b = a / (g - 1) ~ 0.03929, x_b = ((e_b + a) / (1 + a))**g
      ~ 0.0030399, phi = e_b / x_b ~ 12.92. This is the C1-continuous form of the
      IEC 61966-2-1 sRGB curve, the same one OpenColorIO's built-in sRGB space uses,
      so an sRGB-encoded source below the knee reaches the working encoding unchanged.

    R(e) = e                                for 0 <= e <= k
         = 1 - (1 - k)**2 / (e - (2k - 1))  for e > k            (k = KNEE = 0.8)

      a Reinhard-style roll-off of the excess above the knee with slope 1 at the
      knee (so W is C1), strictly increasing, approaching 1 as e grows: every
      finite x maps below 1. Linear 1.0 maps to 0.9; 16 to about 0.985;
      1000 to about 0.9978.

The inverse is analytic::

    R^-1(w) = w                              for 0 <= w <= k
            = (2k - 1) + (1 - k)**2 / (1 - w) for k < w < 1
    E^-1(e) = e / phi                        for 0 <= e <= e_b
            = ((e + a) / (1 + a))**g         for e > e_b

Working values at or beyond +-1 are never produced by ``W`` but can come back
from an engine; :meth:`ColourTransform.from_working` first limits them to
``+-W(peak)`` so they decode to ``+-peak`` (by default ``HALF_MAX``, the largest
value a half-float EXR holds) rather than to infinity.

Colour matching (:func:`shotfill.io.matching.match_colour`) and plate anchoring are in
:mod:`shotfill.io.matching`.
"""
from __future__ import annotations

import functools
import re
from typing import Sequence

import numpy as np
import PyOpenColorIO as ocio

from ..errors import ColourError

CONFIG_URI = "ocio://cg-config-latest"

SPACES: dict[str, str] = {
    "acescg": "ACEScg",
    "aces2065-1": "ACES2065-1",
    "acescct": "ACEScct",
    "lin_rec709": "Linear Rec.709 (sRGB)",
    "lin_p3d65": "Linear P3-D65",
    "lin_rec2020": "Linear Rec.2020",
    "srgb": "sRGB Encoded Rec.709 (sRGB)",
    "raw": "Raw",
}
"""Short name -> OpenColorIO colour-space name in the built-in CG config.

``srgb`` is sRGB-encoded Rec.709 (8-bit sources); ``acescct`` the ACES log
grading space; ``raw`` means no colour transform at all.
"""

# Names people use for these spaces that neither SPACES nor the OCIO config
# spells. A gamut named alone means its scene-linear space, since EXR holds
# linear light; "sRGB" means the encoded space, as on a PNG or a JPEG.
_EXTRA_ALIASES: dict[str, str] = {
    "linear": "lin_rec709",
    "linear_rec709": "lin_rec709",
    "linear_srgb": "lin_rec709",
    "rec709": "lin_rec709",
    "rec.709": "lin_rec709",
    "p3d65": "lin_p3d65",
    "p3-d65": "lin_p3d65",
    "rec2020": "lin_rec2020",
    "rec.2020": "lin_rec2020",
    "ap1": "acescg",
    "ap0": "aces2065-1",
    "srgb_encoded": "srgb",
}

# (rx, ry, gx, gy, bx, by, wx, wy), as in the EXR ``chromaticities`` attribute.
_REC709 = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)
_AP1 = (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767)
_AP0 = (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.0770, 0.32168, 0.33767)
_P3D65 = (0.680, 0.320, 0.265, 0.690, 0.150, 0.060, 0.3127, 0.3290)
_REC2020 = (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290)

_CHROMATICITIES: dict[str, tuple[float, ...] | None] = {
    "acescg": _AP1,
    "aces2065-1": _AP0,
    "acescct": _AP1,
    "lin_rec709": _REC709,
    "lin_p3d65": _P3D65,
    "lin_rec2020": _REC2020,
    "srgb": _REC709,
    "raw": None,
}

_LINEAR_SPACES = ("lin_rec709", "acescg", "aces2065-1", "lin_p3d65", "lin_rec2020")

CHROMATICITY_TOLERANCE = 1e-3
"""Largest difference per coordinate for chromaticities to name a known space.
The known spaces differ by at least 0.005 in some coordinate."""

_WORKING_LINEAR = "lin_rec709"

HALF_MAX = 65504.0
"""The largest finite half-float value: the default ceiling of :meth:`ColourTransform.from_working`."""

KNEE = 0.8
"""Working value where the highlight roll-off starts; below it the curve is plain sRGB."""

# E: the C1-continuous sRGB encoding (see the module docstring).
_GAMMA = 2.4
_OFFSET = 0.055
_ENC_BREAK = _OFFSET / (_GAMMA - 1.0)
_LIN_BREAK = ((_ENC_BREAK + _OFFSET) / (1.0 + _OFFSET)) ** _GAMMA
_SLOPE = _ENC_BREAK / _LIN_BREAK
# R: 1 - _ROLL_SCALE / (e - _ROLL_SHIFT) above the knee.
_ROLL_SCALE = (1.0 - KNEE) ** 2
_ROLL_SHIFT = 2.0 * KNEE - 1.0


# ---------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------
def _key(name: str) -> str:
    """Case-insensitive lookup key: spaces, underscores and hyphens are one separator."""
    return re.sub(r"[\s_\-]+", "_", name.strip().casefold())


@functools.cache
def _config() -> ocio.Config:
    try:
        return ocio.Config.CreateFromFile(CONFIG_URI)
    except ocio.Exception as exc:
        raise ColourError(f"OpenColorIO cannot load its built-in config {CONFIG_URI}: {exc}") from exc


@functools.cache
def _names() -> dict[str, str]:
    """Every accepted spelling (as a lookup key) -> short name."""
    config = _config()
    by_ocio_name = {ocio_name: short for short, ocio_name in SPACES.items()}
    names: dict[str, str] = {}
    for role, ocio_name in config.getRoles():
        if ocio_name in by_ocio_name:
            names[_key(role)] = by_ocio_name[ocio_name]
    for alias, short in _EXTRA_ALIASES.items():
        names[_key(alias)] = short
    for short, ocio_name in SPACES.items():
        names[_key(ocio_name)] = short
        for alias in config.getColorSpace(ocio_name).getAliases():
            names[_key(alias)] = short
        names[_key(short)] = short
    return names


def canonical_space(name: str) -> str:
    """The short name (a key of :data:`SPACES`) for a colour-space name.

    Accepts the short names, the OpenColorIO names and aliases of those spaces
    (``"ACEScg"``, ``"Linear Rec.709 (sRGB)"``, ``"lin_srgb"``, ``"srgb_tx"``),
    the config's roles (``"scene_linear"`` is ACEScg) and a few common names
    (``"linear"`` and ``"rec709"`` are linear Rec.709, ``"sRGB"`` is sRGB-encoded).
    Case, spaces, underscores and hyphens do not matter.

    Raises:
        ColourError: the name is none of these; the message lists the choices.
    """
    short = _names().get(_key(name)) if isinstance(name, str) else None
    if short is None:
        choices = ", ".join(SPACES)
        raise ColourError(
            f"unknown colour space {name!r}; choose one of: {choices} "
            f"(or their OpenColorIO names, such as {SPACES['acescg']!r} or {SPACES['lin_rec709']!r})"
        )
    return short


def chromaticities(space: str) -> tuple[float, ...] | None:
    """The EXR ``chromaticities`` of a space: (rx, ry, gx, gy, bx, by, wx, wy); None for raw."""
    return _CHROMATICITIES[canonical_space(space)]


def space_from_chromaticities(chroma: Sequence[float]) -> str | None:
    """The linear space whose primaries and white point match ``chroma``, else None.

    ``chroma`` is the EXR ``chromaticities`` attribute, 8 numbers. The nearest
    known linear space is returned when every coordinate lies within
    :data:`CHROMATICITY_TOLERANCE` of it.

    Raises:
        ColourError: ``chroma`` is not 8 finite numbers.
    """
    try:
        values = np.asarray(chroma, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ColourError(f"chromaticities must be 8 numbers (rx, ry, gx, gy, bx, by, wx, wy), got {chroma!r}") from exc
    if values.shape != (8,) or not np.all(np.isfinite(values)):
        raise ColourError(f"chromaticities must be 8 finite numbers (rx, ry, gx, gy, bx, by, wx, wy), got {chroma!r}")
    distance = {s: float(np.max(np.abs(values - _CHROMATICITIES[s]))) for s in _LINEAR_SPACES}
    nearest = min(distance, key=distance.get)
    return nearest if distance[nearest] <= CHROMATICITY_TOLERANCE else None


def is_linear(space: str) -> bool:
    """True for the scene-linear spaces; False for sRGB, ACEScct and raw (data, not light)."""
    return canonical_space(space) in _LINEAR_SPACES


# ---------------------------------------------------------------------------
# the working curve W = R o E (formulas in the module docstring)
# ---------------------------------------------------------------------------
def _srgb_encode(x: np.ndarray) -> np.ndarray:
    """E: linear -> sRGB-encoded, odd-extended below zero, unbounded above one."""
    a = np.abs(x)
    e = np.where(a <= _LIN_BREAK, _SLOPE * a, (1.0 + _OFFSET) * a ** (1.0 / _GAMMA) - _OFFSET)
    return np.copysign(e, x).astype(np.float32, copy=False)


def _srgb_decode(e: np.ndarray) -> np.ndarray:
    """E^-1: sRGB-encoded -> linear."""
    a = np.abs(e)
    x = np.where(a <= _ENC_BREAK, a / _SLOPE, ((a + _OFFSET) / (1.0 + _OFFSET)) ** _GAMMA)
    return np.copysign(x, e).astype(np.float32, copy=False)


def _roll_off(e: np.ndarray) -> np.ndarray:
    """R: identity up to the knee, then a roll-off that approaches 1.

    Float32. Only the values beyond the knee (usually few) are computed; the rest are copied.
    """
    out = np.array(e, dtype=np.float32, copy=True)
    over = np.abs(out) > KNEE
    if over.any():
        v = out[over]
        out[over] = np.copysign(1.0 - _ROLL_SCALE / (np.abs(v) - _ROLL_SHIFT), v)
    return out


def _unroll(w: np.ndarray, ceiling: float) -> np.ndarray:
    """R^-1, with |w| first limited to ``ceiling`` (< 1). Float32; like :func:`_roll_off`, only the
    values beyond the knee are computed."""
    if ceiling <= KNEE:  # everything is on the identity part: only the limit applies
        return np.clip(np.asarray(w, dtype=np.float32), -ceiling, ceiling)
    out = np.array(w, dtype=np.float32, copy=True)
    over = np.abs(out) > KNEE
    if over.any():
        v = out[over]
        out[over] = np.copysign(_ROLL_SHIFT + _ROLL_SCALE / (1.0 - np.minimum(np.abs(v), ceiling)), v)
    return out


def _ceiling(peak: float) -> float:
    """The working value of the linear value ``peak``: W(peak)."""
    return float(_roll_off(_srgb_encode(np.float32(peak))))


# ---------------------------------------------------------------------------
# transforms
# ---------------------------------------------------------------------------
def _cpu_processor(source: str, target: str) -> ocio.CPUProcessor | None:
    """An exact (lossless-optimised) float32 CPU processor; None when it would do nothing."""
    try:
        processor = _config().getProcessor(SPACES[source], SPACES[target])
    except ocio.Exception as exc:
        raise ColourError(f"OpenColorIO cannot convert {source} to {target}: {exc}") from exc
    if processor.isNoOp():
        return None
    return processor.getOptimizedCPUProcessor(ocio.OPTIMIZATION_LOSSLESS)


def _rgb(pixels: np.ndarray) -> np.ndarray:
    """A new C-contiguous float32 copy of ``(..., 3)`` pixels (OCIO works in place)."""
    if pixels.shape[-1:] != (3,):
        raise ValueError(f"expected RGB pixels of shape (..., 3), got {pixels.shape}")
    return np.array(pixels, dtype=np.float32, order="C", copy=True)


def _apply(processor: ocio.CPUProcessor | None, rgb: np.ndarray) -> np.ndarray:
    if processor is not None:
        processor.applyRGB(rgb)
    return rgb


class ColourTransform:
    """Pixels of one source between its colour space, the working encoding and the output space.

    The OpenColorIO processors are built once here and reused for every frame.
    ``raw`` on either side means no colour conversion, so it pairs only with
    ``raw``: a raw source has no known colours to convert into another space.

    Args:
        source_space: the plate's colour space (any name :func:`canonical_space` accepts).
        output_space: the space frames are written in; defaults to the source's.

    Raises:
        ColourError: a name is unknown, raw is paired with a colour space, or
            OpenColorIO cannot build a processor.
    """

    def __init__(self, source_space: str, output_space: str | None = None):
        self.source_space = canonical_space(source_space)
        self.output_space = self.source_space if output_space is None else canonical_space(output_space)
        if (self.source_space == "raw") != (self.output_space == "raw"):
            raise ColourError(
                f"cannot convert {self.source_space} to {self.output_space}: raw means no colour "
                "transform, so use raw for both the source and the output, or for neither"
            )
        working = "raw" if self.source_space == "raw" else _WORKING_LINEAR
        self._to_linear = _cpu_processor(self.source_space, working)
        self._from_linear = _cpu_processor(working, self.output_space)
        self._direct = _cpu_processor(self.source_space, self.output_space)

    def __repr__(self) -> str:
        return f"ColourTransform({self.source_space!r}, {self.output_space!r})"

    def to_working(self, pixels: np.ndarray) -> np.ndarray:
        """``(..., 3)`` pixels in the source space -> the working encoding (new float32 array).

        SDR values (linear Rec.709 in [0, 1]) land in [0, 0.9]; brighter values
        in (0.9, 1), never reaching 1; out-of-gamut colours go below 0.
        """
        linear = _apply(self._to_linear, _rgb(pixels))
        return _roll_off(_srgb_encode(linear))

    def from_working(self, working: np.ndarray, *, peak: float = HALF_MAX) -> np.ndarray:
        """The exact inverse of :meth:`to_working`, into the output space (new float32 array).

        Working values are first limited to ``[-W(peak), W(peak)]``, so values at
        or beyond 1 (which :meth:`to_working` never produces, but an engine may)
        decode to ``peak`` instead of infinity. Pass the plate's brightest value
        as ``peak`` to keep generated highlights within the plate's range.
        """
        if not peak > 0:
            raise ValueError(f"peak must be positive, got {peak}")
        linear = _srgb_decode(_unroll(_rgb(working), _ceiling(peak)))
        return _apply(self._from_linear, linear)

    def source_to_output(self, pixels: np.ndarray) -> np.ndarray:
        """Source space -> output space directly (new float32 array); bit-exact when they are equal."""
        return _apply(self._direct, _rgb(pixels))
