"""Tests for shotfill.synthetic: procedural shots (render) and the sample edit (sample_edit)."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import opentimelineio as otio
import pytest
from PIL import Image

from shotfill.synthetic import render
from shotfill.errors import InputError
from shotfill.io.exr import REC709_CHROMATICITIES, read_exr, read_exr_header
from shotfill.io.media import open_source
from shotfill.synthetic import CameraMove, ShotSpec, make_sample_edit, render_frame, render_shot
from shotfill.timeline import find_targets, load_edit


def _spec(**overrides) -> ShotSpec:
    fields = dict(seed=3, width=128, height=72, frames=6, camera="pan", speed=0.01,
                  with_object=True, with_rig=False)
    fields.update(overrides)
    return ShotSpec(**fields)


def _horizontal_shift(a: np.ndarray, b: np.ndarray) -> float:
    """How far (px, right positive) the picture in band ``a`` moved to become ``b``."""
    planes = []
    for picture in (a, b):
        log = np.log(np.clip(picture.mean(axis=-1), 1e-4, None)).astype(np.float64)
        planes.append(log - log.mean(axis=1, keepdims=True))   # rows' own levels carry no shift
    window = cv2.createHanningWindow(planes[0].shape[::-1], cv2.CV_64F)
    (dx, _), _ = cv2.phaseCorrelate(planes[0], planes[1], window)
    return dx


# -- shots ----------------------------------------------------------------------------------

@pytest.mark.parametrize("camera", [m.value for m in CameraMove])
@pytest.mark.parametrize("size", [(128, 128), (160, 48)])
def test_render_shot_shapes_and_values(camera, size):
    width, height = size
    shot = render_shot(_spec(width=width, height=height, frames=3, camera=camera))
    assert shot.frames.shape == (3, height, width, 3) and shot.frames.dtype == np.float32
    assert shot.rig_masks.shape == (3, height, width) and shot.rig_masks.dtype == np.float32
    assert not shot.rig_masks.any()
    assert shot.clean is shot.frames        # no rig: the clean plate is the picture
    assert np.isfinite(shot.frames).all() and shot.frames.min() >= 0.0
    assert not np.array_equal(shot.frames[0], shot.frames[-1]), "the camera should move"


def test_same_seed_same_pixels_other_seed_other_pixels():
    spec = _spec(with_rig=True)
    first = render_shot(spec)
    render._scene_for.cache_clear()                # rebuild the scene from the seed
    again = render_shot(_spec(with_rig=True))
    np.testing.assert_array_equal(first.frames, again.frames)
    np.testing.assert_array_equal(first.rig_masks, again.rig_masks)
    other = render_shot(_spec(seed=4, with_rig=True))
    assert np.abs(other.frames - first.frames).mean() > 0.01


def test_render_frame_matches_render_shot():
    spec = _spec(camera="orbit", frames=5)
    shot = render_shot(spec)
    for t in (0, 2, 4):
        np.testing.assert_array_equal(render_frame(spec, t).frame, shot.frames[t])


def test_scene_linear_highlights_above_one():
    peaks = [render_frame(_spec(seed=seed, width=160, height=90), 0).frame.max()
             for seed in range(4)]
    assert all(peak > 1.0 for peak in peaks), peaks
    assert max(peaks) < 20.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pan_moves_near_ground_more_than_sky(seed):
    spec = ShotSpec(seed=seed, width=256, height=144, frames=3, camera="pan", speed=0.01,
                    with_object=False)
    a, b = render_frame(spec, 0).frame, render_frame(spec, 2).frame
    sky, ground = slice(0, 30), slice(120, 144)
    far, near = _horizontal_shift(a[sky], b[sky]), _horizontal_shift(a[ground], b[ground])
    assert abs(near) > 2.0 * abs(far) and abs(near) > 4.0, (far, near)
    assert np.sign(near) == np.sign(far), (far, near)


@pytest.mark.parametrize("seed", [0, 2])
def test_orbit_moves_near_and_far_in_opposite_directions(seed):
    spec = ShotSpec(seed=seed, width=256, height=144, frames=3, camera="orbit", speed=0.01,
                    with_object=False)
    a, b = render_frame(spec, 0).frame, render_frame(spec, 2).frame
    sky, ground = slice(0, 30), slice(120, 144)
    far, near = _horizontal_shift(a[sky], b[sky]), _horizontal_shift(a[ground], b[ground])
    assert abs(far) > 2.0 and abs(near) > 2.0, (far, near)
    assert np.sign(near) == -np.sign(far), (far, near)


@pytest.mark.parametrize("camera", ["pan", "zoom"])
def test_rig_mask_is_exactly_where_the_rig_changes_the_picture(camera):
    with_rig = render_shot(_spec(camera=camera, with_rig=True))
    masks = with_rig.rig_masks
    assert set(np.unique(masks)) == {0.0, 1.0}
    assert masks.sum(axis=(1, 2)).min() > 20, "the stand should be in every frame"
    changed = np.any(with_rig.frames != with_rig.clean, axis=-1)
    assert not np.any(changed & (masks == 0)), "pixels outside the mask must be untouched"
    assert changed[masks == 1].mean() > 0.9
    # the clean plate is the same shot rendered without the rig
    without = render_shot(_spec(camera=camera, with_rig=False))
    np.testing.assert_array_equal(with_rig.clean, without.frames)


@pytest.mark.parametrize("field, value", [
    ("camera", "dolly"), ("frames", 0), ("width", 4), ("speed", float("nan")), ("speed", 0.5),
    ("seed", -1), ("height", 72.0),
])
def test_bad_spec_is_an_input_error(field, value):
    with pytest.raises(InputError, match=field):
        _spec(**{field: value})


def test_too_long_a_move_is_an_input_error():
    with pytest.raises(InputError, match="moves more than"):
        _spec(frames=201, speed=0.01)
    _spec(frames=101, speed=0.01)       # exactly the longest move


def test_render_frame_out_of_range():
    with pytest.raises(InputError, match="outside"):
        render_frame(_spec(frames=2), 2)


def test_camera_accepts_enum_and_string():
    assert _spec(camera=CameraMove.TILT) == _spec(camera="tilt")


# -- the sample edit ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return make_sample_edit(tmp_path_factory.mktemp("sample"), width=96, height=54, seed=0)


def test_sample_edit_writes_every_file(sample):
    names = sorted(p.name for p in sample.media_dir.iterdir())
    expected = ([f"shotA.{f}.exr" for f in range(1001, 1049)]
                + [f"shotB.{f}.exr" for f in range(1001, 1041)]
                + [f"shotC.{f}.exr" for f in range(1001, 1025)]
                + [f"shotC_mask.{f}.png" for f in range(1001, 1025)])
    assert names == sorted(expected)
    assert sorted(p.name for p in sample.truth_dir.iterdir()) == [
        f"shotC_clean.{f}.exr" for f in range(1001, 1025)]
    assert sample.edit.name == "sample_edit.otio" and sample.edit.is_file()


def test_sample_edit_timeline(sample):
    timeline = otio.adapters.read_from_file(str(sample.edit))
    assert timeline.global_start_time == otio.opentime.RationalTime(86400, 24)
    assert len(timeline.video_tracks()) == 1
    items = list(timeline.video_tracks()[0])
    assert [type(item).__name__ for item in items] == ["Clip", "Gap", "Clip", "Clip"]
    a, gap, b, c = items

    def frames(time_range):
        first = time_range.start_time.to_frames()
        return first, first + time_range.duration.to_frames() - 1

    assert (a.name, frames(a.source_range)) == ("shotA", (1001, 1040))
    assert frames(a.media_reference.available_range) == (1001, 1048)
    assert gap.source_range.duration == otio.opentime.RationalTime(20, 24)
    assert (b.name, frames(b.source_range)) == ("shotB", (1009, 1040))
    assert frames(b.media_reference.available_range) == (1001, 1040)
    assert (c.name, frames(c.source_range)) == ("shotC", (1001, 1024))
    reference = a.media_reference
    assert isinstance(reference, otio.schema.ImageSequenceReference)
    assert (reference.target_url_base, reference.name_prefix, reference.name_suffix,
            reference.start_frame, reference.frame_zero_padding, reference.rate) == (
        "media/", "shotA.", ".exr", 1001, 4, 24)
    assert c.metadata["shotfill"]["mask"] == "media/shotC_mask.####.png"
    mask = c.media_references()["mask"]
    assert (mask.name_prefix, mask.name_suffix, mask.start_frame) == ("shotC_mask.", ".png", 1001)
    assert c.active_media_reference_key == otio.schema.Clip.DEFAULT_MEDIA_KEY


def test_sample_edit_targets_as_the_timeline_module_sees_them(sample):
    targets = {t.id: t for t in find_targets(load_edit(sample.edit), edit_path=sample.edit)}
    bridge = targets["V1.gap1"]
    assert bridge.frames == 20
    assert (bridge.clip_a.handles_after, bridge.clip_b.handles_before) == (8, 8)
    assert (bridge.handle_frames, bridge.generated_frames) == ({"a": 8, "b": 8}, 4)   # 4 left to generate
    fill = targets["V1.clip3.fill"]
    assert fill.mask.exists and fill.mask.path.endswith("shotC_mask.####.png")


def test_sample_media_headers_and_pixels(sample):
    shot = sample.shot("shotA")
    header = read_exr_header(shot.frame_path(shot.media, 1001))
    assert header["chromaticities"] == pytest.approx(REC709_CHROMATICITIES, abs=1e-6)
    assert header["compression"] == "zip"
    assert header["dataWindow"] == (0, 0, 95, 53)
    image = read_exr(shot.frame_path(shot.media, 1001)).display_rgb()
    expected = render_frame(shot.spec, 0).frame.astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(image, expected)


def test_sample_mask_marks_exactly_what_the_truth_lacks(sample):
    shot = sample.shot("shotC")
    for frame in (1001, 1012, 1024):
        with Image.open(shot.frame_path(shot.mask, frame)) as png:
            assert png.mode == "L"
            mask = np.asarray(png)
        assert set(np.unique(mask)) == {0, 255}
        plate = read_exr(shot.frame_path(shot.media, frame)).display_rgb()
        truth = read_exr(shot.frame_path(shot.truth, frame)).display_rgb()
        changed = np.any(plate != truth, axis=-1)
        assert changed.any()
        assert not np.any(changed & (mask == 0))


def test_sample_media_reads_back_through_shotfill_media(sample):
    shot = sample.shot("shotC")
    masks, plates = open_source(shot.mask), open_source(shot.media)
    assert masks.frames == plates.frames == list(range(1001, 1025))
    rendered = render_frame(shot.spec, 11)
    np.testing.assert_array_equal(masks.read_mask(1012), rendered.rig_mask)
    np.testing.assert_allclose(plates.read(1012), rendered.frame, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("field, value", [("rate", 0), ("rate", float("inf")), ("seed", -1)])
def test_bad_sample_edit_arguments_are_input_errors(tmp_path, field, value):
    with pytest.raises(InputError, match=field):
        make_sample_edit(tmp_path / "edit", width=32, height=18, **{field: value})
    assert not (tmp_path / "edit").exists()


def test_example_script_builds_the_sample_edit(tmp_path, repo_root):
    out = tmp_path / "edit"
    result = subprocess.run(
        [sys.executable, str(repo_root / "examples" / "make_sample_edit.py"), str(out),
         "--width", "96", "--height", "54"],
        capture_output=True, text=True, timeout=300, cwd=repo_root)
    assert result.returncode == 0, result.stderr
    assert str(out / "sample_edit.otio") in result.stdout
    timeline = otio.adapters.read_from_file(str(out / "sample_edit.otio"))
    assert [clip.name for clip in timeline.find_clips()] == ["shotA", "shotB", "shotC"]
    assert len(list((out / "media").glob("shotC_mask.*.png"))) == 24
