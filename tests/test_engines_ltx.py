"""The ``ltx`` engine on a tiny random LTX-Video pipeline built in code (``tiny_ltx.py``).

What is checked: how a window's known frames become LTX conditions (:func:`plan_conditioning`,
drawn as in its docstring, and its rules over many layouts); every supported kind end to end
through ``engine.generate`` and fill refused; what reaches the pipeline (the conditions' frames
and positions, and which latents the pipeline holds fixed); the pipeline's frames read back at
the right window positions; frame counts rounded to 8k+1 with a warning; chained windows
forward and backward; progress and cancel; determinism; a tampered weight file and a model of
other factors refused; one run through the command line, writing EXR frames; real footage.
"""
from __future__ import annotations

import shutil
import types

import cv2
import numpy as np
import pytest
from diffusers import AutoencoderKLLTXVideo, LTXConditionPipeline

from shotfill import cli
from shotfill.engines import get_engine
from shotfill.engines.pretrained.ltx import LTXEngine, plan_conditioning
from shotfill.engines.working import to_working, working_size
from shotfill.errors import CancelledError, EngineUnavailableError, InputError
from shotfill.io.exr import read_exr, read_exr_header, write_exr
from shotfill.plan import FramePlan, TaskKind
pytest.importorskip("transformers", reason="the pretrained engines need the [pretrained] extra")
from tiny_ltx import save_tiny_ltx, tiny_ltx_pipeline  # noqa: E402
from tiny_text import write_manifest  # noqa: E402

H, W = 48, 64
#: working size for the tests: 64x48 plates run at 32x32 (LTX sizes are multiples of 32)
WORKING = 32
#: engine options every test uses: the tiny model on the CPU, two steps, no guidance pass
FAST = {"memory": "cpu", "working_size": WORKING, "steps": 2, "guidance_scale": 1.0}


# ---------------------------------------------------------------------------
# the tiny model, its manifest, plates and plans
# ---------------------------------------------------------------------------
def _manifest(folder, path, name="tiny-ltx"):
    """A manifest naming ``folder`` (every file's size and sha256), written to ``path``."""
    return write_manifest(folder, path, name=name, engine="ltx", pipeline="LTXConditionPipeline",
                          native_frame_rate=25.0, max_frames=257)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """``(model folder, manifest file)`` of the tiny random LTX-Video, built once."""
    root = tmp_path_factory.mktemp("ltx")
    folder = save_tiny_ltx(root / "tiny-ltx")
    return folder, _manifest(folder, root / "models.json")


def _engine(tiny, **options) -> LTXEngine:
    folder, manifest = tiny
    return get_engine("ltx", model=str(folder), manifest=str(manifest), **{**FAST, **options})


