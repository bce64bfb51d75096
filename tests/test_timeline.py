"""Tests for shotfill.timeline: reading edits, finding targets, writing results back.

Edits are built in code at 24 fps; each test draws its edit. Real files come
from ``shared/data/editorial`` (see its SOURCES.md) through the ``shared_data``
fixture.
"""
from __future__ import annotations

import gc
import hashlib
import json
import re
from pathlib import Path

import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from conftest import SHARED_DATA
from shotfill import timeline as tl
from shotfill.errors import TimelineError
from shotfill.plan import TaskKind

RATE = 24
HOUR = 86400  # 01:00:00:00 at 24 fps


def rt(frames, rate=RATE) -> RationalTime:
    return RationalTime(frames, rate)


def tr(start, duration, rate=RATE) -> TimeRange:
    return TimeRange(rt(start, rate), rt(duration, rate))


def sequence_reference(name, folder="plates", *, start_frame=1001, available=(HOUR, 48), padding=4):
    return otio.schema.ImageSequenceReference(
        target_url_base=folder, name_prefix=f"{name}.", name_suffix=".exr", start_frame=start_frame,
        frame_step=1, rate=RATE, frame_zero_padding=padding, available_range=tr(*available))


def sequence_clip(name, used=(HOUR + 8, 24), **reference):
    """A 48-frame sequence (files 1001-1048 at 01:00:00:00) of which the edit uses 24."""
    return otio.schema.Clip(name=name, media_reference=sequence_reference(name, **reference),
                            source_range=tr(*used))


def movie_clip(name, url=None, *, available=(HOUR, 100), used=(HOUR + 10, 20)):
    reference = otio.schema.ExternalReference(
        target_url=url if url is not None else f"media/{name}.mov",
        available_range=tr(*available) if available is not None else None)
    return otio.schema.Clip(name=name, media_reference=reference, source_range=tr(*used))


def gap(frames) -> otio.schema.Gap:
    return otio.schema.Gap(source_range=tr(0, frames))


def edit(*tracks, start=None) -> otio.schema.Timeline:
    """A timeline of the given tracks; a list of items is a video track."""
    timeline = otio.schema.Timeline(name="cut", global_start_time=start)
    for number, items in enumerate(tracks, start=1):
        if isinstance(items, otio.schema.Track):
            timeline.tracks.append(items)
            continue
        track = otio.schema.Track(name=f"V{number}", kind=otio.schema.TrackKind.Video)
        track.extend(items)
        timeline.tracks.append(track)
    return timeline


def save(timeline, folder: Path, name="cut.otio") -> Path:
    path = folder / name
    otio.adapters.write_to_file(timeline, str(path))
    return path


def targets_of(timeline, folder: Path):
    return tl.find_targets(timeline, edit_path=folder / "cut.otio")


def by_id(targets):
    return {t.id: t for t in targets}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bridge_edit():
    """The edit most write-back tests use::

        V1  [ a: 24 ][ gap: 12 ][ b: 24 ]
            0        24         36       60
    """
    return edit([sequence_clip("a"), gap(12), sequence_clip("b")])


def placement(target_id="V1.gap1", *, first=1001, frames=12, record_start=24, folder=Path("out"),
              metadata=None):
    return tl.Placement(
        target_id=target_id, directory=folder, name_prefix=f"cut_{target_id}.", name_suffix=".exr",
        frame_zero_padding=4, start_frame=first, end_frame=first + frames - 1, rate=RATE,
        record_start=rt(record_start), metadata=metadata if metadata is not None else {"engine": "flow"})


# -- bridges --------------------------------------------------------------------------


def test_a_gap_between_two_clips_is_a_bridge(tmp_path):
    targets = targets_of(bridge_edit(), tmp_path)
    assert [t.id for t in targets] == [
        "V1.clip1.head", "V1.clip1.tail", "V1.gap1", "V1.clip2.head", "V1.clip2.tail"]
    bridge = by_id(targets)["V1.gap1"]
    assert bridge.kind is TaskKind.BRIDGE
    assert bridge.record_range == tr(24, 12)
    assert bridge.frames == 12
    assert bridge.rate == RATE
    assert (bridge.clip_a.clip_name, bridge.clip_b.clip_name) == ("a", "b")
    assert (bridge.track_name, bridge.track_index) == ("V1", 0)


