"""The fault suite (issue 16): what a job leaves when the world breaks under it.

Every test runs the real worker (``python -m shotfill``, ``openjd run``) or ``run_job`` and breaks
something for real: SIGKILL at seeded random points (20 times with ``flow``, 3 with ``dit``) then
re-runs, a write made to fail by a file-size limit (the kernel's EFBIG, as a full disk's ENOSPC),
a read-only output folder (the worker run as ``nobody``), source frames deleted while the job
reads or generates, two jobs on one output, a farm task killed and retried, symbolic links
planted in the output folder. After each: every frame on disk is whole, nothing is generated
twice, no temporary or lock file is left, and a finished run equals an uninterrupted one bit for
bit (file bytes, so pixels and every header attribute: nothing in the header differs between runs).

The plate: 12 frames of ``footage/sam2_bedroom`` (Apache-2.0) scaled to 128x72, or a synthetic
panning texture where the shared data is absent.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA
from shotfill.errors import MediaError
from shotfill.events import ListSink, StageEvent
from shotfill.io.exr import check_exr, read_exr, write_exr
from shotfill.job import JobSpec
from shotfill.worker import run_job

pytestmark = pytest.mark.faults

W, H, FRAMES = 128, 72, 12
NAME = "bed_ext"                 # the output name of an extension of bed.####.exr
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


# ---------------------------------------------------------------------------
# the plate, and running the worker
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world():
    """A folder everyone may read (the read-only test runs the worker as ``nobody``), holding the
    plate ``plate/bed.####.exr``; removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="shotfill-faults-"))
    root.chmod(0o755)
    plate = root / "plate"
    plate.mkdir()
    plate.chmod(0o755)
    frames = sorted((SHARED_DATA / "footage" / "sam2_bedroom" / "frames").glob("*.jpg"))[:FRAMES]
    if len(frames) == FRAMES:
        import cv2

        for i, f in enumerate(frames):
            rgb = cv2.imread(str(f))[..., ::-1]
            rgb = cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
            write_exr(plate / f"bed.{i:04d}.exr", rgb ** 2.2)         # about scene-linear
    else:                                   # no shared data: the panning texture the CLI tests use
        rng = np.random.default_rng(0)
        tex = np.kron(rng.random((H // 4, (W + 64) // 4, 3)), np.ones((4, 4, 1))).astype(np.float32)
        for i in range(FRAMES):
            write_exr(plate / f"bed.{i:04d}.exr", tex[:, 2 * i:2 * i + W])
    for p in plate.iterdir():
        p.chmod(0o644)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def extend_args(world, out, *, engine="flow", frames=FRAMES, seed=7, preview=False) -> list[str]:
    args = ["extend", str(world / "plate" / "bed.####.exr"), "--frames", str(frames), "--engine", engine,
            "--seed", str(seed), "--out", str(out), "--events", "jsonl"]
    return args + ([] if preview else ["--no-preview"])


def shotfill(*args, prefix=(), **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "shotfill", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=ENV, **kw)


def parse_events(text: str) -> list[dict]:
    """The JSON lines of a worker's stdout; a line cut by a kill is left out."""
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def timed_run(args) -> tuple[int, list[dict], list[float]]:
    """Run the worker to the end; its exit code, events and each event's arrival (s from start)."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "shotfill", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    events, times = [], []
    for line in proc.stdout:
        events.append(json.loads(line))
        times.append(time.monotonic() - start)
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0, err
    return proc.returncode, events, times


def run_and_kill(args, kill_at: tuple[int, float] | None) -> tuple[int, list[dict]]:
    """Run the worker; with ``kill_at = (n, delay)`` SIGKILL it ``delay`` s after its n-th event
    (n = 0: after start). Returns the exit code (-9 when killed) and the events it sent."""
    proc = subprocess.Popen([sys.executable, "-m", "shotfill", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=ENV)
    lines = []
    try:
        if kill_at is not None and kill_at[0] == 0:
            time.sleep(kill_at[1])
            proc.kill()
        else:
            for line in proc.stdout:
                lines.append(line)
                if kill_at is not None and len(lines) == kill_at[0]:
                    time.sleep(kill_at[1])
                    proc.kill()
                    break
        lines.append(proc.stdout.read())
    finally:
        proc.stdout.close()
        rc = proc.wait(timeout=300)
    return rc, parse_events("".join(lines))


def kill_points(events: list[dict], times: list[float], count: int, rng: random.Random) -> list[tuple[int, float]]:
    """``count`` kill points spread over an uninterrupted run (its ``events`` and their arrival
    ``times``), said as (events to wait for, then a delay) so that a slower start moves them with
    the job. Point k lies in the k-th of ``count`` equal slices of, in turn: the run's time (a
    time drawn uniformly in the slice: points where the time goes, start-up and generation), its
    events (after an event drawn in the slice, plus a delay drawn up to the next event), and the
    events from the first frame written to the last (points among the frame writes)."""
    frames = [i for i, e in enumerate(events) if e["event"] == "frame"]
    points = []
    for k in range(count):
        u = (k + rng.random()) / count
        if k % 3 == 0:
            at = u * times[-1]
            n = sum(t <= at for t in times)
            points.append((n, at - (times[n - 1] if n else 0.0)))
            continue
        lo, hi = (0, len(times) - 2) if k % 3 == 1 else (frames[0], frames[-1])
        i = lo + min(int(u * (hi - lo + 1)), hi - lo)          # kill after event i, before event i + 1
        points.append((i + 1, rng.random() * (times[i + 1] - times[i])))
    return points


def frames_on_disk(out: Path) -> dict[str, tuple[str, int]]:
    """``{frame file: (sha256, mtime_ns)}`` of the finished frames (temporaries start with a dot)."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(out.glob(f"{NAME}.*.exr"))}


def leftovers(out: Path) -> list[str]:
    """Temporary and lock files anywhere under ``out`` (preview/ too)."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.name.endswith((".tmp", ".lock")))


def assert_whole(out: Path, job_id: str) -> None:
    """Every frame on disk opens whole: header, chunk tables, every chunk decoded, this job's."""
    for p in sorted(out.glob("*.exr")):
        check_exr(p)
        image = read_exr(p)
        assert image.pixels.shape == (H, W, 3), p
        assert image.attributes["shotfill.jobId"] == job_id, p


def assert_equal_runs(out: Path, reference: Path) -> None:
    """The frames of ``out`` are those of ``reference``: the same files, bit for bit (pixels and
    every header attribute said separately, for a readable failure)."""
    ours, theirs = sorted(p.name for p in out.glob("*.exr")), sorted(p.name for p in reference.glob("*.exr"))
    assert ours == theirs
    for name in ours:
        a, b = read_exr(out / name), read_exr(reference / name)
        assert np.array_equal(a.pixels, b.pixels, equal_nan=True), name
        assert a.attributes == b.attributes, name
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


class KillCampaign:
    """Kill the worker at given points, re-running on the same output until it finishes, checking
    after each kill and each re-run what the fault suite promises."""

    def __init__(self, world, engine, **kw):
        self.world, self.engine, self.kw = world, engine, kw
        #: per kill: (frames on disk after it, the temporaries it left, the frame events its run sent)
        self.kills = []

    def run(self, out: Path, kill_at, job_id: str) -> int:
        before = frames_on_disk(out) if out.exists() else {}
        rc, events = run_and_kill(extend_args(self.world, out, engine=self.engine, **self.kw), kill_at)
        assert rc in (0, -signal.SIGKILL), (rc, events[-3:])
        # nothing generated twice: the frames there before are skipped, never written again
        for e in events:
            if e["event"] == "frame" and Path(e["path"]).name in before:
                assert e["skipped"], e
        after = frames_on_disk(out)
        for name, (digest, mtime) in before.items():
            assert after.get(name) == (digest, mtime), f"{name} was rewritten by the re-run"
        if rc == 0:
            result = events[-1]
            assert result["event"] == "result" and result["job_id"] == job_id
            assert sorted(f"{NAME}.{f:04d}.exr" for f in result["skipped"]) == sorted(before)
        else:
            assert_whole(out, job_id)
            self.kills.append((len(after), [p for p in leftovers(out) if p.endswith(".tmp")],
                               sum(e["event"] == "frame" for e in events)))
        return rc


def campaign(world, tmp_path, engine, kills, rng, per_output, **kw):
    """Run ``kills`` kills of ``engine`` jobs (``per_output`` on one output, then it is finished),
    each re-run killed again or finished, and check every finished output against an uninterrupted
    run. Every run writes to the same folder (the job id, in every header, is made from the job's
    spec, its output folder included); a finished output is moved aside. Returns the campaign."""
    out = tmp_path / "out"
    reference = tmp_path / "reference"
    _, events, times = timed_run(extend_args(world, out, engine=engine, **kw))
    job_id = events[-1]["job_id"]
    out.rename(reference)
    assert len(list(reference.glob("*.exr"))) == kw.get("frames", FRAMES)
    points = kill_points(events, times, kills, rng)
    rng.shuffle(points)
    c = KillCampaign(world, engine, **kw)
    finished = []

    def finish():
        finished.append(out.rename(tmp_path / f"finished{len(finished)}"))

    on_this = 0
    for attempt in range(3 * kills):
        if len(c.kills) == kills:
            break
        if c.run(out, points[len(c.kills)], job_id) == 0:      # it ended before the kill point
            finish()
            on_this = 0
            continue
        on_this += 1
        if on_this == per_output:
            assert c.run(out, None, job_id) == 0
            finish()
            on_this = 0
    assert len(c.kills) == kills, f"only {len(c.kills)} of {kills} kill points were reached"
    if out.exists():
        assert c.run(out, None, job_id) == 0
        finish()
    for done in finished:
        assert_equal_runs(done, reference)
        assert leftovers(done) == [], done
    return c


# ---------------------------------------------------------------------------
# 1. SIGKILL at random points, then re-run
# ---------------------------------------------------------------------------
def test_sigkill_twenty_times_with_flow_then_rerun_equals_an_uninterrupted_run(world, tmp_path):
    c = campaign(world, tmp_path, "flow", 20, random.Random(1604), per_output=4, preview=True)
    _report("flow", c)


def _report(engine: str, c: KillCampaign) -> None:
    """Kills before the run's first frame and among its frames, both; what each left, printed."""
    before = sum(1 for _, _, sent in c.kills if sent == 0)
    assert 0 < before < len(c.kills)
    print(f"{engine}: {len(c.kills)} kills, {before} before the run's first frame event; frames on disk after "
          f"each: {[n for n, _, _ in c.kills]}; killed while writing a file (a temporary left): "
          f"{sum(1 for _, tmp, _ in c.kills if tmp)}")


def test_sigkill_three_times_with_dit_then_rerun_equals_an_uninterrupted_run(world, tmp_path):
    c = campaign(world, tmp_path, "dit", 3, random.Random(16), per_output=3, frames=8)
    _report("dit", c)


# ---------------------------------------------------------------------------
# 2. a full disk
# ---------------------------------------------------------------------------
#: run the worker with a 16 KiB file-size limit (a frame is ~37 KB): its writes fail with EFBIG,
#: as a full disk's fail with ENOSPC; SIGXFSZ is ignored so the write returns the error
FSIZE_LIMIT = ("-c", ("import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                      "resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384)); "
                      "os.execv(sys.argv[1], sys.argv[1:])"))


