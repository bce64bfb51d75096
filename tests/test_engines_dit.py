"""The dit engine: tiny models built here, each plan kind end to end, chaining, checksums, the shipped checkpoint."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from shotfill.engines import get_engine
from shotfill.engines.base import EngineResult
from shotfill.engines.dit.engine import SHIPPED_MODEL, DiTEngine, DiTOutput
from shotfill.engines.dit.pipeline import ShotfillDiTPipeline, ShotfillDiTPipelineOutput
from shotfill.engines.working import add_plate_detail, plan_windows, working_size
from shotfill.errors import CancelledError, EngineUnavailableError, InputError
from shotfill.models import ShotfillTransformer3DModel, ShotfillVAE
from shotfill.plan import FramePlan, TaskKind
from shotfill.training import export_checkpoint

HEIGHT, WIDTH = 48, 80  # plate; the tests' working size (64) makes the model run at 32 x 64


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    """A tiny VAE and transformer, seeded, in the shipped form (float32 here) with a manifest."""
    root = tmp_path_factory.mktemp("dit")
    torch.manual_seed(0)
    ShotfillVAE(block_out_channels=(8, 16, 16, 16)).save_pretrained(root / "ckpt" / "vae")
    transformer = ShotfillTransformer3DModel.from_preset("tiny")
    with torch.no_grad():  # adaLN-Zero starts at the identity: give the output layer weights so seeds matter
        transformer.proj_out.weight.normal_(std=0.05)
    transformer.save_pretrained(root / "ckpt" / "transformer")
    export_checkpoint(root / "ckpt", root / "model", torch.float32)
    return str(root / "model")


@pytest.fixture(scope="module")
def engine(tiny_model) -> DiTEngine:
    return DiTEngine(model=tiny_model, working_size=64, steps=2, window=6, overlap=2)


@pytest.fixture
def flow_guess(monkeypatch):
    """Pin the dit engine's first guess to the weights-free flow engine (its plan-by-plan choices are the flow
    engine's tests' business), so these tests of the dit engine's own composition know the guess it refines."""
    from shotfill.engines import working
    from shotfill.engines.classical.flow import FlowEngine

    calls = []

    def guess(plan, frames, masks, cancel=None):
        calls.append(frames.shape)
        result = FlowEngine().generate(plan, frames, masks, cancel=cancel)
        return working.PlateFlow(result.frames, result.info, result.confidence, result.methods)

    guess.calls = calls
    monkeypatch.setattr("shotfill.engines.dit.engine.plate_flow", guess)
    return guess