def test_gaps_that_are_not_bridges(tmp_path):
    """None of these gaps is a bridge::

        V1  [gap1][ a ][gap2: 0][ b ][gap3][~transition~][ c ][gap4][ d: disabled ][gap5][ e ][gap6]
              ^          ^                ^                      ^                  ^             ^
          track start  empty     touches a transition   next to a disabled clip        track end
                                                                   (gap5 too)
    """
    disabled = sequence_clip("d")
    disabled.enabled = False
    transition = otio.schema.Transition(in_offset=rt(2), out_offset=rt(2))
    timeline = edit([gap(6), sequence_clip("a"), gap(0), sequence_clip("b"), gap(5), transition,
                     sequence_clip("c"), gap(4), disabled, gap(4), sequence_clip("e"), gap(3)])
    assert [t for t in targets_of(timeline, tmp_path) if t.kind is TaskKind.BRIDGE] == []


def test_audio_tracks_give_no_targets(tmp_path):
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    audio.extend([movie_clip("a", "a.wav"), gap(10), movie_clip("b", "b.wav")])
    assert targets_of(edit(audio), tmp_path) == []


# -- extensions -----------------------------------------------------------------------


def test_extend_targets_only_for_clips_with_readable_media(tmp_path):
    """Clips are numbered in track order whether or not they give targets::

        V1  [ 1 seq ][ 2 generator ][ 3 missing ][ 4 movie ][ 5 http ][ 6 disabled seq ][ 7 still ]
    """
    generator = otio.schema.Clip(name="slate", source_range=tr(0, 10),
                                 media_reference=otio.schema.GeneratorReference(generator_kind="SMPTEBars"))
    missing = otio.schema.Clip(name="offline", source_range=tr(0, 10))
    disabled = sequence_clip("f")
    disabled.enabled = False
    timeline = edit([sequence_clip("a"), generator, missing, movie_clip("m"),
                     movie_clip("web", "https://example.com/web.mov"), disabled,
                     movie_clip("still", "stills/still.exr")])
    targets = targets_of(timeline, tmp_path)
    assert [t.id for t in targets] == [
        "V1.clip1.head", "V1.clip1.tail", "V1.clip4.head", "V1.clip4.tail",
        "V1.clip7.head", "V1.clip7.tail"]
    found = by_id(targets)
    assert found["V1.clip1.head"].kind is TaskKind.EXTEND_BACKWARD
    assert found["V1.clip1.tail"].kind is TaskKind.EXTEND_FORWARD
    assert found["V1.clip4.tail"].frames is None
    assert found["V1.clip4.tail"].record_range == tr(44, 20)   # after 24 + 10 + 10 frames
    kinds = {t.clip_a.clip_name: t.clip_a.media_kind for t in targets}
    assert kinds == {"a": "sequence", "m": "movie", "still": "image"}


def test_sequence_frames_are_file_numbers_with_handles(tmp_path):
    """Files 1001-1048 hold media time 01:00:00:00 onwards; the edit uses 24 of them::

        media    1001 ........ 1008 | 1009 ............ 1032 | 1033 ........ 1048
                 |<-- 8 handles -->|<------ the edit ------>|<-- 16 handles -->|
    """
    clip = sequence_clip("a")
    media = targets_of(edit([clip]), tmp_path)[0].clip_a
    reference = clip.media_reference
    assert media.source_first == reference.frame_for_time(rt(HOUR + 8)) == 1009
    assert media.source_last == reference.frame_for_time(rt(HOUR + 31)) == 1032
    assert (media.available_first, media.available_last) == (1001, reference.end_frame()) == (1001, 1048)
    assert (media.handles_before, media.handles_after) == (8, 16)
    assert media.path == str(tmp_path / "plates" / "a.####.exr")
    assert media.frame_path(1009) == str(tmp_path / "plates" / "a.1009.exr")


def test_movie_frames_count_from_the_start_of_its_available_range(tmp_path):
    """A movie whose first frame is 01:00:00:00; the edit uses 01:00:00:10 for 20 frames::

        media  0 ......... 9 | 10 ......... 29 | 30 .......... 99
    """
    media = targets_of(edit([movie_clip("m")]), tmp_path)[0].clip_a
    assert (media.source_first, media.source_last) == (10, 29)
    assert (media.available_first, media.available_last) == (0, 99)
    assert (media.handles_before, media.handles_after) == (10, 70)
    assert media.path == str(tmp_path / "media" / "m.mov")


def test_movie_without_available_range_counts_from_media_time_zero(tmp_path):
    media = targets_of(edit([movie_clip("m", available=None, used=(48, 10))]), tmp_path)[0].clip_a
    assert (media.source_first, media.source_last) == (48, 57)
    assert (media.available_first, media.available_last) == (None, None)
    assert (media.handles_before, media.handles_after) == (None, None)


