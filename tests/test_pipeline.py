"""The worker pipeline end to end on small synthetic EXR plates: plan, engine, EXR out, resume."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

from shotfill.errors import CancelledError, InputError, MissingFrameError, ShotfillError
from shotfill.events import ListSink
from shotfill.io.exr import read_exr, read_exr_header, write_exr
from shotfill.job import JobSpec
from shotfill.timeline import publish
from shotfill.worker import run_job

H, W = 48, 64


def _texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.random((H // 4, (W + 64) // 4, 3)).astype(np.float32)
    return np.kron(base, np.ones((4, 4, 1), np.float32)) * 2.0   # values above 1 too


def _plate(directory, name="plate", frames=range(1001, 1013), seed=0, speed=2, windows=None):
    """A texture panning ``speed`` px per frame, written as half EXR ``name.####.exr``."""
    directory.mkdir(parents=True, exist_ok=True)
    tex = _texture(seed)
    for i, f in enumerate(frames):
        img = tex[:, i * speed:i * speed + W]
        kw = {}
        if windows is not None:
            data, disp = windows
            kw = {"data_window": data, "display_window": disp}
            img = img[data[1] - disp[1]:data[3] - disp[1] + 1, data[0] - disp[0]:data[2] - disp[0] + 1]
        write_exr(directory / f"{name}.{f:04d}.exr", img, **kw)
    return str(directory / f"{name}.####.exr")


def _job(tmp_path, **over):
    d = {"task": "extend_forward", "frames": 4, "engine": "flow",
         "output": {"dir": str(tmp_path / "out"), "preview": False}}
    d.update(over)
    return JobSpec.from_dict(d)


def test_extend_writes_numbered_frames_with_provenance(tmp_path):
    src = _plate(tmp_path / "plates")
    sink = ListSink()
    res = run_job(_job(tmp_path, source=src, seed=5, prompt="dusk"), sink)
    assert res.frames == [1013, 1014, 1015, 1016] and res.written == res.frames
    h = read_exr_header(tmp_path / "out" / "plate_ext.1014.exr")
    assert h["shotfill.engine"] == "flow" and h["shotfill.seed"] == 5
    assert h["shotfill.jobId"] == res.job_id and h["shotfill.task"] == "extend_forward"
    assert h["shotfill.framePlan"].startswith("extend_forward K")
    assert h["shotfill.sourceClip"] == src and h["shotfill.colourSpace"] == "lin_rec709"
    assert len(h["chromaticities"]) == 8
    # the flow engine has no text conditioning: the prompt is reported as ignored, never dropped silently
    assert any("prompt is ignored" in e["message"] for e in sink.of("warning"))
    assert [e["frame"] for e in sink.of("frame")] == res.frames
    assert sink.of("result")[0]["job_id"] == res.job_id
    img = read_exr(tmp_path / "out" / "plate_ext.1013.exr").display_rgb()
    assert img.shape == (H, W, 3) and np.isfinite(img).all() and img.max() > 1.0   # HDR kept


def test_rerun_resumes_and_rewrites_a_damaged_frame(tmp_path):
    src = _plate(tmp_path / "plates")
    spec = _job(tmp_path, source=src)
    first = run_job(spec)
    again = run_job(spec)
    assert again.written == [] and again.skipped == first.frames
    victim = tmp_path / "out" / "plate_ext.1015.exr"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 3])            # a frame cut short by a crash
    third = run_job(spec)
    assert third.written == [1015]
    assert read_exr(victim).pixels.shape[:2] == (H, W)
    # a different job (other seed) does not take these frames as its own: it refuses them, and
    # replaces them only when asked (tests/test_output_safety.py has the rest)
    from shotfill.worker.existing import OutputInUseError

    with pytest.raises(OutputInUseError, match=f"written by job {first.job_id}"):
        run_job(_job(tmp_path, source=src, seed=9))
    other = run_job(_job(tmp_path, source=src, seed=9, output={"dir": str(tmp_path / "out"), "preview": False,
                                                               "if_exists": "overwrite"}))
    assert other.written == other.frames


def test_extend_backward_numbers_before_the_first_frame(tmp_path):
    src = _plate(tmp_path / "plates")
    res = run_job(_job(tmp_path, source=src, task="extend_backward", frames=3))
    assert res.frames == [998, 999, 1000]
    assert (tmp_path / "out" / "plate_head.0998.exr").exists()


