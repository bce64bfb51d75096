"""Relinking offline media by file name (timeline/relink.py), through load_edit, plan, the job spec
and farm export."""
from __future__ import annotations

import json

import numpy as np
import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange
from shotfill import timeline as tl
from shotfill.cli import main
from shotfill.errors import InputError
from shotfill.io.exr import write_exr
from shotfill.timeline.relink import (
    AMBIGUOUS,
    NOT_FOUND,
    ONLINE,
    RELINKED,
    relink,
    summary,
)

RATE = 24


def used(first, count):
    return TimeRange(RationalTime(first, RATE), RationalTime(count, RATE))


def movie_clip(name, url):
    ref = otio.schema.ExternalReference(target_url=url, available_range=used(0, 100))
    return otio.schema.Clip(name=name, media_reference=ref, source_range=used(10, 20))


def sequence_clip(name, base, prefix="Plate.", suffix=".EXR", start=1001):
    ref = otio.schema.ImageSequenceReference(target_url_base=base, name_prefix=prefix, name_suffix=suffix,
                                             start_frame=start, frame_zero_padding=4, rate=RATE,
                                             available_range=used(0, 10))
    return otio.schema.Clip(name=name, media_reference=ref, source_range=used(2, 5))


def missing_clip(name):
    return otio.schema.Clip(name=name, media_reference=otio.schema.MissingReference(), source_range=used(0, 20))


def edit_of(*clips):
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for i, c in enumerate(clips):
        if i:
            track.append(otio.schema.Gap(source_range=used(0, 6)))
        track.append(c)
    t = otio.schema.Timeline(name="cut")
    t.tracks.append(track)
    return t


@pytest.fixture
def media(tmp_path):
    """A media tree: a movie, a sequence in other case, a name found twice, and a decoy deeper."""
    root = tmp_path / "media"
    (root / "day1" / "mov").mkdir(parents=True)
    (root / "day1" / "mov" / "A001_C002.mov").write_bytes(b"m")
    seq = root / "day2" / "plates" / "sh010"
    seq.mkdir(parents=True)
    for n in range(1001, 1011):
        write_exr(seq / f"plate.{n:04d}.exr", np.zeros((4, 4, 3), np.float32))
    for day in ("day1", "day2"):
        (root / day / "twice.mov").write_bytes(b"m")
    (root / "day2" / "sh020.mxf").write_bytes(b"m")
    return root


def test_relink_finds_movies_sequences_and_clip_names_case_insensitively(tmp_path, media):
    t = edit_of(movie_clip("A", "file:///Volumes/EDIT/Day%201/a001_c002.MOV"),
                sequence_clip("sh010", "file:///Volumes/EDIT/plates/sh010/"),
                missing_clip("sh020.mxf"),
                movie_clip("twice", "C:\\media\\twice.mov"),
                movie_clip("nowhere", "/Volumes/EDIT/nowhere.mov"),
                missing_clip(""))
    edit_path = tmp_path / "cut.otio"
    copy, report = relink(t, [media], edit_path=edit_path)
    by_clip = {e.clip: e for e in report}
    assert by_clip["A"].status == RELINKED and by_clip["A"].wanted == "a001_c002.MOV"
    assert by_clip["A"].path == str((media / "day1/mov/A001_C002.mov").resolve())
    assert by_clip["sh010"].status == RELINKED and by_clip["sh010"].wanted == "Plate.1001.EXR"
    assert by_clip["sh020.mxf"].status == RELINKED
    assert by_clip["twice"].status == AMBIGUOUS and len(by_clip["twice"].candidates) == 2
    assert by_clip["nowhere"].status == NOT_FOUND
    assert by_clip[""].status == "no_name"
    assert summary(report) == "3 relinked, 1 not found, 1 ambiguous (found in several places), 1 with no file name to search for"
    # the copy points at the media found (the sequence in the case on disk); the original is unchanged
    clips = {c.name: c for c in copy.find_clips()}
    targets = {t.id: t for t in tl.find_targets(copy, edit_path=edit_path)}
    sequence = targets["V1.clip2.head"].clip_a
    assert sequence.exists and sequence.path.endswith("sh010/plate.####.exr")
    assert targets["V1.clip1.head"].clip_a.exists
    assert clips["twice"].media_reference.target_url == "C:\\media\\twice.mov"
    assert next(iter(t.find_clips())).media_reference.target_url.startswith("file:///Volumes")
    # a clip named like a media file, missing before, now offers heads and tails
    assert targets["V1.clip3.head"].clip_a.path.endswith("sh020.mxf")


def test_edl_events_are_found_by_clip_name_source_file_or_reel(tmp_path, media):
    by_stem = missing_clip("a001_c002")
    by_reel = missing_clip("117C-3-B")
    by_reel.metadata["cmx_3600"] = {"reel": "SH020"}
    by_comment = missing_clip("ZZ100_501 (LAY3)")
    by_comment.metadata["cmx_3600"] = {"comments": ["SOURCE FILE: twice.mov"], "reel": "ZZ100_50"}
    _, report = relink(edit_of(by_stem, by_reel, by_comment, missing_clip("take_1")), [media],
                       edit_path=tmp_path / "cut.edl")
    by_clip = {e.clip: e for e in report}
    assert by_clip["a001_c002"].status == RELINKED and by_clip["a001_c002"].path.endswith("A001_C002.mov")
    assert by_clip["117C-3-B"].status == RELINKED and by_clip["117C-3-B"].path.endswith("sh020.mxf")
    assert by_clip["ZZ100_501 (LAY3)"].status == AMBIGUOUS       # twice.mov: two places, not guessed
    assert by_clip["take_1"].status == NOT_FOUND


