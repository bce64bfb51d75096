"""Tests for shotfill.quality.harness: shot discovery, trial windows, scoring, the run and its CLI."""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from shotfill import cli
from shotfill.engines import working
from shotfill.engines.base import Engine, EngineResult
from shotfill.errors import EngineUnavailableError, InputError
from shotfill.plan import TaskKind
from shotfill.quality import harness as evaluate
from shotfill.quality import labels, rows

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
    scores, seconds, made = evaluate.run_trial(spy, trial)

    frames, masks = spy.given
    hidden = trial.masks > 0
    assert (frames[hidden] == 0).all()
    np.testing.assert_array_equal(frames[~hidden], trial.truth[~hidden])
    expected = 10 * math.log10(1.0 / np.mean((0.5 - trial.truth[hidden]) ** 2))
    assert scores["psnr"] == pytest.approx(expected, abs=1e-3)
    assert scores["seam"] is None and seconds >= 0
    assert (made.frames == 0.5).all()


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


# -- one trial for every engine ------------------------------------------------------------
class GreedySpy(SpyEngine):
    """A spy that would ask for many more context frames than the other."""

    name = "greedy"
    context_frames = 8


def test_every_engine_is_given_the_same_trial_whatever_it_asks_for(footage):
    shot = evaluate.ShotFrames(evaluate.Shot("pan", str(footage / "pan" / "frames")), max_side=480)
    modest, greedy = SpyEngine(), GreedySpy()
    modest.context_frames = 1
    skipped: list = []
    cells = evaluate.evaluate_shot(shot, {"modest": modest, "greedy": greedy}, [(TaskKind.BRIDGE, 4)], 3,
                                   skipped, lambda message: None)
    assert skipped == [] and [c.engine for c in cells] == ["modest", "greedy"]
    for given_m, given_g in zip(modest.given, greedy.given):
        np.testing.assert_array_equal(given_m, given_g)
    assert len(modest.given[0]) == 3 + 4 + 3                 # 3 known frames each side, for both
    assert cells[0].window == cells[1].window and len(cells[0].window["known"]) == 6
    assert {c.context for c in cells} == {3}


def test_the_context_is_the_runs_and_recorded(footage, tmp_path):
    res = evaluate.run(footage, engines=("flow", "baseline"), tasks=("extend_forward",), shots=("pan",),
                       context=2, out=tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["settings"]["context"] == 2
    assert [c["window"]["known"] for c in data["cells"]] == [[22, 23], [22, 23]]
    assert {c["context"] for c in data["cells"]} == {2}
    assert "2 real frames of context on each side" in res.to_markdown()
    with pytest.raises(InputError, match="context must be a whole number of at least 1, got 0"):
        evaluate.run(footage, engines=("baseline",), context=0)


def test_default_context_is_the_same_for_every_default_row(results):
    assert results.settings["context"] == evaluate.DEFAULT_CONTEXT == 4
    windows: dict = {}
    for c in results.cells:
        windows.setdefault((c.shot, c.task, c.n), []).append(json.dumps(c.window))
    assert all(len(set(w)) == 1 for w in windows.values())   # flow and baseline saw the same window
    bridge = next(c for c in results.cells if c.task == "bridge")
    assert len(bridge.window["known"]) == 8


def test_cli_context_zero_is_an_error(footage, capsys):
    assert cli.main(["eval", str(footage), "--engines", "baseline", "--context", "0"]) == 2
    assert "context must be a whole number of at least 1, got 0" in capsys.readouterr().err


# -- shot labels ----------------------------------------------------------------------------
def test_shots_are_labelled_from_the_recipe_and_the_tuned_list():
    training = labels.training_folders()
    assert {"bbb_480p_30s", "sam2_bedroom"} <= training
    assert not any(name.startswith(("davis", "propainter", "sttn")) for name in training)
    label = {name: labels.shot_label(name, training).value for name in (
        "bbb_480p_30s/shot1", "bbb_480p_30s/shot4", "sam2_bedroom", "davis2016_car-shadow", "sttn_schoolgirls",
        "davis2016_drift-straight", "propainter_running_car", "sttn_dogs_jump", "a_studio_plate")}
    assert label == {"bbb_480p_30s/shot1": "training", "bbb_480p_30s/shot4": "training", "sam2_bedroom": "training",
                     "davis2016_car-shadow": "tuned", "sttn_schoolgirls": "tuned",
                     "davis2016_drift-straight": "untouched", "propainter_running_car": "untouched",
                     "sttn_dogs_jump": "untouched", "a_studio_plate": "untouched"}
    # the 7 shots of the sweeps: the 5 not trained on are tuned
    assert len(labels.TUNED_SHOTS) == 5 and not {s.split("/")[0] for s in labels.TUNED_SHOTS} & training


def test_a_recipe_entry_labels_its_folder_and_bad_labels_are_named(tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"footage": [{"path": "footage/pan_nomask"}]}))
    assert labels.label_shots(["pan", "pan_nomask"], recipe=recipe) == {
        "pan": labels.ShotLabel.UNTOUCHED, "pan_nomask": labels.ShotLabel.TRAINING}
    assert labels.label_shots(["pan"], {"pan": "tuned"}, recipe=recipe) == {"pan": labels.ShotLabel.TUNED}
    with pytest.raises(InputError, match="unknown label 'seen'"):
        labels.label_shots(["pan"], {"pan": "seen"}, recipe=recipe)
    with pytest.raises(InputError, match="'nope': no such shot"):
        labels.label_shots(["pan"], {"nope": "tuned"}, recipe=recipe)
    recipe.write_text("{not json")
    with pytest.raises(InputError, match="not a readable training recipe"):
        labels.label_shots(["pan"], recipe=recipe)