def _pictures(count: int, height: int = H, width: int = W, seed: int = 0) -> np.ndarray:
    """``(count, height, width, 3)`` in [0, 1]: a coarse random texture panning 2 px a frame."""
    rng = np.random.default_rng(seed)
    texture = np.kron(rng.random((height // 4, (width + 2 * count) // 4 + 1, 3)), np.ones((4, 4, 1)))
    return np.stack([texture[:, 2 * t:2 * t + width] for t in range(count)]).astype(np.float32)


def _plan(kind: TaskKind, new: int, known: int = 9) -> FramePlan:
    if kind is TaskKind.EXTEND_FORWARD:
        return FramePlan.extend(range(100, 140), new, context=known)
    if kind is TaskKind.EXTEND_BACKWARD:
        return FramePlan.extend(range(100, 140), new, context=known, backward=True)
    return FramePlan.bridge(range(100, 140), range(200, 240), new, context=known)


def _window(plan: FramePlan, height: int = H, width: int = W) -> tuple[np.ndarray, np.ndarray]:
    """The engine's input for ``plan``: known pixels, zeros where generated; masks (1 = generate)."""
    frames = _pictures(len(plan), height, width)
    masks = np.zeros((len(plan), height, width), np.float32)
    masks[plan.generate_positions] = 1
    return frames * (1 - masks[..., None]), masks


@pytest.fixture
def calls(monkeypatch):
    """Every pipeline call's keyword arguments, with what ``prepare_latents`` made of them.

    Each entry is the call's kwargs plus ``"latent_mask"`` (one value per latent frame of the
    main grid: 1 where the pipeline holds the latent fixed, 0 where it denoises it) and
    ``"extra_frames"`` (the frame positions of the extra conditioning tokens).
    """
    recorded = []
    call, prepare = LTXConditionPipeline.__call__, LTXConditionPipeline.prepare_latents

    def spy_call(pipe, **kwargs):
        recorded.append(dict(kwargs))
        return call(pipe, **kwargs)

    def spy_prepare(pipe, *args, **kwargs):
        latents, mask, coords, extra = prepare(pipe, *args, **kwargs)
        per_token = mask[0, extra:].reshape(kwargs["num_frames"] // 8 + 1, -1)
        assert (per_token == per_token[:, :1]).all()  # a latent frame is held or denoised whole
        recorded[-1]["latent_mask"] = per_token[:, 0].tolist()
        recorded[-1]["extra_frames"] = sorted(set(coords[0, 0, :extra].tolist()))
        return latents, mask, coords, extra

    monkeypatch.setattr(LTXConditionPipeline, "__call__", spy_call)
    monkeypatch.setattr(LTXConditionPipeline, "prepare_latents", spy_prepare)
    return recorded


# ---------------------------------------------------------------------------
# from known frames to conditions
# ---------------------------------------------------------------------------
def _drawn(window: str) -> str:
    """``window`` (``K`` known, ``G`` generate) as :func:`plan_conditioning` lays it out, drawn as in its docstring."""
    layout = plan_conditioning([c == "K" for c in window])
    row = ["G" if c == "G" else "." for c in window]
    for first, count in layout.conditions:
        single = count == 1 and layout.frame_index(first) > 0
        row[first:first + count] = ["i" if single else "V"] * count
    return " ".join(row) + f"  (offset {layout.offset}, {layout.num_frames} frames)"


@pytest.mark.parametrize("window, drawn", [
    # extend forward: the 8k+1 frames nearest the cut at frame 0; the older ones are not shown
    ("KKKKKKKKKK" "GGGGGGG", ". V V V V V V V V V G G G G G G G  (offset 1, 17 frames)"),
    ("KKKKKKKKK" "GGGGGGGG", "V V V V V V V V V G G G G G G G G  (offset 0, 17 frames)"),
    # extend backward: the context at the end of the window, from the cut, on a multiple of 8
    ("GGGGGGGG" "KKKKKKKKK", "G G G G G G G G V V V V V V V V V  (offset 0, 17 frames)"),
    ("GGGGGGGG" "KKKKKKKKKKKK", "G G G G G G G G V V V V V V V V V . . .  (offset 0, 17 frames)"),
    # bridge: A's tail at 0; B's head from the cut: images up to a multiple of 8, then a video
    ("KKKKKKKKKK" "GGGGGGG" "KKKKKKKKKK",
     ". V V V V V V V V V G G G G G G G V V V V V V V V V .  (offset 1, 25 frames)"),
    ("KKKKKKKKK" "GGGGGGGGGGG" "KKKKKKKKKKKKK",
     "V V V V V V V V V G G G G G G G G G G G i i i i V V V V V V V V V  (offset 0, 33 frames)"),
    # a chained window of 8 known frames (the default overlap): one frame shown
    ("KKKKKKKK" "GGGGGGGGG", ". . . . . . . V G G G G G G G G G  (offset 7, 17 frames)"),
])
def test_known_frames_become_conditions(window, drawn):
    assert _drawn(window) == drawn


def test_conditions_follow_the_pipeline_rules_for_any_window():
    rng = np.random.default_rng(0)
    for _ in range(500):
        before, new, after = rng.integers(0, 30), rng.integers(1, 40), rng.integers(0, 30)
        known = [True] * before + [False] * new + [True] * after
        layout = plan_conditioning(known)
        assert (layout.num_frames - 1) % 8 == 0
        shown = set()
        for first, count in layout.conditions:
            index = layout.frame_index(first)
            assert (count - 1) % 8 == 0 and 0 <= index and index + count <= layout.num_frames
            assert count == 1 or index % 8 == 0  # videos start on a latent boundary
            assert all(known[first:first + count])
            shown.update(range(first, first + count))
        assert layout.unshown == sum(known) - len(shown)
        assert all(0 <= layout.frame_index(t) < layout.num_frames for t in range(before, before + new))
        if before:  # the frames nearest the cut are shown, on both sides
            assert before - 1 in shown and layout.offset == (before - 1) % 8
        if after:
            assert before + new in shown
            assert layout.unshown <= 7 + (7 if before else 0)


# ---------------------------------------------------------------------------
# generate, every kind
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [TaskKind.EXTEND_FORWARD, TaskKind.EXTEND_BACKWARD, TaskKind.BRIDGE])
def test_every_supported_kind_generates_plate_sized_frames(tiny, kind):
    engine = _engine(tiny, guidance_scale=3.0, negative_prompt="blurry")
    plan = _plan(kind, new=7 if kind is TaskKind.BRIDGE else 8)  # 9+8 and 9+7+9: 8k+1, no rounding
    frames, masks = _window(plan)
    generated = engine.generate(plan, frames, masks, prompt="a camera pans left", seed=1)
    result, info, warnings = generated.frames, generated.info, generated.warnings
    assert result.shape == (len(plan), H, W, 3) and result.dtype == np.float32
    assert np.isfinite(result).all()
    assert not np.allclose(result[plan.generate_positions], 0)
    assert warnings == [] and info["windows"] == [[0, len(plan)]]
    assert info["working_size"] == [WORKING, WORKING] and info["frame_rate"]["model_native"] == 25.0
    assert all(c["frame_index"] % 8 == 0 for c in info["conditioning"][0]["conditions"])


def test_fill_is_refused_naming_the_kinds_it_does(tiny):
    engine = _engine(tiny)
    plan = FramePlan.fill(range(9))
    with pytest.raises(InputError, match="cannot do fill.*bridge, extend_backward, extend_forward"):
        engine.generate(plan, _pictures(9), np.ones((9, H, W), np.float32))


def test_engine_describes_its_model(tiny):
    engine = _engine(tiny)
    described = engine.describe()
    assert described["engine"] == "ltx" and described["model"] == "shotfill-tests/tiny-ltx@0"
    assert described["model_sha256"] == engine.model.checksum and len(described["model_sha256"]) == 64


# ---------------------------------------------------------------------------
# what reaches the pipeline
# ---------------------------------------------------------------------------
def test_known_frames_reach_the_pipeline_at_their_positions(tiny, calls):
    """Bridge ``[A 9][7 new][B 17]`` at 64x32: A at frame 0, B at the cut (frame 16, a multiple of 8)."""
    engine = _engine(tiny, working_size=64)
    plan = FramePlan.bridge(range(100, 109), range(200, 240), 7, context=17)  # A has 9 frames
    frames, masks = _window(plan, 32, 64)
    engine.generate(plan, frames, masks, prompt="a car at night", seed=0)
    small, _ = to_working(frames, masks, working_size(32, 64, 64, 32))
    (call,) = calls
    assert call["num_frames"] == 33 and call["height"] == 32 and call["width"] == 64
    assert call["prompt"] == "a car at night" and call["num_inference_steps"] == 2 and call["guidance_scale"] == 1.0
    assert [(c.frame_index, len(c.video)) for c in call["conditions"]] == [(0, 9), (16, 17)]
    assert np.array_equal(call["conditions"][0].video, small[0:9])    # A's tail, bit for bit
    assert np.array_equal(call["conditions"][1].video, small[16:33])  # B's head
    # held fixed: A's two latents and B's in-place latent (frames 25-32); B's first two latents
    # (frames 16-24) go in as extra tokens at their frame positions; the latents of new frames are denoised
    assert call["latent_mask"] == [1, 1, 0, 0, 1]
    assert call["extra_frames"] == [16, 17]
    assert call["frame_rate"] == 24.0 and call["output_type"] == "np"
    assert (call["decode_timestep"], call["decode_noise_scale"], call["image_cond_noise_scale"]) == (0.05, 0.025, 0.025)


def test_generated_frames_never_reach_the_pipeline_and_rounding_is_reported(tiny, calls):
    """Bridge ``[A 9][5 new][B 9]``: 23 frames rounded to 25; B's first frames as single images."""
    engine = _engine(tiny)
    plan = _plan(TaskKind.BRIDGE, new=5)
    frames, masks = _window(plan)
    warnings = engine.generate(plan, frames, masks, seed=0).warnings
    small, _ = to_working(frames, masks, (WORKING, WORKING))
    (call,) = calls
    assert [(c.frame_index, len(c.video)) for c in call["conditions"]] == [(0, 9), (14, 1), (15, 1), (16, 1)]
    assert call["num_frames"] == 25
    known = set(plan.known_positions)
    for condition in call["conditions"]:  # plate pixels of known frames, never the zeros of generated ones
        span = range(condition.frame_index, condition.frame_index + len(condition.video))
        assert set(span) <= known and np.array_equal(condition.video, small[span.start:span.stop])
    # every latent holding a frame to generate (or the padding) is denoised; A's latents are held
    assert call["latent_mask"] == [1, 1, 0, 0] and call["extra_frames"] == [14, 15, 16]
    assert any("23 frames rounded up to 25" in w for w in warnings)
    assert any("6 known frames, the farthest from the cut, are not shown" in w for w in warnings)


def test_pipeline_frames_are_read_back_at_their_window_positions(tiny, monkeypatch):
    """A window whose first 3 known frames are not shown: pipeline frame p is window frame p + 3."""
    engine = _engine(tiny)
    seen = {}

    def fake_pipe(**kwargs):  # frame p of the output is p / 100 everywhere
        seen.update(kwargs)
        n = kwargs["num_frames"]
        frames = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None] / 100,
                                 (n, kwargs["height"], kwargs["width"], 3))
        return types.SimpleNamespace(frames=frames[None])

    monkeypatch.setattr(engine, "pipe", fake_pipe)
    layout = plan_conditioning([True] * 12 + [False] * 13)
    frames = _pictures(25, WORKING, WORKING)
    pictures = engine.run_pipeline(frames, layout, prompt="", generator=None, frame_rate=24.0,
                                   progress=lambda f, m: None, cancel=None)
    assert layout.offset == 3 and layout.num_frames == 25  # pipeline frames 22-24 lie past the window
    assert [(c.frame_index, len(c.video)) for c in seen["conditions"]] == [(0, 9)]
    assert np.array_equal(seen["conditions"][0].video, frames[3:12])
    assert np.array_equal(pictures[:3], frames[:3])  # not shown: the window's own
    assert np.allclose(pictures[3:, 0, 0, 0], np.arange(22) / 100)


def test_windows_reach_the_model_clipped_to_its_range_and_known_pixels_come_back_unclipped(tiny, monkeypatch):
    engine = _engine(tiny, detail=False)
    plan = _plan(TaskKind.EXTEND_FORWARD, 8)
    frames = _pictures(len(plan))
    frames[plan.generate_positions] = 0
    frames[3] -= 0.5     # below 0: diffusers would read the whole video as already in [-1, 1]
    frames[5] += 0.8     # a highlight above 1 in the working encoding
    masks = np.zeros(frames.shape[:3], np.float32)
    masks[plan.generate_positions] = 1
    seen = []
    run_window = engine.run_window

    def spy(window, window_masks, **kwargs):
        seen.append((float(window.min()), float(window.max())))
        return run_window(window, window_masks, **kwargs)

    monkeypatch.setattr(engine, "run_window", spy)
    engine.generate(plan, frames, masks)
    assert seen and all(0.0 <= low and high <= 1.0 for low, high in seen)


# ---------------------------------------------------------------------------
# chained windows, progress, cancel, determinism
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [TaskKind.EXTEND_FORWARD, TaskKind.EXTEND_BACKWARD])
def test_a_long_plan_runs_as_chained_windows(tiny, kind, calls):
    engine = _engine(tiny, window=17, overlap=9)
    plan = _plan(kind, new=20)  # 29 frames: windows of 17 frames, each seeing the 9 before it
    frames, masks = _window(plan)
    generated = engine.generate(plan, frames, masks, seed=3)
    result, info = generated.frames, generated.info
    assert result.shape == (29, H, W, 3) and np.isfinite(result).all()
    windows = info["windows"]
    if kind is TaskKind.EXTEND_FORWARD:
        assert windows == [[0, 17], [8, 25], [12, 29]]
        assert [c["conditions"][0]["frame_index"] for c in info["conditioning"]] == [0, 0, 0]
    else:  # latest first, each window's context at its end
        assert windows == [[12, 29], [4, 21], [0, 17]]
        # the last window's 13 known frames start at 4: images at 4-7, then a video from 8
        assert [c["conditions"][0]["frame_index"] for c in info["conditioning"]] == [8, 8, 4]
    assert len(calls) == 3 and all(call["num_frames"] == 17 for call in calls)
    # the second window's context holds frames the first window generated
    second = calls[1]["conditions"][0 if kind is TaskKind.EXTEND_FORWARD else -1].video
    assert not np.allclose(second, 0) and np.isfinite(second).all()