def plate(frames: int, seed: int = 0) -> np.ndarray:
    """A moving gradient with texture, ``(T, H, W, 3)`` in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    texture = rng.random((HEIGHT, WIDTH, 3), dtype=np.float32) * 0.1
    pictures = [np.clip(np.stack([(x + 2 * t) / WIDTH, y / HEIGHT, np.full_like(x, 0.4)], -1) * 0.8 + texture, 0, 1)
                for t in range(frames)]
    return np.stack(pictures).astype(np.float32)


def window_of(plan: FramePlan) -> tuple[np.ndarray, np.ndarray]:
    """Frames (zeros where generated) and masks for a plan, as the pipeline gives them."""
    frames = plate(len(plan))
    masks = np.zeros((len(plan), HEIGHT, WIDTH), np.float32)
    for p in plan.generate_positions:
        frames[p] = 0.0
        masks[p] = 1.0
    for p in plan.fill_positions:
        masks[p, 10:30, 20:50] = 1.0
    return frames, masks


PLANS = {
    "extend_forward": FramePlan.extend(range(10), 3, context=2),
    "extend_backward": FramePlan.extend(range(10), 3, backward=True, context=2),
    "bridge": FramePlan.bridge(range(5), range(20, 25), 2, context=2),
    "fill": FramePlan.fill(range(4)),
}


@pytest.mark.parametrize("kind", PLANS)
def test_each_plan_kind_runs_end_to_end(engine, kind):
    plan = PLANS[kind]
    frames, masks = window_of(plan)
    calls = []
    generated = engine.generate(plan, frames, masks, seed=3, progress=lambda f, m: calls.append(f))
    assert isinstance(generated, EngineResult) and generated.warnings == []
    result = generated.frames
    assert result.shape == frames.shape and result.dtype == np.float32
    assert np.isfinite(result).all()
    assert calls and calls[-1] == 1.0 and all(a <= b for a, b in zip(calls, calls[1:]))
    assert list(generated.info["timings"]) == ["encode", "flow", "denoise", "decode", "detail"]
    again = engine.generate(plan, frames, masks, seed=3, frame_rate=24.0)  # the model has no notion of a rate
    np.testing.assert_array_equal(result, again.frames)


def test_another_seed_gives_another_result(engine):
    plan = PLANS["extend_forward"]
    frames, masks = window_of(plan)
    one = engine.generate(plan, frames, masks, seed=1).frames
    two = engine.generate(plan, frames, masks, seed=2).frames
    generated = plan.generate_positions
    assert not np.allclose(one[generated], two[generated])


def test_cancel_raises(engine):
    plan = PLANS["bridge"]
    frames, masks = window_of(plan)
    with pytest.raises(CancelledError):
        engine.generate(plan, frames, masks, cancel=lambda: True)


def test_long_extension_runs_as_chained_windows(engine):
    plan = FramePlan.extend(range(10), 9, context=2)  # 11 frames, windows of 6
    frames, masks = window_of(plan)
    generated = engine.generate(plan, frames, masks, seed=0)
    windows = generated.info["windows"]
    assert len(windows) > 1 and all(last - first == 6 for first, last in windows)
    covered = {t for first, last in windows for t in range(first, last)}
    assert set(plan.generate_positions) <= covered
    assert np.isfinite(generated.frames).all()


def test_plan_windows_overlap_the_previous_window():
    to_generate = np.array([False] * 2 + [True] * 10)
    assert plan_windows(to_generate, 6, 2) == [(0, 6), (4, 10), (6, 12)]
    assert plan_windows(to_generate, 16, 4) == [(0, 12)]


def test_plan_windows_backward_overlap_the_next_window():
    to_generate = np.array([True] * 10 + [False] * 2)
    assert plan_windows(to_generate, 6, 2, backward=True) == [(6, 12), (2, 8), (0, 6)]


def test_working_size_keeps_aspect_in_multiples_of_16():
    assert working_size(1080, 1920, 256, 16) == (144, 256)
    assert working_size(48, 80, 256, 16) == (48, 80)  # never upscaled
    assert working_size(1080, 1920, 256, 32) == (128, 256)


def test_plate_detail_where_the_bands_agree_and_the_models_picture_where_they_do_not():
    rng = np.random.default_rng(0)
    flow = rng.random((1, 64, 64, 3), dtype=np.float32)
    smooth = np.full_like(flow, float(flow.mean()))
    agree = add_plate_detail(smooth, flow, sigma=2.0)
    assert np.abs(agree - flow).mean() < 0.5 * np.abs(smooth - flow).mean()  # the plate's texture came back
    other = smooth + 0.5
    disagree = add_plate_detail(other, flow, sigma=2.0)
    np.testing.assert_allclose(disagree, other, atol=1e-2)  # nothing ghosted in


def test_tampered_weights_are_refused(tiny_model, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(tiny_model, copy)
    weights = copy / "transformer" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(EngineUnavailableError, match="transformer/diffusion_pytorch_model.safetensors"):
        DiTEngine(model=str(copy))


def test_strength_defaults_to_the_checkpoints_own_and_refines_the_flow_result(tiny_model, tmp_path, flow_guess):
    import shutil

    assert DiTEngine(model=tiny_model).strength == 1.0                  # the manifest recommends nothing
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["sampling"] = {"strength": 0.4}
    (model / "manifest.json").write_text(json.dumps(manifest))
    refining = DiTEngine(model=str(model), working_size=64, steps=5, window=6, overlap=2)
    assert refining.strength == 0.4
    assert DiTEngine(model=str(model), strength=1.0).strength == 1.0     # the option wins
    plan = FramePlan.extend(range(10), 4, context=2)
    frames, masks = window_of(plan)
    steps = []
    refined = refining.generate(plan, frames, masks, progress=lambda f, m: steps.append(m)).frames
    assert sum("denoising step" in m for m in steps) == 5                # every step runs, from 0.4 down to 0
    from_noise = DiTEngine(model=str(model), working_size=64, steps=5, window=6, overlap=2, strength=1.0)
    assert not np.allclose(refined, from_noise.generate(plan, frames, masks).frames)
    # the first guess runs once, at plate size: the guess and the detail band come from it
    flow_guess.calls.clear()
    refining.generate(plan, frames, masks)
    assert flow_guess.calls == [frames.shape]
    with pytest.raises(InputError, match="strength"):
        DiTEngine(model=tiny_model, strength=1.5)


def test_missing_manifest_is_refused(tmp_path):
    with pytest.raises(EngineUnavailableError, match="manifest.json"):
        DiTEngine(model=str(tmp_path))


def test_describe_names_the_model_and_its_checksum(engine, tiny_model):
    manifest = json.loads((engine.model_dir / "manifest.json").read_text())
    described = engine.describe()
    assert described["engine"] == "dit" and described["model"] == manifest["model"]
    assert len(described["model_sha256"]) == 64


def test_prompt_with_a_model_without_text_is_reported(engine):
    assert engine.uses_prompt is False
    plan = PLANS["extend_forward"]
    frames, masks = window_of(plan)
    assert "ignored" in engine.generate(plan, frames, masks, prompt="a red car").info["prompt"]


def test_bad_options_are_input_errors(tiny_model):
    with pytest.raises(InputError, match="multiple of 16"):
        DiTEngine(model=tiny_model, working_size=100)
    with pytest.raises(InputError, match="overlap"):
        DiTEngine(model=tiny_model, window=4, overlap=4)


def test_dit_is_the_default_engine_of_every_front_door():
    from shotfill.cli import build_parser
    from shotfill.engines import DEFAULT_ENGINE
    from shotfill.job import JobSpec
    from shotfill_plugin.state import Settings

    assert DEFAULT_ENGINE == "dit"
    job = JobSpec.from_dict({"version": 1, "task": "extend_forward", "source": {"path": "p.####.exr"},
                             "frames": 2, "output": {"dir": "out"}})
    assert job.engine == "dit" and Settings().engine == "dit"
    assert build_parser().parse_args(["extend", "p.####.exr", "--frames", "2", "--out", "o"]).engine == "dit"


def test_a_missing_package_of_an_engine_is_a_clear_error(monkeypatch):
    import importlib

    import shotfill.engines as registry

    def no_torch(name, *args):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(importlib, "import_module", no_torch)
    with pytest.raises(EngineUnavailableError, match=r"engine 'dit' needs the Python package 'torch'.*'dit' extra.*--engine flow"):
        registry.get_engine("dit")


def test_registry_builds_the_engine(tiny_model):
    assert isinstance(get_engine("dit", model=tiny_model, steps=1), DiTEngine)


@pytest.mark.skipif(not (SHIPPED_MODEL / "manifest.json").is_file(), reason="no shipped checkpoint in resources/dit")
def test_shipped_checkpoint_extends_a_plate():
    engine = DiTEngine(steps=4)
    plan = FramePlan.extend(range(10), 2, context=2)
    frames, masks = window_of(plan)
    result = engine.generate(plan, frames, masks, seed=0).frames
    assert result.shape == frames.shape and np.isfinite(result).all()
    assert engine.describe()["model_sha256"]
    # the generated frames look like the plate, not like noise
    generated = plan.generate_positions
    assert np.abs(result[generated].mean(axis=(1, 2)) - frames[1].mean(axis=(0, 1))).max() < 0.25


def test_correction_output_keeps_the_flow_result_where_the_model_changes_nothing(tiny_model, monkeypatch, flow_guess):
    from shotfill.engines.classical.flow import FlowEngine

    def unchanged(pipeline, known_latents, generate_mask, *, prior_latents, **kwargs):
        # the model returns the guess
        return ShotfillDiTPipelineOutput(latents=torch.where(generate_mask > 0, prior_latents, known_latents))

    monkeypatch.setattr(ShotfillDiTPipeline, "__call__", unchanged)
    engine = DiTEngine(model=tiny_model, working_size=64, steps=2, window=6, overlap=2, strength=0.5,
                       output="correction")
    for kind in ("extend_forward", "extend_backward", "fill"):
        plan = PLANS[kind]
        frames, masks = window_of(plan)
        generated = engine.generate(plan, frames, masks, seed=0)
        flow = FlowEngine().generate(plan, frames, masks).frames
        np.testing.assert_allclose(generated.frames, flow, atol=1e-6)  # the VAE's own error cancels out of the change
        assert 0.0 < generated.info["correction"]["weight"] <= 1.0


def test_correction_is_weighted_per_pixel_by_the_flow_engines_distrust(tiny_model, monkeypatch, flow_guess):
    """The model's change lands where the flow engine trusts its own pixels least (its ``confidence``)."""
    from shotfill.engines.classical.flow import FlowEngine

    def brighter(pipeline, known_latents, generate_mask, *, prior_latents, **kwargs):
        # the model changes the guess
        return ShotfillDiTPipelineOutput(latents=torch.where(generate_mask > 0, prior_latents + 0.5, known_latents))

    monkeypatch.setattr(ShotfillDiTPipeline, "__call__", brighter)
    engine = DiTEngine(model=tiny_model, working_size=64, steps=2, window=6, overlap=2, strength=0.5,
                       output="correction")
    plan = PLANS["extend_forward"]
    frames, masks = window_of(plan)
    result = engine.generate(plan, frames, masks, seed=0)
    flow = FlowEngine().generate(plan, frames, masks)
    moved = np.abs(result.frames - flow.frames).mean(axis=(1, 2, 3))  # (T,) how far each frame left the flow result
    generated = plan.generate_positions
    np.testing.assert_array_equal(moved[plan.known_positions], 0.0)
    # the first generated frame (most trusted, next to the plate) moves least, the last most
    assert 0 < moved[generated[0]] < moved[generated[-1]]
    distrust = 1 - flow.confidence[generated].mean()
    assert result.info["correction"]["weight"] == pytest.approx(distrust, abs=1e-3)