def test_a_write_that_fails_for_lack_of_room_exits_2_naming_the_frame_and_leaves_nothing(world, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    r = shotfill(*extend_args(world, out), prefix=(sys.executable, *FSIZE_LIMIT))
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in r.stderr
    assert errors[0].startswith(f"shotfill: error: {out / (NAME + '.0012.exr')}: cannot write: ")
    assert ".tmp" not in errors[0] and "its temporary file" not in errors[0]
    assert "File too large (a file size limit was reached); nothing of it is left on disk" in errors[0]
    assert list(out.iterdir()) == []                        # no partial frame, no temporary, no lock
    frames = [e for e in parse_events(r.stdout) if e["event"] == "frame"]
    assert frames == []


# ---------------------------------------------------------------------------
# 3. a read-only output folder
# ---------------------------------------------------------------------------
#: run a command as root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (dropped from the bounding
#: set before exec): root then obeys mode bits like anyone (it still owns and reads its own files)
DROP_DAC = ("import ctypes, os, sys; libc = ctypes.CDLL(None, use_errno=True); "
            "assert libc.prctl(24, 1, 0, 0, 0) == 0 and libc.prctl(24, 2, 0, 0, 0) == 0, 'PR_CAPBSET_DROP'; "
            "os.execv(sys.argv[1], sys.argv[1:])")


def _read_only_ways(folder: Path) -> dict:
    """``{way: (command prefix, the cause the kernel gives)}`` that make ``folder`` (made by us, mode
    555) read-only for the worker: a read-only bind mount in a private mount namespace (EROFS), and
    the mode bits (EACCES: as root, with the capabilities that override them dropped). A way this
    machine cannot do is left out; the test skips, saying why, when none is left."""
    ways, why = {}, []
    probe = [sys.executable, "-c", f"open({str(folder / 'probe')!r}, 'w')"]
    mount = ("unshare", "-m", "--propagation", "private", "sh", "-c",
             'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', str(folder))
    bits = () if os.geteuid() != 0 else (sys.executable, "-c", DROP_DAC)
    for way, prefix, cause in [("read-only mount", mount, "Read-only file system"),
                               ("no write permission", bits, "Permission denied")]:
        if shutil.which(prefix[0] if prefix else sys.executable) is None:
            why.append(f"{way}: no {prefix[0]}")
            continue
        r = subprocess.run([*prefix, *probe], capture_output=True, text=True)
        if cause in r.stderr:
            ways[way] = (prefix, cause)
        else:
            why.append(f"{way}: the probe gave {r.returncode}: {r.stderr.strip()[-200:]}")
    if not ways:
        pytest.skip("cannot make a folder read-only for the worker here: " + "; ".join(why))
    return ways


def test_a_read_only_output_folder_exits_2_before_the_engine_runs(world, tmp_path):
    locked = tmp_path / "read-only"
    (locked / "sub").mkdir(parents=True)
    for p in (locked / "sub", locked):
        p.chmod(0o555)
    try:
        ways = _read_only_ways(locked)
        for way, (prefix, cause) in ways.items():
            for out, what in [(locked / "sub", "the output folder cannot be written"),
                              (locked / "new", "the output folder cannot be made")]:
                r = shotfill(*extend_args(world, out, engine="dit"), prefix=prefix)
                assert r.returncode == 2, (way, r.stderr)
                assert f"shotfill: error: {out}: {what}" in r.stderr and cause in r.stderr, (way, r.stderr)
                assert "Traceback" not in r.stderr
                stages = [e["stage"] for e in parse_events(r.stdout) if e["event"] == "stage"]
                assert stages == ["prepare"], way                # refused while resolving: no engine built
            assert list((locked / "sub").iterdir()) == [] and not (locked / "new").exists()
        print(f"read-only output folder made by: {', '.join(ways)}")
    finally:
        locked.chmod(0o755)


# ---------------------------------------------------------------------------
# 4. source frames deleted mid-job
# ---------------------------------------------------------------------------
class DeletingSink(ListSink):
    """Deletes the plate's frames (all, or all but the first ``keep``) when ``when(event, seen)`` says
    so (``event`` the event object, ``seen`` every event so far as the dicts ListSink keeps)."""

    def __init__(self, plate: Path, when, keep: int = 0):
        super().__init__()
        self.plate, self.when, self.keep, self.deleted = plate, when, keep, []

    def emit(self, event):
        super().emit(event)
        if not self.deleted and self.when(event, self.events):
            for p in sorted(self.plate.glob("bed.*.exr"))[self.keep:]:
                p.unlink()
                self.deleted.append(p)


def _spec(plate: Path, out: Path) -> JobSpec:
    return JobSpec.from_dict({"task": "extend_forward", "frames": 6, "engine": "flow", "seed": 3,
                              "source": {"path": str(plate / "bed.####.exr")},
                              "output": {"dir": str(out), "preview": True}})


def test_source_frames_deleted_while_read_exit_2_naming_the_frame_and_after_the_read_the_job_completes(
        world, tmp_path):
    plate = tmp_path / "plate"
    shutil.copytree(world / "plate", plate)
    reference = run_job(_spec(plate, tmp_path / "reference"))
    cases = {
        # as the read stage starts: the first frame the job reads is gone
        "read starts": (lambda e, seen: isinstance(e, StageEvent) and e.stage == "read", 0),
        # once the first frame is read (the read stage's second progress event; its first is its start)
        "first frame read": (lambda e, seen: sum(x["event"] == "progress" and x["stage"] == "read"
                                                 for x in seen) == 2, 1),
    }
    for what, (when, keep) in cases.items():
        out = tmp_path / what.replace(" ", "_")
        sink = DeletingSink(plate, when, keep)
        with pytest.raises(MediaError) as e:
            run_job(_spec(plate, out), sink)
        assert e.value.exit_code == 2 and sink.deleted, what
        named = [p for p in sink.deleted if str(p) in str(e.value)]
        assert named and ("missing" in str(e.value) or "no such file" in str(e.value)), (what, str(e.value))
        print(f"deleted as the {what}: {e.value}")
        assert [ev for ev in sink.events if ev["event"] == "frame"] == []
        assert list(out.glob("*.exr")) == [] and leftovers(out) == [], what
        shutil.rmtree(plate)
        shutil.copytree(world / "plate", plate)
    # deleted once generation has started: everything it needs was read; it completes, the same frames
    out = tmp_path / "generating"
    sink = DeletingSink(plate, lambda e, seen: isinstance(e, StageEvent) and e.stage == "generate")
    res = run_job(_spec(plate, out), sink)
    assert sink.deleted and not list(plate.glob("bed.*.exr"))
    assert res.written == reference.written and leftovers(out) == []
    for f in res.written:
        a, b = read_exr(out / f"{NAME}.{f:04d}.exr"), read_exr(tmp_path / "reference" / f"{NAME}.{f:04d}.exr")
        assert np.array_equal(a.pixels, b.pixels)


# ---------------------------------------------------------------------------
# 5. two jobs at once on the same output
# ---------------------------------------------------------------------------
def test_a_second_job_on_a_running_jobs_output_exits_2_naming_it_and_a_killed_jobs_lock_blocks_nothing(
        world, tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "shotfill", *extend_args(world, out, seed=1)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)
    try:
        job_id = None
        for line in first.stdout:
            event = json.loads(line)
            if event["event"] == "stage" and event["stage"] == "prepare":
                job_id = event["message"].split()[-1]
            if event["event"] == "stage" and event["stage"] == "read":     # resolved: the name is locked
                first.send_signal(signal.SIGSTOP)                          # held there, lock and all
                break
        [lock] = out.glob(f".{NAME}.{first.pid}-*.lock")
        assert json.loads(lock.read_text())["job_id"] == job_id

        r = shotfill(*extend_args(world, out, seed=2))                      # another job: another seed
        assert r.returncode == 2, r.stderr
        assert f"another job is writing {NAME} right now: job {job_id} (engine 'flow', seed 1, pid {first.pid}" \
            in r.stderr and "Nothing was written" in r.stderr and "Traceback" not in r.stderr
        assert list(out.glob("*.exr")) == []
    finally:
        first.kill()                        # SIGKILL (a stopped process dies too): the kernel drops its flock
        first.stdout.close()
        first.wait(timeout=60)
    assert lock.is_file()                   # the killed job's lock file is still there...
    r = shotfill(*extend_args(world, out, seed=2))
    assert r.returncode == 0, r.stderr      # ...and blocks nothing
    assert len(list(out.glob("*.exr"))) == FRAMES and leftovers(out) == []


# ---------------------------------------------------------------------------
# 6. the farm's task retried after a kill
# ---------------------------------------------------------------------------
def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat_file.parent.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def test_a_farm_task_killed_mid_task_then_retried_equals_an_uninterrupted_run(tmp_path):
    from shotfill import farm
    from shotfill.synthetic import make_sample_edit

    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc to find the task's processes")
    make_sample_edit(tmp_path / "edit", width=96, height=54)
    bundle = farm.export_bundle(tmp_path / "edit" / "sample_edit.otio", tmp_path / "bundle", engine="flow",
                                targets=["V1.clip3.fill"], shotfill_command=farm.default_shotfill_command())
    target = "V1.clip3.fill"
    spec = farm.Bundle.load(bundle).job(target)
    out, name = Path(spec.output.dir), spec.output.name
    with open(os.devnull, "w") as quiet:
        farm.run_task(bundle, target, stream=quiet)                  # the uninterrupted run
    reference = {p.name: p.read_bytes() for p in sorted(out.glob(f"{name}.*.exr"))}
    assert len(reference) == 24
    shutil.rmtree(out)

    task = [farm.openjd_command(), "run", str(bundle / "template.yaml"), "--job-param",
            f"file://{bundle / 'openjd_params.json'}", "--step", "Generate", "--task-param", f"Target={target}"]
    proc = subprocess.Popen(task, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    killed = []
    deadline = time.monotonic() + 120
    # the worker host dies as soon as the first frame is on disk: watched on disk, not through openjd's
    # relayed output, which can arrive after the last of the 24 small frames is written
    while proc.poll() is None and time.monotonic() < deadline:
        if any(out.glob(f"{name}.*.exr")):
            killed = _tree(proc.pid)
            for pid in reversed(killed):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.001)
    assert proc.wait(timeout=60) == -signal.SIGKILL and len(killed) >= 2   # openjd and the worker under it
    partial = {p.name: p.read_bytes() for p in sorted(out.glob(f"{name}.*.exr"))}
    assert 0 < len(partial) < 24
    for p in out.glob("*.exr"):
        check_exr(p)
    assert partial == {n: reference[n] for n in partial}

    r = subprocess.run(task, capture_output=True, text=True, timeout=300, env=ENV)     # the retry
    assert r.returncode == 0, r.stdout[-3000:]
    assert r.stdout.count("kept (already written by this job)") == len(partial)
    assert {p.name: p.read_bytes() for p in sorted(out.glob(f"{name}.*.exr"))} == reference
    assert leftovers(out) == []


# ---------------------------------------------------------------------------
# 7. symbolic links planted in the output folder
# ---------------------------------------------------------------------------
def test_links_planted_in_the_output_folder_are_refused_and_what_they_point_at_is_untouched(world, tmp_path):
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    victims = {"frame": outside / "victim.exr", "result": outside / "victim.json"}
    shutil.copy(world / "plate" / "bed.0000.exr", victims["frame"])
    victims["result"].write_text('{"precious": true}\n')
    snapshot = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in victims.values()}
    plants = {"frame": (f"{NAME}.0014.exr", victims["frame"]),
              "result": (f"{NAME}.result.json", victims["result"]),
              "preview folder": ("preview", outside / "folder")}
    for what, (link_name, target) in plants.items():
        out = tmp_path / what.replace(" ", "_")
        out.mkdir()
        (out / link_name).symlink_to(target)
        r = shotfill(*extend_args(world, out, preview=True))
        assert r.returncode == 2, (what, r.stderr)
        assert f"{out / link_name} is a symbolic link (to {target})" in r.stderr and "Nothing was written" \
            in r.stderr, (what, r.stderr)
        assert sorted(p.name for p in out.iterdir()) == [link_name] and (out / link_name).is_symlink(), what
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in victims.values()} == snapshot
    assert list((outside / "folder").iterdir()) == []


