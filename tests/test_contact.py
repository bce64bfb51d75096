"""Tests for shotfill.io.contact: contact sheets and atomic PNG writing."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from shotfill.io.contact import (GENERATED_COLOUR, GROUP_GAP, OUTLINE, PAD, Thumb, contact_sheet,
                              line_height, write_png)
from shotfill.errors import InputError, MediaError


def _grey(value: float, height: int = 48, width: int = 64) -> np.ndarray:
    return np.full((height, width, 3), value, np.float32)


def _bridge_row():
    #   A-1 A-0 | G1 G2 | B+0      (64x48 pictures -> 40x30 thumbnails)
    return ("V1.gap1 bridge", [("A-1", _grey(0.2)), ("A-0", _grey(0.2)),
                               Thumb("G1", _grey(0.5), True), ("G2", _grey(0.5), True),
                               ("B+0", _grey(0.8))])


def _open(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "RGB" and image.format == "PNG"
        return np.asarray(image)


def test_sheet_size_without_labels(tmp_path):
    rows = [_bridge_row(), ("fill", [("F1", _grey(0.5, 30, 60), True)])]
    sheet = _open(contact_sheet(rows, tmp_path / "sheet.png", thumb_height=30, labels=False))
    row_width = PAD + 5 * (40 + PAD) + 2 * GROUP_GAP        # two switches known <-> generated
    assert sheet.shape == (PAD + 2 * (30 + PAD), row_width, 3)


def test_sheet_size_with_labels(tmp_path):
    sheet = _open(contact_sheet([_bridge_row()], tmp_path / "sheet.png", thumb_height=30))
    assert sheet.shape[0] == PAD + 2 * line_height() + 30 + PAD
    assert sheet.shape[1] >= PAD + 5 * (40 + PAD) + 2 * GROUP_GAP


def test_thumbnails_outlines_and_captions_land_where_the_layout_says(tmp_path):
    sheet = _open(contact_sheet([_bridge_row()], tmp_path / "sheet.png", thumb_height=30))
    top = PAD + line_height()
    first_generated = PAD + 2 * (40 + PAD) + GROUP_GAP
    centre = top + 15
    assert tuple(sheet[centre, PAD + 20]) == (51, 51, 51)               # 0.2 -> 51
    assert tuple(sheet[centre, first_generated + 20]) == (128, 128, 128)  # G1: 0.5 -> 128
    # generated pictures are outlined, known ones are not
    assert tuple(sheet[centre, first_generated - OUTLINE]) == GENERATED_COLOUR
    assert tuple(sheet[top - 1, first_generated + 20]) == GENERATED_COLOUR
    assert tuple(sheet[centre, PAD - 2]) != GENERATED_COLOUR
    # the captions are drawn below the thumbnails, the title above
    caption_band = sheet[top + 30 + OUTLINE + 1:top + 30 + line_height(), PAD:PAD + 40]
    assert caption_band.max() > 150
    assert sheet[PAD:PAD + line_height() - 3, PAD:PAD + 40].max() > 150


def test_labels_false_draws_no_text(tmp_path):
    sheet = _open(contact_sheet([("a title", [("a caption", _grey(0.0))])],
                                tmp_path / "sheet.png", thumb_height=30, labels=False))
    # background and the black picture only: nothing bright anywhere
    assert sheet.max() < 60


def test_out_of_range_values_are_clipped(tmp_path):
    picture = _grey(4.0)
    picture[:, :32] = -1.0
    sheet = _open(contact_sheet([("hdr", [("x", picture)])], tmp_path / "s.png",
                                thumb_height=48, labels=False))
    assert tuple(sheet[PAD + 24, PAD + 60]) == (255, 255, 255)
    assert tuple(sheet[PAD + 24, PAD + 4]) == (0, 0, 0)


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = contact_sheet([_bridge_row()], tmp_path / "sheet.png")
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]
    assert path == tmp_path / "sheet.png"


@pytest.mark.parametrize("rows, message", [
    ([], "no rows"),
    ([("empty", [])], "row 'empty' has no pictures"),
    ([("r", [("grey", np.zeros((8, 8), np.float32))])], "picture 'grey'.*shape"),
    ([("r", [("ints", np.zeros((8, 8, 3), np.uint8))])], "picture 'ints'.*float"),
    ([("r", [("nan", np.full((8, 8, 3), np.nan, np.float32))])], "picture 'nan'.*NaN"),
])
def test_bad_rows_are_input_errors(tmp_path, rows, message):
    with pytest.raises(InputError, match=message):
        contact_sheet(rows, tmp_path / "sheet.png")
    assert not list(tmp_path.iterdir())


def test_bad_thumb_height(tmp_path):
    with pytest.raises(InputError, match="thumb_height"):
        contact_sheet([_bridge_row()], tmp_path / "sheet.png", thumb_height=4)


def test_unwritable_destination_is_a_media_error(tmp_path):
    with pytest.raises(MediaError, match="cannot be written"):
        contact_sheet([_bridge_row()], tmp_path / "missing" / "sheet.png")


def test_write_png_grey_and_rgb(tmp_path):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    with Image.open(write_png(tmp_path / "grey.png", grey)) as image:
        assert image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), grey)
    rgb = np.stack([grey, grey // 2, grey // 3], axis=-1)
    with Image.open(write_png(tmp_path / "rgb.png", rgb)) as image:
        np.testing.assert_array_equal(np.asarray(image), rgb)
    with pytest.raises(ValueError, match="uint8"):
        write_png(tmp_path / "f.png", grey.astype(np.float32))


def test_sheet_of_real_footage(shared_data, tmp_path):
    """DAVIS frames (854x480 JPEG) as a fill row: thumbnails match an area downscale."""
    folder = shared_data / "footage" / "davis2016_blackswan" / "frames"
    pictures = []
    for number in (0, 1, 2):
        with Image.open(folder / f"{number:05d}.jpg") as image:
            pictures.append(np.asarray(image.convert("RGB"), np.float32) / 255.0)
    height, width = pictures[0].shape[:2]
    thumb_w = round(width * 60 / height)
    path = contact_sheet([("blackswan fill", [(f"{n}", p, n == 1) for n, p in enumerate(pictures)])],
                         tmp_path / "real.png", thumb_height=60)
    sheet = _open(path)
    top = PAD + line_height()
    for index, picture in enumerate(pictures):
        left = PAD + index * (thumb_w + PAD) + GROUP_GAP * index     # a switch before 1 and 2
        thumb = sheet[top:top + 60, left:left + thumb_w].astype(np.float32) / 255.0
        reference = cv2.resize(picture, (thumb_w, 60), interpolation=cv2.INTER_AREA)
        assert np.abs(thumb - reference).mean() < 0.03