def test_progress_reaches_the_end_and_cancel_stops_the_steps(tiny):
    engine = _engine(tiny)
    plan = _plan(TaskKind.EXTEND_FORWARD, new=8)
    frames, masks = _window(plan)
    reports = []
    engine.generate(plan, frames, masks, progress=lambda f, m: reports.append((f, m)))
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("denoising step 2/2; VAE decode" in m for _, m in reports)
    with pytest.raises(CancelledError):
        engine.generate(plan, frames, masks, cancel=lambda: True)


def test_same_seed_same_frames(tiny):
    engine = _engine(tiny)
    plan = _plan(TaskKind.EXTEND_BACKWARD, new=8)
    frames, masks = _window(plan)
    first = engine.generate(plan, frames, masks, seed=7).frames
    again = engine.generate(plan, frames, masks, seed=7).frames
    other = engine.generate(plan, frames, masks, seed=8).frames
    assert np.array_equal(first, again)
    assert not np.allclose(first[plan.generate_positions], other[plan.generate_positions])


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------
def test_a_tampered_weight_file_is_refused(tiny, tmp_path):
    folder, manifest = tiny
    copy = shutil.copytree(folder, tmp_path / "tampered")
    weights = copy / "transformer" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # one byte of a weight, same size
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match="checksum mismatch: transformer/diffusion_pytorch_model.safetensors"):
        get_engine("ltx", model=str(copy), manifest=str(manifest), **FAST)


