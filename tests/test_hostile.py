"""Hostile input: damaged EXR files refused by every command that reads them, a property-based fuzzer
over the job spec loader, the target finder and the frame-pattern parser, pathological files in
bounded time and memory, and names that cannot write outside the output folder.

Every refusal is exit 2 (:class:`~shotfill.errors.InputError`) with a message naming the file or
field; only the project's own errors may come out of the fuzzed functions. Commands run through
``shotfill.cli.main`` in child processes (many files per child), so a native crash is charged to
the file it was on instead of killing the test run.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from conftest import SHARED_DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from opentimelineio.opentime import RationalTime, TimeRange
from shotfill.errors import ShotfillError
from shotfill.io import patterns
from shotfill.io.exr import MAX_PIXELS, write_exr
from shotfill.job import MAX_SPEC_BYTES, JobSpec
from shotfill.timeline import find_targets
from shotfill.timeline.load import MAX_EDIT_BYTES, MAX_EDIT_DEPTH

# no example database (database=None below), and Hypothesis's other caches out of the checkout too
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "shotfill-hypothesis")

DAMAGED = SHARED_DATA / "exr_damaged"
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _damaged_files() -> list[str]:
    if not DAMAGED.is_dir():
        return []
    return sorted(str(p.relative_to(DAMAGED)) for p in DAMAGED.rglob("*")
                  if p.is_file() and p.suffix not in (".md", ".tsv") and not p.name.startswith(("README", "LICENSE")))


DAMAGED_FILES = _damaged_files()
#: every sixth damaged file, for the cases that build an edit or a good sequence around each one
DAMAGED_SUBSET = DAMAGED_FILES[::6]


# ---------------------------------------------------------------------------
# 1. damaged EXR files, through every command that reads a source
# ---------------------------------------------------------------------------
# The child builds, per (command, file), a folder holding the damaged file under an .exr name (the
# shared data stays where it is: it is copied into the test's own temporary folder), runs the
# command through shotfill.cli.main and reports the exit code, stderr and what is under --out.
_SWEEP = r'''
import contextlib, io, json, resource, shutil, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
import numpy as np
import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange
from shotfill.cli import main
from shotfill.io.exr import write_exr
from shotfill.io.exr.header import _parse_header

root, work = Path(sys.argv[1]), Path(sys.argv[2])
cases = json.loads(sys.stdin.read())

def size_of(file):
    """(height, width) of the damaged file's display window when its header reads and is small, so
    the good frames beside it match it and only the damage can refuse it; else 16 x 16."""
    try:
        xmin, ymin, xmax, ymax = _parse_header(file).parts[0].display_window
    except Exception:
        return 16, 16
    h, w = ymax - ymin + 1, xmax - xmin + 1
    return (h, w) if h * w <= 1 << 20 else (16, 16)

def good_sequence(folder, name, numbers, like=None):
    folder.mkdir(parents=True, exist_ok=True)
    h, w = size_of(like) if like is not None else (16, 16)
    for i, n in enumerate(numbers):
        write_exr(folder / f"{name}.{n:04d}.exr", np.full((h, w, 3), 0.1 * (i % 4 + 1), np.float32))
    return folder / f"{name}.####.exr"

def edit_on(folder):
    """V1 [ shot: frames 1001-1003, the last one damaged ]"""
    ref = otio.schema.ImageSequenceReference(target_url_base=str(folder / "media"), name_prefix="shot.",
        name_suffix=".exr", start_frame=1001, frame_zero_padding=4, rate=24,
        available_range=TimeRange(RationalTime(0, 24), RationalTime(3, 24)))
    clip = otio.schema.Clip(name="shot", media_reference=ref,
                            source_range=TimeRange(RationalTime(0, 24), RationalTime(3, 24)))
    timeline = otio.schema.Timeline(name="cut")
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    track.append(clip)
    timeline.tracks.append(track)
    path = folder / "cut.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path

for number, (command, name) in enumerate(cases):
    print(json.dumps({"started": [command, name]}), flush=True)
    case = work / f"{number:04d}"
    out = case / "out"
    bad = case / "bad" / "plate.0001.exr"
    bad.parent.mkdir(parents=True)
    shutil.copyfile(root / name, bad)
    common = ["--engine", "baseline", "--out", str(out), "--no-preview"]
    named = bad
    if command == "info":
        argv = ["info", str(bad)]
    elif command == "extend":
        argv = ["extend", str(bad), "--frames", "2", *common]
    elif command == "info_sequence":            # frames 1-3 whole, frame 4 damaged
        plate = good_sequence(case / "plate", "plate", [1, 2, 3], like=bad)
        named = plate.parent / "plate.0004.exr"
        shutil.copyfile(bad, named)
        argv = ["info", str(plate)]
    elif command == "extend_last_frame":       # read in the job's read stage, after the first frame's probe
        plate = good_sequence(case / "plate", "plate", [1, 2, 3], like=bad)
        named = plate.parent / "plate.0004.exr"
        shutil.copyfile(bad, named)
        argv = ["extend", str(plate), "--frames", "2", *common]
    elif command == "bridge":
        a = good_sequence(case / "a", "a", [1, 2])
        argv = ["bridge", str(a), str(bad), "--frames", "2", *common]
    elif command == "fill_plate":
        mask = case / "mask" / "mask.exr"
        mask.parent.mkdir()
        write_exr(mask, np.ones((16, 16, 3), np.float32))
        argv = ["fill", str(bad), "--mask", str(mask), *common]
    elif command == "fill_mask":
        plate = good_sequence(case / "plate", "plate", [1, 2, 3])
        named = bad.with_name("mask.exr")
        bad.rename(named)
        argv = ["fill", str(plate), "--mask", str(named), *common]
    elif command == "run":
        job = case / "job.json"
        job.write_text(json.dumps({"version": 1, "task": "extend_forward", "source": {"path": str(bad)},
                                   "frames": 2, "engine": "baseline",
                                   "output": {"dir": str(out), "preview": False}}))
        argv = ["run", str(job)]
    elif command in ("edit_extend", "plan"):
        good_sequence(case / "media", "shot", [1001, 1002], like=bad)
        named = case / "media" / "shot.1003.exr"
        shutil.copyfile(bad, named)
        edit = edit_on(case)
        argv = (["plan", str(edit)] if command == "plan" else
                ["extend", str(edit), "--target", "V1.clip1.tail", "--frames", "2", *common])
    else:
        raise SystemExit(f"unknown command {command}")
    err, printed = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(printed):
            code = main(argv)
    except SystemExit as exc:
        code = f"SystemExit({exc.code})"
    except BaseException as exc:
        code = f"{type(exc).__name__}: {exc}"
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if not p.is_dir()) if out.exists() else []
    versions = sorted(p.name for p in case.glob("cut*.otio") if p.name != "cut.otio")
    print(json.dumps({"case": [command, name], "code": code, "stderr": err.getvalue()[-2000:],
                      "stdout": printed.getvalue()[-3000:] if command == "plan" else "",
                      "named": str(named), "written": written + versions}), flush=True)
'''

#: command -> the damaged files it is run on
SWEEP_COMMANDS = {
    "info": DAMAGED_FILES,
    "extend": DAMAGED_FILES,
    "bridge": DAMAGED_FILES,
    "fill_plate": DAMAGED_FILES,
    "fill_mask": DAMAGED_FILES,
    "run": DAMAGED_FILES,
    "info_sequence": DAMAGED_SUBSET,
    "extend_last_frame": DAMAGED_SUBSET,
    "edit_extend": DAMAGED_SUBSET,
}
SWEEP_CASES = [(command, name) for command, names in SWEEP_COMMANDS.items() for name in names]
SWEEP_CASES += [("plan", name) for name in DAMAGED_SUBSET]


def _run_sweep(cases, work: Path) -> dict:
    """(command, file) -> the child's record; a child that dies has the case it was on charged, and
    the cases after it run in a fresh child."""
    outcomes: dict = {}
    todo = list(cases)
    while todo:
        child = subprocess.run([sys.executable, "-c", _SWEEP, str(DAMAGED), str(work / f"run{len(outcomes)}")],
                               input=json.dumps(todo), capture_output=True, text=True, timeout=600, env=CHILD_ENV)
        started = None
        for line in child.stdout.splitlines():
            if not line.startswith("{"):
                continue   # whatever the libraries print
            record = json.loads(line)
            if "started" in record:
                started = tuple(record["started"])
            else:
                outcomes[tuple(record["case"])] = record
        if started is not None and started not in outcomes:
            outcomes[started] = {"code": f"child died (exit {child.returncode}): {child.stderr[-500:]}"}
        todo = [case for case in todo if case not in outcomes]
        if child.returncode != 0 and started is None:
            raise AssertionError(f"the sweep child failed before its first case: {child.stderr[-2000:]}")
    return outcomes


@pytest.fixture(scope="module")
def sweep(shared_data, tmp_path_factory) -> dict:
    return _run_sweep(SWEEP_CASES, tmp_path_factory.mktemp("sweep"))


def test_the_sweep_covers_every_damaged_file(shared_data):
    assert len(DAMAGED_FILES) >= 179
    assert len(SWEEP_COMMANDS["info"]) == len(DAMAGED_FILES) and len(DAMAGED_SUBSET) >= 29


@pytest.mark.parametrize("command", list(SWEEP_COMMANDS))
def test_damaged_exr_is_refused(sweep, command):
    """Exit 2, a message naming the damaged file, nothing written under --out (nor a new edit)."""
    failures = []
    for name in SWEEP_COMMANDS[command]:
        record = sweep.get((command, name), {"code": "not reached"})
        code = record["code"]
        if code != 2:
            failures.append(f"{name}: exit {code}: {record.get('stderr', '')[-300:]}")
        elif record["named"] not in record["stderr"]:
            failures.append(f"{name}: the message does not name {record['named']}: {record['stderr'][-300:]}")
        elif record["written"]:
            failures.append(f"{name}: wrote {record['written']}")
    assert not failures, f"{len(failures)} of {len(SWEEP_COMMANDS[command])}:\n" + "\n".join(failures[:20])


def test_plan_names_the_damaged_frame_on_its_target(sweep, shared_data):
    """``plan`` lists an edit's targets (exit 0: one damaged frame does not hide the rest of the edit)
    and marks a target whose media is damaged, naming the file, wherever the frame's header, chunk tables
    or chunk headers show it; damage only in the pixel data is found by the job that decodes it (exit 2
    above)."""
    from shotfill.errors import MediaError
    from shotfill.io.exr import check_exr

    failures, flagged = [], 0
    for name in DAMAGED_SUBSET:
        record = sweep[("plan", name)]
        try:
            check_exr(DAMAGED / name, decode=False)
            header_damaged = False
        except MediaError:
            header_damaged = True
        shown = f"media damaged: {record['named']}" in record["stdout"]
        flagged += shown
        if record["code"] != 0 or shown != header_damaged:
            failures.append(f"{name}: exit {record['code']}, marked {shown}, header damaged {header_damaged}: "
                            f"{(record['stdout'] + record['stderr'])[-300:]}")
    assert not failures, "\n".join(failures)
    assert flagged >= len(DAMAGED_SUBSET) * 2 // 3


def test_plan_json_names_a_damaged_frame_without_shared_data(tmp_path):
    """A target whose last frame is truncated: ``damaged`` in its JSON names the file; the clip's own
    entry too; ``ready`` still says only whether the media is on disk."""
    from shotfill.cli.info import read_plan

    plate_a = _plate(tmp_path / "media" / "a", "a")
    plate_b = _plate(tmp_path / "media" / "b", "b")
    last = plate_a.parent / "a.1008.exr"
    last.write_bytes(last.read_bytes()[:-40])          # a copy that stopped
    path = _named_edit(tmp_path, plate_a, plate_b, "a", "V1", "cut.otio")
    targets = {t.id: t.to_dict() for t, _ in read_plan(path)["targets"]}
    assert targets["V1.gap1"]["ready"] and targets["V1.gap1"]["damaged"] == targets["V1.clip1.tail"]["damaged"]
    (reason,) = targets["V1.gap1"]["damaged"]
    assert reason.startswith(f"{last}: truncated")
    assert targets["V1.clip1.tail"]["clip_a"]["damaged"] == [reason]
    assert targets["V1.clip2.head"]["damaged"] == []


# ---------------------------------------------------------------------------
# 2. property-based fuzzing: only the project's own errors come out
# ---------------------------------------------------------------------------
FUZZ = settings(derandomize=True, deadline=None, database=None, max_examples=300,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
    | st.sampled_from(["\ud800", "a\0b", "\udc80", "../x", "/abs", "C:\\x", "", " "]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20)

_SPEC = {
    "version": 1, "task": "extend_forward", "source": {"path": "plates/sh010.####.exr", "frame_range": [1, 8]},
    "frames": 24, "context": 4, "engine": "flow", "engine_options": {"steps": 2}, "seed": 7, "prompt": "",
    "output": {"dir": "out", "name": "sh010_ext", "compression": "zip", "padding": 4, "start_frame": 1001,
               "if_exists": "refuse", "preview": True},
}
_EDIT_SPEC = {"version": 1, "edit": {"path": "cut.otio", "target": "V1.gap1", "rate": 24, "write_mode": "track",
                                     "timeline": 1, "search_paths": ["media"]},
              "output": {"dir": "out"}}
_SPEC_FIELDS = ["version", "task", "source", "source_b", "mask", "edit", "frames", "context", "engine",
                "engine_options", "seed", "prompt", "job_id", "output", "unknown"]
_NESTED_FIELDS = {"source": ["path", "frame_range", "part", "layer", "colourspace", "extra"],
                  "output": ["dir", "name", "compression", "padding", "start_frame", "if_exists", "preview",
                             "colourspace", "extra"],
                  "edit": ["path", "target", "rate", "write_mode", "timeline", "search_paths", "export",
                           "write_timeline", "colourspace", "extra"]}


@st.composite
def mutated_specs(draw):
    """A valid spec (media or edit) with a few fields replaced by arbitrary JSON, dropped or added."""
    spec = json.loads(json.dumps(draw(st.sampled_from([_SPEC, _EDIT_SPEC]))))
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(_SPEC_FIELDS))
        nested = _NESTED_FIELDS.get(field)
        action = draw(st.sampled_from(["replace", "drop", "nested"] if nested else ["replace", "drop"]))
        if action == "drop":
            spec.pop(field, None)
        elif action == "replace":
            spec[field] = draw(json_values)
        else:
            inner = spec.get(field) if isinstance(spec.get(field), dict) else {}
            key = draw(st.sampled_from(nested))
            if draw(st.booleans()):
                inner[key] = draw(json_values)
            else:
                inner.pop(key, None)
            spec[field] = inner
    return spec


def _loads_or_own_error(call):
    try:
        return call()
    except ShotfillError:
        return None


@FUZZ
@given(json_values)
def test_fuzz_spec_from_any_json_value(value):
    _loads_or_own_error(lambda: JobSpec.from_dict(value))


@FUZZ
@given(mutated_specs())
def test_fuzz_spec_from_mutated_specs(spec):
    loaded = _loads_or_own_error(lambda: JobSpec.from_dict(spec))
    if loaded is not None:   # whatever loads round-trips, and has an id
        assert JobSpec.from_dict(json.loads(loaded.to_json())).id == loaded.id


@FUZZ
@given(st.one_of(st.binary(max_size=200), mutated_specs().map(lambda d: json.dumps(d).encode()),
                 json_values.map(lambda v: json.dumps(v).encode())))
def test_fuzz_spec_files(tmp_path_factory, data):
    path = tmp_path_factory.getbasetemp() / "fuzz_job.json"
    path.write_bytes(data)
    _loads_or_own_error(lambda: JobSpec.load(path))


_names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    ["../x", "/abs", "a\\b", "A/B cam", "\0", "x" * 300, ""])
_durations = st.one_of(st.integers(-5, 40), st.sampled_from([0, -1, 2**40, -2**40]))
_rates = st.sampled_from([24, 25, 23.976, 30, 0.5, 1000, 0, -24, float("nan")])


@st.composite
def timelines(draw):
    """A timeline of random tracks: clips with random ranges (zero, negative and huge durations too),
    gaps, transitions, missing or odd media references, odd names."""
    rate = draw(_rates)
    timeline = otio.schema.Timeline(name=draw(_names))
    if draw(st.booleans()):
        timeline.global_start_time = RationalTime(draw(st.integers(-100, 10**6)), rate)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from([otio.schema.TrackKind.Video, otio.schema.TrackKind.Video, otio.schema.TrackKind.Audio]))
        track = otio.schema.Track(name=draw(_names), kind=kind)
        if draw(st.booleans()):
            track.metadata["shotfill"] = draw(st.sampled_from([{"results": True}, {"target_id": "V1.gap1"}, "x", {}]))
        for _ in range(draw(st.integers(0, 5))):
            what = draw(st.sampled_from(["clip", "clip", "gap", "transition"]))
            if what == "gap":
                track.append(otio.schema.Gap(source_range=TimeRange(RationalTime(0, rate),
                                                                    RationalTime(draw(_durations), rate))))
            elif what == "transition":
                track.append(otio.schema.Transition(in_offset=RationalTime(draw(st.integers(-2, 5)), rate),
                                                    out_offset=RationalTime(draw(st.integers(-2, 5)), rate)))
            else:
                track.append(draw(clips(rate)))
        timeline.tracks.append(track)
    return timeline


@st.composite
def clips(draw, rate):
    start = draw(st.integers(-100, 10**7))
    used = (TimeRange(RationalTime(start, rate), RationalTime(draw(_durations), rate))
            if draw(st.integers(0, 9)) else None)   # no source range: the media's available range, if any
    available = (TimeRange(RationalTime(draw(st.integers(-100, 10**7)), rate), RationalTime(draw(_durations), rate))
                 if draw(st.booleans()) else None)
    kind = draw(st.sampled_from(["sequence", "external", "missing", "none", "generator"]))
    if kind == "sequence":
        reference = otio.schema.ImageSequenceReference(
            target_url_base=draw(st.sampled_from(["", "plates", "/abs/plates", "file:///p%20q", "http://host/x",
                                                  "C:/plates", "../up"])),
            name_prefix=draw(_names), name_suffix=draw(st.sampled_from([".exr", "", ".####.exr", "%04d"])),
            start_frame=draw(st.integers(-10, 10**6)), frame_zero_padding=draw(st.integers(-2, 12)),
            rate=draw(_rates), available_range=available)
    elif kind == "external":
        reference = otio.schema.ExternalReference(
            target_url=draw(st.sampled_from(["", "shot.mov", "a.exr", "file:///x.mov", "s3://b/k", "/abs/a.mp4"])),
            available_range=available)
    elif kind == "generator":
        reference = otio.schema.GeneratorReference(generator_kind="SMPTEBars", available_range=available)
    elif kind == "missing":
        reference = otio.schema.MissingReference()
    else:
        reference = None
    clip = otio.schema.Clip(name=draw(_names), media_reference=reference, source_range=used)
    clip.enabled = draw(st.booleans()) or draw(st.booleans())
    if draw(st.booleans()):
        clip.metadata["shotfill"] = {"mask": draw(st.sampled_from(["mask.%04d.png", "", 7, None, "m/#.exr"]))}
    if draw(st.booleans()) and reference is not None:
        clip.set_media_references({"DEFAULT_MEDIA": reference.clone(), "mask": otio.schema.MissingReference()},
                                  "DEFAULT_MEDIA")
    return clip


@FUZZ
@given(timelines())
def test_fuzz_find_targets(timeline):
    try:
        targets = find_targets(timeline, edit_path="/edits/cut.otio")
    except ShotfillError:
        return
    for target in targets:   # what plan prints and the panel reads
        json.dumps(target.to_dict())


@settings(FUZZ, max_examples=150)
@given(timelines())
def test_fuzz_plan_of_a_saved_edit(tmp_path_factory, timeline):
    """What ``shotfill plan`` does with an edit file: read it back, find the targets, check them, list
    the tracks for the panel."""
    from shotfill.cli.info import plan_tracks, read_plan

    path = tmp_path_factory.getbasetemp() / "fuzz_cut.otio"
    otio.adapters.write_to_file(timeline, str(path))
    try:
        plan = read_plan(path)
        json.dumps(plan_tracks(plan["timeline"], path), default=str)
    except ShotfillError:
        pass


@pytest.fixture(scope="module")
def sequence_folder(tmp_path_factory) -> Path:
    """``a.0001-0003.exr`` (4 x 4), a damaged ``b.0001.exr``, ``c.7.png``, a hidden ``.d.0001.exr``."""
    folder = tmp_path_factory.mktemp("patterns")
    for f in (1, 2, 3):
        write_exr(folder / f"a.{f:04d}.exr", np.zeros((4, 4, 3), np.float32))
    (folder / "b.0001.exr").write_bytes(b"\x76\x2f\x31\x01junk")
    (folder / "c.7.png").write_bytes(b"\x89PNG")
    (folder / ".d.0001.exr").write_bytes(b"")
    return folder


@FUZZ
@given(text=st.text(max_size=60) | st.text(st.sampled_from("#@%0123456789d./\\_-abc:=frames \0"), max_size=30))
def test_fuzz_frame_patterns(sequence_folder, text):
    """The pattern parser on any text, then :func:`~shotfill.io.media.open_source` on it inside a folder
    holding a sequence, a damaged frame and odd files."""
    from shotfill.io.media import open_source

    try:
        pattern = patterns.parse_pattern(text)
        patterns._split_range_suffix(text)
    except ShotfillError:
        pattern = None
    if pattern is not None:
        assert pattern.path(12).name.startswith(pattern.prefix)
        assert patterns.parse_pattern(str(pattern)) == pattern   # what it prints reads back
    try:
        open_source(str(sequence_folder / text)).close()
    except ShotfillError:
        pass


# ---------------------------------------------------------------------------
# 3. pathological files: bounded time and memory, exit 2, a clear message
# ---------------------------------------------------------------------------
_MEASURE = r'''
import contextlib, io, json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from shotfill.cli import main
import shotfill.timeline, shotfill.worker, shotfill.io.exr  # imported before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
err = io.StringIO()
start = time.monotonic()
with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "seconds": time.monotonic() - start, "stderr": err.getvalue(),
                  "grew_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024}))
'''


def _measured(*argv) -> dict:
    child = subprocess.run([sys.executable, "-c", _MEASURE, *map(str, argv)], capture_output=True, text=True,
                           timeout=120, env=CHILD_ENV)
    assert child.returncode == 0, f"the child died (exit {child.returncode}): {child.stderr[-1500:]}"
    return json.loads(child.stdout.strip().splitlines()[-1])


def _huge_header(path: Path, width: int, height: int) -> Path:
    """A real scanline EXR header declaring ``width`` x ``height`` RGB half pixels, with a few
    bytes after it (no offset table, no pixels)."""
    def attribute(name, type_name, value: bytes) -> bytes:
        return name.encode() + b"\0" + type_name.encode() + b"\0" + struct.pack("<i", len(value)) + value

    channels = b"".join(c + b"\0" + struct.pack("<iB3xii", 1, 0, 1, 1) for c in (b"B", b"G", b"R")) + b"\0"
    window = struct.pack("<4i", 0, 0, width - 1, height - 1)
    header = (struct.pack("<ii", 20000630, 2)
              + attribute("channels", "chlist", channels) + attribute("compression", "compression", b"\0")
              + attribute("dataWindow", "box2i", window) + attribute("displayWindow", "box2i", window)
              + attribute("lineOrder", "lineOrder", b"\0") + attribute("pixelAspectRatio", "float", struct.pack("<f", 1))
              + attribute("screenWindowCenter", "v2f", struct.pack("<2f", 0, 0))
              + attribute("screenWindowWidth", "float", struct.pack("<f", 1)) + b"\0")
    path.write_bytes(header + bytes(64))
    return path


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as stream:   # no disk used: a hole the size of the file
        stream.truncate(size)
    return path


#: name -> (how to make the file in a folder, the command's arguments after the path, what the message says)
PATHOLOGICAL = {
    "deeply_nested_spec": (lambda d: (d / "job.json").write_text("[" * 100_000) and d / "job.json",
                           "run", (), "nested too deep"),
    "huge_spec": (lambda d: _sparse(d / "job.json", 64 << 20), "run", (), f"more than the {MAX_SPEC_BYTES}"),
    "empty_spec": (lambda d: _sparse(d / "job.json", 0), "run", (), "is empty"),
    "binary_spec": (lambda d: (d / "job.json").write_bytes(b"\xff\xfe{" + bytes(range(256))) and d / "job.json",
                    "run", (), "not UTF-8"),
    "empty_exr_info": (lambda d: _sparse(d / "a.exr", 0), "info", (), "a.exr"),
    "empty_exr_extend": (lambda d: _sparse(d / "a.exr", 0), "extend", ("--frames", "2"), "a.exr"),
    "random_bytes_exr": (lambda d: (d / "a.exr").write_bytes(np.random.default_rng(0).bytes(4096)) and d / "a.exr",
                         "info", (), "a.exr"),
    "random_bytes_exr_magic": (lambda d: (d / "a.exr").write_bytes(b"\x76\x2f\x31\x01\x02\0\0\0"
                                                                   + np.random.default_rng(1).bytes(4096)) and d / "a.exr",
                               "info", (), "a.exr"),
    "huge_exr_header_info": (lambda d: _huge_header(d / "a.exr", 100_000, 100_000), "info", (),
                             f"more than the {MAX_PIXELS}"),
    "huge_exr_header_extend": (lambda d: _huge_header(d / "a.0001.exr", 100_000, 100_000), "extend",
                               ("--frames", "2"), f"more than the {MAX_PIXELS}"),
    "deeply_nested_otio": (lambda d: (d / "cut.otio").write_text("[" * 100_000) and d / "cut.otio",
                           "plan", (), f"more than the {MAX_EDIT_DEPTH}"),
    "deeply_nested_otio_objects": (lambda d: (d / "cut.otio").write_text('{"a":' * 100_000) and d / "cut.otio",
                                   "plan", (), f"more than the {MAX_EDIT_DEPTH}"),
    "huge_otio": (lambda d: _sparse(d / "cut.otio", MAX_EDIT_BYTES + 1), "plan", (), "an edit may be"),
    "empty_otio": (lambda d: _sparse(d / "cut.otio", 0), "plan", (), "is empty"),
    "empty_otio_extend": (lambda d: _sparse(d / "cut.otio", 0), "extend", ("--target", "V1.gap1", "--frames", "2"),
                          "is empty"),
    "binary_otio": (lambda d: (d / "cut.otio").write_bytes(np.random.default_rng(2).bytes(4096)) and d / "cut.otio",
                    "plan", (), "cut.otio"),
}


@pytest.mark.parametrize("case", list(PATHOLOGICAL))
def test_pathological_file_is_refused_in_bounded_time_and_memory(tmp_path, case):
    make, command, extra, message = PATHOLOGICAL[case]
    path = make(tmp_path)
    out = tmp_path / "out"
    argv = [command, path, *extra]
    if command in ("extend",):
        argv += ["--engine", "baseline", "--out", out, "--no-preview"]
    result = _measured(*argv)
    assert result["code"] == 2, result["stderr"]
    assert message in result["stderr"] and str(path) in result["stderr"], result["stderr"]
    assert "internal error" not in result["stderr"]
    assert result["seconds"] < 20, result    # about 0.1 s each here; generous for a loaded CI machine
    assert result["grew_mb"] < 64, result    # the 64 MB spec and the 256 MB edit are never read
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_an_edit_nested_within_the_bound_still_loads(tmp_path):
    """Metadata nested 900 deep (real edits nest about 10 deep) is under :data:`MAX_EDIT_DEPTH` and reads."""
    from shotfill.timeline import load_edit

    timeline = otio.schema.Timeline(name="cut")
    deep: dict = {}
    inner = deep
    for _ in range(900):
        inner["a"] = {}
        inner = inner["a"]
    timeline.metadata["deep"] = deep
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(timeline, str(path))
    assert load_edit(path).name == "cut"


def test_edit_bundles_are_bounded_too(tmp_path, monkeypatch):
    """An .otioz's content.otio (its uncompressed size: a zip bomb is refused unread) and an .otiod's
    are held to the same size and depth bounds as an .otio."""
    import zipfile

    from shotfill.errors import TimelineError
    from shotfill.timeline import load, load_edit

    monkeypatch.setattr(load, "MAX_EDIT_BYTES", 10_000)
    with zipfile.ZipFile(tmp_path / "big.otioz", "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("content.otio", " " * 20_000)
    with zipfile.ZipFile(tmp_path / "deep.otioz", "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("content.otio", "[" * 5_000)
    (tmp_path / "deep.otiod").mkdir()
    (tmp_path / "deep.otiod" / "content.otio").write_text("[{" * 2_500)
    (tmp_path / "bad.otioz").write_bytes(b"PK\x03\x04 not a zip")
    for name, message in (("big.otioz", "content.otio is 20000 bytes"), ("deep.otioz", "nested 5000 levels"),
                          ("deep.otiod", "nested 5000 levels"), ("bad.otioz", "not a readable .otioz")):
        with pytest.raises(TimelineError, match=message):
            load_edit(tmp_path / name)


def test_the_pixel_limit_refuses_before_allocating(tmp_path):
    """100,000 x 100,000 half RGB would be 60 GB; the child's address space is capped at 3 GB, so a reader
    that allocated would die of MemoryError (exit 1), not exit 2."""
    assert 100_000 * 100_000 > MAX_PIXELS
    result = _measured("info", _huge_header(tmp_path / "a.exr", 100_000, 100_000))
    assert result["code"] == 2 and "pixels" in result["stderr"]


# ---------------------------------------------------------------------------
# 4. names cannot write outside the output folder
# ---------------------------------------------------------------------------
H, W = 24, 32


def _plate(folder: Path, name: str = "sh010", frames=range(1001, 1009)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    texture = rng.random((H, W + 16, 3)).astype(np.float32)
    for i, f in enumerate(frames):
        write_exr(folder / f"{name}.{f:04d}.exr", texture[:, i:i + W])
    return folder / f"{name}.####.exr"


def _spec(plate: Path, out: Path, **output) -> dict:
    return {"version": 1, "task": "extend_forward", "source": {"path": str(plate)}, "frames": 2,
            "engine": "baseline", "output": {"dir": str(out), "preview": False, **output}}


_BAD_OUTPUT_NAMES = ["..", ".", "../escape", "/tmp/abs", "C:evil", "a\\..\\b", "a\0b", "x" * 300, ".hidden",
                     " padded", "tail.", "", "   ", "line\nbreak", "a|b"]


@pytest.mark.parametrize("name", _BAD_OUTPUT_NAMES, ids=repr)
def test_output_name_that_is_not_a_plain_name_is_refused(tmp_path, name):
    spec = _spec(tmp_path / "plate.####.exr", tmp_path / "out", name=name)
    with pytest.raises(ShotfillError, match="output.name"):
        JobSpec.from_dict(spec)


def test_output_names_an_editor_types_still_work(tmp_path):
    for name in ("sh010 ext v2", "A-B_cam", "plate (comp)", "Szene_ä", "x" * 200):
        assert JobSpec.from_dict(_spec(tmp_path / "p.####.exr", tmp_path / "out", name=name)).output.name == name


_NAME_RUN = r'''
import json, sys
from shotfill.cli import main
for argv in json.loads(sys.stdin.read()):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = f"SystemExit({exc.code})"
    print(json.dumps({"argv": argv, "code": code}), flush=True)
'''


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if not p.is_dir()}


def test_job_files_and_names_through_the_cli_write_nothing_outside_out(tmp_path):
    """``run`` with each bad output.name and ``extend --name`` with each: exit 2, and no file appears
    anywhere in the test's folder (``..`` would land beside --out)."""
    plate = _plate(tmp_path / "plates")
    out = tmp_path / "area" / "out"
    out.mkdir(parents=True)
    before = _files_under(tmp_path)
    runs = []
    for i, name in enumerate(n for n in _BAD_OUTPUT_NAMES if "\0" not in n):   # argv cannot hold NUL
        job = tmp_path / f"job{i}.json"
        job.write_text(json.dumps(_spec(plate, out, name=name)))
        runs.append(["run", str(job)])
        runs.append(["extend", str(plate), "--frames", "2", "--engine", "baseline", "--out", str(out),
                     "--no-preview", "--name", name])
    jobs = {p for p in _files_under(tmp_path) if p.suffix == ".json"}
    nul = tmp_path / "nul.json"
    nul.write_text(json.dumps(_spec(plate, out, name="a\0b")))   # a NUL in a job file: JSON can hold one
    runs.append(["run", str(nul)])
    child = subprocess.run([sys.executable, "-c", _NAME_RUN], input=json.dumps(runs), capture_output=True,
                           text=True, timeout=300, env=CHILD_ENV)
    codes = [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]
    assert len(codes) == len(runs), child.stderr[-2000:]
    assert all(c["code"] == 2 for c in codes), [c for c in codes if c["code"] != 2]
    assert _files_under(tmp_path) - before - jobs - {nul} == set()


