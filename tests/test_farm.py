"""Farm bundles run for real: `openjd check` and `openjd run` on a tiny edit, retries, SIGTERM,
overlapping attempts of one task, and Publish's refusals.

The edit (``shotfill.synthetic.make_sample_edit`` at 96x54)::

    V1   [ shotA, 40 ][ gap1, 20 ][ shotB, 32 ][ shotC, 24 (rig mask linked) ]
                       V1.gap1                   V1.clip3.fill
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import opentimelineio as otio
import pytest
import yaml

from shotfill import cli, farm
from shotfill.errors import InputError
from shotfill.events import ErrorEvent, FrameEvent, ProgressEvent, StageEvent, WarningEvent
from shotfill.io.exr import read_exr
from shotfill.job import JobSpec
from shotfill.synthetic import make_sample_edit

DEFAULT_TARGETS = ["V1.gap1", "V1.clip3.fill"]
FILL_FRAMES = 24
GAP_FRAMES = 4     # the 20-frame gap less the clips' 8 + 8 handle frames


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """The rendered sample edit, made once; tests work on copies."""
    out = tmp_path_factory.mktemp("sample")
    make_sample_edit(out, width=96, height=54)
    return out


@pytest.fixture
def edit(sample, tmp_path) -> Path:
    """A private copy of the sample edit and its media (media paths in the edit are relative)."""
    shutil.copytree(sample, tmp_path / "edit", ignore=shutil.ignore_patterns("truth"))
    return tmp_path / "edit" / "sample_edit.otio"


@pytest.fixture(scope="module")
def shotfill_command() -> str:
    """The command farm tasks run: this environment's `shotfill` console script."""
    return farm.default_shotfill_command()


def run_farm(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shotfill", "farm", *map(str, args)], capture_output=True,
                          text=True, timeout=300, **kw)


def openjd(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([farm.openjd_command(), *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kw)


def frames_of(bundle: Path, target: str) -> dict[str, str]:
    """{file name: sha256} of a target's written frames."""
    spec = farm.Bundle.load(bundle).job(target)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(spec.output.dir).glob(f"{spec.output.name}.*.exr"))}


def clear_output(bundle: Path, target: str) -> None:
    shutil.rmtree(farm.Bundle.load(bundle).job(target).output.dir, ignore_errors=True)


# ---------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------
def test_export_writes_a_bundle_that_openjd_checks(edit, tmp_path, shotfill_command):
    bundle = farm.export_bundle(edit, tmp_path / "bundle", shotfill_command=shotfill_command, timeout_s=900)
    assert sorted(p.name for p in bundle.iterdir()) == sorted(
        ["template.yaml", "parameter_values.yaml", "openjd_params.json", "bundle.json", "jobs", "README.md"])
    assert openjd("check", bundle / "template.yaml").returncode == 0

    template = yaml.safe_load((bundle / "template.yaml").read_text())
    steps = {s["name"]: s for s in template["steps"]}
    assert list(steps) == ["Validate", "Generate", "Publish"]
    assert steps["Generate"]["dependencies"] == [{"dependsOn": "Validate"}]
    assert steps["Publish"]["dependencies"] == [{"dependsOn": "Generate"}]
    assert steps["Generate"]["parameterSpace"]["taskParameterDefinitions"] == [
        {"name": "Target", "type": "STRING", "range": DEFAULT_TARGETS}]   # extensions never by default
    action = steps["Generate"]["script"]["actions"]["onRun"]
    assert action["command"] == "{{Param.ShotfillCommand}}" and action["timeout"] == 900
    assert action["args"] == ["farm", "run-task", "{{Param.BundleDir}}", "{{Task.Param.Target}}"]
    assert "hostRequirements" not in steps["Generate"]                      # dit (the default) runs on any worker
    # the two values files: the form `deadline bundle submit` reads, and the one `openjd run` reads
    assert yaml.safe_load((bundle / "parameter_values.yaml").read_text()) == {
        "parameterValues": [{"name": "ShotfillCommand", "value": shotfill_command}]}
    assert json.loads((bundle / "openjd_params.json").read_text()) == {"ShotfillCommand": shotfill_command}

    specs = {t: farm.Bundle.load(bundle).job(t) for t in DEFAULT_TARGETS}
    for target, spec in specs.items():
        assert spec.edit.target == target and spec.edit.write_timeline is False
        assert Path(spec.edit.path).is_absolute() and Path(spec.output.dir).is_absolute()
        assert spec.job_id and spec.seed == farm.derive_seed(0, target)
    assert specs["V1.gap1"].seed != specs["V1.clip3.fill"].seed
    assert specs["V1.gap1"].job_id != specs["V1.clip3.fill"].job_id

    # the same settings give the same job ids (a new bundle resumes old frames); another seed does not
    again = farm.export_bundle(edit, tmp_path / "again", engine="dit", seed=0, targets=["V1.gap1"],
                               shotfill_command="/elsewhere/shotfill")
    assert farm.Bundle.load(again).job("V1.gap1").job_id == specs["V1.gap1"].job_id
    other = farm.export_bundle(edit, tmp_path / "other", seed=5, shotfill_command=shotfill_command)
    assert farm.Bundle.load(other).job("V1.gap1").job_id != specs["V1.gap1"].job_id