def test_a_linked_mask_is_relinked_with_its_clip(tmp_path, media):
    masks = media / "day2" / "mattes"
    masks.mkdir()
    for n in range(1001, 1011):
        write_exr(masks / f"matte.{n:04d}.exr", np.zeros((4, 4, 3), np.float32))
    c = sequence_clip("sh010", "/gone/plates/", prefix="plate.", suffix=".exr")
    mask = otio.schema.ImageSequenceReference(target_url_base="/gone/mattes/", name_prefix="matte.",
                                              name_suffix=".exr", start_frame=1001, frame_zero_padding=4,
                                              rate=RATE, available_range=used(0, 10))
    c.set_media_references({otio.schema.Clip.DEFAULT_MEDIA_KEY: c.media_reference, "mask": mask},
                           otio.schema.Clip.DEFAULT_MEDIA_KEY)
    copy, report = relink(edit_of(c), [media], edit_path=tmp_path / "cut.otio")
    assert [(e.clip, e.status) for e in report] == [("sh010", RELINKED), ("sh010 (mask)", RELINKED)]
    fill = next(t for t in tl.find_targets(copy, edit_path=tmp_path / "cut.otio") if t.id.endswith(".fill"))
    assert fill.ready and fill.mask.path == str(masks.resolve() / "matte.####.exr")


def test_online_clips_are_left_alone_and_bad_search_paths_refused(tmp_path, media):
    online = media / "day1" / "mov" / "A001_C002.mov"
    t = edit_of(movie_clip("A", str(online)))
    copy, report = relink(t, [media], edit_path=tmp_path / "cut.otio")
    assert [e.status for e in report] == [ONLINE] and copy is not t
    assert next(iter(copy.find_clips())).media_reference.target_url == str(online)
    with pytest.raises(InputError, match="--search-path .*nope: not a folder"):
        relink(t, [tmp_path / "nope"], edit_path=tmp_path / "cut.otio")


def test_a_sequence_without_its_first_frame_is_found_by_its_numbered_files(tmp_path, media):
    t = edit_of(sequence_clip("early", "/gone/", prefix="plate.", suffix=".exr", start=990))
    _, report = relink(t, [media], edit_path=tmp_path / "cut.otio")
    assert report[0].status == RELINKED and report[0].path.endswith("plate.1001.exr")


def test_load_edit_plan_and_job_spec_take_search_paths(capsys, tmp_path, media):
    t = edit_of(movie_clip("A", "/Volumes/EDIT/A001_C002.mov"), missing_clip("twice.mov"))
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(t, str(path))
    report: list = []
    loaded = tl.load_edit(path, search_paths=[media], relinked=report)
    assert [e.status for e in report] == [RELINKED, AMBIGUOUS]
    assert tl.find_targets(loaded, edit_path=path)[0].ready

    assert main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "offline: 2 of 2 clips have no media on disk here; relink with --search-path DIR" in out
    assert main(["plan", str(path), "--search-path", str(media)]) == 0
    out = capsys.readouterr().out
    assert "relink: 1 relinked, 1 ambiguous" in out and "twice.mov is in 2 places, not relinked" in out
    assert "(media offline)" not in next(line for line in out.splitlines() if "V1.clip1.head" in line)
    assert main(["plan", "--json", str(path), "--media-root", str(media)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["status"] for e in data["relink"]] == [RELINKED, AMBIGUOUS]


def test_generate_commands_put_search_paths_and_timeline_in_the_edit_spec(tmp_path, media):
    from shotfill.cli import build_parser
    from shotfill.cli.generate import _spec_from_args

    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(edit_of(movie_clip("A", "/x/A001_C002.mov")), str(path))
    args = build_parser().parse_args(["extend", str(path), "--target", "V1.clip1.tail", "--frames", "4", "--out",
                                      str(tmp_path / "out"), "--search-path", str(media), "--timeline", "cut"])
    spec = _spec_from_args(args, "extend_forward", {"source": args.source, "frames": 4})
    assert spec.edit.search_paths == (str(media.resolve()),) and spec.edit.timeline == "cut"


def test_farm_export_relinks_and_passes_search_paths_to_jobs(tmp_path, media):
    from shotfill.farm import export_bundle

    seq = media / "day2" / "plates" / "sh010"
    t = edit_of(sequence_clip("one", "/gone/", prefix="plate.", suffix=".exr"),
                sequence_clip("two", "/gone/", prefix="plate.", suffix=".exr"))
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(t, str(path))
    with pytest.raises(InputError, match="media offline"):
        export_bundle(path, tmp_path / "b0", shotfill_command="shotfill")
    bundle = export_bundle(path, tmp_path / "b1", search_paths=[str(media)], shotfill_command="shotfill")
    job = json.loads((bundle / "jobs" / "V1.gap1.json").read_text())
    assert job["edit"]["search_paths"] == [str(media.resolve())]
    assert seq.is_dir()
    from shotfill.farm import Bundle

    assert Bundle.load(bundle).search_paths == (str(media.resolve()),)
    # the command line: --search-path and --timeline reach the bundle
    assert main(["farm", "export", str(path), "--out", str(tmp_path / "b2"), "--search-path", str(media),
                 "--timeline", "cut", "--shotfill-command", "shotfill"]) == 0
    manifest = json.loads((tmp_path / "b2" / "bundle.json").read_text())
    assert manifest["timeline"] == "cut" and manifest["search_paths"] == [str(media.resolve())]
    job = json.loads((tmp_path / "b2" / "jobs" / "V1.gap1.json").read_text())
    assert job["edit"]["timeline"] == "cut"