def test_correction_is_weighted_by_the_flow_engines_distrust_of_a_bridge(tiny_model, flow_guess):
    from shotfill.engines.classical.flow import FlowEngine

    plan = FramePlan.bridge(range(5), range(7, 12), 2, context=2)
    frames, masks = window_of(plan)
    engine = DiTEngine(model=tiny_model, working_size=64, steps=2, window=6, overlap=2, strength=0.5,
                       output="correction")
    corrected = engine.generate(plan, frames, masks, seed=0)
    flow_result = FlowEngine().generate(plan, frames, masks)
    assert flow_result.info["fallback"] is None   # the plate moves smoothly
    confidence = flow_result.confidence[plan.generate_positions].mean()
    assert confidence > 0.5
    assert corrected.info["correction"]["weight"] == pytest.approx(1 - confidence, abs=1e-4)
    generated = plan.generate_positions
    result, flow = corrected.frames, flow_result.frames
    full = DiTEngine(model=tiny_model, working_size=64, steps=2, window=6, overlap=2, strength=0.5)
    # a trusted bridge moves less from the flow result than the model's own picture does
    assert np.abs(result[generated] - flow[generated]).mean() < np.abs(
        full.generate(plan, frames, masks, seed=0).frames[generated] - flow[generated]).mean()


