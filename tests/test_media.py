"""Frame sources: patterns, image sequences, stills, movies and masks (shotfill.io.media)."""
from __future__ import annotations

import importlib.util
import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from shotfill.errors import InputError, MediaError, MissingFrameError, UnsupportedMediaError
from shotfill.io.media import FramePattern, MovieSource, open_source, parse_pattern

HAVE_EXR = importlib.util.find_spec("shotfill.io.exr") is not None


def picture(frame: int, height: int = 12, width: int = 16, dtype=np.uint8) -> np.ndarray:
    """A (H, W, 3) picture that differs per frame: a gradient plus per-frame noise."""
    rng = np.random.default_rng(frame)
    top = np.iinfo(dtype).max if dtype in (np.uint8, np.uint16) else 4.0
    base = np.linspace(0.0, 1.0, height * width * 3).reshape(height, width, 3)
    values = (base * 0.7 + rng.random((height, width, 3)) * 0.3) * top
    return values.astype(dtype)


def write_png(path: Path, pixels: np.ndarray) -> None:
    """RGB(A) or grey, 8 or 16 bit (cv2 keeps 16-bit colour; it wants BGR order)."""
    if pixels.ndim == 3:
        pixels = pixels[..., [2, 1, 0, 3][: pixels.shape[2]]]
    assert cv2.imwrite(str(path), pixels)


def as_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.round(rgb * 255.0).astype(np.uint8)


# ---------------------------------------------------------------------------
# patterns
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("text, padding", [
    ("/shots/a/shot.####.exr", 4),
    ("/shots/a/shot.%04d.exr", 4),
    ("/shots/a/shot.@@@@.exr", 4),
    ("/shots/a/shot.######.exr", 6),
    ("/shots/a/shot.#.exr", 1),
    ("/shots/a/shot.@.exr", 1),
    ("/shots/a/shot.%d.exr", 1),
])
def test_parse_pattern_token_styles(text, padding):
    pattern = parse_pattern(text)
    assert pattern == FramePattern(Path("/shots/a"), "shot.", ".exr", padding)
    assert pattern.display() == f"shot.{'#' * padding}.exr"


def test_pattern_paths_are_padded_and_widen_past_the_padding():
    padded = parse_pattern("/s/plate_v2.####.exr")
    assert padded.path(12) == Path("/s/plate_v2.0012.exr")
    assert padded.path(12345) == Path("/s/plate_v2.12345.exr")
    assert parse_pattern("/s/plate.#.png").path(7) == Path("/s/plate.7.png")
    assert str(padded) == "/s/plate_v2.####.exr"


def test_parse_pattern_without_token_or_with_two():
    assert parse_pattern("/s/plate.0012.exr") is None
    assert parse_pattern("/s/take#2/plate.exr") is None  # tokens only count in the file name
    with pytest.raises(InputError, match="more than one frame token"):
        parse_pattern("/s/plate_##.####.exr")


def test_glob_frames_matches_only_the_pattern(tmp_path):
    for name in ["shot.0001.exr", "shot.0002.exr", "shot.0010.exr", "shot.12345.exr",
                 "shot.12.exr", "shot.0003.png", "shotX.0004.exr", "shot.0005.exr.tmp"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "shot.0006.exr").mkdir()
    assert FramePattern(tmp_path, "shot.", ".exr", 4).glob_frames() == [1, 2, 10, 12345]
    assert FramePattern(tmp_path, "shot.", ".exr", 1).glob_frames() == [12, 12345]
    assert FramePattern(tmp_path / "nowhere", "shot.", ".exr", 4).glob_frames() == []


# ---------------------------------------------------------------------------
# image sequences built here
# ---------------------------------------------------------------------------
def test_png_8bit_sequence(tmp_path):
    for frame in range(1001, 1004):
        write_png(tmp_path / f"plate.{frame:04d}.png", picture(frame))
    source = open_source(tmp_path / "plate.####.png")
    assert (source.kind, source.frames, source.width, source.height) == ("image", [1001, 1002, 1003], 16, 12)
    assert (source.bit_depth, source.default_colourspace, source.rate) == (8, "srgb", None)
    rgb = source.read(1002)
    assert rgb.dtype == np.float32 and rgb.shape == (12, 16, 3)
    np.testing.assert_array_equal(as_uint8(rgb), picture(1002))
    json.dumps(source.info())
    assert source.info()["pattern"] == str(tmp_path / "plate.####.png")


