"""shotfill.io.exr: EXR frames in and out.

Synthetic files are written in ``tmp_path``; real files come from ``shared/data/exr`` (valid
files covering the format's corners) and ``shared/data/exr_damaged`` (fuzz finds, truncated and
malformed files), read in place.
"""
from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenEXR
import pytest

from conftest import SHARED_DATA
from shotfill.io import exr
from shotfill.io.exr import image as exr_image
from shotfill.io.exr import write as exr_write
from shotfill.errors import MediaError, UnsupportedMediaError

EXR_DATA = SHARED_DATA / "exr"
DAMAGED_DATA = SHARED_DATA / "exr_damaged"


def _probed_readable() -> list[str]:
    """The valid files the binding probe read fully (READ_OK), relative to shared/data/exr."""
    probe = EXR_DATA / "probe_OpenEXR-python-3.5.3.tsv"
    if not probe.is_file():
        return []
    rows = [line.split("\t") for line in probe.read_text().splitlines()[1:] if line.strip()]
    return [path for status, path, *_ in rows if status == "READ_OK"]


def _damaged_files() -> list[str]:
    if not DAMAGED_DATA.is_dir():
        return []
    return sorted(
        str(p.relative_to(DAMAGED_DATA)) for p in DAMAGED_DATA.rglob("*")
        if p.is_file() and p.suffix not in (".md", ".tsv") and not p.name.startswith(("README", "LICENSE")))


def _inventory() -> dict[str, list[dict]]:
    """inventory.tsv: per file, per part, the windows and part name its own header parser found."""
    parts = {}
    for line in (EXR_DATA / "inventory.tsv").read_text().splitlines()[1:]:
        path, _size, summary = line.split("\t")
        parts[path] = []
        for segment in summary.split(" :: ", 1)[1].split(" || "):
            dw, disp = (tuple(int(v) for v in re.search(key + r"=\(([^)]*)\)", segment).group(1).split(","))
                        for key in ("dw", "disp"))
            name = re.search(r" name=(\S+)", segment)
            parts[path].append({"dw": dw, "disp": disp, "name": name.group(1) if name else None})
    return parts