def test_a_link_planted_at_a_frames_name_while_the_job_runs_is_replaced_never_written_through(world, tmp_path):
    """What the atomic write does with a link at the final name (planted after the job's checks):
    the rename replaces the link itself; the file it pointed at is untouched."""
    victim = tmp_path / "victim.exr"
    victim.write_bytes(b"not to be touched")
    link = tmp_path / "out" / f"{NAME}.0012.exr"
    link.parent.mkdir()
    link.symlink_to(victim)
    write_exr(link, np.zeros((4, 4, 3), np.float32))
    assert not link.is_symlink() and read_exr(link).pixels.shape == (4, 4, 3)
    assert victim.read_bytes() == b"not to be touched"
    assert stat.S_ISREG(os.lstat(link).st_mode) and leftovers(link.parent) == []


def test_the_output_lock_refuses_another_job_lets_the_same_job_through_and_drops_stale_files(tmp_path):
    from shotfill.worker.lock import OutputLockedError, lock_output, lock_path

    out = tmp_path / "out"
    stale = lock_path(out, NAME, pid=999999999)             # a killed job's file: nothing holds its flock
    out.mkdir()
    stale.write_text('{"job_id": "killed"}\n')
    first = lock_output(out, NAME, "job-a", engine="flow", seed=1)
    assert not stale.exists() and json.loads(first.path.read_text())["job_id"] == "job-a"
    with pytest.raises(OutputLockedError, match=r"another job is writing bed_ext right now: job job-a "
                                                r"\(engine 'flow', seed 1, pid \d+") as e:
        lock_output(out, NAME, "job-b")
    assert e.value.exit_code == 2
    lock_output(out, f"{NAME}_other", "job-b").release()   # another name in the folder is free
    first.release()
    first.release()                                         # idempotent
    assert list(out.iterdir()) == []
    with lock_output(out, NAME, "job-b") as second, lock_output(out, NAME, "job-b") as third:
        assert second.path != third.path                    # another attempt of the same job: let through
    assert list(out.iterdir()) == []
    # a link planted among the lock files is never read through, nor taken for a holder
    victim = tmp_path / "victim"
    victim.write_text('{"job_id": "planted"}')
    lock_path(out, NAME).symlink_to(victim)
    with lock_output(out, NAME, "job-c"):
        pass
    assert victim.read_text() == '{"job_id": "planted"}'


def test_a_write_that_failed_for_lack_of_room_says_so_by_errno_or_by_the_systems_words():
    import errno

    from shotfill.errors import no_room_hint

    assert no_room_hint(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) == " (the disk is full)"
    assert no_room_hint(OSError(errno.EDQUOT, "quota")) == " (the disk quota is used up)"
    # OpenEXR gives no errno, only the system's words inside its own message
    assert no_room_hint(RuntimeError(f'Failed to write "x.tmp". {os.strerror(errno.EFBIG)}')) == \
        " (a file size limit was reached)"
    assert no_room_hint(OSError(errno.EACCES, os.strerror(errno.EACCES))) == ""
