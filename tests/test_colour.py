"""Tests for shotfill.io.colour: spaces, the working curve, OCIO transforms, colour matching."""
from __future__ import annotations

import numpy as np
import OpenEXR
import pytest

from shotfill.io import colour
from shotfill.io.colour import (
    HALF_MAX,
    KNEE,
    SPACES,
    ColourTransform,
    canonical_space,
    chromaticities,
    is_linear,
    space_from_chromaticities,
)
from shotfill.io.matching import match_colour
from shotfill.errors import ColourError

HDR = np.array([0.0, 1e-4, 0.18, 1.0, 4.0, 16.0, 100.0, 1000.0], np.float32)


def grey(values) -> np.ndarray:
    """(N, 3) neutral pixels."""
    return np.repeat(np.asarray(values, np.float32)[:, None], 3, axis=1)


def srgb_oetf(x):
    """The IEC 61966-2-1 sRGB encoding, written out independently of the module."""
    x = np.asarray(x, np.float64)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def rgb_to_xyz(chroma) -> np.ndarray:
    """The normalised primary matrix of a space given by its chromaticities."""
    rx, ry, gx, gy, bx, by, wx, wy = chroma
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in ((rx, ry), (gx, gy), (bx, by))]).T
    white = np.array([wx / wy, 1.0, (1 - wx - wy) / wy])
    return xyz * np.linalg.solve(xyz, white)


# ---------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------
def test_spaces_exist_in_the_builtin_config():
    import PyOpenColorIO as ocio

    config = ocio.Config.CreateFromFile(colour.CONFIG_URI)
    for ocio_name in SPACES.values():
        assert config.getColorSpace(ocio_name) is not None, ocio_name


@pytest.mark.parametrize(
    "name, expected",
    [
        ("acescg", "acescg"),
        ("ACEScg", "acescg"),
        ("lin_ap1", "acescg"),
        ("scene_linear", "acescg"),
        ("ACES2065-1", "aces2065-1"),
        ("aces2065_1", "aces2065-1"),
        ("aces", "aces2065-1"),
        ("ACEScct", "acescct"),
        ("Linear Rec.709 (sRGB)", "lin_rec709"),
        ("LIN_REC709", "lin_rec709"),
        ("lin-rec709", "lin_rec709"),
        ("lin_srgb", "lin_rec709"),
        ("linear", "lin_rec709"),
        ("rec709", "lin_rec709"),
        ("  Linear  ", "lin_rec709"),
        ("Linear P3-D65", "lin_p3d65"),
        ("lin_displayp3", "lin_p3d65"),
        ("Linear Rec.2020", "lin_rec2020"),
        ("rec2020", "lin_rec2020"),
        ("sRGB", "srgb"),
        ("srgb_tx", "srgb"),
        ("sRGB - Texture", "srgb"),
        ("sRGB Encoded Rec.709 (sRGB)", "srgb"),
        ("Raw", "raw"),
        ("data", "raw"),
    ],
)
def test_canonical_space_aliases(name, expected):
    assert canonical_space(name) == expected


@pytest.mark.parametrize("name", ["", "rec.601", "ACEScc", "Linear AdobeRGB", "sRGB - Display"])
def test_canonical_space_unknown_lists_the_choices(name):
    with pytest.raises(ColourError) as info:
        canonical_space(name)
    message = str(info.value)
    assert repr(name) in message
    for short in SPACES:
        assert short in message


def test_is_linear():
    for space in ("acescg", "aces2065-1", "lin_rec709", "lin_p3d65", "lin_rec2020", "Linear"):
        assert is_linear(space), space
    for space in ("srgb", "acescct", "raw"):
        assert not is_linear(space), space


# ---------------------------------------------------------------------------
# chromaticities
# ---------------------------------------------------------------------------
def test_chromaticities_known_values():
    assert chromaticities("lin_rec709") == pytest.approx((0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290))
    assert chromaticities("ACEScg") == pytest.approx((0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767))
    assert chromaticities("srgb") == chromaticities("lin_rec709")
    assert chromaticities("acescct") == chromaticities("acescg")
    assert chromaticities("raw") is None