def _smooth_image(h: int = 48, w: int = 64, alpha: bool = True) -> np.ndarray:
    """Scene-linear test pixels: ramps above 1, a negative dip and a little noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    planes = [x / w * 4, y / h - 0.1, 0.5 + 0.1 * np.sin(x / 5)] + ([np.full((h, w), 0.75)] if alpha else [])
    pixels = np.stack(planes, axis=-1).astype(np.float32)
    pixels[..., :3] += np.random.default_rng(0).normal(0, 0.01, (h, w, 3)).astype(np.float32)
    return pixels


def _write_with_binding(path: Path, channels: dict[str, np.ndarray], **header) -> Path:
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage, **header}
    OpenEXR.File(header, {k: np.ascontiguousarray(v) for k, v in channels.items()}).write(str(path))
    return path


def _patch_attribute(path: Path, name: str, type_name: str, value: bytes) -> Path:
    """Overwrite the value of one (fixed-size) header attribute in place."""
    data = bytearray(path.read_bytes())
    key = name.encode() + b"\0" + type_name.encode() + b"\0"
    start = data.index(key) + len(key) + 4
    data[start:start + len(value)] = value
    path.write_bytes(bytes(data))
    return path


# ---------------------------------------------------------------------------
# writing and reading back
# ---------------------------------------------------------------------------
LOSSY = {"dwaa", "dwab", "b44"}


@pytest.mark.parametrize("compression", sorted(exr.COMPRESSIONS))
def test_round_trip_each_compression(tmp_path, compression):
    pixels = _smooth_image()
    path = exr.write_exr(tmp_path / "rt.exr", pixels, compression=compression)
    image = exr.read_exr(path)

    assert image.channels == ("R", "G", "B", "A")
    assert image.pixels.dtype == np.float32 and image.pixels.shape == pixels.shape
    assert image.attributes["compression"] == compression
    as_half = pixels.astype(np.float16).astype(np.float32)
    if compression in LOSSY:
        error = np.abs(image.pixels - as_half)
        assert error.mean() < 0.01 and error.max() < 0.1
    else:
        np.testing.assert_array_equal(image.pixels, as_half)


def test_rgb_and_named_channels(tmp_path):
    pixels = _smooth_image(alpha=False)
    image = exr.read_exr(exr.write_exr(tmp_path / "rgb.exr", pixels))
    assert image.channels == ("R", "G", "B") and image.display_alpha() is None
    np.testing.assert_allclose(image.pixels, pixels, rtol=1e-3, atol=1e-3)

    exr.write_exr(tmp_path / "layer.exr", pixels, channels=("diffuse.R", "diffuse.G", "diffuse.B"))
    layered = exr.read_exr(tmp_path / "layer.exr")
    assert layered.layer == "diffuse"
    np.testing.assert_array_equal(layered.pixels, image.pixels)


def test_nan_inf_pass_through_and_overflow_becomes_inf(tmp_path):
    pixels = np.array([[[np.nan, np.inf, -np.inf], [1e5, -1e6, 65504.0]]], dtype=np.float32)
    image = exr.read_exr(exr.write_exr(tmp_path / "special.exr", pixels))
    assert np.isnan(image.pixels[0, 0, 0])
    assert image.pixels[0, 0, 1] == np.inf and image.pixels[0, 0, 2] == -np.inf
    assert image.pixels[0, 1, 0] == np.inf and image.pixels[0, 1, 1] == -np.inf
    assert image.pixels[0, 1, 2] == 65504.0


def test_negative_and_offset_windows_are_kept_and_composed(tmp_path):
    pixels = _smooth_image(6, 8)
    path = exr.write_exr(tmp_path / "win.exr", pixels, data_window=(-3, -2, 4, 3), display_window=(0, 0, 9, 4))
    image = exr.read_exr(path)
    assert image.data_window == (-3, -2, 4, 3) and image.display_window == (0, 0, 9, 4)
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float16).astype(np.float32))

    shown = image.display_rgb()
    assert shown.shape == (5, 10, 3) and shown.dtype == np.float32
    # display (0, 0) is data pixel (x=3, y=2) of the window that starts at (-3, -2)
    np.testing.assert_array_equal(shown[:4, :5], image.pixels[2:, 3:, :3])
    assert not shown[4:].any() and not shown[:, 5:].any()
    alpha = image.display_alpha()
    assert alpha.shape == (5, 10) and alpha[0, 0] == 0.75 and alpha[4, 0] == 0


def test_disjoint_display_window_is_all_zeros(tmp_path):
    path = exr.write_exr(tmp_path / "far.exr", _smooth_image(4, 4), data_window=(100, 100, 103, 103),
                         display_window=(0, 0, 9, 9))
    assert not exr.read_exr(path).display_rgb().any()


def test_write_refuses_bad_arguments_and_leaves_nothing(tmp_path):
    target = tmp_path / "bad.exr"
    pixels = _smooth_image(4, 4)
    bad_calls = [
        dict(pixels=pixels[..., 0]),
        dict(pixels=pixels, channels=("R", "G", "B")),
        dict(pixels=pixels, compression="jpeg"),
        dict(pixels=pixels, data_window=(0, 0, 9, 9)),
        dict(pixels=pixels, display_window=(5, 5, 0, 0)),
        dict(pixels=pixels, attributes={"shotfill.flag": True}),
        dict(pixels=pixels, attributes={"matrix": tuple(range(16))}),
        dict(pixels=pixels, attributes={"nested": {"a": 1}}),
        dict(pixels=pixels, attributes={"big": 2**40}),
        dict(pixels=pixels, attributes={"compression": "zip"}),
    ]
    for call in bad_calls:
        with pytest.raises(ValueError):
            exr.write_exr(target, **call)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# attributes
# ---------------------------------------------------------------------------
ACES_CG = (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767)


def test_attributes_round_trip(tmp_path):
    provenance = {
        "shotfill.engine": "flow",
        "shotfill.seed": 7,
        "shotfill.prompt": "",
        "shotfill.jobId": "abc",
        "chromaticities": ACES_CG,
        "shotfill.frame": np.int64(1001),
        "shotfill.strength": np.float32(0.5),
        "shotfill.score": 0.1,
        "shotfill.origin": (3, -4),
        "shotfill.scale": [1.5, 2, 3],
        "shotfill.sources": ["a.exr", "b.exr"],
    }
    path = exr.write_exr(tmp_path / "attrs.exr", _smooth_image(4, 4), attributes=provenance)
    header = exr.read_exr_header(path)
    expected = {**provenance, "shotfill.frame": 1001, "shotfill.strength": 0.5,
                "shotfill.scale": (1.5, 2.0, 3.0)}
    for name, value in expected.items():
        assert header[name] == (tuple(value) if isinstance(value, tuple) else value), name
    assert isinstance(header["shotfill.seed"], int) and isinstance(header["shotfill.origin"][0], int)
    assert exr.read_exr(path).attributes == header
    assert header["dataWindow"] == (0, 0, 3, 3) and header["compression"] == "zip"


def test_structural_attributes_can_be_filtered_to_copy_a_header(tmp_path):
    source = exr.write_exr(tmp_path / "src.exr", _smooth_image(4, 4), attributes={"owner": "studio"},
                           compression="piz")
    carried = {k: v for k, v in exr.read_exr_header(source).items() if k not in exr.STRUCTURAL_ATTRIBUTES}
    copy = exr.write_exr(tmp_path / "copy.exr", _smooth_image(4, 4), attributes=carried)
    assert exr.read_exr_header(copy)["owner"] == "studio"


# ---------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------
def test_atomic_write_leaves_only_the_final_file(tmp_path):
    path = exr.write_exr(tmp_path / "shot.1001.exr", _smooth_image(4, 4))
    assert path == tmp_path / "shot.1001.exr"
    assert [p.name for p in tmp_path.iterdir()] == ["shot.1001.exr"]


def test_failing_write_leaves_no_temp_and_no_final_file(tmp_path, monkeypatch):
    seen = []

    def failing_fsync(descriptor):
        seen.append([p.name for p in tmp_path.iterdir()])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(exr_write.os, "fsync", failing_fsync)
    with pytest.raises(MediaError, match="No space left"):
        exr.write_exr(tmp_path / "shot.1001.exr", _smooth_image(4, 4))
    # the data went to a hidden temporary file, which is gone again
    assert len(seen[0]) == 1 and seen[0][0].startswith(".shot.1001.exr.") and seen[0][0].endswith(".tmp")
    assert list(tmp_path.iterdir()) == []


def test_failing_overwrite_keeps_the_previous_frame(tmp_path, monkeypatch):
    path = exr.write_exr(tmp_path / "shot.exr", np.zeros((4, 4, 3), np.float32))

    def failing_replace(source, target):
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(exr_write.os, "replace", failing_replace)
    with pytest.raises(MediaError):
        exr.write_exr(path, np.ones((4, 4, 3), np.float32))
    assert [p.name for p in tmp_path.iterdir()] == ["shot.exr"]
    assert not exr.read_exr(path).pixels.any()


def test_write_into_missing_folder_is_a_media_error(tmp_path):
    with pytest.raises(MediaError):
        exr.write_exr(tmp_path / "missing" / "a.exr", _smooth_image(4, 4))


# ---------------------------------------------------------------------------
# parts, layers, tiles, luminance
# ---------------------------------------------------------------------------
def test_tiled_file_reads_like_scanline(tmp_path):
    pixels = _smooth_image(37, 53, alpha=False).astype(np.float16)
    tiles = OpenEXR.TileDescription()
    tiles.xSize, tiles.ySize = 8, 16
    path = _write_with_binding(tmp_path / "tiled.exr", {k: pixels[..., i] for i, k in enumerate("RGB")},
                               type=OpenEXR.tiledimage, tiles=tiles)
    image = exr.read_exr(path)
    assert image.attributes["tiles"] == (8, 16, "one_level", "round_down")
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))


def test_mipmapped_file_reads_level_zero(shared_data):
    image = exr.read_exr(shared_data / "exr/openexr-images/MultiResolution/PeriodicPattern.exr")
    assert image.attributes["tiles"] == (64, 64, "mipmap_levels", "round_down")
    assert image.pixels.shape == (517, 517, 3) and np.isfinite(image.pixels).all()


def test_mipmap_with_lower_levels_never_written_is_refused(tmp_path):
    # the binding writes only level 0 of a mipmapped file and leaves the other offsets at zero
    tiles = OpenEXR.TileDescription()
    tiles.xSize, tiles.ySize, tiles.mode = 8, 8, OpenEXR.MIPMAP_LEVELS
    plane = np.ones((16, 16), np.float16)
    path = _write_with_binding(tmp_path / "mip.exr", {"R": plane, "G": plane, "B": plane},
                               type=OpenEXR.tiledimage, tiles=tiles)
    with pytest.raises(MediaError, match="unfinished"):
        exr.read_exr(path)


def test_multi_part_selection(tmp_path):
    def part(name, channels):
        return OpenEXR.Part({"compression": OpenEXR.ZIP_COMPRESSION},
                            {k: np.full((4, 5), v, np.float16) for k, v in channels.items()}, name)

    path = tmp_path / "parts.exr"
    OpenEXR.File([part("depth", {"Z": 9}), part("beauty", {"R": 1, "G": 2, "B": 3}),
                  part("matte", {"R": 4, "G": 5, "B": 6, "A": 0.5})]).write(str(path))

    first = exr.read_exr(path)
    assert first.part == "beauty" and first.pixels[0, 0].tolist() == [1, 2, 3]
    matte = exr.read_exr(path, part="matte")
    assert matte.channels == ("R", "G", "B", "A") and matte.pixels[0, 0].tolist() == [4, 5, 6, 0.5]
    assert exr.read_exr(path, part=2).part == "matte"
    with pytest.raises(UnsupportedMediaError, match="Z"):
        exr.read_exr(path, part="depth")
    with pytest.raises(MediaError, match="'depth', 'beauty', 'matte'"):
        exr.read_exr(path, part="nope")
    assert exr.read_exr_header(path, part="matte")["name"] == "matte"
    info = exr.exr_info(path)
    assert info["multipart"] and [p["name"] for p in info["parts"]] == ["depth", "beauty", "matte"]
    json.dumps(info)


def test_multi_part_multi_view_prefers_the_default_view(tmp_path):
    def eye(name, value):
        header = {"compression": OpenEXR.ZIP_COMPRESSION, "view": name, "multiView": ["right", "left"]}
        return OpenEXR.Part(header, {k: np.full((2, 2), value, np.float16) for k in "RGB"}, name)

    path = tmp_path / "stereo.exr"
    OpenEXR.File([eye("left", 1), eye("right", 2)]).write(str(path))
    assert exr.read_exr(path).part == "right"
    assert exr.read_exr(path, part="left").pixels[0, 0, 0] == 1
    assert exr.exr_info(path)["views"] == ["right", "left"]


def test_layer_selection(tmp_path):
    plane = np.ones((3, 4), np.float16)
    path = _write_with_binding(tmp_path / "layers.exr", {
        "Z": plane * 9,
        "diffuse.R": plane * 1, "diffuse.G": plane * 2, "diffuse.B": plane * 3,
        "specular.R": plane * 4, "specular.G": plane * 5, "specular.B": plane * 6, "specular.A": plane,
        "motion.u": plane, "motion.v": plane,
    })
    default = exr.read_exr(path)
    assert default.layer == "diffuse" and default.pixels[0, 0].tolist() == [1, 2, 3]
    specular = exr.read_exr(path, layer="specular")
    assert specular.channels == ("R", "G", "B", "A") and specular.pixels[0, 0].tolist() == [4, 5, 6, 1]
    with pytest.raises(UnsupportedMediaError, match="motion.u"):
        exr.read_exr(path, layer="motion")
    with pytest.raises(MediaError, match="no layer 'beauty'"):
        exr.read_exr(path, layer="beauty")


def test_top_level_rgb_comes_before_layers(tmp_path):
    plane = np.ones((2, 2), np.float16)
    path = _write_with_binding(tmp_path / "top.exr", {"R": plane, "G": plane, "B": plane,
                                                      "aaa.R": plane * 0, "aaa.G": plane * 0, "aaa.B": plane * 0})
    assert exr.read_exr(path).layer == ""


def test_luminance_becomes_grey_rgb(tmp_path):
    y = np.linspace(0, 2, 12, dtype=np.float16).reshape(3, 4)
    image = exr.read_exr(_write_with_binding(tmp_path / "y.exr", {"Y": y, "A": np.ones_like(y)}))
    assert image.channels == ("R", "G", "B", "A")
    for c in range(3):
        np.testing.assert_array_equal(image.pixels[..., c], y.astype(np.float32))


def test_uint_channels_become_float(tmp_path):
    ids = np.arange(6, dtype=np.uint32).reshape(2, 3)
    image = exr.read_exr(_write_with_binding(tmp_path / "u.exr", {"R": ids, "G": ids, "B": ids}))
    assert image.pixels.dtype == np.float32 and image.pixels[1, 2, 0] == 5.0


def test_no_colour_channels_names_what_was_found(tmp_path):
    path = _write_with_binding(tmp_path / "z.exr", {"Z": np.zeros((2, 2), np.float32),
                                                    "N.x": np.zeros((2, 2), np.float32)})
    with pytest.raises(UnsupportedMediaError, match=r"channels: N\.x, Z"):
        exr.read_exr(path)


def test_chroma_reconstruction_filter():
    """Kept samples land on even positions; odd ones are interpolated (linear ramps exactly)."""
    ramp = np.arange(20, dtype=np.float32)[:, None] * 2.0     # samples of 0, 2, 4, ... at even positions
    full = exr_image._chroma_upsampled(ramp, 40, axis=0)
    assert full.shape == (40, 1)
    np.testing.assert_array_equal(full[0::2], ramp)
    np.testing.assert_allclose(full[13:27:2, 0], np.arange(13, 27, 2), atol=1e-3)
    flat = exr_image._chroma_upsampled(np.full((3, 5), 0.25, np.float32), 10, axis=1)
    np.testing.assert_allclose(flat, 0.25, atol=1e-5)


def test_luminance_chroma_to_rgb_inverts_openexr_encoding():
    weights = exr_image._luminance_weights("x", exr.REC709_CHROMATICITIES)
    np.testing.assert_allclose(weights, [0.2126, 0.7152, 0.0722], atol=2e-4)
    rgb = np.array([0.8, 0.3, 0.1], np.float32)
    y = rgb @ weights
    plane = np.ones((4, 4), np.float32)
    out = exr_image._luminance_chroma_to_rgb(plane * y, plane * (rgb[0] - y) / y, plane * (rgb[2] - y) / y, weights)
    np.testing.assert_allclose(out[2, 2], rgb, rtol=1e-5)
    grey = exr_image._luminance_chroma_to_rgb(plane * 0.3, plane * 0, plane * 0, weights)
    assert (grey == np.float32(0.3)).all()
    with pytest.raises(UnsupportedMediaError):
        exr_image._luminance_weights("x", (0.64, 0.0, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329))


# ---------------------------------------------------------------------------
# hostile headers, refused before the binding decodes anything
# ---------------------------------------------------------------------------
@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if the binding is asked to read pixels."""
    def refuse(*args, **kwargs):
        raise AssertionError("the binding was called")
    monkeypatch.setattr(exr_image.OpenEXR, "File", refuse)