def test_png_16bit_colour_keeps_its_precision(tmp_path):
    pixels = picture(5, dtype=np.uint16)
    write_png(tmp_path / "plate.0005.png", pixels)
    source = open_source(tmp_path / "plate.%04d.png")
    assert source.bit_depth == 16
    np.testing.assert_allclose(source.read(5), pixels / 65535.0, atol=1e-7)


def test_grey_16bit_png_is_replicated_to_rgb(tmp_path):
    grey = picture(3, dtype=np.uint16)[..., 0]
    write_png(tmp_path / "g.0003.png", grey)
    rgb = open_source(tmp_path / "g.0003.png").read(3)
    assert rgb.shape == (12, 16, 3)
    for channel in range(3):
        np.testing.assert_allclose(rgb[..., channel], grey / 65535.0, atol=1e-7)


def test_jpeg_sequence(tmp_path):
    for frame in range(3):
        Image.fromarray(picture(frame)).save(tmp_path / f"{frame:05d}.jpg", quality=95)
    source = open_source(tmp_path)  # a directory of numbered images
    assert source.frames == [0, 1, 2] and source.bit_depth == 8
    decoded = np.asarray(Image.open(tmp_path / "00001.jpg"))
    assert np.abs(as_uint8(source.read(1)).astype(int) - decoded).max() <= 2


def test_tiff_16bit_and_float(tmp_path):
    deep = picture(1, dtype=np.uint16)
    tifffile.imwrite(tmp_path / "deep.0001.tif", deep, photometric="rgb")
    source = open_source(tmp_path / "deep.0001.tif")
    assert (source.bit_depth, source.default_colourspace) == (16, "srgb")
    np.testing.assert_allclose(source.read(1), deep / 65535.0, atol=1e-7)

    hdr = picture(2, dtype=np.float32) - 1.0  # negative and above-one values survive
    tifffile.imwrite(tmp_path / "hdr.0002.tiff", hdr, photometric="rgb")
    source = open_source(tmp_path / "hdr.####.tiff")
    assert (source.bit_depth, source.default_colourspace) == (32, "lin_rec709")
    np.testing.assert_array_equal(source.read(2), hdr)


def test_rgba_png_reads_rgb_and_masks_by_alpha(tmp_path):
    rgba = np.zeros((12, 16, 4), np.uint8)
    rgba[..., :3] = 200  # colour everywhere
    rgba[2:5, 3:9, 3] = 255  # alpha only in a box
    write_png(tmp_path / "m.0001.png", rgba)
    source = open_source(tmp_path / "m.0001.png")
    np.testing.assert_array_equal(as_uint8(source.read(1)), rgba[..., :3])
    expected = np.zeros((12, 16), np.float32)
    expected[2:5, 3:9] = 1.0
    np.testing.assert_array_equal(source.read_mask(1), expected)


def test_rgb_mask_is_any_nonzero_channel_and_resizes_nearest(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[0, 0, 2] = 1  # a faint blue pixel counts
    rgb[1:3, 2:4, 0] = 255
    write_png(tmp_path / "m.1.png", rgb)
    source = open_source(tmp_path / "m.#.png")
    mask = source.read_mask(1)
    assert mask.dtype == np.float32 and mask.sum() == 5 and mask[0, 0] == 1
    big = source.read_mask(1, size=(12, 8))
    assert big.shape == (8, 12) and set(np.unique(big)) == {0.0, 1.0}
    np.testing.assert_array_equal(big, np.kron(mask, np.ones((2, 2), np.float32)))


def test_palette_mask_uses_indices_not_colours(tmp_path):
    indices = np.zeros((6, 8), np.uint8)
    indices[1:4, 2:5] = 1
    image = Image.fromarray(indices, "P")
    image.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)  # index 0 white, index 1 black
    image.save(tmp_path / "p.0000.png")
    source = open_source(tmp_path / "p.0000.png")
    np.testing.assert_array_equal(source.read_mask(0), (indices != 0).astype(np.float32))
    assert source.read(0)[0, 0].tolist() == [1.0, 1.0, 1.0]  # read() shows the palette colours