@pytest.mark.parametrize(
    "space, interop_id",
    [
        ("lin_rec709", "lin_rec709_scene"),
        ("acescg", "lin_ap1_scene"),
        ("aces2065-1", "lin_ap0_scene"),
        ("lin_p3d65", "lin_p3d65_scene"),
        ("lin_rec2020", "lin_rec2020_scene"),
    ],
)
def test_chromaticities_agree_with_openexr_interop_ids(space, interop_id):
    assert chromaticities(space) == pytest.approx(OpenEXR.colorInteropIDToChromaticities(interop_id), abs=1e-6)


@pytest.mark.parametrize(
    "source, target",
    [("lin_p3d65", "lin_rec709"), ("lin_rec2020", "lin_rec709"), ("acescg", "aces2065-1")],
)
def test_ocio_matrices_agree_with_chromaticities(source, target):
    """Spaces with the same white point: OCIO's conversion is XYZ->target @ source->XYZ."""
    expected = np.linalg.solve(rgb_to_xyz(chromaticities(target)), rgb_to_xyz(chromaticities(source)))
    got = ColourTransform(source, target).source_to_output(np.eye(3, dtype=np.float32)).T
    np.testing.assert_allclose(got, expected, atol=2e-4)


@pytest.mark.parametrize("space", ["acescg", "aces2065-1", "lin_rec709", "lin_p3d65", "lin_rec2020"])
def test_space_from_chromaticities_inverts_chromaticities(space):
    assert space_from_chromaticities(chromaticities(space)) == space
    # as stored in an EXR header: float32, then read back as Python floats
    stored = tuple(float(v) for v in np.float32(chromaticities(space)))
    assert space_from_chromaticities(stored) == space
    nudged = np.array(chromaticities(space)) + 0.0008
    assert space_from_chromaticities(nudged) == space


def test_space_from_chromaticities_unknown_is_none():
    adobe_rgb = (0.64, 0.33, 0.21, 0.71, 0.15, 0.06, 0.3127, 0.3290)
    xyz = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1 / 3, 1 / 3)
    assert space_from_chromaticities(adobe_rgb) is None
    assert space_from_chromaticities(xyz) is None
    rec709_d60 = chromaticities("lin_rec709")[:6] + chromaticities("acescg")[6:]
    assert space_from_chromaticities(rec709_d60) is None


@pytest.mark.parametrize("bad", [(0.64, 0.33), "rec709", (0.64,) * 7 + (float("nan"),), None])
def test_space_from_chromaticities_rejects_malformed(bad):
    with pytest.raises(ColourError, match="8"):
        space_from_chromaticities(bad)


# ---------------------------------------------------------------------------
# the working curve
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("space", ["acescg", "lin_rec709", "aces2065-1", "lin_rec2020", "raw"])
def test_round_trip_hdr_values(space):
    transform = ColourTransform(space)
    pixels = grey(HDR)
    working = transform.to_working(pixels)
    back = transform.from_working(working)
    assert working.dtype == np.float32 and back.dtype == np.float32
    np.testing.assert_allclose(back, pixels, rtol=5e-5, atol=1e-8)
    assert back[-1, 0] > 999.0  # not clipped


def test_round_trip_coloured_hdr_and_negative_values():
    rng = np.random.default_rng(0)
    pixels = (rng.standard_normal((500, 3)) * np.exp(rng.uniform(-5, 7, (500, 1)))).astype(np.float32)
    for space in ("acescg", "lin_rec709", "lin_p3d65"):
        transform = ColourTransform(space)
        back = transform.from_working(transform.to_working(pixels))
        scale = np.abs(pixels).max(axis=1, keepdims=True)
        # float32 resolves about 3e-5 of the value near 1000 (half floats: 5e-4)
        np.testing.assert_allclose(back / scale, pixels / scale, atol=1e-4, err_msg=space)