@pytest.fixture
def small_file(tmp_path) -> Path:
    return exr.write_exr(tmp_path / "small.exr", _smooth_image(64, 8))   # four ZIP chunks of 16 lines


def test_huge_data_window_is_refused_before_decoding(small_file, no_decoding):
    _patch_attribute(small_file, "dataWindow", "box2i", struct.pack("<4i", 0, 0, 99999, 99999))
    with pytest.raises(UnsupportedMediaError, match="more than"):
        exr.read_exr(small_file)


def test_inverted_window_is_refused(small_file, no_decoding):
    _patch_attribute(small_file, "displayWindow", "box2i", struct.pack("<4i", 10, 0, 0, 7))
    with pytest.raises(MediaError, match="inverted"):
        exr.read_exr_header(small_file)


def test_decoded_size_limit(small_file, no_decoding, monkeypatch):
    monkeypatch.setattr(exr_image, "MAX_DECODED_BYTES", 100)
    with pytest.raises(UnsupportedMediaError, match="GiB"):
        exr.read_exr(small_file)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"\x76\x2f\x31\x02" + b[4:], "bad magic"),
    (lambda b: b[:4] + struct.pack("<I", 2 | 0x10000) + b[8:], "unknown version flags"),
    (lambda b: b[:60], "truncated header"),
    (lambda b: b[:len(b) // 2], "truncated or unfinished"),
    (lambda b: b"", "too short"),
])
def test_damaged_bytes(small_file, no_decoding, damage, message):
    small_file.write_bytes(damage(small_file.read_bytes()))
    with pytest.raises(MediaError, match=message):
        exr.read_exr(small_file)