def test_single_numbered_file_opens_the_whole_sequence(tmp_path):
    for frame in (998, 999, 1000, 1001, 1002):
        write_png(tmp_path / f"plate.{frame:04d}.png", picture(frame))
    source = open_source(tmp_path / "plate.1001.png")  # no leading zero: siblings set the padding
    assert source.frames == [998, 999, 1000, 1001, 1002]
    np.testing.assert_array_equal(as_uint8(source.read(999)), picture(999))


def test_unpadded_sequence(tmp_path):
    for frame in (8, 9, 10, 11, 12):
        write_png(tmp_path / f"plate.{frame}.png", picture(frame))
    assert open_source(tmp_path / "plate.#.png").frames == [8, 9, 10, 11, 12]
    assert open_source(tmp_path / "plate.10.png").frames == [8, 9, 10, 11, 12]
    assert open_source(tmp_path).info()["pattern"] == str(tmp_path / "plate.#.png")


def test_still_image_answers_every_frame(tmp_path):
    write_png(tmp_path / "logo.png", picture(0))
    still = open_source(tmp_path / "logo.png")
    assert still.still and still.frames == [0]
    np.testing.assert_array_equal(still.read(57), still.read(0))
    with pytest.raises(InputError, match="still image has no frame range"):
        open_source(f"{tmp_path / 'logo.png'}#frames=1-5")


@pytest.mark.skipif(not HAVE_EXR, reason="shotfill.io.exr is not written yet")
def test_exr_sequence_display_window_and_header(tmp_path):
    from shotfill.io.exr import write_exr

    acescg = (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767)
    frames = {frame: np.concatenate([picture(frame, dtype=np.float32) - 1.0,
                                     np.zeros((12, 16, 1), np.float32)], axis=-1) for frame in (1, 2)}
    frames[2][3:5, 4:7, 3] = 1.0  # alpha: the mask
    for frame, pixels in frames.items():
        write_exr(tmp_path / f"shot.{frame:04d}.exr", pixels, data_window=(2, 1, 17, 12),
                  display_window=(0, 0, 19, 13),
                  attributes={"chromaticities": acescg, "framesPerSecond": (24000, 1001), "owner": "test"})
    source = open_source(tmp_path / "shot.####.exr")
    assert (source.kind, source.frames, source.width, source.height) == ("exr", [1, 2], 20, 14)
    assert (source.default_colourspace, source.rate, source.bit_depth) == ("acescg", Fraction(24000, 1001), 16)
    rgb = source.read(2)
    assert rgb.shape == (14, 20, 3)
    np.testing.assert_allclose(rgb[1:13, 2:18], frames[2][..., :3], rtol=1e-3, atol=1e-3)
    assert not rgb[0].any() and not rgb[:, 18:].any()  # outside the data window
    mask = source.read_mask(2)
    assert mask.shape == (14, 20) and mask.sum() == 6 and mask[1 + 3, 2 + 4] == 1.0
    header = source.frame_header(2)
    assert tuple(header["data_window"]) == (2, 1, 17, 12)
    assert tuple(header["display_window"]) == (0, 0, 19, 13)
    assert header["attributes"]["owner"] == "test" and "dataWindow" not in header["attributes"]
    json.dumps(source.info())


