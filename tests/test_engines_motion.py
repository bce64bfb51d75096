"""The ``motion`` engine: RIFE bridges chosen by a self-check, extensions that fade towards a hold.

Synthetic clips are a smooth random texture seen through a window that pans at a constant
integer velocity (as in ``test_engines_flow.py``), so the true frames are known::

    texture  +--------------------------------+
             |  [frame 0] -> [frame 1] -> ... |   each frame: the window moved by (VX, VY)
             +--------------------------------+
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from shotfill.engines import EXTRAS, EngineResult, available_engines, get_engine
from shotfill.engines import motion as motion_module
from shotfill.engines import working
from shotfill.engines.classical.flow import FlowEngine
from shotfill.engines.interpolate import SHIPPED_MODEL, psnr
from shotfill.engines.motion import CUT_DISTANCE, TIE_ORDER, MotionEngine, shot_distance
from shotfill.errors import CancelledError, EngineUnavailableError, InputError
from shotfill.plan import FramePlan, TaskKind

from synthetic_pans import VX, VY, H, W, panning_clip, texture, window

def bridge_case(b_clip: np.ndarray | None = None, gap: int = 4):
    """2 known frames of A, ``gap`` generated, 2 known of B (the same pan unless ``b_clip`` is given)."""
    truth = panning_clip(4 + gap)
    if b_clip is not None:
        truth[2 + gap:] = b_clip[:2]
    plan = FramePlan.bridge([0, 1], [10, 11], gap, context=2)
    return (plan, *window(plan, truth), truth)


def extend_case(count: int = 8, backward: bool = False, velocity=(VX, VY)):
    truth = panning_clip(4 + count, velocity=velocity)
    if backward:
        plan = FramePlan.extend(list(range(count, count + 4)), count, backward=True, context=4)
    else:
        plan = FramePlan.extend(list(range(4)), count, context=4)
    return (plan, *window(plan, truth), truth)


def fill_case():
    truth = panning_clip(6)
    plan = FramePlan.fill(list(range(6)))
    masks = np.zeros(truth.shape[:3], np.float32)
    masks[:, 20:40, 30:55] = 1.0
    frames = truth.copy()
    frames[masks > 0] = 0.0
    return plan, frames, masks, truth


CASES = {"extend": extend_case, "extend_backward": lambda: extend_case(backward=True), "bridge": bridge_case,
         "fill": fill_case}


@pytest.fixture(scope="module")
def engine() -> MotionEngine:
    return MotionEngine()


def generated_psnr(out: np.ndarray, truth: np.ndarray, plan: FramePlan) -> float:
    positions = plan.generate_positions
    return psnr(out[positions], truth[positions])


# -- bridges: the self-check chooses ---------------------------------------------------------


def test_a_clean_pan_is_interpolated_far_better_than_a_dissolve(engine):
    plan, frames, masks, truth = bridge_case()
    result = engine.generate(plan, frames, masks)
    report = result.info["bridge"]
    assert report["chosen"] in ("rife", "rife_blend"), report
    assert set(report["self_check"]) == {"rife", "rife_blend", "flow", "dissolve"}
    assert report["self_check"][report["chosen"]] > report["self_check"]["dissolve"] + 6
    assert "self-check" in report["reason"] and report["shot_distance"] < CUT_DISTANCE
    assert result.warnings == []
    assert [result.methods[p] for p in plan.generate_positions] == ["interpolated"] * 4
    dissolve = get_engine("baseline").generate(plan, frames, masks).frames
    assert generated_psnr(result.frames, truth, plan) > generated_psnr(dissolve, truth, plan) + 6


def test_a_bridge_between_unrelated_shots_is_a_dissolve_with_a_warning(engine):
    other = panning_clip(2, seed=5)[..., ::-1] * np.array([1.0, 0.3, 0.2], np.float32)  # another shot, other colours
    plan, frames, masks, _ = bridge_case(np.ascontiguousarray(other, dtype=np.float32))
    result = engine.generate(plan, frames, masks)
    report = result.info["bridge"]
    assert report["chosen"] == "dissolve" and report["shot_distance"] > CUT_DISTANCE
    assert "different shots" in report["reason"]
    assert len(result.warnings) == 1 and result.warnings[0].startswith("bridge: fell back to a dissolve (")
    assert [result.methods[p] for p in plan.generate_positions] == ["dissolve"] * 4
    for position in plan.generate_positions:
        t = (position - 1) / 5
        np.testing.assert_allclose(result.frames[position], (1 - t) * frames[1] + t * frames[6], atol=1e-6)
        assert not result.confidence[position].any()  # a dissolve follows no motion: trust 0


def test_the_choice_follows_the_self_check_its_tie_rule_and_the_option():
    engine = MotionEngine()
    scores = {"rife": 30.0, "rife_blend": 29.0, "flow": 25.0, "dissolve": 20.0}
    assert engine.choose_bridge(scores)[0] == "rife"
    chosen, reason = engine.choose_bridge({**scores, "rife": 29.05})  # leads by less than the tie margin
    assert chosen == TIE_ORDER[0] == "rife_blend" and "tie" in reason
    # a dissolve only when it beats every way of following the motion by more than the margin
    assert engine.choose_bridge({**scores, "dissolve": 35.0})[0] == "dissolve"
    assert engine.choose_bridge({"rife": 20.0, "rife_blend": 20.5, "flow": 25.0, "dissolve": 25.05})[0] == "flow"
    assert engine.choose_bridge(scores, distance=CUT_DISTANCE + 0.1)[0] == "dissolve"
    forced = MotionEngine(bridge="flow")
    assert forced.choose_bridge(scores) == ("flow", "the engine option bridge=flow")


def test_a_forced_flow_bridge_is_the_flow_engine_s_and_reports_its_fallback():
    plan, frames, masks, _ = bridge_case()
    flow = FlowEngine().generate(plan, frames, masks)
    result = MotionEngine(bridge="flow").generate(plan, frames, masks)
    np.testing.assert_array_equal(result.frames, flow.frames)
    np.testing.assert_array_equal(result.confidence, flow.confidence)
    assert result.info["bridge"]["flow"] == flow.info and result.methods == flow.methods
    fell_back = flow.info["fallback"] == "dissolve"
    assert bool(result.warnings) == fell_back and all("dissolve" in w for w in result.warnings)


def test_the_self_check_s_flow_inbetween_is_the_flow_engine_s_frame(engine):
    plan, frames, masks, _ = bridge_case()
    flow = FlowEngine().generate(plan, frames, masks).frames
    for position in plan.generate_positions:
        t = (position - 1) / 5
        np.testing.assert_allclose(engine._flow_inbetween(frames[1], frames[6], t), flow[position], atol=1e-5)


def test_rife_confidence_is_low_where_its_inbetween_is_wrong():
    """B shows a patch A does not: where RIFE's in-betweens are wrong, it trusts them less."""
    plan, frames, masks, truth = bridge_case()
    patch = (slice(20, 44), slice(36, 68))
    frames[6][patch] = truth[6][patch] = texture(9, 24, 32)[..., ::-1]
    frames[7][patch] = truth[7][patch] = frames[6][patch]
    for position in (4, 5):  # the patch is there from the gap's middle on
        truth[position][patch] = frames[6][patch]
    result = MotionEngine(bridge="rife").generate(plan, frames, masks)
    generated = plan.generate_positions
    error = np.abs(result.frames[generated] - truth[generated]).mean(-1).ravel()
    trust = result.confidence[generated].ravel()
    low, high = np.quantile(trust, [1 / 3, 2 / 3])
    assert error[trust <= low].mean() > 2 * error[trust >= high].mean()
    assert np.corrcoef(error, trust)[0, 1] < -0.2