def test_truncated_last_chunk_is_caught_after_decoding(small_file):
    small_file.write_bytes(small_file.read_bytes()[:-40])
    with pytest.raises(MediaError, match="damaged pixel data"):
        exr.read_exr(small_file)


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        exr.read_exr(tmp_path / "absent.exr")


def test_binding_warning_becomes_the_error_and_is_not_printed(shared_data, capsys):
    # the binding prints a warning and returns a file without parts for this one
    path = shared_data / "exr_damaged/tinyexr_poc/poc-e7fa6404daa861369d2172fe68e08f9d38c0989f57da7bcfb510bab67e19ca9f"
    with pytest.raises(MediaError, match="Unable to query scanline information"):
        exr.read_exr(path)
    assert "Warning" not in capsys.readouterr().out


# ---------------------------------------------------------------------------
# real files
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("relative", _probed_readable())
def test_every_probed_file_reads_or_is_unsupported(shared_data, relative):
    path = shared_data / "exr" / relative
    try:
        image = exr.read_exr(path)
    except UnsupportedMediaError:
        return
    parts = _inventory()[relative]
    expected = parts[0] if len(parts) == 1 else next(p for p in parts if p["name"] == image.part)
    assert image.data_window == expected["dw"] and image.display_window == expected["disp"]
    x0, y0, x1, y1 = image.data_window
    assert image.pixels.shape == (y1 - y0 + 1, x1 - x0 + 1, len(image.channels))
    assert image.pixels.dtype == np.float32 and image.channels in (("R", "G", "B"), ("R", "G", "B", "A"))
    json.dumps(exr.exr_info(path))