@pytest.mark.skipif(not HAVE_EXR, reason="shotfill.io.exr is not written yet")
def test_exr_still_defaults_to_linear_rec709(tmp_path):
    from shotfill.io.exr import write_exr

    write_exr(tmp_path / "plate.exr", np.full((4, 6, 3), 2.5, np.float32))
    still = open_source(tmp_path / "plate.exr")
    assert (still.kind, still.still, still.default_colourspace, still.rate) == ("exr", True, "lin_rec709", None)
    np.testing.assert_array_equal(still.read(1001), np.full((4, 6, 3), 2.5, np.float32))
    assert still.read_mask(7).all()  # no alpha: any nonzero channel


# ---------------------------------------------------------------------------
# errors, holes and ranges
# ---------------------------------------------------------------------------
@pytest.fixture
def holey(tmp_path) -> Path:
    """plate.0001-0003 and plate.0005-0006: frame 4 is missing."""
    for frame in (1, 2, 3, 5, 6):
        write_png(tmp_path / f"plate.{frame:04d}.png", picture(frame))
    return tmp_path


def test_hole_in_a_sequence(holey):
    source = open_source(holey / "plate.####.png")
    assert source.frames == [1, 2, 3, 5, 6]
    assert source.info()["frames"]["missing"] == [[4, 4]]
    with pytest.raises(MissingFrameError, match="frame 4 is missing") as caught:
        source.read(4)
    assert caught.value.frame == 4 and str(holey / "plate.0004.png") in str(caught.value)
    with pytest.raises(MissingFrameError, match="plate.0009.png"):
        source.read_mask(9)


def test_frame_range_argument_and_suffix(holey):
    by_argument = open_source(holey / "plate.####.png", frame_range=(2, 5))
    by_suffix = open_source(f"{holey / 'plate.####.png'}#frames=2-5")
    assert by_argument.frames == by_suffix.frames == [2, 3, 5]
    with pytest.raises(MissingFrameError):
        by_suffix.read(6)  # on disk, outside the range
    with pytest.raises(InputError, match="given twice"):
        open_source(f"{holey / 'plate.####.png'}#frames=2-5", frame_range=(2, 5))
    with pytest.raises(InputError, match="bad frame range"):
        open_source(f"{holey / 'plate.####.png'}#frames=2")


@pytest.mark.parametrize("frame_range, message", [
    ((5, 2), r"frame range 5-2 is empty \(frames available: 1-3, 5-6\)"),
    ((0, 3), r"frame range 0-3 is outside the frames available \(1-3, 5-6\)"),
    ((4, 7), r"frame range 4-7 is outside"),
    ((4, 4), r"none of frames 4-4 exist \(frames available: 1-3, 5-6\)"),
])
def test_bad_frame_ranges(holey, frame_range, message):
    with pytest.raises(InputError, match=message):
        open_source(holey / "plate.####.png", frame_range=frame_range)


def test_missing_paths(tmp_path):
    with pytest.raises(MediaError, match="no_such.mov: no such file"):
        open_source(tmp_path / "no_such.mov")
    with pytest.raises(MediaError, match=r"plate\.####\.exr: no files match"):
        open_source(tmp_path / "plate.####.exr")
    with pytest.raises(MediaError, match=r"gone/plate\.####\.exr: its folder .*gone does not exist"):
        open_source(tmp_path / "gone" / "plate.####.exr")
    with pytest.raises(MediaError, match="holds no numbered image files"):
        open_source(tmp_path)


def test_unsupported_types(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnsupportedMediaError, match="unknown file type '.txt'"):
        open_source(tmp_path / "notes.txt")
    with pytest.raises(UnsupportedMediaError, match="unknown image type '.dpx'"):
        open_source(tmp_path / "plate.####.dpx")


def test_directory_with_two_sequences(tmp_path):
    write_png(tmp_path / "a.0001.png", picture(1))
    write_png(tmp_path / "b.0001.png", picture(1))
    write_png(tmp_path / ".a.0001.png", picture(1))  # hidden: ignored
    with pytest.raises(MediaError, match=r"several sequences \(a\.####\.png, b\.####\.png\)"):
        open_source(tmp_path)