def test_shot_distance_tells_a_cut_from_motion():
    clip = panning_clip(12)
    assert shot_distance(clip[0], clip[11]) < 0.2
    other = np.ascontiguousarray(panning_clip(1, seed=5)[0][..., ::-1] * np.array([1.0, 0.3, 0.2], np.float32))
    assert shot_distance(clip[0], other) > CUT_DISTANCE


# -- extensions: graceful -------------------------------------------------------------------


def test_a_steady_pan_is_followed_far_better_than_freeze_frame(engine):
    plan, frames, masks, truth = extend_case()
    result = engine.generate(plan, frames, masks)
    freeze = get_engine("baseline").generate(plan, frames, masks).frames
    assert generated_psnr(result.frames, truth, plan) > generated_psnr(freeze, truth, plan) + 2.5
    first = plan.generate_positions[0]  # at first each pixel moves with its own motion
    assert psnr(result.frames[first], truth[first]) > psnr(freeze[first], truth[first]) + 8
    assert result.methods[4:] == ["extrapolated"] * 8 and result.info["extend"]["hindcast"] > 0.8


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_pixels_entering_the_picture_are_made_not_a_replicated_edge(engine, backward):
    """Content enters on the right (forward: the window pans right; backward: it came from the right)."""
    plan, frames, masks, _ = extend_case(count=12, backward=backward, velocity=(4, 0))
    result = engine.generate(plan, frames, masks)
    last = plan.generate_positions[-1] if not backward else plan.generate_positions[0]
    anchor = frames[3] if not backward else frames[12]
    travel = int(result.info["extend"]["travel_frames"] * 4)
    assert travel >= 12, result.info
    # forward, the window moves right and content enters on the right; backward, time runs the other way
    if not backward:
        strip, edge, seen = slice(W - travel + 2, W), slice(W - travel + 1, W - travel + 2), slice(0, W - travel - 4)
    else:
        strip, edge, seen = slice(0, travel - 2), slice(travel - 2, travel - 1), slice(travel + 4, W)
    entering = result.frames[last][:, strip]  # the strip no known frame showed
    replicated = np.repeat(result.frames[last][:, edge], entering.shape[1], axis=1)
    smeared = FlowEngine(velocity_half_life=8.0).generate(plan, frames, masks).frames[last][:, strip]
    assert np.abs(entering - replicated).mean() > 0.03  # texture, not the edge column repeated
    assert entering.std(axis=1).mean() > 0.3 * anchor[:, strip].std(axis=1).mean()
    assert entering.std(axis=1).mean() > 3 * smeared.std(axis=1).mean()  # the flow engine's streaks
    np.testing.assert_array_less(result.confidence[last][:, strip], 0.05)  # low trust: a model makes it
    assert result.confidence[last][:, seen].mean() > 0.8