def test_deep_files_are_unsupported(shared_data):
    for relative in ("openexr-tests/11.deep.exr", "openexr-images/v2/LowResLeftView/Trunks.exr"):
        with pytest.raises(UnsupportedMediaError, match="deep"):
            exr.read_exr(shared_data / "exr" / relative)
    assert exr.exr_info(shared_data / "exr/openexr-tests/11.deep.exr")["deep"]


def test_display_window_files_against_inventory(shared_data):
    inventory = _inventory()
    for n in range(1, 17):
        relative = f"openexr-images/DisplayWindow/t{n:02d}.exr"
        image = exr.read_exr(shared_data / "exr" / relative)
        assert (image.data_window, image.display_window) == (inventory[relative][0]["dw"],
                                                             inventory[relative][0]["disp"])
        dx0, dy0, dx1, dy1 = image.display_window
        assert image.display_rgb().shape == (dy1 - dy0 + 1, dx1 - dx0 + 1, 3)

    offset = exr.read_exr(shared_data / "exr/openexr-images/DisplayWindow/t08.exr")   # data at (30, 40)
    shown = offset.display_rgb()
    np.testing.assert_array_equal(shown[40:340, 30:430], offset.pixels)
    assert not shown[:40].any() and not shown[:, :30].any()
    disjoint = exr.read_exr(shared_data / "exr/openexr-images/DisplayWindow/t10.exr")
    assert disjoint.pixels.any() and not disjoint.display_rgb().any()


