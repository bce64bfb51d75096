"""``shotfill info`` on EXR files and sequences (described, checked whole, damaged frames exit 2)
and ``shotfill plan`` (columns, handles and generated frames, reasons for no targets, implausible
bridges, ``--timeline``)."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange
from shotfill import timeline as tl
from shotfill.cli import main
from shotfill.errors import JobSpecError, MediaError, TimelineError
from shotfill.io.exr import check_exr, write_exr
from shotfill.job import EditSpec
from shotfill.timeline.checks import implausible, no_target_reasons

RATE = 24


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def frames(folder: Path, numbers, *, size=(8, 12), compression="zip", data_window=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        window = data_window(n) if data_window else (0, 0, size[1] - 1, size[0] - 1)
        shape = (window[3] - window[1] + 1, window[2] - window[0] + 1, 3)
        pixels = np.random.default_rng(n).random(shape, dtype=np.float32)
        write_exr(folder / f"sh.{n:04d}.exr", pixels, compression=compression, data_window=window,
                  display_window=(0, 0, size[1] - 1, size[0] - 1))
    return folder


# -- damaged files made here -----------------------------------------------------------


def truncated_pixels(path: Path) -> Path:
    """A whole header and offset table, the last chunk's pixel data cut short."""
    write_exr(path, np.random.default_rng(1).random((64, 16, 3), dtype=np.float32), compression="none")
    data = path.read_bytes()
    path.write_bytes(data[:-40])
    return path


def corrupt_offset(path: Path) -> Path:
    """The first chunk offset pointing into the middle of another chunk (inside the file)."""
    write_exr(path, np.random.default_rng(2).random((64, 16, 3), dtype=np.float32), compression="none")
    data = bytearray(path.read_bytes())
    first = _tables_offset(bytes(data))
    offset = struct.unpack_from("<Q", data, first)[0]
    struct.pack_into("<Q", data, first, offset + 3)
    path.write_bytes(bytes(data))
    return path


def _tables_offset(data: bytes) -> int:
    """Where a single-part scanline file's offset table starts: after the header's closing null."""
    position = 8
    while data[position] != 0:
        name_end = data.index(b"\x00", position)
        type_end = data.index(b"\x00", name_end + 1)
        size = struct.unpack_from("<i", data, type_end + 1)[0]
        position = type_end + 5 + size
    return position + 1


def test_check_exr_passes_a_whole_file_and_catches_both_damages(tmp_path):
    good = tmp_path / "good.exr"
    write_exr(good, np.ones((64, 16, 3), np.float32), compression="none")
    assert check_exr(good) == {"chunks": 64, "decoded": True, "deep": False}
    with pytest.raises(MediaError, match="truncated pixel data: chunk 63 of 64"):
        check_exr(truncated_pixels(tmp_path / "cut.exr"))
    with pytest.raises(MediaError, match="chunk 0") as failure:
        check_exr(corrupt_offset(tmp_path / "offset.exr"))
    assert failure.value.path == str(tmp_path / "offset.exr")


@pytest.mark.parametrize("damage", [truncated_pixels, corrupt_offset])
def test_info_on_a_damaged_file_exits_2_naming_it(capsys, tmp_path, damage):
    bad = damage(tmp_path / "bad.exr")
    code, _, err = run(capsys, "info", bad)
    assert code == 2 and str(bad) in err and "Traceback" not in err


def test_info_on_a_sequence_with_a_damaged_frame_names_the_frame(capsys, tmp_path):
    folder = frames(tmp_path / "seq", range(1001, 1011))
    truncated_pixels(folder / "sh.1006.exr")
    code, _, err = run(capsys, "info", folder / "sh.####.exr")
    assert code == 2 and "sh.1006.exr" in err


# -- EXR sequences described ---------------------------------------------------------------