def test_motion_the_hindcast_rejects_fades_towards_a_hold(engine):
    """A camera shaking back and forth: the motion of the last frames does not foretell the next."""
    texture_ = texture(3, H + 20, W + 20)
    offsets = [0, 5, 0, 5]
    context = np.stack([texture_[5:5 + H, x:x + W] for x in offsets])
    plan = FramePlan.extend(list(range(4)), 12, context=4)
    frames = np.concatenate([context, np.zeros((12, H, W, 3), np.float32)])
    masks = np.zeros(frames.shape[:3], np.float32)
    masks[4:] = 1.0
    result = engine.generate(plan, frames, masks)
    flow = FlowEngine().generate(plan, frames, masks)
    assert result.info["extend"]["reliability"] < 0.3
    assert result.info["extend"]["travel_frames"] == pytest.approx(engine.hold_travel, abs=0.05)
    still = np.abs(result.frames[-1] - result.frames[-5]).mean()  # the last frames hold
    assert still < 0.005 and np.abs(flow.frames[-1] - flow.frames[-5]).mean() > 5 * still
    assert result.confidence[4:].mean() < 0.3


def test_a_subject_over_a_still_scene_is_not_copied_into_what_it_uncovers(engine):
    """A bright square moves right over a still texture: the extension shows it once, not twice."""
    scene = texture(4, H, W) * 0.5
    clip = []
    for k in range(4):
        picture = scene.copy()
        picture[20:40, 10 + 3 * k:30 + 3 * k] = 1.0
        clip.append(picture)
    plan = FramePlan.extend(list(range(4)), 6, context=4)
    frames = np.concatenate([np.stack(clip), np.zeros((6, H, W, 3), np.float32)])
    masks = np.zeros(frames.shape[:3], np.float32)
    masks[4:] = 1.0
    out = engine.generate(plan, frames, masks).frames
    for position in plan.generate_positions:
        bright = (out[position].min(axis=-1) > 0.9).sum()
        assert 0.8 * 400 < bright < 1.2 * 400, (position, bright)  # one 20x20 square