def test_line_order_does_not_change_pixels(shared_data):
    decreasing = exr.read_exr(shared_data / "exr/openexr-tests/lineOrder_decreasing.exr")
    increasing = exr.read_exr(shared_data / "exr/openexr-tests/lineOrder_increasing.exr")
    assert decreasing.attributes["lineOrder"] == "decreasing_y"
    np.testing.assert_array_equal(decreasing.pixels, increasing.pixels)


def test_luminance_chroma_file_matches_its_rgb_twin(shared_data):
    """comp_b44 stores as Y/RY/BY the image comp_rle stores as RGBA (one pixel larger)."""
    yc = exr.read_exr(shared_data / "exr/openexr-tests/comp_b44.exr")
    rgb = exr.read_exr(shared_data / "exr/openexr-tests/comp_rle.exr").pixels[:674, :586, :3]
    assert yc.pixels.shape == (674, 586, 3)

    def median_relative_error(a):
        return np.median(np.abs(a - rgb) / (np.abs(rgb) + 0.05), axis=(0, 1))

    assert (median_relative_error(yc.pixels) < 0.02).all()
    assert median_relative_error(yc.pixels[..., ::-1]).max() > 0.05   # R and B are not swapped
    flowers = exr.read_exr(shared_data / "exr/openexr-images/LuminanceChroma/Flowers.exr")
    assert np.isfinite(flowers.pixels).all() and flowers.pixels[..., 2].mean() > flowers.pixels[..., 0].mean()