def test_samples_are_denoised_together_and_averaged(tiny_model):
    plan = PLANS["bridge"]
    frames, masks = window_of(plan)
    kwargs = dict(model=tiny_model, working_size=64, steps=2, window=6, overlap=2)
    one = DiTEngine(**kwargs).generate(plan, frames, masks, seed=0).frames
    four = DiTEngine(samples=4, **kwargs)
    mean = four.generate(plan, frames, masks, seed=0).frames
    np.testing.assert_array_equal(mean, four.generate(plan, frames, masks, seed=0).frames)  # still one seed, one result
    assert not np.allclose(one[plan.generate_positions], mean[plan.generate_positions])


def test_bad_sampling_options_are_input_errors(tiny_model):
    with pytest.raises(InputError, match="samples"):
        DiTEngine(model=tiny_model, samples=0)
    with pytest.raises(InputError, match="output"):
        DiTEngine(model=tiny_model, strength=0.5, output="blend")
    with pytest.raises(InputError, match="needs a strength below 1"):
        DiTEngine(model=tiny_model, strength=1.0, output="correction")


def test_the_output_option_is_an_enum_given_as_its_value_or_itself(tiny_model):
    by_value = DiTEngine(model=tiny_model, strength=0.5, output="correction")
    assert by_value.output is DiTOutput.CORRECTION
    assert DiTEngine(model=tiny_model, strength=0.5, output=DiTOutput.CORRECTION).output is DiTOutput.CORRECTION
    assert DiTEngine(model=tiny_model).output is DiTOutput.PICTURE  # the manifest recommends nothing
    with pytest.raises(InputError, match=r"engine option output: expected 'picture' or 'correction', got 'blend'"):
        DiTEngine(model=tiny_model, strength=0.5, output="blend")
    assert not hasattr(by_value, "last_info")  # what a call found is in its EngineResult