def test_edit_using_frames_beyond_the_media_has_negative_handles(tmp_path):
    media = targets_of(edit([sequence_clip("a", used=(HOUR + 40, 12))]), tmp_path)[0].clip_a
    assert (media.source_first, media.source_last) == (1041, 1052)
    assert media.handles_after == -4


# -- media paths ------------------------------------------------------------------------


def test_media_urls_become_local_paths(tmp_path):
    timeline = edit([
        movie_clip("rel", "media/rel.mov"),
        movie_clip("url", "file:///mnt/my%20show/url.mov"),
        movie_clip("abs", "/mnt/show/abs.mov"),
        sequence_clip("unpadded", folder="file:///mnt/plates/", padding=0),
        sequence_clip("here", folder=""),
    ])
    paths = {t.clip_a.clip_name: t.clip_a.path for t in targets_of(timeline, tmp_path)}
    assert paths == {
        "rel": str(tmp_path / "media" / "rel.mov"),
        "url": "/mnt/my show/url.mov",
        "abs": "/mnt/show/abs.mov",
        "unpadded": "/mnt/plates/unpadded.#.exr",
        "here": str(tmp_path / "here.####.exr"),
    }


def test_relative_edit_path_still_gives_absolute_media_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    media = tl.find_targets(edit([movie_clip("m")]), edit_path="cut.otio")[0].clip_a
    assert media.path == str(tmp_path / "media" / "m.mov")


def test_exists_checks_the_first_frame_the_edit_uses(tmp_path):
    media = targets_of(edit([sequence_clip("a"), movie_clip("m")]), tmp_path)
    sequence, movie = media[0].clip_a, media[2].clip_a
    assert not sequence.exists and not movie.exists
    (tmp_path / "plates").mkdir()
    (tmp_path / "plates" / "a.1001.exr").touch()   # a handle frame, not used by the edit
    assert not sequence.exists
    (tmp_path / "plates" / "a.1009.exr").touch()
    assert sequence.exists
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "m.mov").touch()
    assert movie.exists


# -- fills --------------------------------------------------------------------------------


def test_mask_from_a_media_reference(tmp_path):
    """The mask sequence has its own numbering (files 1-48) over the same media time."""
    clip = sequence_clip("a")
    clip.set_media_references(
        {"DEFAULT_MEDIA": sequence_reference("a"),
         "mask": sequence_reference("a_mask", folder="masks", start_frame=1)},
        "DEFAULT_MEDIA")
    fill = by_id(targets_of(edit([clip]), tmp_path))["V1.clip1.fill"]
    assert fill.kind is TaskKind.FILL
    assert fill.frames == 24
    assert fill.record_range == tr(0, 24)
    assert fill.clip_a.path == str(tmp_path / "plates" / "a.####.exr")
    assert fill.mask.path == str(tmp_path / "masks" / "a_mask.####.exr")
    assert fill.mask.media_kind == "sequence"
    assert (fill.mask.source_first, fill.mask.source_last) == (9, 32)


def test_mask_from_metadata_uses_the_clip_numbering(tmp_path):
    clip = sequence_clip("a")
    clip.metadata["shotfill"] = {"mask": "masks/a_mask.%04d.exr"}
    fill = by_id(targets_of(edit([clip]), tmp_path))["V1.clip1.fill"]
    assert fill.mask.path == str(tmp_path / "masks" / "a_mask.####.exr")
    assert fill.mask.media_kind == "sequence"
    assert (fill.mask.source_first, fill.mask.source_last) == (1009, 1032)
    assert fill.mask.frame_path(1009) == str(tmp_path / "masks" / "a_mask.1009.exr")


def test_clip_without_a_mask_gives_no_fill(tmp_path):
    assert not [t for t in targets_of(bridge_edit(), tmp_path) if t.kind is TaskKind.FILL]


def test_bad_mask_metadata_names_the_clip(tmp_path):
    clip = sequence_clip("a")
    clip.metadata["shotfill"] = {"mask": 5}
    with pytest.raises(TimelineError, match="clip 'a'.*shotfill.mask"):
        targets_of(edit([clip]), tmp_path)


# -- ids and serialisation ------------------------------------------------------------------


def test_ids_are_stable_and_unique_across_tracks(tmp_path):
    """Two video tracks around an audio track::

        index 0  V1  [ a ][gap][ b ]
        index 1  A1  [ sound ]
        index 2  V2  [gap][ c ]
    """
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    audio.append(movie_clip("sound", "sound.wav"))
    path = save(edit([sequence_clip("a"), gap(12), sequence_clip("b")], audio, [gap(5), sequence_clip("c")]),
                tmp_path)
    first = [t.id for t in tl.find_targets(tl.load_edit(path), edit_path=path)]
    second = [t.id for t in tl.find_targets(tl.load_edit(path), edit_path=path)]
    assert first == second
    assert len(set(first)) == len(first)
    v2 = [t for t in tl.find_targets(tl.load_edit(path), edit_path=path) if t.id.startswith("V2.")]
    assert [t.id for t in v2] == ["V2.clip1.head", "V2.clip1.tail"]
    assert {t.track_index for t in v2} == {2}