def test_export_asks_for_a_gpu_for_generative_engines_and_takes_named_extensions(edit, tmp_path):
    bundle = farm.export_bundle(edit, tmp_path / "b", engine="wan-vace", targets=["V1.clip2.tail"],
                                extend_frames=12, shotfill_command="/opt/shotfill/bin/shotfill")
    assert openjd("check", bundle / "template.yaml").returncode == 0
    generate = yaml.safe_load((bundle / "template.yaml").read_text())["steps"][1]
    assert generate["hostRequirements"] == {"amounts": [{"name": "amount.worker.gpu", "min": 1}]}
    on_cpu = farm.export_bundle(edit, tmp_path / "cpu", engine="dit", targets=["V1.clip2.tail"],
                                extend_frames=4, shotfill_command="shotfill")
    assert "hostRequirements" not in yaml.safe_load((on_cpu / "template.yaml").read_text())["steps"][1]  # dit: CPU
    spec = farm.Bundle.load(bundle).job("V1.clip2.tail")
    assert spec.frames == 12 and spec.engine == "wan-vace" and spec.engine_options == {}
    with_model = farm.export_bundle(edit, tmp_path / "m", engine="wan-vace", targets=["V1.clip2.tail"],
                                    extend_frames=12, shotfill_command="x",
                                    engine_options={"model": "/models/wan2.1-vace-14b", "memory": "group"})
    assert farm.Bundle.load(with_model).job("V1.clip2.tail").engine_options == {
        "model": "/models/wan2.1-vace-14b", "memory": "group"}
    assert farm.Bundle.load(with_model).job("V1.clip2.tail").job_id != spec.job_id      # another job

    with pytest.raises(InputError, match="V1.clip2.tail.*extension"):
        farm.export_bundle(edit, tmp_path / "c", targets=["V1.clip2.tail"], shotfill_command="x")
    with pytest.raises(InputError, match="no target 'V9.gap7'"):
        farm.export_bundle(edit, tmp_path / "c", targets=["V9.gap7"], shotfill_command="x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a shotfill farm bundle"):
        farm.export_bundle(edit, tmp_path / "busy", shotfill_command="x")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_a_job_file_becomes_a_one_task_bundle(edit, tmp_path, shotfill_command):
    job = tmp_path / "sh010_ext.json"
    job.write_text(json.dumps({"version": 1, "task": "extend_forward", "frames": 3, "seed": 4,
                               "source": {"path": str(edit.parent / "media" / "shotA.####.exr")},
                               "output": {"dir": str(tmp_path / "ext"), "preview": False}}))
    bundle = farm.export_bundle(job, tmp_path / "bundle", shotfill_command=shotfill_command)
    assert openjd("check", bundle / "template.yaml").returncode == 0
    assert farm.Bundle.load(bundle).targets == ("sh010_ext",)
    farm.validate_bundle(bundle, log=lambda line: None)
    result = farm.run_task(bundle, "sh010_ext", stream=io.StringIO())
    assert result.frames == [1049, 1050, 1051]
    header = read_exr(tmp_path / "ext" / "sh010_ext.1050.exr").attributes
    assert header["shotfill.seed"] == farm.derive_seed(4, "sh010_ext")
    assert farm.publish_bundle(bundle, log=lambda line: None) is None        # no edit to write back


# ---------------------------------------------------------------------------
# openjd run
# ---------------------------------------------------------------------------
def test_run_local_runs_every_step_then_one_task_alone_reproduces_its_frames(edit, tmp_path, shotfill_command):
    bundle = farm.export_bundle(edit, tmp_path / "bundle", shotfill_command=shotfill_command)
    r = run_farm("run-local", bundle)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "openjd_progress: " in r.stdout and "ERROR" not in r.stdout   # progress lines the runtime accepts
    gap, fill = frames_of(bundle, "V1.gap1"), frames_of(bundle, "V1.clip3.fill")
    assert len(gap) == GAP_FRAMES and len(fill) == FILL_FRAMES
    spec = farm.Bundle.load(bundle).job("V1.gap1")
    first = read_exr(Path(spec.output.dir) / f"{spec.output.name}.1001.exr")
    assert first.attributes["shotfill.jobId"] == spec.job_id and first.attributes["shotfill.seed"] == spec.seed

    new_edit = edit.with_name("sample_edit.shotfill.otio")
    timeline = otio.adapters.read_from_file(str(new_edit))
    placed = [c.name for t in timeline.tracks if t.name.startswith("shotfill ") for c in t.find_clips()
              if c.metadata["shotfill"]["role"] == "generated"]
    assert placed == DEFAULT_TARGETS

    # one Generate task alone, on a clean output: the same frames, bit for bit; no new edit
    clear_output(bundle, "V1.gap1")
    r = run_farm("run-local", bundle, "--target", "V1.gap1")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert frames_of(bundle, "V1.gap1") == gap
    assert not edit.with_name("sample_edit.shotfill.v2.otio").exists()