def test_a_model_with_other_factors_is_refused(tmp_path):
    """A VAE that compresses time 4x (two temporal down-samplings) is not an LTX-Video model here."""
    pipe = tiny_ltx_pipeline()
    pipe.register_modules(vae=AutoencoderKLLTXVideo(
        latent_channels=8, block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False), decoder_spatio_temporal_scaling=(True, True, False, False),
        patch_size=8))
    folder = tmp_path / "other"
    pipe.save_pretrained(folder, safe_serialization=True)
    manifest = _manifest(folder, tmp_path / "models.json", name="other")
    with pytest.raises(EngineUnavailableError, match=r"other: the model compresses time 4x and space 32x"):
        get_engine("ltx", model=str(folder), manifest=str(manifest), **FAST)


# ---------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------
def test_extend_through_the_command_line_writes_exr_frames(tiny, tmp_path):
    folder, manifest = tiny
    plates = tmp_path / "plates"
    plates.mkdir()
    for t, picture in enumerate(_pictures(12) * 2.0, start=1001):  # scene-linear, above 1 too
        write_exr(plates / f"plate.{t:04d}.exr", picture)
    out = tmp_path / "out"
    code = cli.main(["extend", str(plates / "plate.####.exr"), "--frames", "3", "--engine", "ltx",
                     "--out", str(out), "--model", str(folder), "--manifest", str(manifest), "--memory", "cpu",
                     "--steps", "2", "--context", "9", "--engine-option", f"working_size={WORKING}",
                     "--no-preview", "--seed", "4"])
    assert code == 0
    written = sorted(p.name for p in out.glob("*.exr"))
    assert written == ["plate_ext.1013.exr", "plate_ext.1014.exr", "plate_ext.1015.exr"]
    header = read_exr_header(out / written[0])
    assert header["shotfill.engine"] == "ltx" and header["shotfill.model"] == "shotfill-tests/tiny-ltx@0"
    assert len(header["shotfill.modelSha256"]) == 64 and header["shotfill.seed"] == 4
    for name in written:
        pixels = read_exr(out / name).display_rgb()
        assert pixels.shape == (H, W, 3) and np.isfinite(pixels).all()