def test_to_dict_is_json_with_record_timecodes(tmp_path):
    targets = targets_of(edit([sequence_clip("a"), gap(12), sequence_clip("b")], start=rt(HOUR)), tmp_path)
    d = json.loads(json.dumps(by_id(targets)["V1.gap1"].to_dict()))
    assert d["kind"] == "bridge"
    assert (d["record_first"], d["record_last"], d["frames"], d["rate"]) == (24, 35, 12, 24)
    assert (d["record_first_tc"], d["record_last_tc"]) == ("01:00:01:00", "01:00:01:11")
    assert d["ready"] is False
    assert d["clip_a"]["source_last"] == 1032 and d["clip_a"]["handles_after"] == 16
    assert d["clip_b"]["media_kind"] == "sequence" and d["mask"] is None


# -- reading --------------------------------------------------------------------------------


def test_load_edit_round_trip(tmp_path):
    timeline = tl.load_edit(save(bridge_edit(), tmp_path))
    assert isinstance(timeline, otio.schema.Timeline)
    assert len(targets_of(timeline, tmp_path)) == 5


def test_load_edit_missing_file(tmp_path):
    with pytest.raises(TimelineError, match="nope.otio: no such file"):
        tl.load_edit(tmp_path / "nope.otio")


def test_load_edit_unknown_format(tmp_path):
    path = tmp_path / "cut.doc"
    path.write_text("hello")
    with pytest.raises(TimelineError, match=r"cut.doc: no OpenTimelineIO adapter here reads '\.doc'"):
        tl.load_edit(path)


def test_load_edit_damaged_file_names_the_adapter(tmp_path):
    path = tmp_path / "cut.otio"
    path.write_text("{ not json")
    with pytest.raises(TimelineError, match="cut.otio: the otio_json adapter could not read it"):
        tl.load_edit(path)


def test_load_edit_newer_schema_is_named(tmp_path):
    path = save(bridge_edit(), tmp_path)
    path.write_text(path.read_text().replace('"Gap.1"', '"Gap.7"'))
    with pytest.raises(TimelineError, match=r"newer OpenTimelineIO \(schema Gap\.7\).*reads up to Gap\.1"):
        tl.load_edit(path)


EDL_25 = """TITLE: twenty five

001  AX       V     C        01:00:00:00 01:00:01:00 00:00:00:00 00:00:01:00
* FROM CLIP NAME: a.mov

002  AX       V     C        01:00:10:00 01:00:10:24 00:00:02:00 00:00:02:24
* FROM CLIP NAME: b.mov
"""


def test_edl_rate_is_never_guessed(tmp_path):
    """An EDL whose timecodes count up to frame 24 is not 24 fps: ask, then read at 25::

        V1  [ a: 25 ][ gap: 25 ][ b: 24 ]
    """
    path = tmp_path / "cut.edl"
    path.write_text(EDL_25)
    with pytest.raises(TimelineError, match="cut.edl: the EDL's timecodes are not 24 fps.*--rate 25"):
        tl.load_edit(path)
    timeline = tl.load_edit(path, rate=25)
    bridge = by_id(tl.find_targets(timeline, edit_path=path))["V1.gap1"]
    assert bridge.rate == 25
    assert bridge.frames == 25
    assert bridge.record_range == tr(25, 25, rate=25)


def test_edl_rate_hint_names_a_higher_rate(tmp_path):
    path = tmp_path / "cut.edl"
    path.write_text(EDL_25.replace("01:00:10:24", "01:00:10:29").replace("00:00:02:24", "00:00:02:29"))
    with pytest.raises(TimelineError, match="not 25 fps.*--rate 30"):
        tl.load_edit(path, rate=25)


def test_load_edit_rejects_a_bad_rate(tmp_path):
    path = tmp_path / "cut.edl"
    path.write_text(EDL_25)
    with pytest.raises(TimelineError, match="frame rate must be positive"):
        tl.load_edit(path, rate=0)


def test_a_clip_list_becomes_one_track(tmp_path):
    collection = otio.schema.SerializableCollection(
        name="bin", children=[movie_clip("m1"), movie_clip("m2", used=(HOUR, 5))])
    path = save(collection, tmp_path, "bin.otio")
    timeline = tl.load_edit(path)
    assert timeline.name == "bin"
    assert [c.name for c in timeline.tracks[0]] == ["m1", "m2"]
    ids = [t.id for t in tl.find_targets(timeline, edit_path=path)]
    assert ids == ["V1.clip1.head", "V1.clip1.tail", "V1.clip2.head", "V1.clip2.tail"]