def test_a_missing_frame_fails_validate_once_then_the_fixed_bundle_runs(edit, sample, tmp_path, shotfill_command):
    bundle = farm.export_bundle(edit, tmp_path / "bundle", shotfill_command=shotfill_command)
    victim = edit.parent / "media" / "shotC.1010.exr"
    victim.unlink()
    r = run_farm("run-local", bundle)
    assert r.returncode != 0
    assert "Running step 'Validate'" in r.stdout and "Running step 'Generate'" not in r.stdout
    assert f"V1.clip3.fill: cannot run: {victim}: frame 1010 is missing" in r.stdout
    assert "V1.gap1: ok" in r.stdout
    assert frames_of(bundle, "V1.gap1") == {}                # no task ran

    # the Generate task alone (no Validate before it) fails too, naming the frame
    r = run_farm("run-local", bundle, "--target", "V1.clip3.fill")
    assert r.returncode != 0 and "frame 1010 is missing" in r.stdout

    shutil.copy(sample / "media" / victim.name, victim)
    r = run_farm("run-local", bundle)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert len(frames_of(bundle, "V1.clip3.fill")) == FILL_FRAMES
    assert edit.with_name("sample_edit.shotfill.otio").exists()


def test_sigterm_mid_task_then_rerun_gives_the_frames_of_an_uninterrupted_run(edit, tmp_path, shotfill_command):
    bundle = farm.export_bundle(edit, tmp_path / "bundle", shotfill_command=shotfill_command)
    target = "V1.clip3.fill"
    r = run_farm("run-task", bundle, target)
    assert r.returncode == 0, r.stderr
    uninterrupted = frames_of(bundle, target)
    clear_output(bundle, target)

    run = [farm.openjd_command(), "run", bundle / "template.yaml", "--job-param",
           f"file://{bundle / 'openjd_params.json'}", "--step", "Generate", "--task-param", f"Target={target}"]
    proc = subprocess.Popen(run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if ": written: " in line:            # the first frame is on disk: cancel the run
            proc.send_signal(signal.SIGTERM)
            break
    log = line + proc.stdout.read()
    assert proc.wait(timeout=120) != 0
    assert "Process pid" in log and "exited with code: 3" in log     # the worker stopped as cancelled
    partial = frames_of(bundle, target)
    assert 0 < len(partial) < FILL_FRAMES
    assert partial == {name: uninterrupted[name] for name in partial}
    out_dir = Path(farm.Bundle.load(bundle).job(target).output.dir)
    assert not list(out_dir.glob(".*.tmp"))

    r = openjd(*map(str, run[1:]))
    assert r.returncode == 0, r.stdout[-3000:]
    assert r.stdout.count("kept (already written by this job)") == len(partial)
    assert frames_of(bundle, target) == uninterrupted


def test_two_attempts_of_one_task_at_once_write_the_frames_of_one_run(edit, tmp_path, shotfill_command):
    bundle = farm.export_bundle(edit, tmp_path / "bundle", shotfill_command=shotfill_command)
    target = "V1.clip3.fill"
    r = run_farm("run-task", bundle, target)
    assert r.returncode == 0, r.stderr
    single = frames_of(bundle, target)
    clear_output(bundle, target)

    cmd = [sys.executable, "-m", "shotfill", "farm", "run-task", str(bundle), target]
    for _ in range(3):      # on a loaded machine one attempt may start after the other ended
        clear_output(bundle, target)
        attempts = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    for _ in range(2)]
        outputs = [a.communicate(timeout=300) for a in attempts]
        assert [a.returncode for a in attempts] == [0, 0], outputs
        # they overlapped: together they wrote more frames than the target has (some twice, whole)
        if sum(out.count(": written: ") for out, _ in outputs) > FILL_FRAMES:
            break
    else:
        pytest.fail("the two attempts never overlapped in three tries")
    assert frames_of(bundle, target) == single
    out_dir = Path(farm.Bundle.load(bundle).job(target).output.dir)
    for frame in out_dir.glob("*.exr"):
        assert read_exr(frame).pixels.shape[:2] == (54, 96)
    assert not list(out_dir.glob(".*.tmp"))