def test_info_describes_an_exr_sequence_by_pattern_folder_and_range(capsys, tmp_path):
    folder = frames(tmp_path / "seq", [*range(1001, 1006), 1008, 1009])
    code, out, _ = run(capsys, "info", folder / "sh.####.exr")
    assert code == 0
    assert "EXR sequence, frames 1001-1009 (7 frames), 12x8" in out
    assert "missing frames: 1006-1007 (2 frames)" in out
    assert "compression: zip" in out and "channels: B:half, G:half, R:half" in out
    assert "pixel type: half" in out and "data window: (0, 0, 11, 7)" in out
    assert "pixels decoded on 7 frames" in out and "0 parts" not in out
    code, by_folder, _ = run(capsys, "info", folder)
    assert code == 0 and by_folder == out
    code, ranged, _ = run(capsys, "info", f"{folder / 'sh.####.exr'}#frames=1002-1004")
    assert code == 0 and "frames 1002-1004 (3 frames)" in ranged


def test_info_says_when_windows_vary_and_which_frames_it_decoded(capsys, tmp_path):
    folder = frames(tmp_path / "seq", range(1, 21), data_window=lambda n: (0, 0, 11, 7) if n <= 10 else (2, 1, 9, 6))
    code, out, _ = run(capsys, "info", "--json", folder / "sh.####.exr")
    info = json.loads(out)
    assert code == 0 and info["sequence"]
    assert info["data_window"] == [{"value": [0, 0, 11, 7], "frames": [[1, 10]]},
                                   {"value": [2, 1, 9, 6], "frames": [[11, 20]]}]
    assert len(info["display_window"]) == 1
    check = info["check"]
    assert check["headers"] == 20 and check["decoded_count"] == 8 and check["not_decoded"] == 12
    assert check["decoded"][0][0] == 1 and check["decoded"][-1][-1] == 20
    code, text, _ = run(capsys, "info", folder / "sh.####.exr")
    assert "data window: varies over the sequence" in text and "frames 11-20" in text
    assert "12 not decoded (--decode-all decodes every frame)" in text
    code, out, _ = run(capsys, "info", "--json", "--decode-all", folder / "sh.####.exr")
    assert json.loads(out)["check"]["decoded_count"] == 20


def test_info_on_one_exr_file_says_it_was_checked(capsys, tmp_path):
    path = frames(tmp_path, [7]) / "sh.0007.exr"
    code, out, _ = run(capsys, "info", path)
    assert code == 0 and "1 part" in out and "checked: 1 chunks, pixels decoded" in out


_DAMAGED_SWEEP = """
import contextlib, io, json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from shotfill.cli import main
for name in json.loads(sys.stdin.read()):
    print(json.dumps({"started": name}), flush=True)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["info", name])
    print(json.dumps({"file": name, "code": code, "named": name in err.getvalue(),
                      "traceback": "Traceback" in err.getvalue()}), flush=True)
"""


def test_info_exits_2_naming_the_file_on_every_shared_damaged_exr(shared_data):
    root = shared_data / "exr_damaged"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    names = sorted(str(p) for p in root.rglob("*") if p.is_file() and p.suffix not in (".md", ".tsv", ".rst"))
    child = subprocess.run([sys.executable, "-c", _DAMAGED_SWEEP], input=json.dumps(names), capture_output=True,
                           text=True, timeout=300, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})
    results = {}
    for line in child.stdout.splitlines():
        if line.startswith("{") and '"file"' in line:
            record = json.loads(line)
            results[record["file"]] = record
    assert len(results) == len(names), child.stderr[-500:]
    wrong = {n: r for n, r in results.items() if r["code"] != 2 or not r["named"] or r["traceback"]}
    assert not wrong


# -- plan ---------------------------------------------------------------------------------


def clip(name, frames_used, *, url=None, available=None, start=0):
    ref = otio.schema.ExternalReference(target_url=url) if url else otio.schema.MissingReference()
    if available is not None:
        ref.available_range = TimeRange(RationalTime(0, RATE), RationalTime(available, RATE))
    return otio.schema.Clip(name=name, media_reference=ref,
                            source_range=TimeRange(RationalTime(start, RATE), RationalTime(frames_used, RATE)))


def timeline_of(*items, name="cut", audio_only=False):
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Audio if audio_only else otio.schema.TrackKind.Video)
    for item in items:
        track.append(item)
    t = otio.schema.Timeline(name=name)
    t.tracks.append(track)
    return t