def test_a_backward_extension_below_frame_0_is_refused_unless_numbered(tmp_path):
    src = _plate(tmp_path / "plates", frames=range(0, 8))
    with pytest.raises(InputError, match=r"numbered from -3.*never negative.*--start-frame N \(e\.g\. 1001\)"):
        run_job(_job(tmp_path, source=src, task="extend_backward", frames=3))
    assert not (tmp_path / "out").exists()                  # refused before anything was made
    res = run_job(_job(tmp_path, source=src, task="extend_backward", frames=3,
                       output={"dir": str(tmp_path / "out"), "preview": False, "start_frame": 1001}))
    assert res.frames == [1001, 1002, 1003]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.exr")) == [
        "plate_head.1001.exr", "plate_head.1002.exr", "plate_head.1003.exr"]


@pytest.mark.parametrize("task, extra, frames", [
    ("extend_forward", {"frames": 2}, [1001, 1002]),
    ("extend_backward", {"frames": 2}, [1001, 1002]),
    ("bridge", {"frames": 2, "source_b": None}, [1001, 1002]),
    ("fill", {"mask": None}, [1001, 1002, 1003, 1004]),
])
def test_start_frame_renumbers_every_kind_of_generated_sequence(tmp_path, task, extra, frames):
    src = _plate(tmp_path / "plates", frames=range(0, 4))
    if "source_b" in extra:
        extra["source_b"] = {"path": _plate(tmp_path / "b", "b", range(0, 4), seed=3)}
    if "mask" in extra:
        import cv2

        m = np.zeros((H, W), np.uint8)
        m[4:12, 4:12] = 255
        cv2.imwrite(str(tmp_path / "m.png"), m)
        extra["mask"] = {"path": str(tmp_path / "m.png")}
    res = run_job(_job(tmp_path, task=task, source=src, **extra,
                       output={"dir": str(tmp_path / "out"), "preview": False, "start_frame": 1001}))
    assert res.frames == frames
    assert read_exr_header(tmp_path / "out" / f"{Path(res.output_pattern).name.split('.')[0]}.1001.exr")[
        "shotfill.frame"] == 1001


def test_no_output_path_spells_a_negative_frame(tmp_path):
    from shotfill.worker import resolve

    job = resolve(_job(tmp_path, source=_plate(tmp_path / "plates")))
    assert job.frame_path(7).name == "plate_ext.0007.exr"
    with pytest.raises(ShotfillError, match="never negative"):
        job.frame_path(-1)


def test_bridge_continues_a_and_keeps_windows(tmp_path):
    windows = ((4, 2, 59, 45), (0, 0, 63, 47))           # data window inside the display window
    a = _plate(tmp_path / "a", "a", range(1, 9), seed=1, windows=windows)
    b = _plate(tmp_path / "b", "b", range(1, 9), seed=2, windows=windows)
    res = run_job(_job(tmp_path, task="bridge", source=a, source_b={"path": b}, frames=5))
    assert res.frames == [9, 10, 11, 12, 13]
    img = read_exr(tmp_path / "out" / "a_bridge.0011.exr")
    assert img.data_window == windows[0] and img.display_window == windows[1]
    assert set(res.seam_scores) == {"a_to_generated", "generated_to_b"}


def test_fill_keeps_known_pixels_bit_exact(tmp_path):
    src = _plate(tmp_path / "plates", frames=range(1, 7))
    masks = tmp_path / "masks"
    masks.mkdir()
    import cv2

    for f in range(1, 7):
        m = np.zeros((H, W), np.uint8)
        m[10:26, 20 + f:36 + f] = 255
        cv2.imwrite(str(masks / f"m.{f:04d}.png"), m)
    res = run_job(_job(tmp_path, task="fill", source=src, mask={"path": str(masks / "m.####.png")}))
    assert res.frames == [1, 2, 3, 4, 5, 6]
    for f in (1, 4):
        out = read_exr(tmp_path / "out" / f"plate_fill.{f:04d}.exr").pixels
        orig = read_exr(tmp_path / "plates" / f"plate.{f:04d}.exr").pixels
        m = cv2.imread(str(masks / f"m.{f:04d}.png"), cv2.IMREAD_GRAYSCALE) > 0
        assert np.array_equal(out[~m], orig[~m])            # bit-exact outside the mask
        # inside: generated from the rest of the shot, close to the hidden truth
        assert np.isfinite(out[m]).all()
        assert np.abs(out[m] - orig[m]).mean() < 0.5 * np.abs(orig[m]).mean()


