"""The ``wan-vace`` engine on a tiny random Wan2.1-VACE pipeline built in code (``tiny_wan.py``).

What is checked: every task kind end to end through ``engine.generate``; what reaches the
pipeline (VACE's conditioning video and masks, read where the pipeline encodes them); frame
counts rounded to 4k+1 with a warning; chained windows forward and backward; determinism;
a tampered weight file refused; one run through the command line, writing EXR frames.
"""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch
from diffusers import WanVACEPipeline

from shotfill import cli
from shotfill.engines import get_engine
from shotfill.engines.pretrained.wan_vace import WanVACEEngine
from shotfill.engines.working import to_working
from shotfill.errors import CancelledError, ShotfillError
from shotfill.io.exr import read_exr, write_exr
from shotfill.plan import FramePlan, TaskKind
pytest.importorskip("transformers", reason="the pretrained engines need the [pretrained] extra")
from tiny_wan import save_tiny_wan_vace  # noqa: E402
from tiny_text import write_manifest  # noqa: E402

H, W = 48, 64
#: working size for the tests: 64x48 plates run at 32x32 (multiples of 16)
WORKING = 32
#: engine options every test uses: the tiny model on the CPU, two steps, no guidance (one pass a step)
FAST = {"memory": "cpu", "working_size": WORKING, "steps": 2, "guidance_scale": 1.0}


# ---------------------------------------------------------------------------
# the tiny model, its manifest, plates and plans
# ---------------------------------------------------------------------------
def _manifest(folder, path, name="tiny-wan-vace"):
    """A manifest naming ``folder`` (every file's size and sha256), written to ``path``."""
    return write_manifest(folder, path, name=name, engine="wan-vace", pipeline="WanVACEPipeline",
                          native_frame_rate=16.0, max_frames=81)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """``(model folder, manifest file)`` of the tiny random Wan2.1-VACE, built once."""
    root = tmp_path_factory.mktemp("wan_vace")
    folder = save_tiny_wan_vace(root / "tiny-wan-vace")
    return folder, _manifest(folder, root / "models.json")


def _engine(tiny, **options) -> WanVACEEngine:
    folder, manifest = tiny
    return get_engine("wan-vace", model=str(folder), manifest=str(manifest), **{**FAST, **options})


@pytest.fixture(scope="session")
def engine(tiny) -> WanVACEEngine:
    """The engine with :data:`FAST` options, made once (``generate`` keeps no state)."""
    return _engine(tiny)