def _named_edit(folder: Path, plate_a: Path, plate_b: Path, clip_name: str, track_name: str, edit_name: str) -> Path:
    """V1 [ a ][ gap: 2 ][ b ], the clips and track named ``clip_name`` / ``track_name``."""
    def clip(pattern: Path, name: str) -> otio.schema.Clip:
        reference = otio.schema.ImageSequenceReference(
            target_url_base=str(pattern.parent), name_prefix=pattern.name.split("#")[0], name_suffix=".exr",
            start_frame=1001, frame_zero_padding=4, rate=24,
            available_range=TimeRange(RationalTime(0, 24), RationalTime(8, 24)))
        return otio.schema.Clip(name=name, media_reference=reference,
                                source_range=TimeRange(RationalTime(0, 24), RationalTime(8, 24)))

    timeline = otio.schema.Timeline(name=clip_name)
    track = otio.schema.Track(name=track_name, kind=otio.schema.TrackKind.Video)
    track.extend([clip(plate_a, clip_name), otio.schema.Gap(source_range=TimeRange(RationalTime(0, 24),
                                                                                   RationalTime(2, 24))),
                  clip(plate_b, clip_name + "/b")])
    timeline.tracks.append(track)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / edit_name
    otio.adapters.write_to_file(timeline, str(path))
    return path