def test_a_checkpoint_from_before_the_pipeline_loads_with_the_scheduler_it_was_trained_for(tiny_model, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_model, old)
    (old / "model_index.json").unlink()
    shutil.rmtree(old / "scheduler")
    plan = PLANS["bridge"]
    frames, masks = window_of(plan)
    options = dict(working_size=64, steps=3, window=6, overlap=2, strength=0.5)
    np.testing.assert_array_equal(DiTEngine(model=str(old), **options).generate(plan, frames, masks, seed=1).frames,
                                  DiTEngine(model=tiny_model, **options).generate(plan, frames, masks, seed=1).frames)


def with_sampling(tiny_model, tmp_path, sampling) -> str:
    """A copy of the tiny model whose manifest's sampling block is ``sampling`` (None: no block at all)."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    manifest = json.loads((model / "manifest.json").read_text())
    if sampling is None:
        manifest.pop("sampling")
    else:
        manifest["sampling"] = sampling
    (model / "manifest.json").write_text(json.dumps(manifest))
    return str(model)


def test_the_manifests_steps_are_the_default_and_an_old_manifest_gets_the_steps_its_old_schedule_ran(
        tiny_model, tmp_path):
    from shotfill.engines.dit.engine import legacy_steps

    assert DiTEngine(model=tiny_model).steps == 10 and DiTEngine(model=tiny_model).steps_from == "manifest"
    saved = with_sampling(tiny_model, tmp_path / "a", {"strength": 0.3, "steps": 3})
    assert (DiTEngine(model=saved).strength, DiTEngine(model=saved).steps) == (0.3, 3)
    assert DiTEngine(model=saved, steps=6).steps == 6                    # the option wins
    # exported before the schedule was saved: as many steps as the 10-step table ran below the strength
    old = with_sampling(tiny_model, tmp_path / "b", {"strength": 0.2, "samples": 4, "output": "correction"})
    engine = DiTEngine(model=old)
    assert engine.steps == 2 and engine.steps_from.startswith("legacy rule")
    assert DiTEngine(model=old, strength=0.5).steps == 5
    bare = with_sampling(tiny_model, tmp_path / "c", None)
    assert (DiTEngine(model=bare).strength, DiTEngine(model=bare).steps) == (1.0, 10)
    assert [legacy_steps(s) for s in (0.05, 0.1, 0.2, 0.25, 0.5, 0.9, 1.0)] == [1, 1, 2, 2, 5, 9, 10]
    with pytest.raises(InputError, match="steps"):
        DiTEngine(model=tiny_model, steps=0)
    with pytest.raises(InputError, match="strength"):
        DiTEngine(model=bare, strength="high")


def test_the_result_reports_its_schedule(tiny_model):
    engine = DiTEngine(model=tiny_model, working_size=64, steps=4, window=6, overlap=2, strength=0.2)
    plan = PLANS["extend_forward"]
    frames, masks = window_of(plan)
    steps = []
    info = engine.generate(plan, frames, masks, progress=lambda f, m: steps.append(m)).info
    assert info["sampling"]["sigmas"] == [0.2, 0.15, 0.1, 0.05]
    assert (info["sampling"]["strength"], info["sampling"]["steps"], info["sampling"]["model_change"]) == (0.2, 4, True)
    assert sum("denoising step" in m for m in steps) == 4


@pytest.mark.parametrize("output", ["correction", "picture"])
def test_the_result_carries_the_guess_trust_and_words_where_the_model_refined_it(tiny_model, output, flow_guess):
    plate_flow = flow_guess

    engine = DiTEngine(model=tiny_model, working_size=64, steps=2, window=6, overlap=2, strength=0.3, output=output)
    for kind in ("extend_forward", "bridge", "fill"):
        plan = PLANS[kind]
        frames, masks = window_of(plan)
        result = engine.generate(plan, frames, masks, seed=0)
        guess = plate_flow(plan, frames, masks)
        confidence = result.confidence
        assert confidence.shape == masks.shape and confidence.dtype == np.float32
        generated = masks > 0
        np.testing.assert_array_equal(confidence[~generated], 1.0)       # kept pixels are real
        assert (confidence[generated] <= guess.confidence[generated] + 1e-6).all()  # the model never adds trust
        assert (confidence >= 0).all()
        assert result.methods == guess.methods                           # the guess's own words
        assert result.info["trust"] == pytest.approx(float(confidence[generated].mean()), abs=1e-4)
        words = {m for m in result.methods if m}
        assert words == {"extend_forward": {"extrapolated"}, "bridge": {"interpolated"},
                         "fill": words & {"propagated", "inpainted", "propagated+inpainted"}}[kind] and words


def test_the_more_the_model_moves_a_pixel_from_its_guess_the_less_it_is_trusted(tiny_model, monkeypatch, flow_guess):
    plate_flow = flow_guess

    def brighter(by):
        def call(pipeline, known_latents, generate_mask, *, prior_latents, **kwargs):
            return ShotfillDiTPipelineOutput(latents=torch.where(generate_mask > 0, prior_latents + by, known_latents))
        return call

    plan = FramePlan.bridge(range(5), range(7, 12), 2, context=2)
    frames, masks = window_of(plan)
    guess = plate_flow(plan, frames, masks)
    trust = {}
    for by in (0.0, 0.5, 2.0):
        monkeypatch.setattr(ShotfillDiTPipeline, "__call__", brighter(by))
        engine = DiTEngine(model=tiny_model, working_size=64, steps=2, window=6, overlap=2, strength=0.5,
                           output="correction")
        trust[by] = engine.generate(plan, frames, masks, seed=0).confidence[plan.generate_positions].mean()
    assert trust[2.0] < trust[0.5] < trust[0.0] <= guess.confidence[plan.generate_positions].mean() + 1e-6


def test_the_guess_warnings_are_the_results_where_the_model_refined_it(tiny_model, monkeypatch):
    from shotfill.engines import working
    from shotfill.engines.classical.flow import FlowEngine

    def dissolving_guess(plan, frames, masks, cancel=None):
        result = FlowEngine().generate(plan, frames, masks, cancel=cancel)
        return working.PlateFlow(result.frames, result.info, result.confidence, result.methods,
                                 ["bridge: fell back to a dissolve"])

    monkeypatch.setattr("shotfill.engines.dit.engine.plate_flow", dissolving_guess)
    plan = PLANS["bridge"]
    frames, masks = window_of(plan)
    options = dict(model=tiny_model, working_size=64, steps=1, window=6, overlap=2)
    assert DiTEngine(**options, strength=0.3).generate(plan, frames, masks).warnings == [
        "bridge: fell back to a dissolve"]
    assert DiTEngine(**options, strength=1.0).generate(plan, frames, masks).warnings == []  # made from noise


def test_generated_from_noise_is_trusted_nowhere_and_says_generated(tiny_model):
    engine = DiTEngine(model=tiny_model, working_size=64, steps=2, window=6, overlap=2, strength=1.0)
    for kind in ("extend_backward", "fill"):
        plan = PLANS[kind]
        frames, masks = window_of(plan)
        result = engine.generate(plan, frames, masks, seed=0)
        generated = masks > 0
        np.testing.assert_array_equal(result.confidence[generated], 0.0)
        np.testing.assert_array_equal(result.confidence[~generated], 1.0)
        touched = [t for t in range(len(plan)) if generated[t].any()]
        assert [m for m in result.methods if m] == ["generated"] * len(touched)
        assert all(result.methods[t] is None for t in range(len(plan)) if t not in touched)
        assert result.info["trust"] == 0.0


def test_with_the_models_change_off_the_correction_is_exactly_the_first_guess(tiny_model, monkeypatch):
    from shotfill.engines.working import plate_flow  # the engine's own first guess, whichever it is

    def no_model(*args, **kwargs):
        raise AssertionError("the model ran")

    monkeypatch.setattr(ShotfillDiTPipeline, "__call__", no_model)
    engine = DiTEngine(model=tiny_model, working_size=64, steps=2, window=6, overlap=2, strength=0.3,
                       output="correction", model_change=False)
    for kind in PLANS:
        plan = PLANS[kind]
        frames, masks = window_of(plan)
        result = engine.generate(plan, frames, masks, seed=0)
        guess = plate_flow(plan, frames, masks)
        np.testing.assert_array_equal(result.frames, guess.frames)
        np.testing.assert_array_equal(result.confidence, np.where(masks > 0, guess.confidence, 1.0))
        assert result.methods == guess.methods and result.info["sampling"]["model_change"] is False
    long_plan = FramePlan.extend(range(10), 9, context=2)  # chained windows too
    frames, masks = window_of(long_plan)
    np.testing.assert_array_equal(engine.generate(long_plan, frames, masks).frames,
                                  plate_flow(long_plan, frames, masks).frames)


def test_with_the_models_change_off_the_picture_is_the_decoded_guess_with_the_plates_detail(tiny_model, monkeypatch):
    options = dict(model=tiny_model, working_size=64, steps=2, window=6, overlap=2, strength=0.3, output="picture")
    plan = PLANS["bridge"]
    frames, masks = window_of(plan)
    with_model = DiTEngine(**options).generate(plan, frames, masks, seed=0).frames

    def unchanged(pipeline, known_latents, generate_mask, *, prior_latents, **kwargs):
        return ShotfillDiTPipelineOutput(latents=torch.where(generate_mask > 0, prior_latents, known_latents))

    off = DiTEngine(**options, model_change=False).generate(plan, frames, masks, seed=0).frames
    monkeypatch.setattr(ShotfillDiTPipeline, "__call__", unchanged)
    np.testing.assert_array_equal(off, DiTEngine(**options).generate(plan, frames, masks, seed=0).frames)
    assert not np.allclose(off[plan.generate_positions], with_model[plan.generate_positions])


def test_the_models_change_switch_is_checked(tiny_model):
    with pytest.raises(InputError, match="model_change: expected true or false"):
        DiTEngine(model=tiny_model, strength=0.5, model_change="no")
    with pytest.raises(InputError, match="model_change: false keeps the first guess"):
        DiTEngine(model=tiny_model, strength=1.0, model_change=False)
    assert get_engine("dit", model=tiny_model, strength=0.5, model_change=False).model_change is False


def _with_manifest_sampling(model: str, folder, **sampling) -> str:
    """A copy of the checkpoint ``model`` in ``folder`` whose manifest's sampling has ``sampling`` added."""
    import shutil

    shutil.copytree(model, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["sampling"].update(sampling)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return str(folder)


def test_a_manifest_keeps_the_first_guess_on_the_tasks_it_names(tiny_model, tmp_path, monkeypatch):
    model = _with_manifest_sampling(tiny_model, tmp_path / "keeps", keep_guess_for=["fill"])
    options = dict(model=model, working_size=64, window=6, overlap=2, strength=0.3, steps=1, output="correction")
    keeps = DiTEngine(**options)
    fill, bridge = PLANS["fill"], PLANS["bridge"]
    with_model = DiTEngine(**options, model_change=True).generate(fill, *window_of(fill), seed=0)
    off = DiTEngine(**options, model_change=False).generate(fill, *window_of(fill), seed=0)
    bridged = keeps.generate(bridge, *window_of(bridge), seed=0)
    assert bridged.info["sampling"]["model_change"] is True and bridged.info["sampling"]["model_change_from"] == "default"

    def no_model(*args, **kwargs):
        raise AssertionError("the VAE or the transformer ran on a task that keeps its first guess")

    monkeypatch.setattr(ShotfillDiTPipeline, "__call__", no_model)
    monkeypatch.setattr(ShotfillDiTPipeline, "encode_pictures", no_model)
    monkeypatch.setattr(ShotfillDiTPipeline, "decode_latents", no_model)
    kept = keeps.generate(fill, *window_of(fill), seed=0)
    np.testing.assert_array_equal(kept.frames, off.frames)          # the model-off reference, bit for bit
    np.testing.assert_array_equal(kept.confidence, off.confidence)
    assert kept.methods == off.methods
    assert not np.array_equal(kept.frames, with_model.frames)       # the option still switches the model on
    assert kept.info["sampling"]["model_change"] is False
    assert kept.info["sampling"]["model_change_from"] == "manifest: keep_guess_for fill"
    assert keeps.uses_model(TaskKind.FILL) == (False, "manifest: keep_guess_for fill")
    assert DiTEngine(**options, model_change=True).uses_model(TaskKind.FILL) == (True, "option")


@pytest.mark.parametrize("kinds", [["fills"], "fill", [1]])
def test_a_manifests_keep_guess_for_is_checked(tiny_model, tmp_path, kinds):
    model = _with_manifest_sampling(tiny_model, tmp_path / "bad", keep_guess_for=kinds)
    with pytest.raises(EngineUnavailableError, match="keep_guess_for must be a list of task kinds"):
        DiTEngine(model=model, strength=0.3)


def test_the_shipped_manifest_keeps_the_first_guess_on_fill_only():
    engine = DiTEngine()
    assert engine.keep_guess_for == {"fill"} and engine.model_change is None
    assert [engine.uses_model(kind)[0] for kind in TaskKind] == [True, True, True, False]