# -- reference rows and the results file ------------------------------------------------------
@pytest.fixture(scope="module")
def labelled(footage, tmp_path_factory) -> tuple[evaluate.Results, dict]:
    """The guess row beside flow and the baseline, one shot marked tuned, written to a results file."""
    out = tmp_path_factory.mktemp("labelled")
    res = evaluate.run(footage, engines=("dit-guess", "flow:feather=3", "baseline"),
                       tasks=("extend_forward", "bridge"), bridge_frames=(4,), labels={"pan_nomask": "tuned"},
                       out=out)
    return res, json.loads((out / "results.json").read_text())


def test_results_file_records_rows_options_models_and_labels(labelled):
    res, data = labelled
    assert data["shots"] == {"pan": "untouched", "pan_nomask": "tuned"}
    assert data["settings"]["label_overrides"] == {"pan_nomask": "tuned"}
    assert {(c["shot"], c["label"]) for c in data["cells"]} == {("pan", "untouched"), ("pan_nomask", "tuned")}
    by_spec = {r["spec"]: r for r in data["engines"]}
    assert list(by_spec) == ["dit-guess", "flow:feather=3", "baseline"]
    flow = by_spec["flow:feather=3"]
    assert flow["row"] == "flow" and flow["engine"] == "flow" and flow["given"] == {"feather": 3}
    assert flow["options"] == {"flow_max_side": 960, "velocity_half_life": 24.0, "bridge_min_confidence": 0.2,
                               "fill_max_distance": 16, "feather": 3, "inpaint_radius": 5}
    assert flow["describe"]["engine"] == "flow" and "DIS" in flow["describe"]["model"]
    assert set(flow["describe"]) >= {"model", "model_sha256"}
    assert by_spec["baseline"]["options"] == {"inpaint_radius": 5}
    guess = by_spec["dit-guess"]
    assert guess["engine"] is None and "first guess" in guess["reference"]
    assert "plate_flow" in guess["describe"]["model"]
    methods = {c["engine"]: c["methods"] for c in data["cells"] if c["shot"] == "pan" and c["task"] == "bridge"}
    assert methods["baseline"] == ["dissolve"] * 4 and len(methods["flow:feather=3"]) == 4