def test_luminance_only_and_multi_view_files(shared_data):
    garden = exr.read_exr(shared_data / "exr/openexr-images/LuminanceChroma/Garden.exr")   # tiled, Y only
    assert (garden.pixels[..., 0] == garden.pixels[..., 2]).all()
    fog = shared_data / "exr/openexr-images/MultiView/Fog.exr"
    left, right = exr.read_exr(fog), exr.read_exr(fog, layer="right")
    assert left.layer == "" and right.layer == "right" and not np.array_equal(left.pixels, right.pixels)
    assert exr.exr_info(fog)["views"] == ["left", "right"]

    beachball = shared_data / "exr/openexr-images/Beachball/singlepart.0001.exr"
    default, other_eye = exr.read_exr(beachball), exr.read_exr(beachball, layer="left")
    assert default.channels == other_eye.channels == ("R", "G", "B", "A")
    assert not np.array_equal(default.pixels, other_eye.pixels)


def test_real_multi_part_file(shared_data):
    path = shared_data / "exr/openexr-images/Beachball/multipart.0001.exr"
    assert exr.read_exr(path).part == "rgba_right"
    left = exr.read_exr(path, part="rgba_left")
    assert left.data_window == (688, 245, 1564, 1120)
    with pytest.raises(UnsupportedMediaError, match="whitebarmask"):
        exr.read_exr(path, part="whitebarmask_left")


def test_layer_names_with_spaces(shared_data):
    image = exr.read_exr(shared_data / "exr/tinyexr/flaga.exr", layer="Warstwa 2")
    assert image.layer == "Warstwa 2" and image.channels == ("R", "G", "B", "A")


# ---------------------------------------------------------------------------
# damaged files, read in a child process under a 4 GiB address-space cap
# ---------------------------------------------------------------------------
_SWEEP = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from shotfill.io.exr import read_exr
from shotfill.errors import MediaError
root, names = sys.argv[1], json.loads(sys.stdin.read())
for name in names:
    print(json.dumps({"started": name}), flush=True)
    try:
        read_exr(root + "/" + name)
        outcome = "read without error"
    except MediaError as exc:
        outcome = "MediaError"
    except BaseException as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"file": name, "outcome": outcome}), flush=True)
"""


@pytest.fixture(scope="module")
def damaged_outcomes(shared_data) -> dict[str, str]:
    """file -> outcome of read_exr in a capped child; a crash is charged to the file it was on."""
    names = _damaged_files()
    child = subprocess.run([sys.executable, "-c", _SWEEP, str(shared_data / "exr_damaged")],
                           input=json.dumps(names), capture_output=True, text=True, timeout=120,
                           env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    outcomes, started = {}, None
    for line in child.stdout.splitlines():
        if not line.startswith("{"):
            continue   # anything the libraries print
        record = json.loads(line)
        started = record.get("started", started)
        if "file" in record:
            outcomes[record["file"]] = record["outcome"]
    if started is not None and started not in outcomes:
        outcomes[started] = f"child died (exit {child.returncode}): {child.stderr[-500:]}"
    return outcomes


@pytest.mark.parametrize("relative", _damaged_files())
def test_damaged_file_raises_media_error(damaged_outcomes, relative):
    assert damaged_outcomes.get(relative, "not reached: an earlier file killed the child") == "MediaError"
