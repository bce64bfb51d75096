"""Tests for shotfill.quality.metrics: known values, masks, and the seam score's scale."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from shotfill.errors import InputError
from shotfill.quality.metrics import psnr, seam_score, ssim, temporal_consistency


def texture(h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture in [0, 1]."""
    rng = np.random.default_rng(seed)
    noise = rng.random((h, w, 3), dtype=np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 3.0)
    lo, hi = smooth.min(), smooth.max()
    return ((smooth - lo) / (hi - lo)).astype(np.float32)


def pan(frames: int, step: int = 1, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """A camera pan: a window sliding ``step`` pixels per frame over a wide texture."""
    wide = texture(h, w + frames * step, seed)
    return np.stack([wide[:, i * step:i * step + w] for i in range(frames)])


# -- psnr ------------------------------------------------------------------
def test_psnr_of_identical_images_is_infinite():
    img = texture()
    assert psnr(img, img.copy()) == math.inf


def test_psnr_of_a_constant_offset_is_known():
    img = np.full((8, 8, 3), 0.4, np.float32)
    assert psnr(img + 0.1, img) == pytest.approx(20.0, abs=1e-3)
    assert psnr(img + 0.01, img) == pytest.approx(40.0, abs=1e-2)
    assert psnr(img + 0.1, img, peak=2.0) == pytest.approx(20.0 + 20 * math.log10(2), abs=1e-3)


def test_psnr_with_a_mask_only_measures_the_masked_pixels():
    a = np.zeros((10, 10, 3), np.float32)
    b = a.copy()
    b[:, 5:] = 0.1          # the right half is off by 0.1
    b[:, :5] = 0.5          # the left half is far off
    mask = np.zeros((10, 10), np.float32)
    mask[:, 5:] = 1.0
    assert psnr(a, b, mask=mask) == pytest.approx(20.0, abs=1e-3)
    assert psnr(a, b) < 10.0


def test_psnr_takes_runs_of_frames_with_per_frame_masks():
    a = np.zeros((3, 6, 6, 3), np.float32)
    b = a + 0.1
    b[1] = 0.9              # frame 1 is wrong, but masked out
    mask = np.ones((3, 6, 6), np.float32)
    mask[1] = 0
    assert psnr(b, a, mask=mask) == pytest.approx(20.0, abs=1e-3)


def test_psnr_rejects_mismatched_shapes_and_empty_masks():
    a = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(InputError, match="shapes"):
        psnr(a, np.zeros((4, 5, 3), np.float32))
    with pytest.raises(InputError, match="no pixels"):
        psnr(a, a, mask=np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match="mask shape"):
        psnr(a, a, mask=np.ones((5, 4), np.float32))


# -- ssim --------------------------------------------------------------------
def test_ssim_of_identical_images_is_one():
    img = texture()
    assert ssim(img, img.copy()) == pytest.approx(1.0, abs=1e-6)


def test_ssim_drops_with_noise_and_more_with_more_noise():
    img = texture()
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(img.shape).astype(np.float32)
    light = ssim(img, img + 0.02 * noise)
    heavy = ssim(img, img + 0.2 * noise)
    assert 0.0 < heavy < light < 1.0


def test_ssim_works_on_single_channel_images():
    img = texture()[..., 0]
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-6)
    assert ssim(img, 1.0 - img) < 0.0    # inverted structure correlates negatively


def test_ssim_with_a_mask_only_measures_the_masked_pixels():
    img = texture(64, 96)
    other = img.copy()
    rng = np.random.default_rng(2)
    other[:, 48:] = rng.random((64, 48, 3), dtype=np.float32)   # right half destroyed
    left = np.zeros((64, 96), np.float32)
    left[:, :40] = 1.0      # away from the window's reach into the right half
    right = 1.0 - left
    assert ssim(img, other, mask=left) == pytest.approx(1.0, abs=1e-4)
    assert ssim(img, other, mask=right) < 0.5


# -- temporal consistency ---------------------------------------------------
def test_temporal_consistency_is_zero_for_a_freeze_and_a_steady_fade():
    img = texture()
    freeze = np.stack([img] * 5)
    fade = np.stack([img * (1.0 - 0.1 * t) for t in range(5)])
    assert temporal_consistency(freeze) == 0.0
    assert temporal_consistency(fade) == pytest.approx(0.0, abs=1e-6)


def test_temporal_consistency_measures_flicker():
    img = texture()
    flicker = np.stack([img + (0.05 if t % 2 else 0.0) for t in range(6)])
    # |+0.05 - 2 * 0 + 0.05| = 0.1 at every inner frame
    assert temporal_consistency(flicker) == pytest.approx(0.1, abs=1e-5)


def test_temporal_consistency_with_a_mask_ignores_unmasked_flicker():
    frames = np.zeros((5, 8, 8, 3), np.float32)
    frames[1::2, :, 4:] = 0.5           # the right half flickers
    mask = np.zeros((5, 8, 8), np.float32)
    mask[:, :, :4] = 1.0
    assert temporal_consistency(frames, mask=mask) == 0.0
    assert temporal_consistency(frames, mask=1.0 - mask) == pytest.approx(1.0)


def test_temporal_consistency_needs_three_frames():
    with pytest.raises(InputError, match="at least 3"):
        temporal_consistency(np.zeros((2, 4, 4, 3), np.float32))


# -- seam score ---------------------------------------------------------------
def test_seam_score_is_about_one_inside_a_smooth_pan():
    shot = pan(12)
    score = seam_score(shot[5], shot[6], shot)
    assert 0.7 < score < 1.3


def test_seam_score_is_large_at_a_hard_cut():
    shot = pan(12)
    other = texture(48, 64, seed=7)
    assert seam_score(shot[-1], other, shot) > 5.0
    assert seam_score(shot[-1], other, shot) > 3 * seam_score(shot[5], shot[6], shot)


def test_seam_score_of_a_freeze_inside_a_pan_is_zero():
    shot = pan(12)
    assert seam_score(shot[5], shot[5], shot) == 0.0


def test_seam_score_floors_the_motion_of_a_still_shot():
    still = np.stack([np.full((4, 4, 3), 0.5, np.float32)] * 4)
    jump = np.full((4, 4, 3), 0.6, np.float32)
    assert seam_score(still[-1], jump, still, floor=0.01) == pytest.approx(10.0, rel=1e-4)


def test_seam_score_rejects_shot_frames_of_another_size():
    shot = pan(4)
    with pytest.raises(InputError, match="at least 2 shot frames"):
        seam_score(shot[0], shot[1], shot[:, :10])