def _pictures(count: int, seed: int = 0) -> np.ndarray:
    """``(count, H, W, 3)`` in [0, 1]: a coarse random texture panning 2 px a frame."""
    rng = np.random.default_rng(seed)
    texture = np.kron(rng.random((H // 4, (W + 2 * count) // 4 + 1, 3)), np.ones((4, 4, 1)))
    return np.stack([texture[:, 2 * t:2 * t + W] for t in range(count)]).astype(np.float32)


def _plan(kind: TaskKind, new: int | None = None, known: int = 2, count: int = 5) -> FramePlan:
    """A plan of ``kind``; by default five frames (4k+1: no rounding), two of them known context."""
    if new is None:
        new = 1 if kind is TaskKind.BRIDGE else 3
    if kind is TaskKind.EXTEND_FORWARD:
        return FramePlan.extend(range(100, 110), new, context=known)
    if kind is TaskKind.EXTEND_BACKWARD:
        return FramePlan.extend(range(100, 110), new, context=known, backward=True)
    if kind is TaskKind.BRIDGE:
        return FramePlan.bridge(range(100, 110), range(200, 210), new, context=known)
    return FramePlan.fill(range(100, 100 + count))


def _window(plan: FramePlan) -> tuple[np.ndarray, np.ndarray]:
    """The engine's input for ``plan``: known pixels, zeros where generated; masks (1 = generate)."""
    frames = _pictures(len(plan))
    masks = np.zeros((len(plan), H, W), np.float32)
    masks[plan.generate_positions] = 1
    for t in plan.fill_positions:  # a 16x16 hole moving right
        masks[t, 16:32, 8 + 8 * t:24 + 8 * t] = 1
    return frames * (1 - masks[..., None]), masks


@pytest.fixture
def conditioning(monkeypatch):
    """Every window's ``(video, mask)`` as the pipeline encodes them: video in [-1, 1], mask 0/1."""
    calls = []
    encode = WanVACEPipeline.prepare_video_latents

    def spy(pipe, video, mask, *args, **kwargs):
        calls.append((video[0].permute(1, 2, 3, 0).numpy().copy(), mask[0, 0].numpy().copy()))
        return encode(pipe, video, mask, *args, **kwargs)

    monkeypatch.setattr(WanVACEPipeline, "prepare_video_latents", spy)
    return calls  # [((T, h, w, 3), (T, h, w)), ...]


def _per_frame(mask: np.ndarray) -> list[float]:
    """A window's mask as one value a frame: 1 all generated, 0 all kept, 0.5 partly."""
    return [1.0 if m.all() else 0.0 if not m.any() else 0.5 for m in mask]


# ---------------------------------------------------------------------------
# every kind, and what reaches the pipeline
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind, per_frame", [
    (TaskKind.EXTEND_FORWARD, [0, 0, 1, 1, 1]),
    (TaskKind.EXTEND_BACKWARD, [1, 1, 1, 0, 0]),
    (TaskKind.BRIDGE, [0, 0, 1, 0, 0]),
    (TaskKind.FILL, [0.5] * 5),
])
def test_every_kind_end_to_end_with_vace_conditioning(engine, conditioning, kind, per_frame):
    plan = _plan(kind)
    frames, masks = _window(plan)
    reports = []
    generated = engine.generate(plan, frames, masks, prompt="a camera pans left", seed=1,
                             progress=lambda f, m: reports.append((f, m)))
    result, info, warnings = generated.frames, generated.info, generated.warnings
    assert result.shape == (len(plan), H, W, 3) and result.dtype == np.float32
    assert np.isfinite(result).all()
    assert result[masks > 0].std() > 0  # the generated pixels are a picture, not a constant
    assert info["working_size"] == [WORKING, WORKING]
    assert info["windows"] == [[0, len(plan)]] and warnings == []
    assert info["frame_rate"] == {"timeline": 24.0, "model_native": 16.0}
    assert any(m.endswith("denoising step 2/2; VAE decode") for _, m in reports)
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    (video, mask), = conditioning
    small, small_masks = to_working(frames, masks, (WORKING, WORKING))
    assert np.array_equal(mask, small_masks)  # 1 exactly where the plan generates, at working size
    assert _per_frame(mask) == per_frame
    keep, hole = mask == 0, mask > 0
    assert np.allclose(video[keep], 2 * small[keep] - 1, atol=1e-6)  # kept pixels, as pictures in [-1, 1]
    assert np.array_equal(video[hole], np.zeros_like(video[hole]))  # grey where generated


def test_engine_describes_its_model(engine):
    assert engine.describe()["engine"] == "wan-vace"
    assert engine.describe()["model"] == "shotfill-tests/tiny-wan-vace@0"
    assert len(engine.describe()["model_sha256"]) == 64
    assert (engine.frame_step, engine.size_multiple, engine.default_window) == (4, 16, 81)


def test_pipeline_call_carries_the_engine_options(tiny, monkeypatch):
    seen = {}
    call = WanVACEPipeline.__call__

    def spy(pipe, **kwargs):
        seen.update(kwargs)
        return call(pipe, **kwargs)

    monkeypatch.setattr(WanVACEPipeline, "__call__", spy)
    engine = _engine(tiny, guidance_scale=3.5, negative_prompt="blurry, static")
    plan = _plan(TaskKind.EXTEND_FORWARD)
    engine.generate(plan, *_window(plan), prompt="rain at night", seed=0)
    assert {k: seen[k] for k in ("prompt", "negative_prompt", "num_inference_steps", "guidance_scale",
                                 "height", "width", "num_frames", "output_type")} == {
        "prompt": "rain at night", "negative_prompt": "blurry, static", "num_inference_steps": 2,
        "guidance_scale": 3.5, "height": WORKING, "width": WORKING, "num_frames": 5, "output_type": "np"}
    assert seen["video"].shape == (1, 5, WORKING, WORKING, 3) and seen["mask"].shape == (1, 5, WORKING, WORKING, 1)


def test_out_of_range_working_values_reach_the_pipeline_clipped(engine, conditioning):
    # the working encoding carries out-of-gamut colour below 0; the conditioning must stay pictures in [0, 1]
    plan = _plan(TaskKind.EXTEND_FORWARD)
    frames, masks = _window(plan)
    frames[plan.known_positions] = frames[plan.known_positions] * 1.4 - 0.2
    engine.generate(plan, frames, masks, seed=0)
    (video, mask), = conditioning
    small, _ = to_working(frames, masks, (WORKING, WORKING))
    keep = mask == 0
    assert np.allclose(video[keep], 2 * np.clip(small[keep], 0, 1) - 1, atol=1e-6)
    assert video.min() == -1.0 and video.max() == 1.0


# ---------------------------------------------------------------------------
# frame counts and windows
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind, per_frame, written", [
    # 6 frames become 9: three more frames to generate at the window's far end, dropped afterwards
    (TaskKind.EXTEND_FORWARD, [0, 0, 1, 1, 1, 1, 1, 1, 1], slice(0, 6)),
    (TaskKind.EXTEND_BACKWARD, [1, 1, 1, 1, 1, 1, 1, 0, 0], slice(3, 9)),
])
def test_frame_count_rounded_up_to_4k_plus_1_with_a_warning(engine, conditioning, kind, per_frame, written):
    plan = _plan(kind, new=4)
    frames, masks = _window(plan)
    generated = engine.generate(plan, frames, masks, seed=0)
    result, warnings = generated.frames, generated.warnings
    (_, mask), = conditioning
    assert len(mask) == 9 and _per_frame(mask) == per_frame
    small, small_masks = to_working(frames, masks, (WORKING, WORKING))
    assert np.array_equal(mask[written], small_masks)  # the plan's frames sit where they belong
    assert result.shape == (6, H, W, 3)
    assert warnings == [
        "window 1: 6 frames rounded up to 9 (wan-vace takes 4k+1); the extra frames are generated and dropped"]


