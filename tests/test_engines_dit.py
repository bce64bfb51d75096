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
from shotfill.plan import FramePlan
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


def test_strength_defaults_to_the_checkpoints_own_and_refines_the_flow_result(tiny_model, tmp_path, monkeypatch):
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
    assert sum("denoising step" in m for m in steps) == 2                # the last 40% of a 5-step path
    from_noise = DiTEngine(model=str(model), working_size=64, steps=5, window=6, overlap=2, strength=1.0)
    assert not np.allclose(refined, from_noise.generate(plan, frames, masks).frames)
    # the flow engine runs once, at plate size: the first guess and the detail band come from it
    from shotfill.engines.classical.flow import FlowEngine
    runs = []
    original = FlowEngine.generate
    monkeypatch.setattr(FlowEngine, "generate", lambda self, p, f, *a, **k: runs.append(f.shape) or original(self, p, f, *a, **k))
    refining.generate(plan, frames, masks)
    assert runs == [frames.shape]
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


def test_correction_output_keeps_the_flow_result_where_the_model_changes_nothing(tiny_model, monkeypatch):
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


def test_correction_is_weighted_per_pixel_by_the_flow_engines_distrust(tiny_model, monkeypatch):
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


def test_correction_is_weighted_by_the_flow_engines_distrust_of_a_bridge(tiny_model):
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