def test_guess_row_is_whatever_plate_flow_returns(footage, monkeypatch):
    shot = evaluate.ShotFrames(evaluate.Shot("pan", str(footage / "pan" / "frames")), max_side=480)
    trial = evaluate.make_trial(shot, TaskKind.EXTEND_FORWARD, 8, 4)
    given = np.where(trial.masks[..., None] > 0, 0.0, trial.truth).astype(np.float32)
    expected = working.plate_flow(trial.plan, given, trial.masks.copy())
    made = rows.load_row("dit-guess").engine.generate(trial.plan, given, trial.masks.copy())
    np.testing.assert_array_equal(made.frames, expected.frames)
    np.testing.assert_array_equal(made.confidence, expected.confidence)

    def grey_guess(plan, frames, masks, cancel=None):
        return working.PlateFlow(np.full_like(frames, 0.25), {"guess": "grey"}, np.zeros(frames.shape[:3], np.float32))

    monkeypatch.setattr(working, "plate_flow", grey_guess)   # another guess: the row follows it
    scores, _, made = evaluate.run_trial(rows.load_row("dit-guess").engine, trial)
    hidden = trial.masks > 0
    assert scores["psnr"] == pytest.approx(10 * math.log10(1 / np.mean((0.25 - trial.truth[hidden]) ** 2)), abs=1e-3)
    assert made.info == {"guess": "grey"}


def test_no_change_row_names_the_dit_option_it_needs(monkeypatch):
    class OldDiT(Engine):
        name = "dit"

        def __init__(self, model=None, strength=None):
            pass

        def generate(self, *args, **kwargs):  # pragma: no cover - never run
            raise AssertionError

    monkeypatch.setattr(rows, "engine_class", lambda name: OldDiT)
    with pytest.raises(EngineUnavailableError, match="needs the dit engine option 'model_change'.*"
                                                     "its options: model, strength"):
        rows.load_row("dit-no-change")
    with pytest.raises(EngineUnavailableError, match="needs the dit engine option 'model_change'"):
        evaluate.run(".", engines=("flow", "dit-no-change"))   # before any footage is read


def test_no_change_row_is_dit_with_the_model_change_off():
    pytest.importorskip("torch")
    row = rows.load_row("dit-no-change:samples=1")
    assert row.registry == "dit" and row.engine.model_change is False
    record = rows.row_record(row)
    assert record["options"]["model_change"] is False and record["options"]["samples"] == 1
    assert record["options"]["strength"] == row.engine.strength < 1     # resolved from the manifest
    assert record["describe"]["model"] and len(record["describe"]["model_sha256"]) == 64
    with pytest.raises(EngineUnavailableError, match="sets model_change itself"):
        rows.load_row("dit-no-change:model_change=true")


def test_repeated_rows_are_refused(footage):
    with pytest.raises(InputError, match="flow given more than once"):
        evaluate.run(footage, engines=("flow", "baseline", "flow"))


# -- the table: untouched headline, tuned and training columns, the model's own share ---------
def _cell(shot: str, label: str, engine: str, psnr: float) -> evaluate.Cell:
    return evaluate.Cell(shot, "bridge", 4, engine, {"psnr": psnr, "ssim": 0.5, "flicker": None, "flicker_truth": None,
                                                     "seam": None, "seam_truth": None, "seam_error": None,
                                                     "seconds_per_frame": 0.1}, 1.0, (8, 8), label=label, context=4)


def _table(cells: list, engines: list) -> list[str]:
    registry = {"dit": "dit", "dit:steps=4": "dit", "dit-guess": None, "flow": "flow", "baseline": "baseline"}
    res = evaluate.Results(cells, [], {"engines": engines, "max_side": 8, "context": 4, "seed": 0}, 1.0,
                           rows=[{"spec": e, "engine": registry[e]} for e in engines])
    return res.to_markdown().splitlines()


PSNR = {  # shot: (label, dit, dit-guess, baseline)
    "u1": ("untouched", 30.0, 29.0, 20.0), "u2": ("untouched", 26.0, 26.5, 27.0),
    "t1": ("tuned", 40.0, 37.0, 10.0), "r1": ("training", 50.0, 44.0, 10.0), "r2": ("training", 48.0, 46.0, 10.0),
}