_HOSTILE_NAMES = [("../../escape", "../V1"), ("/abs/A/B cam", "/tmp"), ("a\\..\\..\\b", "C:\\t"),
                  ("nul\0name", "t\0"), ("n" * 5000, "t" * 5000), ("A/B cam", "V1")]


def test_clip_and_track_names_stay_inside_out_and_the_edit_folder(tmp_path):
    """A bridge on an edit whose clip, track and edit names hold ``../``, ``/``, ``\\``, NUL or are absurdly
    long: the frames land in --out under a readable name, the new edit version beside the edit, nothing
    anywhere else; the target ids do not come from those names."""
    plate_a = _plate(tmp_path / "media" / "a", "a")
    plate_b = _plate(tmp_path / "media" / "b", "b")
    runs, outs, edits = [], [], []
    for i, (clip_name, track_name) in enumerate(_HOSTILE_NAMES):
        edit_name = ["..cut.otio", "cut .otio", "c\\ut.otio", "cut;rm.otio", "e" * 200 + ".otio", "A B cam.otio"][i]
        path = _named_edit(tmp_path / f"edit{i}", plate_a, plate_b, clip_name, track_name, edit_name)
        assert [t.id for t in find_targets(otio.adapters.read_from_file(str(path)), edit_path=path)] == [
            "V1.clip1.head", "V1.clip1.tail", "V1.gap1", "V1.clip2.head", "V1.clip2.tail"]
        out = tmp_path / f"out{i}"
        runs.append(["bridge", str(path), "--target", "V1.gap1", "--engine", "baseline", "--out", str(out),
                     "--no-preview"])
        outs.append(out)
        edits.append(path)
    before = _files_under(tmp_path)
    child = subprocess.run([sys.executable, "-c", _NAME_RUN], input=json.dumps(runs), capture_output=True,
                           text=True, timeout=300, env=CHILD_ENV)
    codes = [json.loads(line)["code"] for line in child.stdout.splitlines() if line.startswith("{")]
    assert codes == [0] * len(runs), child.stderr[-3000:]
    new = _files_under(tmp_path) - before
    for out, edit in zip(outs, edits):
        frames = sorted(p for p in new if p.parent == out and p.suffix == ".exr")
        assert len(frames) == 2, sorted(new)
        assert all(len(p.name) < 255 and p.name.replace("_", "").replace(".", "").replace("-", "").isalnum()
                   for p in frames), frames
        new -= {p for p in new if out in p.parents}
        new -= {p for p in new if p.parent == edit.parent and p.name.startswith(edit.stem)}
    assert new == set(), f"written outside --out and the edits' folders: {sorted(new)}"