def gap(n):
    return otio.schema.Gap(source_range=TimeRange(RationalTime(0, RATE), RationalTime(n, RATE)))


def save(t, folder: Path, name="cut.otio") -> Path:
    path = folder / name
    otio.adapters.write_to_file(t, str(path))
    return path


def movie(folder: Path, name: str) -> str:
    path = folder / name
    path.write_bytes(b"not really a movie")
    return str(path)


def test_plan_prints_columns_handles_and_generated_frames(capsys, tmp_path):
    a = movie(tmp_path, "a.mov")
    b = movie(tmp_path, "b.mov")
    path = save(timeline_of(clip("A", 48, url=a, available=100, start=10), gap(12),
                            clip("B", 48, url=b, available=100, start=30)), tmp_path)
    code, out, _ = run(capsys, "plan", path)
    assert code == 0
    header = next(line for line in out.splitlines() if "TARGET" in line)
    for column in ("TARGET", "KIND", "WHERE (RECORD)", "ADDS", "HANDLES", "GENERATED", "CLIPS"):
        assert column in header
    bridge = next(line for line in out.splitlines() if "V1.gap1" in line)
    assert "00:00:02:00-00:00:02:11" in bridge and "6 A + 6 B" in bridge and "0 (handles cover it)" in bridge
    head = next(line for line in out.splitlines() if "V1.clip1.head" in line)
    assert "before 00:00:00:00" in head and "up to 10" in head and "N - 10" in head
    code, out, _ = run(capsys, "plan", "--json", path)
    targets = {t["id"]: t for t in json.loads(out)["targets"]}
    assert targets["V1.gap1"]["handle_frames"] == {"a": 6, "b": 6} and targets["V1.gap1"]["implausible"] is None


def test_an_edit_with_no_targets_says_why(capsys, tmp_path):
    cases = {
        "butt.otio": (timeline_of(clip("A", 24), clip("B", 24)), ["no media on this machine", "--search-path",
                                                                 "no gaps between playing clips", "1 cut"]),
        "audio.otio": (timeline_of(clip("A", 24), audio_only=True), ["no video tracks, only 1 audio track"]),
        "empty.otio": (timeline_of(), ["hold", "no clips"]),
    }
    dissolve = timeline_of(clip("A", 24), otio.schema.Transition(in_offset=RationalTime(6, RATE),
                                                                 out_offset=RationalTime(6, RATE)), clip("B", 24))
    cases["dissolve.otio"] = (dissolve, ["1 transition joins clips where a gap would be"])
    bars = otio.schema.Clip(name="bars", media_reference=otio.schema.GeneratorReference(generator_kind="SMPTEBars"),
                            source_range=TimeRange(RationalTime(0, RATE), RationalTime(24, RATE)))
    cases["bars.otio"] = (timeline_of(bars, gap(10), bars.clone()), None)   # a gap between generators: a bridge
    cases["bars_only.otio"] = (timeline_of(bars.clone(), bars.clone()), ["every clip is a generator"])
    for name, (t, expected) in cases.items():
        path = save(t, tmp_path, name)
        code, out, _ = run(capsys, "plan", path)
        assert code == 0, name
        if expected is None:
            continue
        assert "0 targets" in out and "no targets:" in out, (name, out)
        for words in expected:
            assert words in out, (name, words, out)
        assert no_target_reasons(t, path), name


def test_implausible_bridges_are_left_out_unless_all(capsys, tmp_path):
    long_gap = save(timeline_of(clip("A", 48), gap(12_114), clip("B", 48), gap(60), clip("C", 30), gap(12), clip("D", 5)),
                    tmp_path)
    targets = {t.id: t for t in tl.find_targets(tl.load_edit(long_gap), edit_path=long_gap)}
    assert "longer than 10 s" in implausible(targets["V1.gap1"])
    assert "longer than both clips beside it (48 and 30 frames)" in implausible(targets["V1.gap2"])
    assert implausible(targets["V1.gap3"]) is None          # 12 frames between 30 and 5: short, plausible
    code, out, _ = run(capsys, "plan", long_gap)
    assert "3 targets (2 implausible left out; --all lists them)" in out
    assert "left out: V1.gap1 bridge, a 504.8 s gap (12114 frames)" in out
    assert "V1.gap3  bridge" in out and "IMPLAUSIBLE" not in out
    code, out, _ = run(capsys, "plan", "--all", long_gap)
    assert code == 0 and "3 targets" in out and "left out" not in out
    assert "IMPLAUSIBLE: a 504.8 s gap" in next(line for line in out.splitlines() if line.strip().startswith("V1.gap1"))