def test_damaged_and_mismatched_frames(tmp_path):
    write_png(tmp_path / "plate.0001.png", picture(1))
    (tmp_path / "plate.0002.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    write_png(tmp_path / "plate.0003.png", picture(3, height=10))
    source = open_source(tmp_path / "plate.####.png")
    with pytest.raises(MediaError, match="plate.0002.png: is damaged") as caught:
        source.read(2)
    assert not isinstance(caught.value, MissingFrameError)
    with pytest.raises(MediaError, match="plate.0002.png: is damaged"):
        source.read_mask(2)
    with pytest.raises(MediaError, match=r"plate.0003.png: is 16x10, but the sequence's first frame is 16x12"):
        source.read(3)
    with pytest.raises(MediaError, match="plate.0002.png: is damaged"):
        open_source(tmp_path / "plate.0002.png#frames=2-3")


# ---------------------------------------------------------------------------
# movies made here
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grey_ramp_mkv(tmp_path_factory) -> Path:
    """30 flat frames (grey level 8 * index), MPEG-4 in Matroska (no frame count in the header), GOP 6."""
    path = tmp_path_factory.mktemp("movie") / "ramp.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt, stream.gop_size = 64, 48, "yuv420p", 6
        stream.bit_rate = 4_000_000  # near lossless: grey levels come back within 1
        for index in range(30):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * index, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def level(rgb: np.ndarray) -> int:
    """The frame index a grey-ramp frame shows."""
    return round(float(rgb.mean()) * 255.0 / 8.0)


def test_movie_without_a_frame_count_is_counted(grey_ramp_mkv):
    with av.open(str(grey_ramp_mkv)) as container:
        assert container.streams.video[0].frames == 0  # what the test relies on
    with open_source(grey_ramp_mkv) as source:
        assert (source.kind, source.frames, source.rate) == ("movie", list(range(30)), Fraction(25))
        assert (source.width, source.height, source.bit_depth) == (64, 48, 8)
        json.dumps(source.info())


def test_movie_random_access_on_a_small_gop(grey_ramp_mkv):
    with open_source(grey_ramp_mkv) as source:
        for index in (17, 3, 29, 12, 13, 14, 0, 29, 5):
            assert level(source.read(index)) == index
        with pytest.raises(MissingFrameError, match="frame 30 is missing"):
            source.read(30)


def test_movie_recovers_when_a_seek_lands_past_the_frame(grey_ramp_mkv, monkeypatch):
    """Some demuxers seek by decoding time and land after the frame: it is decoded from the start."""
    real_seek = MovieSource._seek
    calls = []

    def seek_too_far(self, index):
        calls.append(index)
        real_seek(self, index + 13 if index else 0)

    monkeypatch.setattr(MovieSource, "_seek", seek_too_far)
    with open_source(grey_ramp_mkv) as source:
        assert level(source.read(8)) == 8
    assert calls == [8, 0]


# ---------------------------------------------------------------------------
# real footage
# ---------------------------------------------------------------------------
BBB_CHECKED = (284, 285, 286, 300, 552, 553, 554, 719)


@pytest.fixture(scope="module")
def bbb(shared_data) -> tuple[Path, int, dict[int, np.ndarray]]:
    """Big Buck Bunny: its path, its frame count and some frames, decoded once in order."""
    path = shared_data / "footage" / "bbb_480p_30s" / "video.mp4"
    frames = {}
    with av.open(str(path)) as container:
        count = 0
        for count, frame in enumerate(container.decode(video=0), start=1):
            if count - 1 in BBB_CHECKED:
                frames[count - 1] = frame.to_ndarray(format="rgb24")
    return path, count, frames


def test_bbb_count_rate_and_size(bbb):
    path, decoded, _ = bbb
    with open_source(path) as source:
        assert decoded == 720 and source.frames == list(range(720))
        assert (source.rate, source.width, source.height) == (Fraction(24), 854, 480)
        assert source.info()["codec"] == "h264"


def test_bbb_random_access_matches_sequential_decoding(bbb):
    path, _, expected = bbb
    with open_source(path) as source:
        for index in (553, 285, 552, 300, 284, 719, 286, 554, 553):
            np.testing.assert_array_equal(as_uint8(source.read(index)), expected[index], err_msg=f"frame {index}")


def test_bbb_reading_in_order_does_not_seek(bbb, monkeypatch):
    path, _, expected = bbb
    seeks = []
    real_seek = MovieSource._seek
    monkeypatch.setattr(MovieSource, "_seek", lambda self, index: (seeks.append(index), real_seek(self, index)))
    with open_source(path) as source:
        read = {index: source.read(index) for index in range(550, 556)}
        np.testing.assert_array_equal(source.read(552), read[552])  # from the cache
    assert seeks == [550]
    for index in (552, 553, 554):
        np.testing.assert_array_equal(as_uint8(read[index]), expected[index], err_msg=f"frame {index}")


def test_bbb_shot_range_from_bridge_pairs(bbb, shared_data):
    path, _, expected = bbb
    pairs = json.loads((shared_data / "footage" / "bridge_pairs.json").read_text())["pairs"]
    spec = shared_data / "footage" / pairs[0]["b"]  # video.mp4#frames=285-377
    with open_source(spec) as shot:
        assert shot.frames == list(range(285, 378))
        np.testing.assert_array_equal(as_uint8(shot.read(285)), expected[285])
        with pytest.raises(MissingFrameError, match="frame 284 is missing"):
            shot.read(284)
    with pytest.raises(InputError, match="frame range 700-800 is outside the frames available \\(0-719\\)"):
        open_source(path, frame_range=(700, 800))


def test_sttn_and_propainter_movies(shared_data):
    footage = shared_data / "footage"
    with open_source(footage / "sttn_dogs_jump" / "dogs_jump_orig.mp4") as dogs:
        assert (len(dogs.frames), dogs.rate, dogs.width, dogs.height) == (66, Fraction(24), 432, 240)
        with av.open(str(dogs.path)) as container:
            in_order = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        for index in (40, 11, 12, 65, 0):
            np.testing.assert_array_equal(as_uint8(dogs.read(index)), in_order[index])
    with open_source(footage / "propainter_running_car" / "running_car.mp4") as car:  # has AAC audio
        assert (len(car.frames), car.rate, car.width, car.height) == (292, Fraction(25), 972, 540)
        assert car.read(291).shape == (540, 972, 3)


def test_davis_jpeg_directory_and_l_masks(shared_data):
    clip = shared_data / "footage" / "davis2016_blackswan"
    frames = open_source(clip / "frames")
    assert (frames.frames, frames.width, frames.height) == (list(range(50)), 854, 480)
    decoded = np.asarray(Image.open(clip / "frames" / "00010.jpg").convert("RGB"))
    assert np.abs(as_uint8(frames.read(10)).astype(int) - decoded).max() <= 2
    masks = open_source(clip / "masks")
    annotation = np.asarray(Image.open(clip / "masks" / "00010.png"))
    mask = masks.read_mask(10)
    assert mask.shape == (480, 854) and 0 < mask.mean() < 0.5
    np.testing.assert_array_equal(mask, (annotation != 0).astype(np.float32))


def test_sttn_palette_masks(shared_data):
    folder = shared_data / "footage" / "sttn_dogs_jump" / "masks"
    masks = open_source(folder / "00020.png")
    assert masks.frames == list(range(66))
    indices = np.asarray(Image.open(folder / "00020.png"))
    assert indices.max() > 1  # several object ids: every one of them is "generate"
    np.testing.assert_array_equal(masks.read_mask(20), (indices != 0).astype(np.float32))


def test_static_logo_mask_resized_to_the_movie(shared_data):
    folder = shared_data / "footage" / "propainter_running_car"
    logo = open_source(folder / "mask_logo.png")
    with open_source(folder / "running_car.mp4") as movie:
        size = (movie.width, movie.height)
    assert (logo.width, logo.height) == (1296, 720)
    full = logo.read_mask(0)
    fitted = logo.read_mask(123, size=size)
    assert fitted.shape == (540, 972) and set(np.unique(fitted)) == {0.0, 1.0}
    assert abs(fitted.mean() - full.mean()) < 0.005