# ---------------------------------------------------------------------------
# real footage
# ---------------------------------------------------------------------------
def test_bridge_between_two_real_shots(tiny, shared_data, calls):
    """The tail of DAVIS car-shadow to the head of drift-straight (854x480), 7 frames between."""
    def read(shot, names):
        return np.stack([cv2.imread(str(shared_data / "footage" / shot / "frames" / n))[..., ::-1]
                         for n in names]).astype(np.float32) / 255

    a_names = sorted(p.name for p in (shared_data / "footage" / "davis2016_car-shadow" / "frames").glob("*.jpg"))
    a = read("davis2016_car-shadow", a_names[-9:])
    b = read("davis2016_drift-straight", [f"{t:05d}.jpg" for t in range(9)])
    plan = FramePlan.bridge(range(9), range(9), 7, context=9)
    frames = np.concatenate([a, np.zeros((7,) + a.shape[1:], np.float32), b])
    masks = np.zeros(frames.shape[:3], np.float32)
    masks[plan.generate_positions] = 1
    generated = _engine(tiny, working_size=64).generate(plan, frames, masks, seed=0)
    result = generated.frames
    assert result.shape == frames.shape and np.isfinite(result).all()
    (call,) = calls
    assert call["height"] == 32 and call["width"] == 64  # 854x480 runs at 64x32
    small, _ = to_working(frames, masks, (32, 64))
    assert [(c.frame_index, len(c.video)) for c in call["conditions"]] == [(0, 9), (16, 9)]
    assert np.array_equal(call["conditions"][0].video, small[:9])
    assert np.array_equal(call["conditions"][1].video, small[16:])


@pytest.mark.parametrize("option, call_rate, told", [(None, 25.0, 25.0), (None, None, 24.0), (30.0, 25.0, 30.0)])
def test_the_model_is_told_the_calls_frame_rate_unless_the_engine_option_says_otherwise(tiny, calls, option,
                                                                                        call_rate, told):
    engine = _engine(tiny, **({} if option is None else {"frame_rate": option}))
    plan = _plan(TaskKind.EXTEND_FORWARD, new=8)
    generated = engine.generate(plan, *_window(plan), seed=0, frame_rate=call_rate)
    (call,) = calls
    assert call["frame_rate"] == told and generated.info["frame_rate"]["timeline"] == told