@pytest.mark.parametrize("based_on", ["../../victim/passwd", "/nonexistent/folder/cut.otio", "x\0y", "..", ""])
def test_an_edits_own_metadata_cannot_send_its_new_version_elsewhere(tmp_path, based_on):
    """``metadata.shotfill.based_on`` names the edit a version was made from, and new versions go beside
    that one; pointing it at something that is not an edit on disk writes the version beside the input,
    with a note, and nothing elsewhere."""
    from shotfill import timeline as tl

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "passwd").write_text("root:x:0:0\n")
    plate_a, plate_b = _plate(tmp_path / "media" / "a", "a"), _plate(tmp_path / "media" / "b", "b")
    path = _named_edit(tmp_path / "edits" / "deep", plate_a, plate_b, "a", "V1", "cut.otio")
    timeline = tl.load_edit(path)
    timeline.metadata["shotfill"] = {"based_on": based_on, "based_on_sha256": "0" * 64}
    otio.adapters.write_to_file(timeline, str(path))
    placement = tl.Placement(
        target_id="V1.gap1", directory=tmp_path / "out", name_prefix="cut_V1_gap1.", name_suffix=".exr",
        frame_zero_padding=4, start_frame=1001, end_frame=1002, rate=24, record_start=RationalTime(8, 24),
        metadata={"engine": "baseline"})
    before = _files_under(tmp_path)
    notes: list = []
    written = tl.write_back(path, tl.load_edit(path), [placement], warnings=notes)
    assert written == path.with_name("cut.shotfill.otio")
    assert _files_under(tmp_path) - before == {written}
    assert (victim / "passwd").read_text() == "root:x:0:0\n" and sorted(victim.iterdir()) == [victim / "passwd"]
    if based_on:
        assert any("not an edit on disk" in note for note in notes), notes


