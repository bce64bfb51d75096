"""The classical engines: optical flow (``flow``) and the trivial references (``baseline``).

Synthetic clips are a smooth random texture seen through a window that pans at
a constant integer velocity, so the true frames are known exactly::

    texture  +--------------------------------+
             |  [frame 0] -> [frame 1] -> ... |   each frame: the window moved by (VX, VY)
             +--------------------------------+
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from shotfill.engines import EngineResult, get_engine
from shotfill.engines.classical.baselines import BaselineEngine
from shotfill.engines.classical.flow import FlowEngine
from shotfill.errors import CancelledError, InputError
from shotfill.plan import FramePlan, PlanFrame, Role, TaskKind

from synthetic_pans import VX, VY, H, W, panning_clip, texture, window

def extend_case(backward: bool = False) -> tuple[FramePlan, np.ndarray, np.ndarray, np.ndarray]:
    """4 known frames and 4 generated, forward or backward; returns (plan, frames, masks, truth)."""
    truth = panning_clip(8)
    if backward:
        plan = FramePlan.extend(list(range(4, 8)), 4, backward=True, context=4)
    else:
        plan = FramePlan.extend(list(range(4)), 4, context=4)
    return (plan, *window(plan, truth), truth)


def bridge_case(b_seed: int | None = None) -> tuple[FramePlan, np.ndarray, np.ndarray, np.ndarray]:
    """A's frame 0, 3 generated, B's frame 4; B from another texture when ``b_seed`` is given.

    The pan is slower than elsewhere: DIS finds the 8-pixel jump from A to B
    reliably on these tiny frames, not much more.
    """
    truth = panning_clip(5, velocity=(2, 1))
    if b_seed is not None:
        truth[4] = texture(b_seed, H, W)
    plan = FramePlan.bridge([0], [4], 3, context=1)
    return (plan, *window(plan, truth), truth)


def fill_case() -> tuple[FramePlan, np.ndarray, np.ndarray, np.ndarray]:
    """8 frames with the same 16x20 hole; the original pixels stay in the frames (as the pipeline does)."""
    truth = panning_clip(8)
    masks = np.zeros(truth.shape[:3], np.float32)
    masks[:, 24:40, 38:58] = 1.0
    return FramePlan.fill(list(range(8))), truth.copy(), masks, truth


CASES = {
    "extend_forward": extend_case,
    "extend_backward": lambda: extend_case(backward=True),
    "bridge": bridge_case,
    "fill": fill_case,
}


def mean_error(out: np.ndarray, truth: np.ndarray, where: np.ndarray) -> float:
    return float(np.abs(out - truth)[where].mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10.0 * np.log10(1.0 / np.mean((a - b) ** 2)))


# -- quality against the references -------------------------------------------------


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_extension_follows_the_motion_far_better_than_freeze_frame(backward):
    plan, frames, masks, truth = extend_case(backward)
    flow = FlowEngine()
    result = flow.generate(plan, frames, masks)
    flow_out = result.frames
    freeze_out = BaselineEngine().generate(plan, frames, masks).frames
    generated = masks > 0
    flow_error = mean_error(flow_out, truth, generated)
    freeze_error = mean_error(freeze_out, truth, generated)
    assert flow_error < 0.25 * freeze_error, (flow_error, freeze_error)
    assert result.info["extend_speed_px"] == pytest.approx(np.hypot(VX, VY), rel=0.15)


def test_freeze_frame_repeats_the_known_frame_next_to_the_generated_ones():
    plan, frames, masks, _ = extend_case(backward=True)
    out = BaselineEngine().generate(plan, frames, masks).frames
    for p in plan.generate_positions:
        np.testing.assert_array_equal(out[p], frames[4])


def test_extension_from_a_single_known_frame_is_a_freeze_frame():
    truth = panning_clip(3)
    plan = FramePlan.extend([0], 2, context=1)
    frames, masks = window(plan, truth)
    out = FlowEngine().generate(plan, frames, masks).frames
    np.testing.assert_allclose(out[1:], np.stack([truth[0]] * 2), atol=1e-5)


def test_bridge_interpolates_the_motion_better_than_a_dissolve():
    plan, frames, masks, truth = bridge_case()
    flow = FlowEngine()
    result = flow.generate(plan, frames, masks)
    flow_mid = result.frames[2]
    dissolve_mid = BaselineEngine().generate(plan, frames, masks).frames[2]
    everywhere = np.ones((H, W, 3), bool)
    flow_error = mean_error(flow_mid, truth[2], everywhere)
    dissolve_error = mean_error(dissolve_mid, truth[2], everywhere)
    assert flow_error < 0.3 * dissolve_error, (flow_error, dissolve_error)
    assert result.info["fallback"] is None
    assert result.info["bridge_flow_confidence"] > flow.bridge_min_confidence


def test_bridge_between_unrelated_shots_falls_back_to_a_dissolve():
    plan, frames, masks, _ = bridge_case(b_seed=7)
    flow = FlowEngine()
    result = flow.generate(plan, frames, masks)
    out = result.frames
    assert result.info["fallback"] == "dissolve"
    assert result.info["bridge_flow_confidence"] < flow.bridge_min_confidence
    for p, t in zip((1, 2, 3), (0.25, 0.5, 0.75)):
        np.testing.assert_allclose(out[p], (1 - t) * frames[0] + t * frames[4], atol=1e-6)


def test_fill_propagates_hidden_pixels_better_than_inpainting_each_frame():
    plan, frames, masks, truth = fill_case()
    flow = FlowEngine()
    result = flow.generate(plan, frames, masks)
    flow_out = result.frames
    inpaint_out = BaselineEngine().generate(plan, frames, masks).frames
    hole = masks > 0
    flow_error = mean_error(flow_out, truth, hole)
    inpaint_error = mean_error(inpaint_out, truth, hole)
    assert flow_error < 0.5 * inpaint_error, (flow_error, inpaint_error)
    assert result.info["fill_propagated_fraction"] > 0.7


def test_fill_does_not_copy_the_hole_s_original_pixels():
    """What is under the mask is what the user wants gone: a white square must not come back."""
    plan, frames, masks, truth = fill_case()
    frames[:, 24:40, 38:58] = 1.0
    out = FlowEngine().generate(plan, frames, masks).frames
    hole = masks > 0
    assert mean_error(out, truth, hole) < 0.5 * mean_error(frames, truth, hole)


def test_fill_with_empty_masks_changes_nothing():
    plan, frames, masks, _ = fill_case()
    masks[:] = 0.0
    flow = FlowEngine()
    result = flow.generate(plan, frames, masks)
    np.testing.assert_array_equal(result.frames, frames)
    assert result.info["fill_propagated_fraction"] == 0.0


# -- confidence: the engine's trust in its own pixels ---------------------------------------


def test_confidence_is_one_on_known_pixels_and_high_along_a_steady_extension():
    plan, frames, masks, _ = extend_case()
    flow = FlowEngine()
    confidence = flow.generate(plan, frames, masks).confidence
    assert confidence.shape == masks.shape and confidence.dtype == np.float32
    np.testing.assert_array_equal(confidence[plan.known_positions], 1.0)
    # a steady pan foretells its last known frame: the middle of the picture, carried from inside
    # the anchor frame, keeps nearly all trust
    assert confidence[plan.generate_positions, 16:48, 16:80].mean(axis=(1, 2)).min() > 0.99
    # the pan (+3, +1 per frame) brings new content in at the right and bottom: replicated edge, no trust
    last = plan.generate_positions[-1]
    assert confidence[last, :, -4:].max() < 0.05 and confidence[last, -2:, :].max() < 0.05


def test_an_extension_whose_motion_model_fails_on_the_known_frames_is_not_trusted():
    """The velocity measured on the earlier frames must foretell the last known one (held out)."""
    plan, frames, masks, _ = extend_case()
    steady = FlowEngine().generate(plan, frames, masks)
    jolted = frames.copy()
    jolted[3] = panning_clip(8, seed=5)[3]  # the last known frame shows something else
    shaken = FlowEngine().generate(plan, jolted, masks)
    generated = plan.generate_positions
    assert shaken.confidence[generated].mean() < 0.5 * steady.confidence[generated].mean()


def test_confidence_of_a_bridge_is_its_motion_compensated_share_or_zero_for_a_dissolve():
    plan, frames, masks, truth = bridge_case()
    flow = FlowEngine()
    result = flow.generate(plan, frames, masks)
    out = result.frames
    generated = plan.generate_positions
    confidence = result.confidence[generated]
    assert confidence.min() >= 0.0 and confidence.max() <= 1.0
    assert confidence[:, 16:48, 16:80].mean() > 0.9          # the pan is followed in the middle
    # where it trusts itself least it is least right
    error = np.abs(out[generated] - truth[generated]).mean(axis=3)
    assert error[confidence < 0.5].mean() > error[confidence > 0.9].mean()
    plan, frames, masks, _ = bridge_case(b_seed=7)
    dissolved = flow.generate(plan, frames, masks)
    np.testing.assert_array_equal(dissolved.confidence[plan.generate_positions], 0.0)


def test_confidence_of_a_fill_is_one_where_tracked_and_zero_where_inpainted():
    plan, frames, masks, _ = fill_case()
    flow = FlowEngine()
    result = flow.generate(plan, frames, masks)
    hole = masks > 0
    np.testing.assert_array_equal(result.confidence[~hole], 1.0)
    # the pan uncovers the hole's background a few frames away: the hole's pixels are tracked from there
    assert set(np.unique(result.confidence[hole])) <= {0.0, 1.0}
    assert result.confidence[hole].mean() == pytest.approx(result.info["fill_propagated_fraction"])
    # a still picture never shows what the hole hides: every hole pixel is inpainted
    still = np.repeat(frames[:1], 8, axis=0)
    result = flow.generate(plan, still, masks)
    assert result.info["fill_inpainted_fraction"] == 1.0
    np.testing.assert_array_equal(result.confidence[hole], 0.0)


# -- the engine contract ------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["flow", "baseline"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_output_shape_dtype_and_kept_pixels(engine, case):
    plan, frames, masks, _ = CASES[case]()
    before = frames.copy()
    engine = get_engine(engine)
    result = engine.generate(plan, frames, masks)
    assert isinstance(result, EngineResult) and not hasattr(engine, "last_info")  # nothing to read back
    if result.confidence is not None:
        assert result.confidence.shape == masks.shape and result.confidence.dtype == np.float32
    out = result.frames
    assert out.shape == frames.shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(frames, before)  # the input is not modified
    keep = masks == 0
    np.testing.assert_array_equal(out[keep], frames[keep])
    for p in plan.known_positions:
        np.testing.assert_array_equal(out[p], frames[p])


@pytest.mark.parametrize("engine", ["flow", "baseline"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_input_same_output(engine, case):
    plan, frames, masks, _ = CASES[case]()
    first = get_engine(engine).generate(plan, frames, masks, seed=3)
    second = get_engine(engine).generate(plan, frames, masks, seed=3)
    np.testing.assert_array_equal(first.frames, second.frames)


@pytest.mark.parametrize("engine", ["flow", "baseline"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_cancel_stops_the_job(engine, case):
    plan, frames, masks, _ = CASES[case]()
    with pytest.raises(CancelledError):
        get_engine(engine).generate(plan, frames, masks, cancel=lambda: True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_progress_rises_to_one(case):
    plan, frames, masks, _ = CASES[case]()
    seen = []
    FlowEngine().generate(plan, frames, masks, progress=lambda f, m: seen.append(f))
    assert seen and seen == sorted(seen) and seen[-1] == pytest.approx(1.0)


def test_registry_builds_both_engines():
    flow = get_engine("flow", feather=1)
    assert isinstance(flow, FlowEngine) and flow.feather == 1
    assert flow.context_frames == 4 and flow.supports == frozenset(TaskKind)
    assert flow.describe()["engine"] == "flow"
    baseline = get_engine("baseline")
    assert isinstance(baseline, BaselineEngine) and baseline.context_frames == 1


@pytest.mark.parametrize("engine", [FlowEngine, BaselineEngine])
def test_plan_kind_and_window_are_checked(engine):
    class ExtendOnly(engine):
        supports = frozenset({TaskKind.EXTEND_FORWARD})

    plan, frames, masks, _ = bridge_case()
    with pytest.raises(InputError, match="cannot do bridge"):
        ExtendOnly().generate(plan, frames, masks)
    with pytest.raises(InputError, match="frames"):
        engine().generate(plan, frames[:-1], masks[:-1])
    with pytest.raises(InputError, match="masks"):
        engine().generate(plan, frames, masks[..., :-1])
    no_context = FramePlan(TaskKind.EXTEND_FORWARD, (PlanFrame(Role.GENERATE, output_frame=0),) * 2)
    with pytest.raises(InputError, match="no known frame before"):
        engine().generate(no_context, frames[:2], np.ones_like(masks[:2]))


@pytest.mark.parametrize("option", [{"flow_max_side": 0}, {"bridge_min_confidence": 2.0},
                                    {"fill_max_distance": 1.5}, {"feather": True}])
def test_bad_options_are_input_errors(option):
    with pytest.raises(InputError, match=next(iter(option))):
        FlowEngine(**option)


# -- real footage -------------------------------------------------------------------------


def test_extension_of_real_footage_is_no_worse_than_freeze_frame(shared_data):
    folder = shared_data / "footage" / "davis2016_blackswan" / "frames"
    paths = sorted(folder.glob("*.jpg"))[:8]
    truth = []
    for path in paths:
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        truth.append(cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA))
    truth = np.stack(truth)
    plan = FramePlan.extend(list(range(6)), 2, context=6)
    frames, masks = window(plan, truth)
    flow_out = FlowEngine().generate(plan, frames, masks).frames
    freeze_out = BaselineEngine().generate(plan, frames, masks).frames
    flow_psnr = np.mean([psnr(flow_out[p], truth[p]) for p in (6, 7)])
    freeze_psnr = np.mean([psnr(freeze_out[p], truth[p]) for p in (6, 7)])
    assert flow_psnr >= freeze_psnr - 0.5, f"PSNR flow {flow_psnr:.2f} dB, freeze frame {freeze_psnr:.2f} dB"


@pytest.mark.parametrize("engine, case, expected", [
    ("flow", "extend_forward", "extrapolated"), ("flow", "extend_backward", "extrapolated"),
    ("flow", "bridge", "interpolated"), ("flow", "fill", None),
    ("baseline", "extend_forward", "held"), ("baseline", "bridge", "dissolve"), ("baseline", "fill", "inpainted"),
])
def test_the_result_says_what_the_engine_did_at_each_position(engine, case, expected):
    from shotfill.engines import METHODS

    plan, frames, masks, _ = CASES[case]()
    result = get_engine(engine).generate(plan, frames, masks)
    assert len(result.methods) == len(plan)
    touched = [p for p in range(len(plan)) if (masks[p] > 0).any()]
    assert all(result.methods[p] is None for p in range(len(plan)) if p not in touched)
    assert all(result.methods[p] in METHODS for p in touched)
    if expected is not None:
        assert all(result.methods[p] == expected for p in touched)


def test_a_dissolve_fallback_and_a_fill_s_tracking_are_named():
    plan, frames, masks, _ = bridge_case(b_seed=7)
    assert set(FlowEngine().generate(plan, frames, masks).methods[1:4]) == {"dissolve"}
    plan, frames, masks, _ = fill_case()
    moving = FlowEngine().generate(plan, frames, masks).methods
    still = FlowEngine().generate(plan, np.repeat(frames[:1], len(frames), axis=0), masks).methods
    assert {m for m in moving if m} <= {"propagated", "propagated+inpainted"}
    assert {m for m in still if m} == {"inpainted"}
