"""Tests for shotfill.quality.harness: shot discovery, trial windows, scoring, the run and its CLI."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from shotfill import cli
from shotfill.quality import harness as evaluate
from shotfill.engines.base import Engine, EngineResult
from shotfill.errors import InputError
from shotfill.plan import TaskKind

H, W, FRAMES, STEP = 64, 96, 32, 2


def pan_frames(frames: int = FRAMES, seed: int = 0) -> np.ndarray:
    """A camera pan over a smooth texture, 8-bit ``(T, H, W, 3)``."""
    rng = np.random.default_rng(seed)
    wide = cv2.GaussianBlur(rng.random((H, W + frames * STEP, 3), dtype=np.float32), (0, 0), 2.5)
    wide = (wide - wide.min()) / (wide.max() - wide.min())
    return np.stack([(wide[:, t * STEP:t * STEP + W] * 255).round().astype(np.uint8)
                     for t in range(frames)])


def disc_masks(frames: int = FRAMES) -> np.ndarray:
    """An object (a disc) crossing the left half of the frame, 8-bit ``(T, H, W)``, 255 = object."""
    masks = np.zeros((frames, H, W), np.uint8)
    for t in range(frames):
        cv2.circle(masks[t], (14 + t // 2, H // 2), 8, 255, -1)
    return masks


def write_sequence(folder: Path, images: np.ndarray) -> None:
    folder.mkdir(parents=True)
    for t, img in enumerate(images):
        cv2.imwrite(str(folder / f"{t:05d}.png"), img[..., ::-1] if img.ndim == 3 else img)


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    """Two shots: a pan with object masks and a pan without; and a folder holding no shot."""
    root = tmp_path_factory.mktemp("footage")
    write_sequence(root / "pan" / "frames", pan_frames())
    write_sequence(root / "pan" / "masks", disc_masks())
    write_sequence(root / "pan_nomask" / "frames", pan_frames(seed=1))
    (root / "notes").mkdir()
    (root / "notes" / "README.md").write_text("no pictures here")
    return root


@pytest.fixture(scope="module")
def results(footage) -> evaluate.Results:
    return evaluate.run(footage, engines=("flow", "baseline"), max_side=480)


# -- discovery ---------------------------------------------------------------
def test_discover_shots_reads_frame_folders_movies_and_shot_lists(tmp_path):
    (tmp_path / "seq" / "frames").mkdir(parents=True)
    (tmp_path / "seq" / "masks").mkdir()
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "take.mov").write_bytes(b"")
    (tmp_path / "film").mkdir()
    (tmp_path / "film" / "shots.json").write_text(json.dumps(
        {"file": "film.mp4", "shots": [{"id": 1, "first": 0, "last": 9}, {"id": 2, "first": 10, "last": 30}]}))
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "a.png").write_bytes(b"")

    shots, skipped = evaluate.discover_shots(tmp_path)

    assert [(s.name, Path(s.spec).name, s.masks) for s in shots] == [
        ("clip", "take.mov", None),
        ("film/shot1", "film.mp4#frames=0-9", None),
        ("film/shot2", "film.mp4#frames=10-30", None),
        ("seq", "frames", tmp_path / "seq" / "masks"),
    ]
    assert [s["shot"] for s in skipped] == ["pairs"]


def test_discover_shots_rejects_a_broken_shot_list(tmp_path):
    (tmp_path / "film").mkdir()
    (tmp_path / "film" / "shots.json").write_text('{"shots": []}')
    with pytest.raises(InputError, match="shots.json"):
        evaluate.discover_shots(tmp_path)


# -- trial windows -------------------------------------------------------------
def _layout(plan):
    """(role letter, real frame) per position: the frame a position shows or hides."""
    return [(f.role.value[0], f.source_frame if f.source_frame is not None else f.output_frame)
            for f in plan.frames]


def test_make_plan_hides_frames_whose_truth_is_in_the_shot():
    frames = list(range(100, 132))
    forward = evaluate.make_plan(TaskKind.EXTEND_FORWARD, frames, 8, 4)
    assert _layout(forward) == [("k", f) for f in range(120, 124)] + [("g", f) for f in range(124, 132)]
    backward = evaluate.make_plan(TaskKind.EXTEND_BACKWARD, frames, 8, 4)
    assert _layout(backward) == [("g", f) for f in range(100, 108)] + [("k", f) for f in range(108, 112)]
    bridge = evaluate.make_plan(TaskKind.BRIDGE, frames, 4, 4)
    assert _layout(bridge) == ([("k", f) for f in range(110, 114)] + [("g", f) for f in range(114, 118)]
                               + [("k", f) for f in range(118, 122)])
    fill = evaluate.make_plan(TaskKind.FILL, frames, 10, 4)
    assert _layout(fill) == [("f", f) for f in range(111, 121)]


def test_make_plan_refuses_a_shot_too_short():
    with pytest.raises(InputError, match="needs 20 frames, the shot has 19"):
        evaluate.make_plan(TaskKind.BRIDGE, range(19), 12, 4)


def test_moving_rectangles_move_across_the_frame():
    masks = evaluate.moving_rectangles(5, 40, 100)
    lefts = [np.flatnonzero(m.any(axis=0))[0] for m in masks]
    assert lefts == sorted(lefts) and lefts[0] < lefts[-1]
    assert all(m.sum() == 20 * 10 for m in masks)


def test_fill_masks_hide_background_beside_the_object(footage):
    shot = evaluate.ShotFrames(evaluate.Shot("pan", str(footage / "pan" / "frames"), footage / "pan" / "masks"),
                               max_side=480)
    frames = list(range(10, 20))
    regions = evaluate.fill_masks(shot, frames)
    assert regions.shape == (10, H, W)
    for frame, region in zip(frames, regions):
        obj = shot.object_mask(frame)
        assert region.sum() > 0.5 * obj.sum()          # about the object's size
        assert not (region.astype(bool) & obj).any()    # never over the object itself
        # the object is on the left, so the region lies to its right
        assert np.flatnonzero(region.any(axis=0)).mean() > np.flatnonzero(obj.any(axis=0)).mean()


# -- scoring ---------------------------------------------------------------------
class SpyEngine(Engine):
    """Records what it is given and returns mid grey everywhere."""

    name = "spy"
    context_frames = 3

    def generate(self, plan, frames, masks, *, prompt=None, seed=0, frame_rate=None, progress=None, cancel=None):
        self.given = (frames.copy(), masks.copy())
        return EngineResult(frames=np.full_like(frames, 0.5))


def test_run_trial_hides_the_truth_and_scores_only_generated_pixels(footage):
    shot = evaluate.ShotFrames(evaluate.Shot("pan", str(footage / "pan" / "frames"), footage / "pan" / "masks"),
                               max_side=480)
    trial = evaluate.make_trial(shot, TaskKind.FILL, 6, 3)
    spy = SpyEngine()
    scores, seconds = evaluate.run_trial(spy, trial)

    frames, masks = spy.given
    hidden = trial.masks > 0
    assert (frames[hidden] == 0).all()
    np.testing.assert_array_equal(frames[~hidden], trial.truth[~hidden])
    expected = 10 * math.log10(1.0 / np.mean((0.5 - trial.truth[hidden]) ** 2))
    assert scores["psnr"] == pytest.approx(expected, abs=1e-3)
    assert scores["seam"] is None and seconds >= 0


def test_score_of_the_truth_is_perfect_and_seams_match_the_shot(footage):
    shot = evaluate.ShotFrames(evaluate.Shot("pan", str(footage / "pan" / "frames")), max_side=480)
    trial = evaluate.make_trial(shot, TaskKind.BRIDGE, 4, 4)
    scores = evaluate.score(trial, trial.truth)
    assert scores["psnr"] == math.inf
    assert scores["ssim"] == pytest.approx(1.0)
    assert scores["flicker"] == scores["flicker_truth"]
    assert scores["seam"] == scores["seam_truth"] and scores["seam_error"] == 0.0
    assert 0.5 < scores["seam"] < 2.0


# -- the run ------------------------------------------------------------------------
def test_run_does_every_task_for_both_engines(results):
    trials = {(c.shot, c.task, c.n, c.engine) for c in results.cells}
    expected = {(shot, task, n, engine) for shot in ("pan", "pan_nomask") for engine in ("flow", "baseline")
                for task, n in (("extend_forward", 8), ("extend_backward", 8), ("bridge", 4),
                                ("bridge", 12), ("fill", 10))}
    assert trials == expected
    assert len(results.cells) == len(expected)
    for cell in results.cells:
        for key in ("psnr", "ssim", "flicker", "flicker_truth", "seconds_per_frame"):
            assert math.isfinite(cell.metrics[key]), (cell, key)
        assert (cell.metrics["seam"] is None) == (cell.task == "fill")
        assert (cell.metrics["seam_error"] is None) == (cell.task == "fill")
    # a freeze frame does not move at the cut: far from the shot's own motion, however small its seam
    freeze = [c for c in results.cells if c.engine == "baseline" and c.task.startswith("extend")]
    assert all(c.metrics["seam"] == 0.0 and c.metrics["seam_error"] > 3 for c in freeze)
    assert [s["shot"] for s in results.skipped] == ["notes"]


def test_flow_beats_the_freeze_frame_on_extend(results):
    psnr = {(c.shot, c.task, c.engine): c.metrics["psnr"] for c in results.cells}
    for shot in ("pan", "pan_nomask"):
        for task in ("extend_forward", "extend_backward"):
            assert psnr[shot, task, "flow"] > psnr[shot, task, "baseline"] + 1.0, (shot, task)


def test_results_json_and_markdown(results, tmp_path):
    json_path, md_path = results.write(tmp_path / "out")
    assert (json_path, md_path) == (tmp_path / "out" / "results.json", tmp_path / "out" / "results.md")
    data = json.loads(json_path.read_text())
    assert len(data["cells"]) == len(results.cells)
    assert data["settings"]["bridge_frames"] == [4, 12]
    table = md_path.read_text()
    assert table == results.to_markdown()
    rows = [line for line in table.splitlines() if line.startswith("| extend_forward | 8 | flow |")]
    assert len(rows) == 1 and rows[0].rstrip(" |").endswith("2/2")
    assert "skipped notes" in table


def test_run_keeps_the_named_shots_and_refuses_unknown_ones(footage):
    res = evaluate.run(footage, engines=("baseline",), tasks=("extend_forward",), shots=("pan_nomask",))
    assert {c.shot for c in res.cells} == {"pan_nomask"}
    with pytest.raises(InputError, match="no shot named nope"):
        evaluate.run(footage, engines=("baseline",), shots=("nope",))
    with pytest.raises(InputError, match="unknown task 'extend'"):
        evaluate.run(footage, tasks=("extend",))


def test_main_writes_the_results_and_prints_the_table(footage, tmp_path, capsys):
    out = tmp_path / "quality.json"
    code = cli.main(["eval", str(footage), "--engines", "baseline", "--tasks", "extend_forward,fill",
                     "--max-shots", "1", "--max-side", "48", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0
    assert printed.out == (tmp_path / "quality.md").read_text()
    cells = json.loads(out.read_text())["cells"]
    assert {(c["task"], c["engine"], tuple(c["size"])) for c in cells} == {
        ("extend_forward", "baseline", (48, 32)), ("fill", "baseline", (48, 32))}
    assert "pan fill N=10 baseline" in printed.err


def test_main_reports_bad_input_with_exit_code_2(tmp_path, capsys):
    assert cli.main(["eval", str(tmp_path / "missing")]) == 2
    assert "not a folder of footage" in capsys.readouterr().err


def test_bench_script_runs_the_harness(footage, tmp_path, repo_root):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(repo_root / "bench" / "quality.py"), str(footage),
                           "--engines", "baseline", "--tasks", "extend_backward", "--shots", "pan",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| extend_backward | 8 | baseline | 1 |" in done.stdout
    assert len(json.loads(out.read_text())["cells"]) == 1


# -- real footage ------------------------------------------------------------------------
def test_one_real_shot_gives_finite_scores(shared_data, tmp_path):
    res = evaluate.run(shared_data / "footage", shots=("davis2016_car-shadow",), max_side=240,
                       tasks=("extend_forward", "extend_backward"), out=tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    assert len(data["cells"]) == 6                      # dit, flow and baseline, by default
    for cell in data["cells"]:
        assert cell["size"] == [240, 135]
        for key in ("psnr", "ssim", "flicker", "flicker_truth", "seam", "seam_truth", "seconds_per_frame"):
            assert math.isfinite(cell["metrics"][key]), (cell["engine"], cell["task"], key)
        assert 10 < cell["metrics"]["psnr"] < 60
    assert "| extend_forward | 8 | flow |" in res.to_markdown() and "| extend_forward | 8 | dit |" in res.to_markdown()


def test_engine_specs_set_options_and_name_bad_ones():
    from shotfill.errors import InputError
    from shotfill.quality.harness import engine_from_spec

    engine = engine_from_spec("flow")
    assert engine.name == "flow"
    with pytest.raises(InputError, match="has no option 'speed'"):
        engine_from_spec("flow:speed=2")
    with pytest.raises(InputError, match="expected KEY=VALUE"):
        engine_from_spec("flow:fast")