@pytest.mark.parametrize("backward, windows, per_frame", [
    (False, [[0, 5], [3, 8], [4, 9]], [[0, 0, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]]),
    (True, [[4, 9], [1, 6], [0, 5]], [[1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]),
])
def test_long_plans_run_as_chained_windows(tiny, conditioning, backward, windows, per_frame):
    engine = _engine(tiny, window=5, overlap=2)
    plan = FramePlan.extend(range(100, 110), 7, context=2, backward=backward)
    frames, masks = _window(plan)
    generated = engine.generate(plan, frames, masks, seed=0)
    result, info = generated.frames, generated.info
    assert info["windows"] == windows
    assert [_per_frame(mask) for _, mask in conditioning] == per_frame
    # a later window's context is what the earlier windows generated: pictures, not grey
    second, second_mask = conditioning[1]
    context = second[second_mask == 0]
    assert np.abs(context).max() > 0.05 and not np.allclose(context, context.flat[0])
    assert result.shape == (9, H, W, 3) and np.isfinite(result).all()


# ---------------------------------------------------------------------------
# seeds, model checks
# ---------------------------------------------------------------------------
def test_same_seed_same_frames_other_seed_other_frames(engine):
    plan = _plan(TaskKind.EXTEND_FORWARD)
    frames, masks = _window(plan)
    first = engine.generate(plan, frames, masks, prompt="a car", seed=7).frames
    again = engine.generate(plan, frames, masks, prompt="a car", seed=7).frames
    other = engine.generate(plan, frames, masks, prompt="a car", seed=8).frames
    assert np.array_equal(first, again)
    assert not np.allclose(first[plan.generate_positions], other[plan.generate_positions])


def test_cancel_stops_the_pipeline_between_steps(engine):
    plan = _plan(TaskKind.EXTEND_FORWARD)
    reports = []
    with pytest.raises(CancelledError):
        engine.generate(plan, *_window(plan), seed=0, progress=lambda f, m: reports.append(m),
                        cancel=lambda: len(reports) >= 1)
    assert reports == ["window 1/1: denoising step 1/2"]


def test_tampered_weight_file_is_refused_when_the_engine_is_made(tiny, tmp_path):
    folder = shutil.copytree(tiny[0], tmp_path / "tiny-wan-vace")
    manifest = _manifest(folder, tmp_path / "models.json")
    weights = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size, one weight changed
    weights.write_bytes(bytes(data))
    with pytest.raises(ShotfillError, match="diffusion_pytorch_model.safetensors"):
        get_engine("wan-vace", model=str(folder), manifest=str(manifest), **FAST)


def test_working_size_must_be_a_multiple_of_16(tiny):
    with pytest.raises(ShotfillError, match="working_size: must be a multiple of 16"):
        _engine(tiny, working_size=40)


# ---------------------------------------------------------------------------
# through the command line
# ---------------------------------------------------------------------------
def _exr_plate(directory, count: int) -> str:
    """``count`` EXR frames ``plate.0001.exr``..., scene-linear (values above 1 too)."""
    directory.mkdir(parents=True)
    for t, picture in enumerate(_pictures(count) * 1.5, start=1):
        write_exr(directory / f"plate.{t:04d}.exr", picture)
    return str(directory / "plate.####.exr")


def test_cli_extend_and_fill_write_exr_frames(tiny, tmp_path):
    folder, manifest = tiny
    model = ["--engine", "wan-vace", "--model", str(folder), "--manifest", str(manifest), "--memory", "cpu",
             "--steps", "2", "--engine-option", f"working_size={WORKING}", "--engine-option", "guidance_scale=1",
             "--no-preview"]
    source = _exr_plate(tmp_path / "plates", 5)

    out = tmp_path / "extended"
    assert cli.main(["extend", source, "--frames", "3", "--context", "2", "--out", str(out), *model]) == 0
    written = sorted(p.name for p in out.glob("*.exr"))
    assert written == ["plate_ext.0006.exr", "plate_ext.0007.exr", "plate_ext.0008.exr"]
    assert all(np.isfinite(read_exr(out / name).pixels).all() for name in written)

    masks = tmp_path / "masks"
    masks.mkdir()
    for t in range(1, 6):
        hole = np.zeros((H, W), np.uint8)
        hole[12:30, 10 + 4 * t:30 + 4 * t] = 255
        cv2.imwrite(str(masks / f"m.{t:04d}.png"), hole)
    out = tmp_path / "filled"
    assert cli.main(["fill", source, "--mask", str(masks / "m.####.png"), "--out", str(out), *model]) == 0
    assert len(list(out.glob("*.exr"))) == 5
    for t in (1, 5):
        filled = read_exr(out / f"plate_fill.{t:04d}.exr").pixels
        plate = read_exr(tmp_path / "plates" / f"plate.{t:04d}.exr").pixels
        keep = cv2.imread(str(masks / f"m.{t:04d}.png"), cv2.IMREAD_GRAYSCALE) == 0
        assert np.array_equal(filled[keep], plate[keep])  # known pixels bit-exact
        assert not np.array_equal(filled[~keep], plate[~keep]) and np.isfinite(filled).all()


def test_out_of_gpu_memory_mid_job_exits_2_naming_the_next_mode_and_writes_nothing(tiny, tmp_path, monkeypatch,
                                                                                    capsys):
    from shotfill.engines.pretrained.wan_vace import WanVACEEngine

    folder, manifest = tiny
    calls = []
    run_window = WanVACEEngine.run_window

    def second_window_runs_out(self, *args, **kwargs):  # as a GPU would, one window into the job
        calls.append(1)
        if len(calls) == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return run_window(self, *args, **kwargs)

    monkeypatch.setattr(WanVACEEngine, "run_window", second_window_runs_out)
    source = _exr_plate(tmp_path / "plates", 5)
    out = tmp_path / "extended"
    args = ["extend", source, "--frames", "8", "--context", "2", "--out", str(out), "--engine", "wan-vace",
            "--model", str(folder), "--manifest", str(manifest), "--memory", "cpu", "--steps", "1",
            "--engine-option", f"working_size={WORKING}", "--engine-option", "window=5",
            "--engine-option", "overlap=2", "--no-preview"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "ran out of memory in memory mode 'cpu'" in err and "resumes" in err
    assert not list(out.glob("*.exr")) and not list(out.glob("*.tmp*"))       # nothing half-written
    monkeypatch.setattr(WanVACEEngine, "run_window", run_window)              # the re-run completes
    assert cli.main(args) == 0 and len(list(out.glob("*.exr"))) == 8


# ---------------------------------------------------------------------------
# real footage
# ---------------------------------------------------------------------------
def test_fill_on_real_footage(engine, shared_data, conditioning):
    """Five frames of DAVIS bmx-trees (432x240) with ProPainter's removal masks."""
    shot = shared_data / "footage" / "propainter_bmx-trees"
    names = sorted(p.name for p in (shot / "frames").glob("*.jpg"))[:5]
    frames = np.stack([cv2.imread(str(shot / "frames" / n))[..., ::-1] for n in names]).astype(np.float32) / 255
    masks = np.stack([cv2.imread(str(shot / "masks" / n.replace(".jpg", ".png")), cv2.IMREAD_GRAYSCALE) > 0
                      for n in names]).astype(np.float32)
    plan = FramePlan.fill(range(len(names)))
    generated = engine.generate(plan, frames * (1 - masks[..., None]), masks, seed=0)
    result = generated.frames
    assert result.shape == frames.shape and np.isfinite(result).all()
    (video, mask), = conditioning
    _, small_masks = to_working(frames, masks, (16, WORKING))  # 432x240 runs at 32x16
    assert mask.shape == (5, 16, WORKING) and np.array_equal(mask, small_masks)
    assert np.array_equal(video[mask > 0], np.zeros_like(video[mask > 0]))