def test_one_edit_in_a_collection_is_that_edit(tmp_path):
    collection = otio.schema.SerializableCollection(name="bin", children=[bridge_edit()])
    timeline = tl.load_edit(save(collection, tmp_path, "one.otio"))
    del collection
    gc.collect()
    assert [t.id for t in targets_of(timeline, tmp_path)][2] == "V1.gap1"


def test_several_edits_in_one_file_is_an_error(tmp_path):
    collection = otio.schema.SerializableCollection(children=[bridge_edit(), edit([movie_clip("m")])])
    with pytest.raises(TimelineError, match="holds 2 edits"):
        tl.load_edit(save(collection, tmp_path, "two.otio"))


def test_an_empty_timeline_has_no_targets(tmp_path):
    path = save(otio.schema.Timeline(name="empty"), tmp_path)
    assert tl.find_targets(tl.load_edit(path), edit_path=path) == []


# -- writing back -----------------------------------------------------------------------------


def test_write_back_track_mode(tmp_path):
    """A new track on top, the target's own, with the bridge at its record start::

        shotfill V1.gap1          [ gen: 12 ]
        V1                [ a: 24 ][ gap: 12 ][ b: 24 ]
                  0        24         36
    """
    path = save(bridge_edit(), tmp_path)
    before = sha256(path)
    timeline = tl.load_edit(path)
    out = tl.write_back(path, timeline, [placement(folder=tmp_path / "out")])
    assert out == tmp_path / "cut.shotfill.otio"
    assert sha256(path) == before
    assert len(timeline.tracks) == 1   # the caller's timeline is left alone

    result = tl.load_edit(out)
    assert [t.name for t in result.tracks] == ["V1", "shotfill V1.gap1"]
    track = result.tracks[1]
    assert dict(track.metadata["shotfill"]) == {"results": True, "target_id": "V1.gap1"}
    assert track.kind == otio.schema.TrackKind.Video
    assert isinstance(track[0], otio.schema.Gap) and track[0].duration() == rt(24)
    clip = track[1]
    assert track.range_of_child_at_index(1) == tr(24, 12)
    reference = clip.media_reference
    assert isinstance(reference, otio.schema.ImageSequenceReference)
    assert (reference.start_frame, reference.end_frame(), reference.rate) == (1001, 1012, RATE)
    assert (reference.name_prefix, reference.name_suffix, reference.frame_zero_padding) == \
        ("cut_V1.gap1.", ".exr", 4)
    assert reference.target_url_base == "out/"    # relative, as the edit's own media (plates/...)
    assert dict(clip.metadata["shotfill"]) == {"engine": "flow", "target_id": "V1.gap1", "role": "generated"}
    # shotfill's own results are no targets: the version gives the input's targets
    assert [t.id for t in tl.find_targets(result, edit_path=out)] == [t.id for t in targets_of(timeline, tmp_path)]


def test_write_back_places_extensions_around_clips(tmp_path):
    """A head before clip b and a tail after it, each on its target's track::

        shotfill V1.clip2.head  [       gap: 30       ][h: 6]
        shotfill V1.clip2.tail  [              gap: 60                   ][t: 10]
        V1                      [ a: 24 ][ gap: 12 ][ b: 24              ]
                                0        24         36                   60
    """
    path = save(bridge_edit(), tmp_path)
    out = tl.write_back(path, tl.load_edit(path), [
        placement("V1.clip2.tail", frames=10, record_start=60, first=1033),
        placement("V1.clip2.head", frames=6, record_start=30, first=1003),
    ])
    result = tl.load_edit(out)
    assert [t.name for t in result.tracks] == ["V1", "shotfill V1.clip2.tail", "shotfill V1.clip2.head"]

    def ranges(track):
        return [(type(item).__name__, track.range_of_child_at_index(i)) for i, item in enumerate(track)]
    assert ranges(result.tracks[1]) == [("Gap", tr(0, 60)), ("Clip", tr(60, 10))]
    assert ranges(result.tracks[2]) == [("Gap", tr(0, 30)), ("Clip", tr(30, 6))]