def test_fill_with_one_still_mask_for_every_frame(tmp_path):
    import cv2

    src = _plate(tmp_path / "plates", frames=range(1, 5))
    m = np.zeros((H // 2, W // 2), np.uint8)               # a smaller mask: resized to the plate
    m[5:12, 5:12] = 255
    cv2.imwrite(str(tmp_path / "logo.png"), m)
    res = run_job(_job(tmp_path, task="fill", source=src, mask={"path": str(tmp_path / "logo.png")}))
    assert res.written == [1, 2, 3, 4]


def test_cancel_leaves_only_whole_frames(tmp_path):
    src = _plate(tmp_path / "plates")

    class CancelAfterFirstFrame(ListSink):
        def __call__(self):
            return bool(self.of("frame"))

    sink = CancelAfterFirstFrame()
    with pytest.raises(CancelledError):
        run_job(_job(tmp_path, source=src, frames=6), sink, cancel=sink)
    out = tmp_path / "out"
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []
    frames = sorted(out.glob("*.exr"))
    assert len(frames) == 1                                 # stopped at the next frame
    read_exr(frames[0])                                     # and what is there is whole
    res = run_job(_job(tmp_path, source=src, frames=6))     # the re-run resumes
    assert len(res.skipped) == 1 and len(res.written) == 5


def test_bad_inputs_are_named(tmp_path, monkeypatch):
    src = _plate(tmp_path / "plates", frames=[1, 2, 4])      # frame 3 is missing
    with pytest.raises(MissingFrameError, match="frame 3"):
        run_job(_job(tmp_path, source=src, frames=2))
    with pytest.raises(InputError, match="unknown engine 'nope'"):
        run_job(_job(tmp_path, source=src, engine="nope"))
    monkeypatch.setenv("SHOTFILL_MODELS", str(tmp_path / "no-models"))
    with pytest.raises(InputError, match="no wan-vace model is present .* shotfill models download"):
        run_job(_job(tmp_path, source=src, engine="wan-vace"))


def _edit(tmp_path, a, b):
    """One video track::

        | clip A (1001-1008) | gap 4 | clip B (1001-1008) |
    """
    def clip(name, pattern):
        directory, fname = os.path.split(pattern)
        ref = otio.schema.ImageSequenceReference(
            target_url_base=directory + "/", name_prefix=fname.split("#")[0], name_suffix=".exr",
            start_frame=1001, frame_step=1, rate=24, frame_zero_padding=4,
            available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, 24),
                                                     otio.opentime.RationalTime(8, 24)))
        return otio.schema.Clip(name=name, media_reference=ref, source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 24), otio.opentime.RationalTime(8, 24)))

    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    track.extend([clip("A", a), otio.schema.Gap(source_range=otio.opentime.TimeRange(
        duration=otio.opentime.RationalTime(4, 24))), clip("B", b)])
    tl = otio.schema.Timeline(name="cut", tracks=[track])
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(tl, str(path))
    return path


def test_edit_target_bridge_writes_a_new_edit_and_leaves_the_input(tmp_path):
    a = _plate(tmp_path / "a", "a", range(1001, 1009), seed=1)
    b = _plate(tmp_path / "b", "b", range(1001, 1009), seed=2)
    edit = _edit(tmp_path, a, b)
    before = hashlib.sha256(edit.read_bytes()).hexdigest()
    spec = JobSpec.from_dict({"edit": {"path": str(edit), "target": "V1.gap1"},
                              "output": {"dir": str(tmp_path / "out"), "preview": False}})
    res = run_job(spec)
    assert hashlib.sha256(edit.read_bytes()).hexdigest() == before
    assert res.frames == [1001, 1002, 1003, 1004] and res.task == "bridge"
    new = otio.adapters.read_from_file(res.new_edit)
    added = [t for t in new.tracks if t.name.startswith("shotfill")]
    assert len(added) == 1
    clip = [c for c in added[0] if isinstance(c, otio.schema.Clip)][0]
    assert clip.metadata["shotfill"]["job_id"] == res.job_id
    assert new.tracks[1].range_of_child(clip).start_time.to_frames() == 8
    assert isinstance(clip.media_reference, otio.schema.ImageSequenceReference)
    # publish from the result file gives the same placement in a further version
    again = publish(edit, [res.to_dict()])
    assert again != res.new_edit and again.exists()


def test_edit_target_errors(tmp_path):
    a = _plate(tmp_path / "a", "a", range(1001, 1009), seed=1)
    edit = _edit(tmp_path, a, a)
    spec = JobSpec.from_dict({"edit": {"path": str(edit), "target": "V1.gap9"}, "output": str(tmp_path / "o")})
    with pytest.raises(InputError, match="no target 'V1.gap9'.*V1.gap1"):
        run_job(spec)
    spec = JobSpec.from_dict({"edit": {"path": str(edit), "target": "V1.clip1.tail"}, "output": str(tmp_path / "o")})
    with pytest.raises(InputError, match="--frames"):
        run_job(spec)