def test_round_trip_srgb_source():
    values = np.linspace(0.0, 1.0, 257, dtype=np.float32)
    transform = ColourTransform("srgb")
    back = transform.from_working(transform.to_working(grey(values)))
    np.testing.assert_allclose(back, grey(values), rtol=1e-5, atol=1e-6)


def test_values_above_one_survive_below_one_in_working():
    working = ColourTransform("lin_rec709").to_working(grey(HDR))[:, 0]
    assert np.all(working[HDR > 1] > 0.9)
    assert np.all(working < 1.0)
    assert np.all(np.diff(working) > 0)  # 100 and 1000 stay distinct


def test_sdr_image_lies_in_unit_range():
    rng = np.random.default_rng(1)
    image = rng.random((64, 64, 3), dtype=np.float32)
    for space in ("lin_rec709", "srgb"):
        working = ColourTransform(space).to_working(image)
        assert working.min() >= 0.0 and working.max() <= 0.9 + 1e-6, space


def test_curve_is_strictly_monotone_and_odd():
    raw = ColourTransform("raw")
    x = np.concatenate([-np.logspace(4, -6, 2000), [0.0], np.logspace(-6, 4, 2000)]).astype(np.float32)
    w = raw.to_working(grey(x))[:, 0]
    assert np.all(np.diff(w) > 0)
    np.testing.assert_array_equal(w[:2000], -w[2001:][::-1])
    fine = np.linspace(0.0, 2.0, 200_001, dtype=np.float32)
    assert np.all(np.diff(raw.to_working(grey(fine))[:, 0]) >= 0)


def test_curve_is_srgb_below_the_knee():
    raw = ColourTransform("raw")
    x = np.linspace(0.0, 0.6, 601, dtype=np.float32)
    np.testing.assert_allclose(raw.to_working(grey(x))[:, 0], srgb_oetf(x), atol=1e-4)
    assert raw.to_working(grey([0.18]))[0, 0] == pytest.approx(0.4614, abs=1e-3)
    assert raw.to_working(grey([1.0]))[0, 0] == pytest.approx(0.9, abs=1e-6)


def test_curve_slope_is_continuous_at_the_joins():
    """No kink where the linear toe meets the power curve, nor at the knee."""
    raw = ColourTransform("raw")
    knee_linear = float(raw.from_working(grey([KNEE]))[0, 0])
    for join in (colour._LIN_BREAK, knee_linear):
        h = join * 1e-3
        x = np.array([join - 2 * h, join - h, join, join + h, join + 2 * h], np.float64)
        w = raw.to_working(grey(x))[:, 0].astype(np.float64)
        left, right = (w[1] - w[0]) / h, (w[4] - w[3]) / h
        assert right == pytest.approx(left, rel=1e-2), join


def test_srgb_source_below_knee_reaches_working_unchanged():
    """OCIO's sRGB decode and our encode are the same curve."""
    values = np.linspace(0.0, KNEE, 81, dtype=np.float32)
    working = ColourTransform("srgb").to_working(grey(values))
    np.testing.assert_allclose(working, grey(values), atol=2e-5)


def test_from_working_limits_out_of_range_values_to_peak():
    transform = ColourTransform("lin_rec709")
    out = transform.from_working(grey([1.0, 1.5, -1.0]))
    np.testing.assert_allclose(out[:, 0], [HALF_MAX, HALF_MAX, -HALF_MAX], rtol=1e-4)
    assert np.all(np.isfinite(out))
    limited = transform.from_working(grey([0.9, 0.999999, 1.0]), peak=50.0)
    np.testing.assert_allclose(limited[:, 0], [1.0, 50.0, 50.0], rtol=1e-4)
    with pytest.raises(ValueError, match="peak"):
        transform.from_working(grey([0.5]), peak=0.0)