def test_write_back_never_overwrites_an_earlier_version(tmp_path):
    """Each run is a new version; a new take of the same target replaces its placement there."""
    path = save(bridge_edit(), tmp_path)
    timeline = tl.load_edit(path)
    first = tl.write_back(path, timeline, [placement(metadata={"run": 1})])
    first_hash = sha256(first)
    second = tl.write_back(path, timeline, [placement(metadata={"run": 2})])
    third = tl.write_back(path, timeline, [placement(metadata={"run": 3})])
    assert [p.name for p in (first, second, third)] == [
        "cut.shotfill.otio", "cut.shotfill.v2.otio", "cut.shotfill.v3.otio"]
    assert sha256(first) == first_hash
    results = [tl.load_edit(p) for p in (first, second, third)]
    assert [len(r.tracks) for r in results] == [2, 2, 2]
    assert [r.tracks[1][1].metadata["shotfill"]["run"] for r in results] == [1, 2, 3]


def test_a_second_pass_on_a_version_goes_on_the_next_version(tmp_path):
    path = save(bridge_edit(), tmp_path)
    once = tl.write_back(path, tl.load_edit(path), [placement()])
    twice = tl.write_back(once, tl.load_edit(once), [placement("V1.clip1.tail", record_start=24)])
    assert twice.name == "cut.shotfill.v2.otio"
    result = tl.load_edit(twice)
    assert [t.name for t in result.tracks] == ["V1", "shotfill V1.gap1", "shotfill V1.clip1.tail"]
    assert list(result.metadata["shotfill"]["versions"]) == ["cut.shotfill.otio", "cut.shotfill.v2.otio"]


def test_overlapping_placements_each_have_their_track(tmp_path):
    """::

        shotfill V1.clip2.head           [ clip2.head ]
        shotfill V1.gap1         [  gap1  ]
    """
    path = save(bridge_edit(), tmp_path)
    out = tl.write_back(path, tl.load_edit(path), [
        placement(), placement("V1.clip2.head", frames=6, record_start=30)])
    result = tl.load_edit(out)
    assert [t.name for t in result.tracks] == ["V1", "shotfill V1.gap1", "shotfill V1.clip2.head"]
    lane2 = result.tracks[2]
    clip = [c for c in lane2 if isinstance(c, otio.schema.Clip)][0]
    assert clip.name == "V1.clip2.head" and lane2.range_of_child(clip).start_time.to_frames() == 30


def test_two_placements_for_one_target_is_an_error(tmp_path):
    path = save(bridge_edit(), tmp_path)
    with pytest.raises(TimelineError, match="two placements for 'V1.gap1'"):
        tl.write_back(path, tl.load_edit(path), [placement(), placement()])


def test_placement_before_the_timeline_start_is_an_error(tmp_path):
    path = save(bridge_edit(), tmp_path)
    with pytest.raises(TimelineError, match="'V1.clip1.head'.*6 frames before the timeline's first frame"):
        tl.write_back(path, tl.load_edit(path), [placement("V1.clip1.head", frames=6, record_start=-6)])


def test_unknown_target_is_an_error(tmp_path):
    path = save(bridge_edit(), tmp_path)
    with pytest.raises(TimelineError, match="'V1.gap9': no such target"):
        tl.write_back(path, tl.load_edit(path), [placement("V1.gap9")])


def test_write_back_replace_mode(tmp_path):
    """The gap itself becomes the generated clip::

        V1  [ a: 24 ][ gen: 12 ][ b: 24 ]
    """
    path = save(bridge_edit(), tmp_path)
    before = sha256(path)
    out = tl.write_back(path, tl.load_edit(path), [placement()], mode="replace")
    assert sha256(path) == before
    result = tl.load_edit(out)
    assert len(result.tracks) == 1
    track = result.tracks[0]
    assert [c.name for c in track] == ["a", "V1.gap1", "b"]
    assert track.range_of_child_at_index(1) == tr(24, 12)
    assert track[1].media_reference.start_frame == 1001
    assert track.duration() == rt(60)


def test_replace_mode_needs_a_sequence_as_long_as_the_gap(tmp_path):
    path = save(bridge_edit(), tmp_path)
    with pytest.raises(TimelineError, match="'V1.gap1': it holds 10 frames, the gap 12"):
        tl.write_back(path, tl.load_edit(path), [placement(frames=10)], mode="replace")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.otio"]


def test_replace_mode_only_replaces_gaps(tmp_path):
    path = save(bridge_edit(), tmp_path)
    with pytest.raises(TimelineError, match="'V1.clip1.tail'.*only a bridge can replace its gap"):
        tl.write_back(path, tl.load_edit(path), [placement("V1.clip1.tail")], mode="replace")


def test_unknown_mode_is_an_error(tmp_path):
    path = save(bridge_edit(), tmp_path)
    with pytest.raises(TimelineError, match="unknown write-back mode 'splice'"):
        tl.write_back(path, tl.load_edit(path), [placement()], mode="splice")


