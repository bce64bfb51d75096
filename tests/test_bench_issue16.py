"""The issue-16 benchmarks' helpers, in seconds: EXR write throughput, the main job's stage clock, the peak-memory
child and its watchdog, and bench/run_all.py's summary and tables. (Start-up and load: test_startup.py, test_load.py.)"""
from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


exr_write = _bench("bench_exr_write")
main_job = _bench("bench_main_job")
peak_memory = _bench("bench_peak_memory")
run_all = _bench("run_all")


# -- EXR write throughput ------------------------------------------------------------------------------------
def test_the_three_writers_write_the_same_pixels(tmp_path):
    from shotfill.io.exr import read_exr

    frame = exr_write.plate_frames(32, 16, 1)[0]
    half = frame.astype(np.float16)
    exr_write.write_shotfill(tmp_path / "a.exr", frame, "piz")
    exr_write.write_binding(tmp_path / "b.exr", half, "piz")
    exr_write.write_raw(tmp_path / "c.raw", half)
    a, b = read_exr(tmp_path / "a.exr"), read_exr(tmp_path / "b.exr")
    assert np.array_equal(np.asarray(a.pixels, np.float16), half) and np.array_equal(np.asarray(b.pixels, np.float16), half)
    assert (tmp_path / "c.raw").stat().st_size == half.nbytes
    assert np.array_equal(np.fromfile(tmp_path / "c.raw", np.float16).reshape(half.shape), half)


def test_throughput_is_measured_per_compression_and_writer(tmp_path):
    frames = exr_write.plate_frames(64, 32, 2)
    measured = exr_write.measure(frames, tmp_path, compressions=("zip", "none"))
    assert list(tmp_path.iterdir()) == []                          # every file removed
    table = exr_write.summarise(measured)
    assert set(table) == {"zip", "none"}
    for row in table.values():
        assert all(row[f"{w}_mb_s"] > 0 for w in exr_write.WRITERS)
    assert table["zip"]["file_ratio"] < table["none"]["file_ratio"]   # ZIP compresses a picture
    assert table["none"]["file_ratio"] >= 1.0                          # uncompressed: header on top of the pixels


def test_summarise_takes_medians_and_ratios():
    measured = {"frame_bytes": 2 * exr_write.MB, "sizes": {"zip": [exr_write.MB, exr_write.MB]},
                "seconds": {"zip": {"shotfill": [0.2, 0.4, 0.2], "binding": [0.1, 0.1, 0.3], "raw": [0.05] * 3}}}
    row = exr_write.summarise(measured)["zip"]
    assert (row["shotfill_mb_s"], row["binding_mb_s"], row["raw_mb_s"]) == (10.0, 20.0, 40.0)
    assert (row["ratio_to_binding"], row["ratio_to_raw"], row["file_ratio"]) == (2.0, 4.0, 0.5)


# -- the main job's stages -----------------------------------------------------------------------------------
class _Owner:
    @staticmethod
    def work(seconds):
        time.sleep(seconds)
        return "done"


def test_the_stage_clock_sums_by_stage_and_restores():
    clock = main_job.StageClock()
    real = _Owner.work
    clock.wrap(_Owner, "work", "write")
    assert _Owner.work(0.01) == "done" and _Owner.work(0.01) == "done"
    clock.restore()
    assert _Owner.work is real
    assert 0.02 <= clock.seconds["write"] < 0.5


def test_stage_table_takes_the_engine_load_out_of_resolve_and_keeps_the_rest_as_other():
    table = main_job.stage_table({"resolve": 3.0, "engine load": 2.5, "generate": 4.0}, wall=10.0)
    assert table["resolve"] == 0.5 and table["engine load"] == 2.5 and table["generate"] == 4.0
    assert table["other"] == 3.0 and table["total"] == 10.0
    assert list(table)[:-1] == list(main_job.STAGES)


def test_the_main_job_is_clocked_through_the_worker(tmp_path):
    from shotfill.synthetic.sample_edit import make_sample_edit

    sample = make_sample_edit(tmp_path / "edit", width=64, height=36)
    job = main_job.timed_job(main_job.bridge_spec(sample, tmp_path / "out", "flow"))
    stages = job["stages"]
    assert job["written"] == 4 and job["new_edit"] is True        # the sample gap's 4 generated frames, the edit
    for stage in ("resolve", "read", "generate", "write", "publish"):
        assert stages[stage] > 0, stage
    assert stages["other"] >= -0.001
    assert abs(sum(v for k, v in stages.items() if k != "total") - stages["total"]) < 0.01
    import shotfill.worker.run as run

    assert run.resolve.__module__ == "shotfill.worker.resolve"   # the wrappers are gone