def test_transforms_do_not_mutate_their_input():
    pixels = grey(HDR)
    before = pixels.copy()
    transform = ColourTransform("acescg", "lin_rec709")
    working = transform.to_working(pixels)
    working_before = working.copy()
    transform.from_working(working)
    transform.source_to_output(pixels)
    np.testing.assert_array_equal(pixels, before)
    np.testing.assert_array_equal(working, working_before)


def test_rejects_non_rgb_pixels():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        ColourTransform("acescg").to_working(np.zeros((4, 4, 4), np.float32))


# ---------------------------------------------------------------------------
# space conversions
# ---------------------------------------------------------------------------
def test_acescg_to_rec709_known_matrix_and_neutral_grey():
    transform = ColourTransform("acescg", "lin_rec709")
    matrix = transform.source_to_output(np.eye(3, dtype=np.float32)).T  # column j = image of primary j
    np.testing.assert_allclose(matrix[0], [1.705, -0.622, -0.083], atol=2e-3)
    greys = transform.source_to_output(grey([0.0, 0.18, 1.0, 16.0]))
    np.testing.assert_allclose(greys, grey([0.0, 0.18, 1.0, 16.0]), rtol=1e-5, atol=1e-7)


def test_output_space_defaults_to_source_and_differs_when_asked():
    assert ColourTransform("ACEScg").output_space == "acescg"
    transform = ColourTransform("Linear", "ACES2065-1")
    assert (transform.source_space, transform.output_space) == ("lin_rec709", "aces2065-1")
    red = grey([1.0]) * [1.0, 0.0, 0.0]
    via_working = transform.from_working(transform.to_working(red))
    np.testing.assert_allclose(via_working, transform.source_to_output(red), atol=1e-5)
    assert not np.allclose(via_working, red, atol=1e-2)


def test_source_to_output_is_bit_exact_for_equal_spaces():
    rng = np.random.default_rng(2)
    half = (rng.standard_normal((32, 32, 3)) * 100).astype(np.float16)
    out = ColourTransform("acescg", "ACEScg").source_to_output(half)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.astype(np.float16), half)
    assert out is not half


def test_raw_pairs_only_with_raw():
    with pytest.raises(ColourError, match="raw"):
        ColourTransform("raw", "acescg")
    with pytest.raises(ColourError, match="raw"):
        ColourTransform("lin_rec709", "raw")


def test_one_hd_frame_runs():
    rng = np.random.default_rng(3)
    frame = (rng.random((1080, 1920, 3), dtype=np.float32) * 8.0)
    transform = ColourTransform("acescg")
    working = transform.to_working(frame)
    back = transform.from_working(working)
    assert working.shape == back.shape == frame.shape
    assert working.max() < 1.0


# ---------------------------------------------------------------------------
# colour matching
# ---------------------------------------------------------------------------
def plate(seed=4, shape=(3, 48, 64, 3)) -> np.ndarray:
    """A plate in working encoding with values in [0.1, 0.7], below the knee."""
    return np.random.default_rng(seed).uniform(0.1, 0.7, shape).astype(np.float32)


def test_match_colour_moves_a_shifted_frame_to_the_reference():
    reference = plate()
    frames = reference + np.float32([0.08, -0.05, 0.02])
    matched = match_colour(frames, reference)
    np.testing.assert_allclose(matched.mean(axis=(0, 1, 2)), reference.mean(axis=(0, 1, 2)), atol=2e-3)
    # one frame against itself, shifted: the shift is undone exactly
    np.testing.assert_allclose(match_colour(frames[:1], reference[0]), reference[:1], atol=1e-5)


def test_match_colour_matches_contrast():
    reference = plate()
    frames = (reference - 0.4) * 0.6 + 0.45
    matched = match_colour(frames, reference[0])
    target = np.broadcast_to(reference[0].std(axis=(0, 1)), (3, 3))
    assert not np.allclose(frames.std(axis=(1, 2)), target, rtol=0.2)
    np.testing.assert_allclose(matched.std(axis=(1, 2)), target, rtol=0.05)


