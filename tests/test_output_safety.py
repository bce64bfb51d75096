"""Output safety: nothing overwritten silently, frame numbers never negative, errors before the
engine loads, no `accelerate` warning from the demo. The command line as real subprocesses."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shotfill.io.exr import read_exr, read_exr_header, write_exr

H, W = 40, 56


def shotfill(*args, code: str | None = None, **kw):
    """``python -m shotfill ARGS`` (or, with ``code``, that Python first and then the same command)."""
    if code is None:
        cmd = [sys.executable, "-m", "shotfill", *map(str, args)]
    else:
        cmd = [sys.executable, "-c", code + "\nfrom shotfill.cli import main\nsys.exit(main(sys.argv[1:]))",
               *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def _plate(directory: Path, name: str = "sh010", frames=range(0, 8), seed: int = 0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tex = np.kron(rng.random((H // 4, (W + 64) // 4, 3)), np.ones((4, 4, 1))).astype(np.float32)
    for i, f in enumerate(frames):
        write_exr(directory / f"{name}.{f:04d}.exr", tex[:, 2 * i:2 * i + W])
    return directory / f"{name}.####.exr"


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    return _plate(tmp_path_factory.mktemp("plate"))


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.exr"))}


def _extend(plate, out, *extra, engine="flow", frames=3):
    return shotfill("extend", plate, "--frames", frames, "--engine", engine, "--out", out, "--no-preview", *extra)


# ---------------------------------------------------------------------------
# nothing overwritten silently
# ---------------------------------------------------------------------------
def test_a_second_engine_into_the_same_output_is_refused_and_the_first_frames_stay(plate, tmp_path):
    out = tmp_path / "out"
    first = _extend(plate, out, "--events", "jsonl")
    assert first.returncode == 0, first.stderr
    job_id = json.loads(first.stdout.splitlines()[-1])["job_id"]
    before = _digests(out)
    assert list(before) == ["sh010_ext.0008.exr", "sh010_ext.0009.exr", "sh010_ext.0010.exr"]
    r = _extend(plate, out, engine="baseline")
    assert r.returncode == 2, r.stderr
    message = r.stderr
    assert f"{out / 'sh010_ext.0008.exr'} and 2 more frames" in message
    assert f"written by job {job_id} (engine 'flow', seed 0, extend_forward, written 20" in message
    assert "engine 'baseline'" in message and "Nothing was written" in message
    assert "--overwrite" in message and "--version" in message and "sh010_ext_v2" in message
    assert "Traceback" not in message
    assert _digests(out) == before
    assert sorted(p.name for p in out.iterdir()) == [*before, "sh010_ext.result.json"]
    # the same job again resumes, exactly as before
    again = _extend(plate, out)
    assert again.returncode == 0 and "0 frames written, 3 already there" in again.stdout
    assert _digests(out) == before


def test_a_result_file_of_another_job_is_refused_too(plate, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "sh010_ext.result.json").write_text(json.dumps({"job_id": "0123456789abcdef", "engine": "dit",
                                                           "task": "extend_forward"}))
    r = _extend(plate, out)
    assert r.returncode == 2
    assert f"{out / 'sh010_ext.result.json'} was written by job 0123456789abcdef (engine 'dit'" in r.stderr
    assert not list(out.glob("*.exr"))


def test_frames_shotfill_did_not_write_are_refused(plate, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    write_exr(out / "sh010_ext.0009.exr", np.zeros((4, 4, 3), np.float32))
    r = _extend(plate, out)
    assert r.returncode == 2 and "a file shotfill did not write" in r.stderr
    assert read_exr(out / "sh010_ext.0009.exr").pixels.shape[:2] == (4, 4)


def test_overwrite_replaces_that_jobs_frames_and_leaves_nothing_mixed(plate, tmp_path):
    out = tmp_path / "out"
    assert shotfill("extend", plate, "--frames", 5, "--engine", "flow", "--out", out).returncode == 0
    assert (out / "sh010_ext.contact.png").exists() and list((out / "preview").glob("sh010_ext.*.png"))
    r = _extend(plate, out, "--overwrite", "--events", "jsonl", engine="baseline", frames=3)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    result = events[-1]
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert any(w.startswith("replacing 5 frames of") and "(--overwrite)" in w for w in warnings)
    # only this job's frames remain: 0011-0012 of the first job are gone, and its pictures
    assert sorted(p.name for p in out.glob("*.exr")) == ["sh010_ext.0008.exr", "sh010_ext.0009.exr",
                                                        "sh010_ext.0010.exr"]
    assert {read_exr_header(p)["shotfill.jobId"] for p in out.glob("*.exr")} == {result["job_id"]}
    assert json.loads((out / "sh010_ext.result.json").read_text())["job_id"] == result["job_id"]
    assert not (out / "sh010_ext.contact.png").exists() and not list((out / "preview").glob("sh010_ext.*"))
    # run again with the same option: its own frames, resumed (the option is not part of the job id)
    again = _extend(plate, out, "--overwrite", engine="baseline", frames=3)
    assert again.returncode == 0 and "0 frames written, 3 already there" in again.stdout
    plain = _extend(plate, out, engine="baseline", frames=3)
    assert plain.returncode == 0 and "0 frames written, 3 already there" in plain.stdout


def test_version_writes_beside_and_resumes_there(plate, tmp_path):
    out = tmp_path / "out"
    assert _extend(plate, out).returncode == 0
    before = _digests(out)
    r = _extend(plate, out, "--version", engine="baseline")
    assert r.returncode == 0, r.stderr
    assert f"this job writes {out / 'sh010_ext_v2'}.####.exr (--version)" in r.stderr
    assert f"frames:   {out / 'sh010_ext_v2'}.####.exr  (8-10)" in r.stdout
    assert {k: v for k, v in _digests(out).items() if k in before} == before
    assert sorted(p.name for p in out.glob("sh010_ext_v2.*.exr")) == [
        "sh010_ext_v2.0008.exr", "sh010_ext_v2.0009.exr", "sh010_ext_v2.0010.exr"]
    again = _extend(plate, out, "--version", engine="baseline")
    assert again.returncode == 0 and "0 frames written, 3 already there" in again.stdout
    # without --version the job is told where its own frames are
    plain = _extend(plate, out, engine="baseline")
    assert plain.returncode == 2 and f"This job's own frames are in {out / 'sh010_ext_v2'}.####.exr" in plain.stderr
    third = _extend(plate, out, "--version", "--seed", 4)
    assert third.returncode == 0 and (out / "sh010_ext_v3.0008.exr").exists()
    both = _extend(plate, out, "--version", "--overwrite")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_run_takes_the_choice_too_and_a_job_file_can_hold_it(plate, tmp_path):
    out = tmp_path / "out"
    assert _extend(plate, out).returncode == 0
    job = {"task": "extend_forward", "source": {"path": str(plate)}, "frames": 3, "engine": "baseline",
           "output": {"dir": str(out), "preview": False}}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    assert shotfill("run", path).returncode == 2
    r = shotfill("run", path, "--version")
    assert r.returncode == 0 and (out / "sh010_ext_v2.0008.exr").exists()
    job["output"]["if_exists"] = "overwrite"
    path.write_text(json.dumps(job))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**job, "seed": 5}))
    r = shotfill("run", other)
    assert r.returncode == 0, r.stderr
    assert {read_exr_header(p)["shotfill.seed"] for p in out.glob("sh010_ext.*.exr")} == {5}


def test_a_frame_whose_header_does_not_read_is_written_again_with_a_warning(plate, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "sh010_ext.0009.exr").write_bytes(b"\x76\x2f\x31\x01 not much of a frame")
    r = _extend(plate, out)
    assert r.returncode == 0, r.stderr
    assert f"{out / 'sh010_ext.0009.exr'} does not read (damaged): it is written again" in r.stderr
    assert read_exr(out / "sh010_ext.0009.exr").pixels.shape[:2] == (H, W)


@pytest.mark.parametrize("command", [
    ["extend", "{plate}", "--frames", "2", "--engine", "flow"],
    ["bridge", "{plate}", "{plate}", "--frames", "2", "--engine", "flow"],
    ["fill", "{plate}", "--mask", "{plate}", "--engine", "flow"],
    ["demo", "--engine", "flow", "--width", "64", "--height", "36"],
    ["eval", "{footage}"],
    ["train", "export", "{footage}"],
])
def test_an_out_that_is_a_file_is_exit_2_naming_it(plate, tmp_path, command):
    (tmp_path / "footage").mkdir()
    taken = tmp_path / "taken.txt"
    taken.write_text("not a folder\n")
    args = [a.format(plate=plate, footage=tmp_path / "footage") for a in command]
    for out in (taken, taken / "inside"):
        r = shotfill(*args, "--out", out)
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert str(taken) in r.stderr and "not a folder" in r.stderr and "internal error" not in r.stderr
    assert taken.read_text() == "not a folder\n"


def test_a_job_file_whose_output_dir_is_a_file_is_exit_2(plate, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("")
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"task": "extend_forward", "source": str(plate), "frames": 2, "engine": "flow",
                                "output": {"dir": str(taken)}}))
    r = shotfill("run", path)
    assert r.returncode == 2 and f"(--out, output.dir) {taken} is a file" in r.stderr


# ---------------------------------------------------------------------------
# frame numbers
# ---------------------------------------------------------------------------
def test_a_backward_extension_below_0_says_to_pass_start_frame_and_start_frame_numbers_it(plate, tmp_path):
    out = tmp_path / "out"
    r = shotfill("extend", plate, "--frames", 3, "--backward", "--engine", "flow", "--out", out)
    assert r.returncode == 2
    assert "numbered from -3" in r.stderr and "--start-frame N (e.g. 1001)" in r.stderr
    assert not out.exists()
    r = shotfill("extend", plate, "--frames", 3, "--backward", "--engine", "flow", "--out", out,
                 "--start-frame", 1001, "--no-preview")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("*.exr")) == ["sh010_head.1001.exr", "sh010_head.1002.exr",
                                                        "sh010_head.1003.exr"]
    r = shotfill("bridge", plate, plate, "--frames", 2, "--engine", "flow", "--out", tmp_path / "b",
                 "--start-frame", 0, "--no-preview")
    assert r.returncode == 0 and (tmp_path / "b" / "sh010_bridge.0000.exr").exists()
    r = shotfill("extend", plate, "--frames", 3, "--out", out, "--start-frame", -5)
    assert r.returncode == 2 and "--start-frame: must be 0 or more" in r.stderr


def test_no_written_file_name_has_a_minus_sign(plate, tmp_path):
    """Every way to number a sequence on media: none ever spells a negative frame."""
    runs = [("extend", plate, "--frames", 2), ("extend", plate, "--frames", 8, "--backward"),
            ("extend", plate, "--frames", 8, "--backward", "--start-frame", 0), ("bridge", plate, plate, "--frames", 2),
            ("fill", plate, "--mask", plate, "--start-frame", 0)]
    codes = [shotfill(*args, "--engine", "flow", "--out", tmp_path / f"o{i}").returncode for i, args in enumerate(runs)]
    assert codes == [0, 2, 0, 0, 0]
    names = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert names and not [n for n in names if ".-" in n or "_-" in n]
    assert not (tmp_path / "o1").exists()
    assert sorted(p.name for p in (tmp_path / "o2").glob("*.exr"))[0] == "sh010_head.0000.exr"


# ---------------------------------------------------------------------------
# errors before the engine loads
# ---------------------------------------------------------------------------
NO_TORCH = "import sys\nimport atexit\natexit.register(lambda: print('torch imported:', 'torch' in sys.modules))"


def test_bad_sources_masks_targets_and_outputs_fail_before_the_engine_is_imported(plate, tmp_path):
    from shotfill.synthetic.sample_edit import make_sample_edit

    edit = make_sample_edit(tmp_path / "edit", width=32, height=18).edit
    out = tmp_path / "out"
    assert _extend(plate, out).returncode == 0
    cases = [
        (["extend", tmp_path / "missing.####.exr", "--frames", 4], "no files match"),
        (["fill", plate, "--mask", tmp_path / "nomask.####.png"], "nomask"),
        (["bridge", edit, "--target", "V1.gap9"], "no target 'V1.gap9'"),
        (["extend", plate, "--frames", 3], "written by job"),             # another job's frames (engine dit)
    ]
    for args, message in cases:
        r = shotfill(*args, "--out", out, code=NO_TORCH)
        assert r.returncode == 2 and message in r.stderr, (args, r.stderr)
        assert "torch imported: False" in r.stdout, args


def test_the_registry_declares_each_engines_own_context_frames():
    import importlib

    from shotfill.engines import CONTEXT_FRAMES, ENGINES, declared_context
    from shotfill.errors import EngineUnavailableError

    assert set(CONTEXT_FRAMES) == set(ENGINES)
    for name, (module, cls, _) in ENGINES.items():
        assert getattr(importlib.import_module(module), cls).context_frames == CONTEXT_FRAMES[name], name
    with pytest.raises(EngineUnavailableError, match="unknown engine 'nope'"):
        declared_context("nope")


# ---------------------------------------------------------------------------
# the accelerate warning
# ---------------------------------------------------------------------------
def test_the_demo_on_the_default_engine_says_nothing_of_accelerate_when_it_is_missing(tmp_path):
    """The README's first command installs ``.[dit]``, which does not bring ``accelerate``: the
    dit engine loads its models the plain way without diffusers' warning on every model."""
    hide = ("import sys\nsys.modules['accelerate'] = None   # as if not installed: find_spec gives None\n"
            "from diffusers.utils import is_accelerate_available\nassert not is_accelerate_available()")
    r = shotfill("demo", "--out", tmp_path / "demo", "--width", 64, "--height", 36, code=hide)
    assert r.returncode == 0, r.stderr
    assert "engine 'dit'" in r.stdout
    assert (r.stdout + r.stderr).count("accelerate") <= 1