def test_extend_flow_is_the_flow_engine_s_extension():
    plan, frames, masks, _ = extend_case()
    flow = FlowEngine().generate(plan, frames, masks)
    result = MotionEngine(extend="flow", velocity_half_life=24.0).generate(plan, frames, masks)
    np.testing.assert_array_equal(result.frames, flow.frames)
    np.testing.assert_array_equal(result.confidence, flow.confidence)


def test_fill_is_the_flow_engine_s(engine):
    plan, frames, masks, _ = fill_case()
    flow = FlowEngine().generate(plan, frames, masks)
    result = engine.generate(plan, frames, masks)
    np.testing.assert_array_equal(result.frames, flow.frames)
    assert result.methods == flow.methods and result.info["engine"] == "flow"


def test_a_single_known_frame_is_held(engine):
    truth = panning_clip(3)
    plan = FramePlan.extend([0], 2, context=1)
    frames, masks = window(plan, truth)
    result = engine.generate(plan, frames, masks)
    np.testing.assert_allclose(result.frames[1:], np.stack([truth[0]] * 2), atol=1e-5)


# -- the engine contract ----------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_output_shapes_confidence_methods_and_kept_pixels(engine, case):
    plan, frames, masks, _ = CASES[case]()
    before = frames.copy()
    result = engine.generate(plan, frames, masks)
    assert isinstance(result, EngineResult)
    assert result.frames.shape == frames.shape and result.frames.dtype == np.float32
    assert np.isfinite(result.frames).all()
    assert result.confidence.shape == masks.shape and result.confidence.dtype == np.float32
    assert 0.0 <= result.confidence.min() and result.confidence.max() <= 1.0
    assert len(result.methods) == len(plan)
    np.testing.assert_array_equal(frames, before)
    for p in plan.known_positions:
        np.testing.assert_array_equal(result.frames[p], frames[p])
        assert result.methods[p] is None and (result.confidence[p] == 1.0).all()


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_seed_changes_nothing_and_runs_repeat(engine, case):
    plan, frames, masks, _ = CASES[case]()
    first = engine.generate(plan, frames, masks, seed=3)
    second = engine.generate(plan, frames, masks, seed=11)
    np.testing.assert_array_equal(first.frames, second.frames)
    np.testing.assert_array_equal(first.confidence, second.confidence)


@pytest.mark.parametrize("case", sorted(CASES))
def test_cancel_stops_the_job_and_progress_rises_to_one(engine, case):
    plan, frames, masks, _ = CASES[case]()
    with pytest.raises(CancelledError):
        engine.generate(plan, frames, masks, cancel=lambda: True)
    seen = []
    engine.generate(plan, frames, masks, progress=lambda fraction, message: seen.append(fraction))
    assert seen and seen == sorted(seen) and seen[-1] == pytest.approx(1.0)


def test_registry_entry_extra_and_provenance():
    assert "motion" in available_engines() and EXTRAS["motion"] == "dit"
    engine = get_engine("motion", bridge="rife", feather=1)
    assert isinstance(engine, MotionEngine) and engine.bridge == "rife" and engine.feather == 1
    assert engine.supports == frozenset(TaskKind) and engine.context_frames == 4
    described = engine.describe()
    manifest = __import__("json").loads((SHIPPED_MODEL / "manifest.json").read_text())
    assert described["engine"] == "motion" and described["model_sha256"] == manifest["files"]["ifnet.safetensors"]
    assert "DIS" in described["model"] and "rife" in described["model"]