def test_explicit_out_path_but_never_the_input(tmp_path):
    path = save(bridge_edit(), tmp_path)
    timeline = tl.load_edit(path)
    chosen = tmp_path / "review" / "for_review.otio"
    chosen.parent.mkdir()
    assert tl.write_back(path, timeline, [placement()], out_path=chosen) == chosen
    assert tl.write_back(path, timeline, [placement()], out_path=chosen) == chosen   # asked for: overwritten
    before = sha256(path)
    with pytest.raises(TimelineError, match="that is the input edit"):
        tl.write_back(path, timeline, [placement()], out_path=path)
    assert sha256(path) == before


def test_export_to_edl(tmp_path):
    path = save(bridge_edit(), tmp_path)
    out = tl.write_back(path, tl.load_edit(path), [placement(folder=tmp_path / "out")],
                        mode="replace", export_format="edl")
    exported = tmp_path / "cut.shotfill.edl"
    assert out == tmp_path / "cut.shotfill.otio" and exported.is_file()
    clip = tl.load_edit(exported).tracks[0][1]
    assert isinstance(clip.media_reference, otio.schema.ImageSequenceReference)
    assert (clip.media_reference.start_frame, clip.media_reference.end_frame()) == (1001, 1012)


def test_export_to_edl_flattens_the_result_tracks(tmp_path):
    """The EDL writer takes one video track; track mode makes two: the EDL gets them flattened."""
    path = save(bridge_edit(), tmp_path)
    notes = []
    tl.write_back(path, tl.load_edit(path), [placement(folder=tmp_path / "out")], export_format="edl",
                  warnings=notes)
    assert [n for n in notes if "an EDL holds one video track" in n]
    exported = tl.load_edit(tmp_path / "cut.shotfill.edl")
    assert [c.name for c in exported.tracks[0] if isinstance(c, otio.schema.Clip)] == ["a", "V1.gap1", "b"]


def test_an_asked_for_export_that_fails_leaves_no_files(tmp_path, edl_writer_fails):
    path = save(bridge_edit(), tmp_path)
    with pytest.raises(TimelineError, match="cut.shotfill.edl: the cmx_3600 adapter could not write it: no room"):
        tl.write_back(path, tl.load_edit(path), [placement()], export_format="edl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.otio"]


def test_export_through_aaf_is_refused(tmp_path):
    path = save(bridge_edit(), tmp_path)
    with pytest.raises(TimelineError, match="the AAF adapter cannot write the generated image"):
        tl.write_back(path, tl.load_edit(path), [placement()], mode="replace", export_format="AAF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.otio"]


def test_export_to_fcp_xml_references_first_frames_and_says_so(tmp_path):
    path = save(bridge_edit(), tmp_path)
    notes = []
    tl.write_back(path, tl.load_edit(path), [placement(folder=tmp_path / "out")], mode="replace",
                  export_format="xml", warnings=notes)
    [note] = notes
    assert "holds no image sequences" in note and (tmp_path / "out" / "cut_V1.gap1.1001.exr").as_uri() in note
    exported = tl.load_edit(tmp_path / "cut.shotfill.xml")
    clip = next(c for c in exported.find_clips() if c.name == "V1.gap1")
    assert clip.media_reference.target_url == (tmp_path / "out" / "cut_V1.gap1.1001.exr").as_uri()
    assert clip.source_range.duration == rt(12)


def test_unknown_export_format_is_an_error(tmp_path):
    path = save(bridge_edit(), tmp_path)
    with pytest.raises(TimelineError, match="export format 'davinci': no such OpenTimelineIO adapter"):
        tl.write_back(path, tl.load_edit(path), [placement()], export_format="davinci")


# -- real edits --------------------------------------------------------------------------------

EDITORIAL = SHARED_DATA / "editorial"
EDITORIAL_FILES = sorted(
    str(p.relative_to(EDITORIAL)) for p in EDITORIAL.rglob("*") if p.is_file() and p.name != "SOURCES.md"
) if EDITORIAL.is_dir() else []