def test_headline_is_the_untouched_mean_with_tuned_and_training_columns_and_the_share():
    cells = [_cell(shot, label, engine, value) for shot, (label, *values) in PSNR.items()
             for engine, value in zip(("dit", "dit-guess", "baseline"), values)]
    lines = _table(cells, ["dit", "dit-guess", "baseline"])
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    assert header[3:5] == ["shots", "PSNR dB"]
    assert header[-4:] == ["beats baseline (PSNR)", "model's own share dB", "tuned PSNR (share)",
                           "training PSNR (share)"]
    table = {row[2]: row for row in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:5])}
    dit, guess, baseline = table["dit"], table["dit-guess"], table["baseline"]
    assert dit[3:5] == ["2", "28.00"]                      # (30 + 26) / 2: the untouched shots only
    assert guess[4] == "27.75" and baseline[4] == "23.50"
    assert dit[-4:] == ["1/2", "+0.25", "40.00 (+3.00)", "49.00 (+4.00)"]   # share: (1.0 - 0.5) / 2
    assert guess[-4:] == ["1/2", "-", "37.00", "45.00"]
    assert baseline[-4:] == ["-", "-", "10.00", "10.00"]
    caption = lines[6]
    assert "over the 2 untouched shots (u1, u2) only" in caption
    assert "1 tuned shot (t1)" in caption and "2 training shots (r1, r2)" in caption
    assert "minus the dit-guess row's" in caption and "4 real frames of context" in caption


def test_share_is_on_every_dit_row_and_needs_the_guess_row():
    cells = [_cell("u1", "untouched", e, v) for e, v in (("dit", 30.0), ("dit:steps=4", 31.5), ("dit-guess", 29.0),
                                                         ("flow", 29.5))]
    lines = _table(cells, ["dit", "dit:steps=4", "dit-guess", "flow"])
    shares = {row[2]: row[-1] for row in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:6])}
    assert shares == {"dit": "+1.00", "dit:steps=4": "+2.50", "dit-guess": "-", "flow": "-"}
    without = _table([c for c in cells if c.engine != "dit-guess"], ["dit", "dit:steps=4", "flow"])
    assert "model's own share" not in without[0] and "Add dit-guess to the engines" in without[-1]


def test_a_run_without_untouched_shots_says_its_headline_is_empty():
    cells = [_cell("t1", "tuned", "flow", 30.0)]
    lines = _table(cells, ["flow"])
    row = [c.strip() for c in lines[2].strip("|").split("|")]
    assert row[3:5] == ["0", "-"] and row[-1] == "30.00"
    assert "No untouched shot in this run" in lines[-1]


# -- real footage ------------------------------------------------------------------------
def test_one_real_shot_gives_finite_scores(shared_data, tmp_path):
    res = evaluate.run(shared_data / "footage", shots=("davis2016_car-shadow",), max_side=240,
                       engines=("dit", "dit-guess", "dit-no-change", "flow", "baseline"),
                       tasks=("extend_forward",), out=tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    assert len(data["cells"]) == 5
    assert data["shots"] == {"davis2016_car-shadow": "tuned"}
    for cell in data["cells"]:
        assert cell["size"] == [240, 135] and cell["label"] == "tuned" and cell["context"] == 4
        for key in ("psnr", "ssim", "flicker", "flicker_truth", "seam", "seam_truth", "seconds_per_frame"):
            assert math.isfinite(cell["metrics"][key]), (cell["engine"], cell["task"], key)
        assert 10 < cell["metrics"]["psnr"] < 60
    dit = next(r for r in data["engines"] if r["spec"] == "dit")
    assert dit["describe"]["model"] == "shotfill-dit" and len(dit["describe"]["model_sha256"]) == 64
    assert dit["options"]["strength"] is not None and dit["options"]["output"] in ("picture", "correction")
    table = res.to_markdown()
    dit_row = next(line for line in table.splitlines() if line.startswith("| extend_forward | 8 | dit |"))
    assert dit_row.split("|")[4].strip() == "0"                       # no untouched shot: empty headline
    assert re.search(r"\| \d+\.\d\d \([+-]\d+\.\d\d\) \|$", dit_row)        # tuned PSNR (the model's share)
    assert "| extend_forward | 8 | flow |" in table and "| extend_forward | 8 | dit-no-change |" in table


def test_engine_specs_set_options_and_name_bad_ones():
    from shotfill.errors import InputError
    from shotfill.quality.harness import engine_from_spec

    engine = engine_from_spec("flow")
    assert engine.name == "flow"
    with pytest.raises(InputError, match="has no option 'speed'"):
        engine_from_spec("flow:speed=2")
    with pytest.raises(InputError, match="expected KEY=VALUE"):
        engine_from_spec("flow:fast")