def test_without_torch_the_engine_names_the_extra(monkeypatch):
    motion_module.shared_interpolator.cache_clear()
    monkeypatch.setitem(sys.modules, "torch", None)
    try:
        with pytest.raises(EngineUnavailableError, match="'dit' extra"):
            get_engine("motion")
    finally:
        motion_module.shared_interpolator.cache_clear()


@pytest.mark.parametrize("option", [{"bridge": "morph"}, {"extend": "fast"}, {"hold_travel": -1}, {"reliability": "luck"},
                                    {"hold_travel": 20.0}, {"bridge_tie_db": "0.1"}, {"reliability_power": -2}])
def test_bad_options_are_input_errors(option):
    with pytest.raises(InputError, match=next(iter(option))):
        MotionEngine(**option)


def test_plan_and_window_are_checked(engine):
    plan, frames, masks, _ = bridge_case()
    with pytest.raises(InputError):
        engine.generate(plan, frames[:-1], masks[:-1])


# -- the first guess of the model engines ------------------------------------------------------------


def test_the_first_guess_is_the_motion_engine_s_and_flow_stays_available():
    plan, frames, masks, _ = bridge_case()
    guess = working.plate_flow(plan, frames, masks)
    motion = MotionEngine().generate(plan, frames, masks)
    np.testing.assert_array_equal(guess.frames, motion.frames)
    assert guess.info["guess_engine"] == "motion" and guess.methods == motion.methods and guess.warnings == []
    flow = working.plate_flow(plan, frames, masks, engine="flow")
    np.testing.assert_array_equal(flow.frames, FlowEngine().generate(plan, frames, masks).frames)
    with pytest.raises(InputError, match="first guess"):
        working.plate_flow(plan, frames, masks, engine="rife")


def test_the_first_guess_carries_the_dissolve_warning():
    other = np.ascontiguousarray(panning_clip(2, seed=5)[..., ::-1] * np.array([1.0, 0.3, 0.2], np.float32))
    plan, frames, masks, _ = bridge_case(other)
    guess = working.plate_flow(plan, frames, masks)
    assert len(guess.warnings) == 1 and "dissolve" in guess.warnings[0]


# -- the bench ----------------------------------------------------------------------------------------


def test_the_bench_runs_on_a_synthetic_pan(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "bench_motion.py"
    spec = importlib.util.spec_from_file_location("bench_motion", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "motion.json"
    assert bench.main(["--smoke", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["models"]["motion"]["model_sha256"] and results["options"]["motion"]["bridge"] == "auto"
    assert results["settings"]["context"] == 4 and results["settings"]["labels"] == {"smoke_pan": "untouched"}
    tasks = {(row["task"], row["n"]): row for row in results["trials"]}
    bridge, extend, fill = tasks[("bridge", 4)], tasks[("extend_forward", 12)], tasks[("fill", 6)]
    assert set(bridge["cells"]) == {"motion", "rife", "rife_blend", "flow", "dissolve"}
    assert bridge["cells"]["motion"]["psnr"] > bridge["cells"]["dissolve"]["psnr"] + 10
    assert set(bridge["rife_confidence"]) == {"error_least_trusted", "error_most_trusted", "correlation", "mean"}
    assert set(extend["cells"]) == {"motion", "motion-rife-velocity", "flow", "freeze"}
    assert len(extend["cells"]["motion"]["psnr_frames"]) == 12 and "psnr_9_12" in extend["cells"]["motion"]
    assert set(extend["hindcast"]) == {"motion", "motion-rife-velocity"}
    assert fill["cells"]["motion"]["psnr"] == fill["cells"]["flow"]["psnr"]  # the motion engine fills as flow does
    assert "flow-rife-tracks" in fill["cells"]
    assert "late_minus_freeze_mean" in results["summary"]["extend_forward N=12"]