def test_timeline_picks_one_of_several(capsys, tmp_path):
    first, second = timeline_of(clip("A", 24), gap(5), clip("B", 24), name="one"), timeline_of(clip("C", 24), name="two")
    path = save(otio.schema.SerializableCollection(children=[first, second]), tmp_path, "both.otio")
    code, _, err = run(capsys, "plan", path)
    assert code == 2 and "holds 2 edits ('one', 'two'); pick one with --timeline" in err
    for choice, name in (("two", "two"), ("1", "one"), ("2", "two")):
        code, out, _ = run(capsys, "plan", "--timeline", choice, path)
        assert code == 0 and f"timeline {name!r}" in out
    code, _, err = run(capsys, "plan", "--timeline", "three", path)
    assert code == 2 and "no timeline 'three'; it holds 1 'one'; 2 'two'" in err
    assert tl.load_edit(path, timeline=2).name == "two"
    with pytest.raises(TimelineError, match="no timeline 3"):
        tl.load_edit(path, timeline=3)
    code, out, _ = run(capsys, "info", "--timeline", "one", path)
    assert code == 0 and "edit 'one'" in out


def test_edit_spec_carries_timeline_and_search_paths_and_keeps_old_ids():
    plain = EditSpec.from_dict({"path": "a.otio", "target": "V1.gap1"})
    assert "timeline" not in plain.to_dict() and "search_paths" not in plain.to_dict()
    spec = EditSpec.from_dict({"path": "a.otio", "target": "V1.gap1", "timeline": "two", "search_paths": ["/m"]})
    assert spec.timeline == "two" and spec.search_paths == ("/m",)
    assert EditSpec.from_dict(spec.to_dict()) == spec
    for bad in ({"timeline": ""}, {"timeline": 0}, {"timeline": True}, {"search_paths": "/m"},
                {"search_paths": [""]}):
        with pytest.raises(JobSpecError, match=f"edit.{next(iter(bad))}"):
            EditSpec.from_dict({"path": "a.otio", "target": "V1.gap1", **bad})


# -- the sweep of real edits -----------------------------------------------------------------


def test_every_real_edit_that_plans_to_zero_targets_says_why(shared_data):
    root = shared_data / "editorial"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    from shotfill.cli.info import read_plan

    silent, planned = [], 0
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix not in (".md",)):
        try:
            plan = read_plan(path)
        except (TimelineError, MediaError):
            continue        # read errors are test_timeline's; they name the file already
        planned += 1
        if not plan["targets"] and not plan["reasons"]:
            silent.append(path.name)
    assert planned >= 40 and not silent


def test_decoding_a_sequence_stops_at_its_time_budget(tmp_path):
    from shotfill.cli.info import describe_exr_sequence

    folder = frames(tmp_path / "seq", range(1, 11))
    info = describe_exr_sequence(str(folder / "sh.####.exr"), {"first": 1, "last": 10, "missing": []}, budget_s=0)
    assert info["check"]["headers"] == 10 and info["check"]["decoded_count"] == 1
    assert info["check"]["not_decoded"] == 9


def test_info_on_a_real_sequence_whose_windows_vary(capsys, shared_data):
    folder = shared_data / "exr" / "openexr-images" / "DisplayWindow"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    code, out, _ = run(capsys, "info", folder)
    assert code == 0 and "frames 1-16 (16 frames)" in out and "(frame 1; the display window varies)" in out
    assert "(30, 40, 429, 339): frame 8" in out and "compression: piz" in out
