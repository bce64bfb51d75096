"""The command line and the worker, as real subprocesses: events, exit codes, signals, resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shotfill.io.exr import read_exr, write_exr

H, W = 72, 96


def shotfill(*args, **kw):
    return subprocess.run([sys.executable, "-m", "shotfill", *map(str, args)], capture_output=True,
                          text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    d = tmp_path_factory.mktemp("plate")
    rng = np.random.default_rng(0)
    tex = np.kron(rng.random((H // 4, (W + 200) // 4, 3)), np.ones((4, 4, 1))).astype(np.float32)
    for i in range(24):
        write_exr(d / f"sh010.{i:04d}.exr", tex[:, 2 * i:2 * i + W])
    return d / "sh010.####.exr"


def test_version_and_help():
    r = shotfill("--version")
    assert r.returncode == 0 and r.stdout.startswith("shotfill ")
    r = shotfill("--help")
    assert "Exit codes" in r.stdout
    r = shotfill("engines")
    assert "flow" in r.stdout and "baseline" in r.stdout and "(default)" in r.stdout.splitlines()[0]
    assert "wan-vace" in r.stdout and "ltx" in r.stdout and "--memory modes" in r.stdout and "offload" in r.stdout


def test_extend_with_jsonl_events(plate, tmp_path):
    r = shotfill("extend", plate, "--frames", 4, "--out", tmp_path / "out", "--seed", 3,
                 "--events", "jsonl", "--no-preview")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    kinds = {e["event"] for e in events}
    assert {"stage", "progress", "frame", "result"} <= kinds
    frames = [e["frame"] for e in events if e["event"] == "frame"]
    assert frames == [24, 25, 26, 27]                       # continues 0000-0023
    result = events[-1]
    assert result["event"] == "result" and result["engine"] == "dit"     # the default engine
    fr = [e["fraction"] for e in events if e["event"] == "progress"]
    assert fr == sorted(fr) and fr[-1] == 1.0
    assert read_exr(tmp_path / "out" / "sh010_ext.0025.exr").attributes["shotfill.seed"] == 3


def test_run_job_file_is_the_same_worker(plate, tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"version": 1, "task": "extend_backward", "source": {"path": str(plate)},
                               "frames": 2, "output": {"dir": str(tmp_path / "o"), "preview": False,
                                                       "start_frame": 1001}}))   # never numbered below 0
    r = shotfill("run", job)
    assert r.returncode == 0, r.stderr
    assert "extend_backward" in r.stdout and (tmp_path / "o" / "sh010_head.1001.exr").exists()


@pytest.mark.parametrize("args, needle", [
    (["extend", "/no/such/plate.####.exr", "--frames", "2", "--out", "OUT"], "/no/such/plate"),
    (["extend", "PLATE", "--frames", "2", "--out", "OUT", "--engine", "warp9"], "unknown engine 'warp9'"),
    (["extend", "PLATE", "--frames", "2", "--out", "OUT", "--compression", "jpeg"], "output.compression"),
    (["bridge", "PLATE", "--frames", "2", "--out", "OUT"], "two sources"),
    (["fill", "PLATE", "--out", "OUT"], "--mask"),
    (["extend", "PLATE", "--frames", "2", "--out", "OUT", "--engine-option", "speed=11"], "has no option 'speed'"),
    (["extend", "PLATE", "--frames", "2", "--out", "OUT", "--engine-option", "steps"], "expected KEY=VALUE"),
    (["extend", "PLATE", "--frames", "2", "--out", "OUT", "--engine", "dit", "--steps", "0"], "option steps"),
    # a seed the EXR header cannot keep is refused up front, not an internal error at the first write
    (["extend", "PLATE", "--frames", "2", "--out", "OUT", "--engine", "flow", "--seed", "2147483648"],
     "job field 'seed': must be a whole number 0..2147483647"),
    (["info", "/no/such/file.exr"], "/no/such/file.exr"),
    (["plan", "/no/such/cut.otio"], "/no/such/cut.otio"),
])
def test_bad_input_exits_2_with_one_line(plate, tmp_path, args, needle):
    args = [str(plate) if a == "PLATE" else str(tmp_path / "o") if a == "OUT" else a for a in args]
    r = shotfill(*args)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("shotfill: error: ")


def test_engine_options_from_the_command_line(tmp_path):
    from shotfill.cli import build_parser
    from shotfill.cli.common import engine_options

    (tmp_path / "m").mkdir()
    args = build_parser().parse_args([
        "extend", "p.####.exr", "--frames", "2", "--out", "o", "--model", str(tmp_path / "m"), "--memory", "offload",
        "--steps", "4", "--manifest", "mine.json", "--engine-option", "working_size=512",
        "--engine-option", "detail=false", "--engine-option", "negative_prompt=blurry, static"])
    assert engine_options(args) == {
        "working_size": 512, "detail": False, "negative_prompt": "blurry, static", "model": str(tmp_path / "m"),
        "manifest": str(Path("mine.json").resolve()), "memory": "offload", "steps": 4}
    args = build_parser().parse_args(["extend", "p.####.exr", "--frames", "2", "--out", "o", "--model", "wan2.1-vace-1.3b"])
    assert engine_options(args) == {"model": "wan2.1-vace-1.3b"}     # a name stays a name


def test_bad_job_file_names_the_field(tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"task": "extend_forward", "source": "x", "frames": -3, "output": "o"}))
    r = shotfill("run", job)
    assert r.returncode == 2 and "job field 'frames'" in r.stderr


def test_damaged_exr_info_is_one_line(shared_data):
    bad = shared_data / "exr_damaged" / "openexr-images_Damaged" / "memory_DOS_1"
    r = shotfill("info", bad)
    assert r.returncode == 2 and "Traceback" not in r.stderr and str(bad) in r.stderr


def _start(plate, out, frames=40):
    return subprocess.Popen([sys.executable, "-m", "shotfill", "extend", str(plate), "--frames", str(frames),
                             "--out", str(out), "--events", "jsonl", "--no-preview"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(proc, predicate):
    for line in proc.stdout:
        if predicate(json.loads(line)):
            return True
    return False


def test_sigterm_cancels_cleanly_and_rerun_resumes(plate, tmp_path):
    out = tmp_path / "out"
    proc = _start(plate, out)
    assert _wait_for(proc, lambda e: e["event"] == "frame")
    proc.send_signal(signal.SIGTERM)
    proc.stdout.read()
    assert proc.wait(timeout=120) == 3
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]
    done = sorted(out.glob("*.exr"))
    assert 1 <= len(done) < 40
    for p in done:
        read_exr(p)
    r = shotfill("extend", plate, "--frames", 40, "--out", out, "--no-preview")
    assert r.returncode == 0
    assert f"{40 - len(done)} frames written, {len(done)} already there" in r.stdout


def test_sigkill_then_rerun_has_no_corrupt_frame_and_no_duplicate_work(plate, tmp_path):
    out = tmp_path / "out"
    proc = _start(plate, out)
    assert _wait_for(proc, lambda e: e["event"] == "frame" and e["frame"] >= 26)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    done = sorted(out.glob("*.exr"))
    for p in done:
        read_exr(p)                                         # whole or absent, never half
    r = shotfill("extend", plate, "--frames", 40, "--out", out, "--no-preview", "--events", "jsonl")
    assert r.returncode == 0
    events = [json.loads(line) for line in r.stdout.splitlines()]
    skipped = [e["frame"] for e in events if e["event"] == "frame" and e["skipped"]]
    assert sorted(skipped) == sorted(int(p.name.split(".")[1]) for p in done)
    assert not list(out.glob(".*.tmp"))                     # the killed writer's temporaries are gone
    assert len(list(out.glob("*.exr"))) == 40


def test_delegated_subcommands_take_their_own_options(tmp_path):
    r = shotfill("eval", "-h")
    assert r.returncode == 0 and "--engines" in r.stdout
    r = shotfill("eval", tmp_path / "nothing-here")
    assert r.returncode == 2 and "not a folder of footage" in r.stderr


def test_plan_lists_targets_with_handles(tmp_path):
    from shotfill.synthetic import make_sample_edit

    sample = make_sample_edit(tmp_path, width=64, height=36)
    r = shotfill("plan", sample.edit)
    assert r.returncode == 0
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert "TARGET" in lines and "HANDLES" in lines["TARGET"] and "GENERATED" in lines["TARGET"]
    assert "  20  " in lines["V1.gap1"] and "8 A + 8 B  4 " in lines["V1.gap1"] and "shotA -> shotB" in lines["V1.gap1"]
    assert "up to 8" in lines["V1.clip1.tail"] and "up to 8" in lines["V1.clip2.head"]
    assert "01:00:01:16" in lines["V1.gap1"]
    r = shotfill("plan", sample.edit, "--json")
    ids = [t["id"] for t in json.loads(r.stdout)["targets"]]
    assert "V1.clip3.fill" in ids


# ---------------------------------------------------------------------------
# trust beside the seam score; bugs of issue 13
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from shotfill.synthetic import make_sample_edit

    return make_sample_edit(tmp_path_factory.mktemp("sample"), width=96, height=54)


def test_the_result_shows_trust_beside_the_seam_score(plate, tmp_path):
    r = shotfill("extend", plate, "--frames", 3, "--engine", "flow", "--out", tmp_path / "o", "--no-preview")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    seam = next(i for i, line in enumerate(lines) if line.startswith("  seam a_to_generated:"))
    assert "at the cut only" in lines[seam]
    trust = lines[seam + 1]
    assert trust.startswith("  trust:    0.") and "lowest" in trust and trust.endswith("3 extrapolated")


def test_a_bridge_between_two_shots_warns_of_its_dissolve(sample, tmp_path):
    r = shotfill("bridge", sample.edit, "--target", "V1.gap1", "--engine", "flow", "--out", tmp_path / "o",
                 "--no-preview")
    assert r.returncode == 0, r.stderr
    said = ("warning: bridge: fell back to a dissolve on frames 1001-1004: the shots do not follow one motion; "
            "the result is a cross-dissolve")
    assert said in r.stderr and f"  {said.replace('warning: ', 'warning:  ')}" in r.stdout
    assert "4 dissolve" in r.stdout


def test_colourspace_in_reaches_an_edit_targets_media(sample, tmp_path):
    r = shotfill("bridge", sample.edit, "--target", "V1.gap1", "--engine", "baseline", "--colourspace-in", "acescg",
                 "--out", tmp_path / "o", "--no-preview", "--events", "jsonl")
    assert r.returncode == 0, r.stderr
    result = [json.loads(line) for line in r.stdout.splitlines()][-1]
    first = Path(result["output_pattern"].replace("####", f"{result['frames'][0]:04d}"))
    assert read_exr(first).attributes["shotfill.colourSpace"] == "acescg"     # the source's, kept for output


def test_context_zero_is_refused_with_the_options_name(plate, tmp_path):
    r = shotfill("extend", plate, "--frames", 2, "--engine", "flow", "--context", 0, "--out", tmp_path / "o")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "argument --context: must be at least 1" in r.stderr
    assert not (tmp_path / "o").exists()