def test_unknown_engine_option_is_named(tmp_path):
    src = _plate(tmp_path / "plates")
    with pytest.raises(InputError, match="engine 'flow' has no option 'steps'"):
        run_job(_job(tmp_path, source=src, engine_options={"steps": 4}))


# ---------------------------------------------------------------------------
# previews: a small picture of every frame of the window, for the panel to scrub
# ---------------------------------------------------------------------------
def _png(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        assert image.mode == "RGB"
        return np.asarray(image)


def test_preview_frames_of_an_extension(tmp_path):
    from shotfill.io.colour import ColourTransform

    src = _plate(tmp_path / "plates")
    spec = _job(tmp_path, source=src, output={"dir": str(tmp_path / "out")})
    sink = ListSink()
    res = run_job(spec, sink)
    kinds = [e["event"] for e in sink.events if e["event"] != "progress"]
    assert kinds[-3:] == ["preview", "preview_frames", "result"]
    [event] = sink.of("preview_frames")
    frames = event["frames"]
    assert frames == res.preview_frames
    assert [f["position"] for f in frames] == list(range(len(frames)))
    known = [f for f in frames if f["role"] == "known"]
    generated = [f for f in frames if f["role"] == "generate"]
    assert frames == known + generated and len(known) >= 2
    assert [f["label"] for f in known] == [f"a {n}" for n in range(1013 - len(known), 1013)]
    assert [f["label"] for f in generated] == ["G 1013", "G 1014", "G 1015", "G 1016"]
    preview = tmp_path / "out" / "preview"
    assert known[-1]["after"] == str(preview / "plate_ext.k_a_1012.png")
    assert generated[0]["after"] == str(preview / "plate_ext.1013.png")
    assert all(f["before"] is None for f in frames)
    # a plate smaller than the preview size is not enlarged; a known frame is the plate,
    # display-referred: the working encoding clipped to [0, 1], in 8 bits
    last = _png(known[-1]["after"])
    assert last.shape == (H, W, 3)
    plate = read_exr(tmp_path / "plates" / "plate.1012.exr").display_rgb()
    expected = np.round(np.clip(ColourTransform("lin_rec709").to_working(plate), 0, 1) * 255)
    assert np.abs(last.astype(int) - expected).max() <= 1
    assert not np.array_equal(_png(generated[0]["after"]), last)

    # a resumed job with nothing left to generate tells the same pictures again
    again = ListSink()
    run_job(spec, again)
    assert again.of("preview_frames")[0]["frames"] == frames
    # ... but only while they are all there
    os.remove(generated[2]["after"])
    third = ListSink()
    resumed = run_job(spec, third)
    assert third.of("preview") and not third.of("preview_frames") and resumed.preview_frames == []


def test_preview_frames_of_a_fill_have_the_plate_before_and_the_result_after(tmp_path):
    import cv2

    height, width = 40, 960                                  # wider than the preview: scaled to 480
    plates, masks = tmp_path / "plates", tmp_path / "masks"
    plates.mkdir()
    masks.mkdir()
    tex = np.kron(np.random.default_rng(3).random((10, 250, 3)), np.ones((4, 4, 1))).astype(np.float32)
    for f in range(1, 4):
        write_exr(plates / f"p.{f:04d}.exr", tex[:, 4 * f:4 * f + width])
        m = np.zeros((height, width), np.uint8)
        m[8:32, 400:560] = 255
        cv2.imwrite(str(masks / f"m.{f:04d}.png"), m)
    sink = ListSink()
    res = run_job(_job(tmp_path, task="fill", source=str(plates / "p.####.exr"),
                       mask={"path": str(masks / "m.####.png")}, output={"dir": str(tmp_path / "out")}),
                  sink)
    frames = sink.of("preview_frames")[0]["frames"]
    assert frames == res.preview_frames
    assert [(f["role"], f["label"]) for f in frames] == [("fill", "1"), ("fill", "2"), ("fill", "3")]
    preview = tmp_path / "out" / "preview"
    assert frames[1]["before"] == str(preview / "p_fill.0002.before.png")
    assert frames[1]["after"] == str(preview / "p_fill.0002.after.png")
    before, after = _png(frames[1]["before"]), _png(frames[1]["after"])
    assert before.shape == after.shape == (20, 480, 3)
    assert np.array_equal(before[:, :190], after[:, :190])      # outside the mask: the plate
    assert np.abs(before[4:16, 200:280].astype(int) - after[4:16, 200:280]).max() > 0


def test_the_engines_own_timings_reach_the_result(tmp_path, monkeypatch):
    from shotfill.engines.classical.flow import FlowEngine

    original = FlowEngine.generate

    def timed(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        out.info["timings"] = {"encode": 0.25, "denoise": 1.5}
        return out

    monkeypatch.setattr(FlowEngine, "generate", timed)
    res = run_job(_job(tmp_path, source=_plate(tmp_path / "plates")))
    assert res.timings["generate.encode"] == 0.25 and res.timings["generate.denoise"] == 1.5
    assert res.timings["generate"] >= 0


def test_an_engine_with_one_context_frame_extends_without_a_seam_score(tmp_path):
    res = run_job(_job(tmp_path, source=_plate(tmp_path / "plates"), engine="baseline"))
    assert res.frames == [1013, 1014, 1015, 1016] and res.seam_scores == {}


def test_the_engine_gets_the_sources_frame_rate_and_its_warnings_reach_events_and_result(tmp_path, monkeypatch):
    from shotfill.engines.classical.flow import FlowEngine

    original, rates = FlowEngine.generate, []

    def noted(self, *args, frame_rate=None, **kwargs):
        rates.append(frame_rate)
        out = original(self, *args, frame_rate=frame_rate, **kwargs)
        out.warnings.append("a note from the engine")
        return out

    monkeypatch.setattr(FlowEngine, "generate", noted)
    sink = ListSink()
    res = run_job(_job(tmp_path, source=_plate(tmp_path / "plates")), sink)
    assert rates == [None]  # an EXR sequence without a rate: the engine is told none (a timeline gives its own)
    assert "a note from the engine" in res.warnings
    assert "a note from the engine" in [e["message"] for e in sink.of("warning")]


def test_an_engine_that_returns_a_bare_array_is_a_clear_error(tmp_path, monkeypatch):
    from shotfill.engines.classical.flow import FlowEngine
    from shotfill.errors import ShotfillError

    original = FlowEngine.generate
    monkeypatch.setattr(FlowEngine, "generate", lambda self, *a, **k: original(self, *a, **k).frames)
    with pytest.raises(ShotfillError, match="engine 'flow' returned a ndarray, not an EngineResult"):
        run_job(_job(tmp_path, source=_plate(tmp_path / "plates")))


# ---------------------------------------------------------------------------
# trust: per written frame, the engine's confidence over its new pixels and its method
# ---------------------------------------------------------------------------
class _ScriptedEngine:
    """An engine whose confidence and methods the test decides: each generated position's pixels are
    the last known frame, its confidence ``trust[i]`` (None: no confidence), its method ``method``."""

    def __new__(cls, trust, method="extrapolated", methods=None):
        from shotfill.engines import Engine, EngineResult

        class Scripted(Engine):
            name = "scripted"
            context_frames = 2

            def generate(self, plan, frames, masks, **kwargs):
                out = np.array(frames, copy=True)
                confidence = None if trust is None else np.ones(masks.shape, np.float32)
                words = [None] * len(plan)
                last = plan.known_positions[-1]
                for i, p in enumerate(plan.written_positions):
                    out[p] = frames[last]
                    if confidence is not None:
                        confidence[p] = trust[i]
                    words[p] = method
                return EngineResult(frames=out, confidence=confidence, methods=methods or words)

        return Scripted()


def test_every_written_frame_says_its_trust_and_method_in_the_result_the_event_and_its_header(tmp_path):
    from shotfill_plugin.protocol import FrameTrust, ResultEvent

    src = _plate(tmp_path / "plates")
    sink = ListSink()
    res = run_job(_job(tmp_path, source=src), sink)
    assert [e["frame"] for e in res.frame_trust] == res.frames
    assert all(e["method"] == "extrapolated" and 0.0 <= e["trust"] <= 1.0 for e in res.frame_trust)
    [event] = sink.of("result")
    assert event["frame_trust"] == res.frame_trust
    parsed = ResultEvent.from_dict(event).frame_trust
    assert parsed == tuple(FrameTrust(e["frame"], e["trust"], e["method"]) for e in res.frame_trust)
    for entry in res.frame_trust:
        h = read_exr_header(tmp_path / "out" / f"plate_ext.{entry['frame']}.exr")
        assert isinstance(h["shotfill.trust"], float) and isinstance(h["shotfill.method"], str)
        assert round(h["shotfill.trust"], 3) == entry["trust"] and h["shotfill.method"] == "extrapolated"


def test_trust_is_the_mean_confidence_over_the_generated_pixels_of_a_fill(tmp_path, monkeypatch):
    import cv2

    from shotfill.engines.classical.flow import FlowEngine

    src = _plate(tmp_path / "plates", frames=range(1, 4))
    (tmp_path / "m").mkdir()
    for f in range(1, 4):
        m = np.zeros((H, W), np.uint8)
        if f != 2:
            m[:, :W // 4] = 255                              # a quarter of the frame; frame 2: nothing
        cv2.imwrite(str(tmp_path / "m" / f"m.{f:04d}.png"), m)
    original = FlowEngine.generate

    def half_trusted(self, plan, frames, masks, **kwargs):
        out = original(self, plan, frames, masks, **kwargs)
        out.confidence[:] = 1.0
        out.confidence[:, : H // 2] = 0.2                   # half the hole's pixels at 0.2, outside: 1
        return out

    monkeypatch.setattr(FlowEngine, "generate", half_trusted)
    res = run_job(_job(tmp_path, task="fill", source=src, mask={"path": str(tmp_path / "m" / "m.####.png")}))
    assert [(e["frame"], e["trust"]) for e in res.frame_trust] == [(1, 0.6), (2, None), (3, 0.6)]
    assert res.frame_trust[1]["method"] is None and res.frame_trust[0]["method"].startswith("propagated")
    h = read_exr_header(tmp_path / "out" / "plate_fill.0002.exr")
    assert "shotfill.trust" not in h and "shotfill.method" not in h      # nothing generated there


def test_a_dissolve_fallback_is_a_warning(tmp_path):
    a = _plate(tmp_path / "a", "a", range(1, 9), seed=1)
    b = _plate(tmp_path / "b", "b", range(1, 9), seed=2)   # another shot: no motion leads from A to B
    sink = ListSink()
    res = run_job(_job(tmp_path, task="bridge", source=a, source_b={"path": b}, frames=5), sink)
    assert [e["method"] for e in res.frame_trust] == ["dissolve"] * 5
    expected = ("bridge: fell back to a dissolve on frames 9-13: the shots do not follow one motion; "
                "the result is a cross-dissolve")
    assert expected in res.warnings and expected in [e["message"] for e in sink.of("warning")]
    # the dissolve is said once: not again as a run of low trust
    assert not any("trust below" in w for w in res.warnings)


def test_an_engines_own_dissolve_warning_is_folded_into_the_workers_one_line(tmp_path):
    a = _plate(tmp_path / "a", "a", range(1, 9), seed=1)
    other = tmp_path / "b"                                  # another shot, another palette: the motion engine
    other.mkdir()                                          # tells the shots apart, dissolves and says why
    tex = _texture(2)
    for i, f in enumerate(range(1, 9)):
        write_exr(other / f"b.{f:04d}.exr", tex[:, i * 2:i * 2 + W] * np.array([1.6, 0.25, 0.1], np.float32))
    sink = ListSink()
    res = run_job(_job(tmp_path, task="bridge", source=a, source_b={"path": str(other / "b.####.exr")}, frames=5,
                       engine="motion"), sink)
    assert [e["method"] for e in res.frame_trust] == ["dissolve"] * 5
    dissolves = [w for w in res.warnings if "dissolve" in w]
    assert len(dissolves) == 1, res.warnings            # one line, not the engine's and the worker's
    said = dissolves[0]
    assert said.startswith("bridge: fell back to a dissolve on frames 9-13: ") and "different shots" in said
    assert [e["message"] for e in sink.of("warning") if "dissolve" in e["message"]] == [said]


def test_the_baselines_dissolve_is_said_without_a_fallback(tmp_path):
    a = _plate(tmp_path / "a", "a", range(1, 9), seed=1)
    res = run_job(_job(tmp_path, task="bridge", source=a, source_b={"path": a}, frames=3, engine="baseline"))
    assert [(e["trust"], e["method"]) for e in res.frame_trust] == [(None, "dissolve")] * 3
    assert "bridge: frames 9-11 are a cross-dissolve (the engine follows no motion)" in res.warnings


def _out(tmp_path, n: int) -> dict:
    """An output folder of its own for the ``n``-th job of a test (jobs never share one)."""
    return {"dir": str(tmp_path / f"out{n}"), "preview": False}


def test_a_long_run_of_low_trust_is_a_warning(tmp_path):
    from shotfill_plugin.protocol import LOW_TRUST

    src = _plate(tmp_path / "plates")
    trust = [0.9, 0.5, LOW_TRUST, 0.19, 0.12, 0.1, 0.05, 0.3]   # 0.2 itself is not low
    sink = ListSink()
    res = run_job(_job(tmp_path, source=src, frames=8), sink, engine=_ScriptedEngine(trust))
    warning = ("frames 1016-1019 of the extension: trust below 0.2 "
               "(lowest 0.05: the motion could not be followed)")
    assert res.warnings == [warning] and [e["message"] for e in sink.of("warning")] == [warning]
    # three low frames in a row are not a long run when four or more frames are assessed
    res = run_job(_job(tmp_path, source=src, frames=5, seed=1, output=_out(tmp_path, 1)),
                  engine=_ScriptedEngine([0.9, 0.1, 0.1, 0.1, 0.9]))
    assert res.warnings == []
    # ... but every frame of a shorter job is
    res = run_job(_job(tmp_path, source=src, frames=2, seed=2, output=_out(tmp_path, 2)),
                  engine=_ScriptedEngine([0.1, 0.1]))
    assert res.warnings == ["frames 1013-1014 of the extension: trust below 0.2 "
                            "(lowest 0.10: the motion could not be followed)"]
    # an engine that gives no confidence gives no trust, and no trust warning
    res = run_job(_job(tmp_path, source=src, frames=4, seed=3, output=_out(tmp_path, 3)),
                  engine=_ScriptedEngine(None, method="held"))
    assert [(e["trust"], e["method"]) for e in res.frame_trust] == [(None, "held")] * 4 and res.warnings == []


@pytest.mark.parametrize("kwargs, message", [
    ({"trust": [0.5] * 4, "methods": ["extrapolated"]}, "engine 'scripted' gave 1 methods for a window of 6"),
    ({"trust": [0.5] * 4, "method": "guessed"}, "named its method at position 2 'guessed'"),
    ({"trust": [0.5, 1.5, 0.5, 0.5]}, "confidence outside 0..1 at position 3"),
    ({"trust": [0.5, float("nan"), 0.5, 0.5]}, "confidence outside 0..1 at position 3"),
])
def test_an_engines_trust_that_does_not_fit_is_a_clear_error(tmp_path, kwargs, message):
    from shotfill.errors import ShotfillError

    with pytest.raises(ShotfillError, match=message):
        run_job(_job(tmp_path, source=_plate(tmp_path / "plates")), engine=_ScriptedEngine(**kwargs))
    assert not list((tmp_path / "out").glob("*.exr"))       # found before any frame is written


def test_resumed_frames_keep_the_trust_their_earlier_run_wrote(tmp_path):
    src = _plate(tmp_path / "plates")
    spec = _job(tmp_path, source=src, frames=6, engine="baseline")   # the scripted engine stands in for it
    run_job(spec, engine=_ScriptedEngine([0.9, 0.8, 0.7, 0.6, 0.5, 0.4]))
    os.remove(tmp_path / "out" / "plate_ext.1015.exr")
    # the engine now trusts every frame less: only the frame written again says so
    again = run_job(spec, engine=_ScriptedEngine([0.1] * 6))
    assert again.written == [1015]
    assert [e["trust"] for e in again.frame_trust] == [0.9, 0.8, 0.1, 0.6, 0.5, 0.4]
    # nothing left to do: every frame's trust from its header, and the warnings said again
    sink = ListSink()
    third = run_job(spec, sink, engine=_ScriptedEngine([0.0] * 6))
    assert third.written == [] and third.frame_trust == again.frame_trust
    # a frame whose header has no trust (written before shotfill wrote it) takes its result file's
    path = tmp_path / "out" / "plate_ext.1016.exr"
    image = read_exr(path)
    attributes = {k: v for k, v in image.attributes.items() if not k.startswith("shotfill.trust")
                  and k != "shotfill.method" and k.startswith("shotfill.")}
    write_exr(path, image.pixels, attributes=attributes)
    fourth = run_job(spec, engine=_ScriptedEngine([0.0] * 6))
    assert fourth.frame_trust == again.frame_trust


def test_the_engine_result_of_a_resumed_job_still_says_a_low_run(tmp_path):
    src = _plate(tmp_path / "plates")
    spec = _job(tmp_path, source=src, frames=4, engine="baseline")
    first = run_job(spec, engine=_ScriptedEngine([0.1] * 4))
    sink = ListSink()
    again = run_job(spec, sink, engine=_ScriptedEngine([0.9] * 4))
    assert again.written == [] and again.warnings == first.warnings != []
    assert [e["message"] for e in sink.of("warning")] == first.warnings


# ---------------------------------------------------------------------------
# bugs found on the way (issue 13, part 7)
# ---------------------------------------------------------------------------
def test_a_seed_is_refused_unless_the_header_can_keep_it(tmp_path):
    from shotfill.errors import JobSpecError
    from shotfill.job import MAX_SEED

    src = _plate(tmp_path / "plates")
    with pytest.raises(JobSpecError, match=r"seed.*0\.\.2147483647"):
        _job(tmp_path, source=src, seed=2**31)
    import dataclasses

    built = dataclasses.replace(_job(tmp_path, source=src), seed=2**40)
    with pytest.raises(JobSpecError, match="seed"):      # a spec built in code: refused before any frame
        run_job(built)
    assert not (tmp_path / "out").exists()
    res = run_job(_job(tmp_path, source=src, seed=MAX_SEED, frames=1))
    assert read_exr_header(tmp_path / "out" / "plate_ext.1013.exr")["shotfill.seed"] == MAX_SEED
    assert res.written == [1013]


def test_a_fill_keeps_each_frames_own_data_window(tmp_path):
    import cv2

    display = (0, 0, W - 1, H - 1)
    data = {1: (4, 2, 59, 45), 2: (0, 0, 63, 47), 3: (10, 6, 40, 30)}   # a CG element's box, frame by frame
    tex = _texture(5)
    (tmp_path / "plates").mkdir()
    (tmp_path / "m").mkdir()
    for f, window in data.items():
        img = tex[:, 2 * f:2 * f + W][window[1]:window[3] + 1, window[0]:window[2] + 1]
        write_exr(tmp_path / "plates" / f"p.{f:04d}.exr", img, data_window=window, display_window=display)
        m = np.zeros((H, W), np.uint8)
        m[12:24, 16:32] = 255
        cv2.imwrite(str(tmp_path / "m" / f"m.{f:04d}.png"), m)
    run_job(_job(tmp_path, task="fill", source=str(tmp_path / "plates" / "p.####.exr"),
                 mask={"path": str(tmp_path / "m" / "m.####.png")}))
    for f, window in data.items():
        out = read_exr(tmp_path / "out" / f"p_fill.{f:04d}.exr")
        plate = read_exr(tmp_path / "plates" / f"p.{f:04d}.exr")
        assert (out.data_window, out.display_window) == (window, display), f
        keep = cv2.imread(str(tmp_path / "m" / f"m.{f:04d}.png"), cv2.IMREAD_GRAYSCALE) == 0
        assert np.array_equal(out.display_rgb()[keep], plate.display_rgb()[keep])   # outside the hole: the plate


def test_an_edit_targets_source_colour_space_is_used(tmp_path):
    a = _plate(tmp_path / "a", "a", range(1001, 1009), seed=1)
    edit = _edit(tmp_path, a, a)
    spec = JobSpec.from_dict({"edit": {"path": str(edit), "target": "V1.gap1", "colourspace": "acescg",
                                       "write_timeline": False},
                              "engine": "baseline", "output": {"dir": str(tmp_path / "out"), "preview": False}})
    from shotfill.worker import resolve

    assert resolve(spec).source_spaces == {"a": "acescg", "b": "acescg"}
    res = run_job(spec)
    assert read_exr_header(tmp_path / "out" / f"cut_V1_gap1.{res.frames[0]}.exr")["shotfill.colourSpace"] == "acescg"
    # without it, each source keeps its own (these plates: linear Rec.709), and the job id is what it was
    plain = JobSpec.from_dict({"edit": {"path": str(edit), "target": "V1.gap1"}, "output": str(tmp_path / "o")})
    assert resolve(plain).source_spaces == {"a": "lin_rec709", "b": "lin_rec709"}
    assert "colourspace" not in plain.to_dict()["edit"]


def test_context_zero_is_refused_not_replaced(tmp_path):
    from shotfill.errors import JobSpecError

    src = _plate(tmp_path / "plates")
    with pytest.raises(JobSpecError, match="context"):
        _job(tmp_path, source=src, context=0)
    spec = _job(tmp_path, source=src, context=3)
    import dataclasses

    with pytest.raises(JobSpecError, match="'context': must be a whole number of at least 1"):
        run_job(dataclasses.replace(spec, context=0))       # a spec built in code
    from shotfill.worker import resolve

    assert len(resolve(spec).plan.known_positions) == 3     # a context given is honoured