def test_match_colour_strength():
    reference = plate()
    frames = reference + np.float32(0.1)
    frozen = frames.copy()
    np.testing.assert_array_equal(match_colour(frames, reference, strength=0.0), frames)
    half = match_colour(frames, reference, strength=0.5)
    np.testing.assert_allclose(half.mean(), reference.mean() + 0.05, atol=2e-3)
    faded = match_colour(frames, reference, strength=np.array([0.0, 0.5, 1.0]))
    np.testing.assert_array_equal(faded[0], frames[0])
    assert abs(faded[2].mean() - reference[2].mean()) < 2e-3
    np.testing.assert_array_equal(frames, frozen)  # never mutates


def test_match_colour_keeps_highlights_below_one():
    reference = plate()
    hdr = ColourTransform("raw").to_working(grey(np.float32([4.0, 100.0, 1000.0])))
    frames = plate(seed=5, shape=(1, 48, 64, 3)) * 0.5
    frames[0, :1, :3] = hdr
    matched = match_colour(frames, reference)
    assert matched.max() < 1.0
    assert np.all(np.diff(matched[0, 0, :3, 0]) > 0)  # highlights keep their order


@pytest.mark.parametrize(
    "frames, reference, strength",
    [
        (np.zeros((2, 4, 4, 3)), np.zeros((4, 4, 3)), np.ones(3)),
        (np.zeros((2, 4, 4, 3)), np.zeros((4, 4, 3)), 1.5),
        (np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), 1.0),
        (np.zeros((2, 4, 4, 3)), np.zeros((4, 4)), 1.0),
    ],
)
def test_match_colour_rejects_bad_shapes(frames, reference, strength):
    with pytest.raises(ValueError):
        match_colour(frames, reference, strength=strength)


# ---------------------------------------------------------------------------
# real EXR files (shared data)
# ---------------------------------------------------------------------------
def read_rgb(path) -> tuple[np.ndarray, dict]:
    """RGB pixels and header of a single-part EXR (copied: the binding clears both on close)."""
    with OpenEXR.File(str(path)) as exr:
        channels = exr.channels()
        pixels = channels["RGB"].pixels if "RGB" in channels else channels["RGBA"].pixels[..., :3]
        return np.array(pixels), dict(exr.header())


@pytest.mark.parametrize(
    "name, space",
    [("ScanLines/Carrots.exr", "aces2065-1"), ("TestImages/WideColorGamut.exr", "lin_rec709")],
)
def test_real_exr_chromaticities_name_their_space(shared_data, name, space):
    _, header = read_rgb(shared_data / "exr" / "openexr-images" / name)
    assert space_from_chromaticities(header["chromaticities"]) == space


@pytest.mark.parametrize(
    "name, space",
    [
        ("TestImages/BrightRings.exr", "lin_rec709"),  # values over 1000
        ("TestImages/WideColorGamut.exr", "lin_rec709"),  # negative, out-of-gamut values
        ("ScanLines/Carrots.exr", "aces2065-1"),
    ],
)
def test_real_exr_round_trip_survives_half_float(shared_data, name, space):
    pixels, _ = read_rgb(shared_data / "exr" / "openexr-images" / name)
    transform = ColourTransform(space)
    working = transform.to_working(pixels)
    assert np.abs(working).max() < 1.0
    back = transform.from_working(working)
    scale = np.maximum(np.abs(pixels.astype(np.float32)).max(axis=-1, keepdims=True), 1e-3)
    np.testing.assert_allclose(back / scale, pixels.astype(np.float32) / scale, atol=5e-5)
    assert back.max() == pytest.approx(float(pixels.max()), rel=1e-4)
    if space == "lin_rec709":  # no OCIO step: written back as half floats, every value is the same
        np.testing.assert_array_equal(back.astype(np.float16), pixels)
