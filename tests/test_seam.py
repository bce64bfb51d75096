"""Seams: generated frames colour-anchored to the plate's real frames, and the seam scores."""
from __future__ import annotations

import numpy as np
import pytest

from shotfill.io.matching import anchor_to_plate, colour_matcher, match_colour
from shotfill.plan import FramePlan
from shotfill.quality.seam import seam_scores

H, W = 24, 32


def textured(level: float, seed: int) -> np.ndarray:
    """A frame of texture around ``level`` (working encoding)."""
    rng = np.random.default_rng(seed)
    return (level + 0.1 * rng.standard_normal((H, W, 3))).astype(np.float32)


def test_an_extension_is_anchored_to_the_known_frames_and_the_input_is_left_alone():
    plan = FramePlan.extend(range(4), 3, context=4)
    working = np.stack([textured(0.4, s) for s in range(7)])
    result = working.copy()
    result[4:] = textured(0.7, 9) * 0.5 + 0.45        # the engine drifted brighter and flatter
    before = result.copy()
    out = anchor_to_plate(plan, working, result, np.zeros((7, H, W), np.float32))
    np.testing.assert_array_equal(result, before)      # a new array; the engine's result is untouched
    np.testing.assert_array_equal(out[:4], working[:4])  # known frames are not touched
    for p in (4, 5, 6):
        assert abs(np.median(out[p]) - np.median(working[:4])) < 0.01
        assert np.abs(out[p] - np.median(out[p])).mean() == pytest.approx(
            np.abs(working[:4] - np.median(working[:4])).mean(), rel=0.2)


def test_a_bridge_goes_from_a_s_colour_to_b_s():
    plan = FramePlan.bridge(range(2), range(7, 9), 5, context=2)
    working = np.stack([textured(0.2, s) for s in range(2)] + [np.zeros((H, W, 3), np.float32)] * 5
                       + [textured(0.8, s) for s in range(7, 9)])
    result = working.copy()
    result[2:7] = textured(0.5, 11)
    out = anchor_to_plate(plan, working, result, np.zeros((9, H, W), np.float32))
    medians = [float(np.median(out[p])) for p in plan.generate_positions]
    assert medians == sorted(medians)                  # from A's level towards B's
    assert medians[0] == pytest.approx(0.2 + (0.8 - 0.2) / 6, abs=0.03)
    assert medians[-1] == pytest.approx(0.8 - (0.8 - 0.2) / 6, abs=0.03)


@pytest.mark.parametrize("kind", ["extend", "bridge"])
def test_anchoring_in_place_changes_the_result_itself_to_the_same_pixels(kind):
    if kind == "extend":
        plan = FramePlan.extend(range(4), 3, context=4)
    else:
        plan = FramePlan.bridge(range(2), range(7, 9), 3, context=2)
    working = np.stack([textured(0.3 + 0.05 * s, s) for s in range(len(plan))])
    result = working.copy()
    result[list(plan.generate_positions)] = textured(0.7, 9)
    masks = np.zeros((len(plan), H, W), np.float32)
    copied = anchor_to_plate(plan, working, result, masks)
    assert not np.array_equal(copied, result)           # something was matched
    out = anchor_to_plate(plan, working, result, masks, in_place=True)
    assert out is result                                 # no second copy of the run
    np.testing.assert_array_equal(out, copied)


def test_a_fill_is_not_anchored():
    plan = FramePlan.fill(range(3))
    result = np.stack([textured(0.5, s) for s in range(3)])
    assert anchor_to_plate(plan, result * 0.5, result, np.ones((3, H, W), np.float32)) is result


def test_the_frame_by_frame_matcher_is_match_colour():
    frames = np.stack([textured(0.6, s) for s in range(3)])
    reference = np.stack([textured(0.3, s) for s in range(10, 12)])
    match = colour_matcher(reference)
    np.testing.assert_array_equal(np.stack([match(f) for f in frames]), match_colour(frames, reference))


def test_seam_scores_name_each_cut():
    plan = FramePlan.bridge(range(3), range(5, 8), 2, context=3)
    working = np.stack([textured(0.5, s) for s in range(8)])
    scores = seam_scores(plan, working, working)
    assert len(scores) == 2 and all(v > 0 for v in scores.values())