def test_ratios_are_per_stage_and_none_where_flow_spent_nothing():
    runs = {e: {w: {"stages": {"generate": g, "engine load": l}} for w in ("cold", "warm")}
            for e, g, l in (("flow", 0.5, 0.0), ("dit", 5.0, 8.0))}
    r = main_job.ratios(runs, "dit", "flow")
    assert r["cold"] == {"generate": 10.0, "engine load": None}


# -- peak memory ---------------------------------------------------------------------------------------------
def test_the_plate_is_half_float_exr_of_the_asked_size(tmp_path):
    from shotfill.io.exr import read_exr

    pattern = peak_memory.write_plate(tmp_path, 64, 32, 2)
    frames = sorted(tmp_path.glob("plate.*.exr"))
    assert [f.name for f in frames] == ["plate.1001.exr", "plate.1002.exr"] and pattern.endswith("plate.####.exr")
    image = read_exr(frames[0])
    assert np.asarray(image.pixels).shape == (32, 64, 3) and np.isfinite(image.pixels).all()
    with pytest.raises(ValueError, match="multiple of the render scale"):
        peak_memory.write_plate(tmp_path, 66, 32, 1)


def test_the_stage_sink_keeps_a_peak_per_stage_and_saves_as_it_goes(tmp_path):
    from shotfill.events import StageEvent

    profile = tmp_path / "p.json"
    with peak_memory.StageMemory(profile, trace=True) as memory:
        memory.emit(StageEvent("read"))
        held = np.ones(16 * 1024 * 1024, np.uint8)      # 16 MB, held into the next stage
        memory.emit(StageEvent("write"))
        assert json.loads(profile.read_text())["stage"] == "write"
    saved = json.loads(profile.read_text())
    assert set(saved["stage_peak_gb"]) == {"start", "read", "write"}
    assert saved["stage_peak_gb"]["write"] > 0
    top = saved["holders_at_stage_start"]["write"][0]
    assert top["line"].endswith("test_bench_issue16.py:" + str(_line_of("held = np.ones"))) and top["gb"] > 0.01
    del held


def _line_of(text: str) -> int:
    return next(i for i, line in enumerate(Path(__file__).read_text().splitlines(), 1) if text in line)


def test_an_engine_child_reports_its_peak_and_one_past_the_limit_is_killed(tmp_path):
    plate = peak_memory.write_plate(tmp_path / "plate", 64, 32, 2)
    row = peak_memory.run_engine(plate, "baseline", 2, tmp_path, kill_above=8 * peak_memory.GB, trace=False)
    assert row["exit"] == 0 and 0.02 < row["peak_rss_gb"] < 2 and row["within_goal"] is True
    assert "write" in row["profile"]["stage_peak_gb"]
    killed = peak_memory.run_engine(plate, "baseline", 2, tmp_path, kill_above=1, trace=False)   # 1 byte
    assert killed["killed_over_gb"] == 0.0 and killed["within_goal"] is False and killed["exit"] != 0
    stopped = peak_memory.run_engine(plate, "baseline", 2, tmp_path, kill_above=8 * peak_memory.GB, trace=False,
                                     timeout=0.05)
    assert stopped["timed_out_s"] >= 0.05 and stopped["within_goal"] is None and "killed_over_gb" not in stopped


# -- run_all -------------------------------------------------------------------------------------------------
def test_run_all_runs_the_named_benchmarks_and_prints_their_tables(tmp_path, capsys):
    assert run_all.main(["--quick", "--only", "exr_write", "--results", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "issue16.json").read_text())
    assert set(summary["benchmarks"]) == {"exr_write"} and summary["benchmarks"]["exr_write"]["wall_s"] > 0
    assert json.loads((tmp_path / "exr_write.json").read_text())["settings"]["size"] == [960, 540]
    table = (tmp_path / "issue16.md").read_text()
    assert "| piz |" in table and "EXR write throughput" in table
    (tmp_path / "issue16.md").unlink()
    assert run_all.main(["--table", "--results", str(tmp_path)]) == 0
    assert (tmp_path / "issue16.md").read_text() == table
    # one benchmark again: the others' entries stay
    summary["benchmarks"]["startup"] = {"wall_s": 1.0, "results": {"commands": {
        "python -c pass": {"median_s": 0.04, "ratio_to_python": 1.0}}}}
    (tmp_path / "issue16.json").write_text(json.dumps(summary))
    assert run_all.main(["--quick", "--only", "exr_write", "--results", str(tmp_path)]) == 0
    assert set(json.loads((tmp_path / "issue16.json").read_text())["benchmarks"]) == {"startup", "exr_write"}
    assert table.strip() in capsys.readouterr().out