def test_a_derived_name_from_an_absurdly_long_source_name_is_bounded(tmp_path):
    """The output name derived from a 240-character plate name still makes frame files the file
    system accepts."""
    short = _plate(tmp_path / "p", "s")
    for f in short.parent.iterdir():   # the writer's temporary name would not fit beside a 250-byte one
        f.rename(f.with_name("s" * 240 + f.name[1:]))
    plate = short.with_name("s" * 240 + ".####.exr")
    out = tmp_path / "out"
    child = subprocess.run([sys.executable, "-c", _NAME_RUN], input=json.dumps([[
        "extend", str(plate), "--frames", "2", "--engine", "baseline", "--out", str(out), "--no-preview"]]),
        capture_output=True, text=True, timeout=300, env=CHILD_ENV)
    codes = [json.loads(line)["code"] for line in child.stdout.splitlines() if line.startswith("{")]
    assert codes == [0], child.stderr[-2000:]
    frames = sorted(p.name for p in out.glob("*.exr"))
    assert len(frames) == 2 and all(len(n) < 255 and n.startswith("sss") for n in frames), frames


# ---------------------------------------------------------------------------
# the spec loader's bounds, directly
# ---------------------------------------------------------------------------
def test_spec_loader_bounds(tmp_path):
    cases = {"[" * 100_000: "nested too deep", "": "is empty", "  \n": "is empty",
             '{"seed": ' + "9" * 5000 + "}": "not a job spec"}
    for text, message in cases.items():
        path = tmp_path / "job.json"
        path.write_text(text)
        with pytest.raises(ShotfillError, match=message):
            JobSpec.load(path)
    with pytest.raises(ShotfillError, match="more than the"):
        JobSpec.load(_sparse(tmp_path / "big.json", MAX_SPEC_BYTES + 1))


def test_a_job_file_at_the_size_bound_still_loads(tmp_path):
    spec = _spec(tmp_path / "p.####.exr", tmp_path / "out")
    spec["prompt"] = "x" * (MAX_SPEC_BYTES - 1000)
    path = tmp_path / "job.json"
    path.write_text(json.dumps(spec))
    assert len(JobSpec.load(path).prompt) == MAX_SPEC_BYTES - 1000