# ---------------------------------------------------------------------------
# publish, and the progress lines
# ---------------------------------------------------------------------------
def test_publish_refuses_until_every_target_has_this_jobs_result(edit, tmp_path, shotfill_command, capsys):
    bundle = farm.export_bundle(edit, tmp_path / "bundle", shotfill_command=shotfill_command)
    farm.run_task(bundle, "V1.gap1", stream=io.StringIO())
    with pytest.raises(InputError, match=r"1 of 2 target\(s\) missing:\n  V1.clip3.fill: no result"):
        farm.publish_bundle(bundle, log=lambda line: None)
    assert cli.main(["farm", "publish", str(bundle)]) == 2
    assert "openjd_fail: bundle" in capsys.readouterr().out

    # a result left by another job (an earlier bundle with other settings) does not count
    fill = farm.Bundle.load(bundle).job("V1.clip3.fill")
    stale = farm.result_path(fill)
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"job_id": "0123456789abcdef", "frames": [], "output_pattern": "x"}))
    with pytest.raises(InputError, match="written by job 0123456789abcdef"):
        farm.publish_bundle(bundle, log=lambda line: None)
    assert not list(edit.parent.glob("*.shotfill*.otio"))
    # ... nor is it replaced silently by this bundle's task (shotfill.worker.existing)
    with pytest.raises(InputError, match="written by job 0123456789abcdef"):
        farm.run_task(bundle, "V1.clip3.fill", stream=io.StringIO())
    stale.unlink()

    farm.run_task(bundle, "V1.clip3.fill", stream=io.StringIO())
    new_edit = farm.publish_bundle(bundle, log=lambda line: None)
    assert new_edit == edit.with_name("sample_edit.shotfill.otio") and new_edit.exists()


def test_extend_frames_pick_every_extension_that_can_be_placed(edit, tmp_path):
    # shot A holds 8 frames after its out point, shot B 8 before its in point; shot A starts the edit
    bundle = farm.export_bundle(edit, tmp_path / "bundle", extend_frames=8, shotfill_command="x")
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["targets"] == ["V1.gap1", "V1.clip2.tail", "V1.clip3.head", "V1.clip3.tail", "V1.clip3.fill"]
    assert set(manifest["skipped"]) == {"V1.clip1.head", "V1.clip1.tail", "V1.clip2.head"}
    assert "before the timeline's first frame" in manifest["skipped"]["V1.clip1.head"]
    assert "already holds 8 real frames" in manifest["skipped"]["V1.clip1.tail"]
    farm.validate_bundle(bundle, log=lambda line: None)


def test_validate_catches_what_only_publish_would_find(edit, tmp_path):
    # named by hand, a head extension of the edit's first clip cannot be placed on the edit
    bundle = farm.export_bundle(edit, tmp_path / "bundle", targets=["V1.gap1", "V1.clip1.head"],
                                extend_frames=4, shotfill_command="x")
    lines = []
    with pytest.raises(InputError, match="timeline write-back: .*4 frames before the timeline's first frame"):
        farm.validate_bundle(bundle, log=lines.append)
    assert "V1.gap1: ok: bridge K2 G4 K2" in lines[0] and "V1.clip1.head: ok" in lines[2]


def test_openjd_sink_writes_the_lines_the_runtime_reads():
    out = io.StringIO()
    sink = farm.OpenJDSink(out)
    sink.emit(StageEvent("read", "20 frames\n(bridge)"))
    for fraction in (0.0, 0.004, 0.2, 0.205, 0.5, 1.0, 1.0):
        sink.emit(ProgressEvent("write", fraction, None))
    sink.emit(FrameEvent(1001, "/o/a.1001.exr", True))
    sink.emit(WarningEvent("prompt ignored"))
    sink.emit(ErrorEvent("shot.1010.exr: frame 1010 is missing", 2))
    assert out.getvalue().splitlines() == [
        "openjd_status: read: 20 frames (bridge)",
        "openjd_progress: 0.0", "openjd_progress: 20.0", "openjd_progress: 50.0", "openjd_progress: 100.0",
        "frame 1001: kept (already written by this job): /o/a.1001.exr",
        "warning: prompt ignored",
        "openjd_fail: shot.1010.exr: frame 1010 is missing",
    ]


def test_job_specs_in_a_bundle_load_as_the_worker_reads_them(edit, tmp_path):
    bundle = farm.export_bundle(edit, tmp_path / "bundle", shotfill_command="x")
    for target in DEFAULT_TARGETS:
        assert JobSpec.load(bundle / "jobs" / f"{target}.json") == farm.Bundle.load(bundle).job(target)
    with pytest.raises(InputError, match="no target 'V1.gap9'"):
        farm.Bundle.load(bundle).job("V1.gap9")
    with pytest.raises(InputError, match="not a shotfill farm bundle"):
        farm.Bundle.load(tmp_path)