def test_the_dit_attention_table_reads_its_sizes_and_says_when_it_cannot():
    size = {"name": "20k", "tokens": 20480, "ours_s": 2.0, "wan_s": 8.0, "ratio_wan_over_ours": 4.0,
            "ours_gflops": 150.0, "ours_share_of_matmul": 0.8, "wan_share_of_matmul": 0.5}
    lines = run_all.md_dit_attention({"sizes": [size], "matmul_gflops": 180.0})
    assert "| 20k | 20480 | 2.0 | 8.0 | 4.0 | 150.0 | 80% | 50% |" in lines and "180.0 GFLOP/s" in lines[-1]
    assert "see the file" in run_all.md_dit_attention({"sizes": [{"name": "20k"}]})[0]


def test_run_all_refuses_an_unknown_name(tmp_path):
    with pytest.raises(SystemExit):
        run_all.main(["--only", "nonsense", "--results", str(tmp_path)])


def test_the_tables_of_startup_load_main_job_and_peak_memory_render_from_their_results():
    startup = {"commands": {"python -c pass": {"median_s": 0.04, "ratio_to_python": 1.0},
                            "plan": {"median_s": 0.3, "ratio_to_python": 7.5, "modules": ["opentimelineio"],
                                     "forbidden": []},
                            "info exr": {"median_s": 2.0, "ratio_to_python": 50.0, "modules": ["torch"],
                                         "forbidden": ["torch"]}}}
    lines = run_all.md_startup(startup)
    assert "| `python -c pass` | 40 | 1.0 | - | no |" in lines
    assert "| `shotfill plan` | 300 | 7.5 | opentimelineio | no |" in lines
    assert "| `shotfill info exr` | 2000 | 50.0 | torch | **yes** |" in lines
    load = {"engines": {"flow": {"jobs": 50, "start_mb": 87.0, "warm_mb": 95.9, "end_mb": 96.0,
                                 "growth_per_job_mb": 0.001, "late_growth_per_job_mb": 0.0, "end_to_warm": 1.001,
                                 "s_per_job": 0.16}}}
    assert "| flow | 50 | 87.0 | 95.9 | 96.0 | 0.001 | 0.0 | 1.001 | 0.16 |" in run_all.md_load(load)
    stages = {"generate": 1.0, "total": 2.0}
    job = {"runs": {e: {"cold": {"stages": stages}, "warm": {"stages": stages}} for e in ("flow", "dit")},
           "ratio_dit_to_flow": {"cold": {"generate": 1.0, "total": 1.0}, "warm": {"generate": None, "total": 1.0}}}
    assert "| generate | 1.0 | 1.0 | 1.0 | 1.0 | 1.0 | - |" in run_all.md_main_job(job)
    peak = {"settings": {"goal_gb": 6.0}, "engines": {
        "flow": {"peak_rss_gb": 3.2, "within_goal": True, "wall_s": 60.0, "profile": {"stage_peak_gb": {"read": 1, "write": 3}}},
        "dit": {"peak_rss_gb": 10.1, "killed_over_gb": 10.0, "killed_in_stage": "seam", "within_goal": False,
                "wall_s": 90.0},
        "motion": {"peak_rss_gb": 4.0, "timed_out_s": 300.0, "killed_in_stage": "generate", "within_goal": None,
                   "wall_s": 300.0}}}
    lines = run_all.md_peak_memory(peak)
    assert "| flow | 3.2 | yes | read 1, write 3 | 60.0 |" in lines
    assert "| dit | > 10.0 (killed in seam) | **no** | - | 90.0 |" in lines
    assert "| motion | >= 4.0 (stopped after 300.0 s in generate) | not known | - | 300.0 |" in lines