#: Files that must fail, and a piece of the message (see SOURCES.md). Files no
#: installed adapter reads (.fcpxml: the fcpx_xml adapter is not installed) are
#: expected to say so, found by suffix below.
KNOWN_FAILURES = {
    "otio/premiere_example.HEAD_Marker3.otio": "newer OpenTimelineIO (schema Marker.3)",
    "otio/screening_example.HEAD_Marker3.otio": "newer OpenTimelineIO (schema Marker.3)",
    "edl/dissolve_test_fail.edl": "the cmx_3600 adapter could not read it",
    "edl/pycmx_INS4_R1_DX_092117.edl": "Source and record duration don't match",
    "edl/pycmx_INS4_R2_DX_092117.edl": "Source and record duration don't match",
    "edl/pycmx_INS4_R4_DX_092117.edl": "Source and record duration don't match",
    "edl/pycmx_INS4_R5_DX_092117.edl": "Source and record duration don't match",
    "edl/pycmx_TEST.edl": "Source and record duration don't match",
    "edl/pycmx_test_25.edl": "the EDL's timecodes are not 24 fps",
    "fcp7_xml/premiere_example_filter.xml": "No top-level sequences found",
    "other/screening_example.ma": "the maya_sequencer adapter could not read it",
    # FCPX libraries holding two projects: the user must pick one
    "fcpxml/fcpx_example.fcpxml": "holds 2 edits ('OpenTimeline_Project', 'OpenTimeline_Project 1')",
    "fcpxml/fcpx_library.fcpxml": "holds 2 edits ('OpenTimeline_Project', 'OpenTimeline_Project 1')",
}


def _expected_failure(path: Path, name: str) -> str | None:
    if name in KNOWN_FAILURES:
        return KNOWN_FAILURES[name]
    try:
        otio.adapters.from_filepath(str(path))
    except otio.exceptions.NoKnownAdapterForExtensionError:
        return "no OpenTimelineIO adapter here reads"
    return None


@pytest.mark.parametrize("name", EDITORIAL_FILES)
def test_every_shared_edit_reads_or_fails_with_a_timeline_error(shared_data, name):
    path = shared_data / "editorial" / name
    expected = _expected_failure(path, name)
    if expected is None:
        targets = tl.find_targets(tl.load_edit(path), edit_path=path)
        json.dumps([t.to_dict() for t in targets])
        return
    with pytest.raises(TimelineError, match=re.escape(expected)) as failure:
        tl.find_targets(tl.load_edit(path), edit_path=path)
    assert str(failure.value).startswith(str(path))


def test_edl_25_read_at_25_still_fails_on_its_audio_wipe(shared_data):
    """SOURCES.md expects pycmx_test_25.edl to read at 25; the adapter then rejects event 007 (BL)."""
    path = shared_data / "editorial" / "edl" / "pycmx_test_25.edl"
    with pytest.raises(TimelineError, match="Source and record duration don't match.*for clip BL"):
        tl.load_edit(path, rate=25)


def test_gap_test_edl_has_two_bridges(shared_data):
    path = shared_data / "editorial" / "edl" / "gap_test.edl"
    targets = tl.find_targets(tl.load_edit(path), edit_path=path)
    bridges = [(t.id, t.frames, t.clip_a.clip_name, t.clip_b.clip_name) for t in targets]
    assert bridges == [("V1.gap1", 16, "shot1", "shot2"), ("V1.gap2", 38, "shot2", "shot3")]
    assert all(t.clip_a.media_kind == "missing" for t in targets)


def test_contrib_gaps_holds_only_gaps_so_no_bridges(shared_data):
    """contrib_gaps.otio has no clips at all (tracks of gaps): nothing to bridge between."""
    path = shared_data / "editorial" / "otio" / "contrib_gaps.otio"
    timeline = tl.load_edit(path)
    assert not list(timeline.find_clips())
    assert tl.find_targets(timeline, edit_path=path) == []


def test_real_image_sequence_numbering(shared_data):
    path = shared_data / "editorial" / "otio" / "contrib_image_sequence_example.otio"
    timeline = tl.load_edit(path)
    clip = timeline.tracks[0][0]
    media = tl.find_targets(timeline, edit_path=path)[0].clip_a
    assert media.source_first == clip.media_reference.frame_for_time(clip.source_range.start_time) == 1011
    assert (media.available_first, media.available_last) == (1001, 1050)
    assert media.path == str(path.parent / "sample_sequence" / "sample_sequence.####.exr")


def test_premiere_fcp_xml_and_its_otio_agree(shared_data):
    """The same Premiere cut as FCP 7 XML and as .otio gives the same targets."""
    xml = shared_data / "editorial" / "fcp7_xml" / "premiere_example.xml"
    otio_file = shared_data / "editorial" / "otio" / "premiere_example.otio"
    from_xml = [(t.id, t.record_range) for t in tl.find_targets(tl.load_edit(xml), edit_path=xml)]
    from_otio = [(t.id, t.record_range)
                 for t in tl.find_targets(tl.load_edit(otio_file), edit_path=otio_file)]
    assert from_xml == from_otio
    assert ("V2.gap2", TimeRange(rt(113, 30), rt(52, 30))) in from_xml
