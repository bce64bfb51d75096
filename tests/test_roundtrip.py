"""The edit round trip: handles used and placed, results that accumulate, edit numbering, media
references, export in the input's format.

Edits are built in code at 24 fps over real EXR plates (tiny, seeded); jobs run the flow engine.
Each test draws its edit. Real editorial files come from ``shared/data/editorial`` by path.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange
from shotfill import timeline as tl
from shotfill.errors import InputError, TimelineError
from shotfill.io.exr import read_exr, write_exr
from shotfill.job import JobSpec
from shotfill.worker import run_job

RATE = 24
H, W = 32, 48


def rt(frames, rate=RATE) -> RationalTime:
    return RationalTime(frames, rate)


def tr(start, duration, rate=RATE) -> TimeRange:
    return TimeRange(rt(start, rate), rt(duration, rate))


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def plate(folder: Path, name: str, frames, seed: int) -> None:
    """A texture panning 2 px a frame, half EXR ``folder/name.####.exr``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    texture = np.kron(rng.random((H // 4, (W + 2 * len(frames) + 8) // 4, 3)).astype(np.float32),
                      np.ones((4, 4, 1), np.float32))
    for i, f in enumerate(frames):
        write_exr(folder / f"{name}.{f:04d}.exr", texture[:, 2 * i:2 * i + W])


def clip(name, *, files=(1001, 24), used=(1009, 8), folder="plates"):
    """A clip over files ``files[0]..`` (``files[1]`` of them) using ``used[1]`` from file ``used[0]``::

        files  1001 ... 1008 | 1009 ... 1016 | 1017 ... 1024
               8 head handles    the edit      8 tail handles
    """
    first, count = files
    reference = otio.schema.ImageSequenceReference(
        target_url_base=folder + "/" if folder else "", name_prefix=f"{name}.", name_suffix=".exr",
        start_frame=first, frame_step=1, rate=RATE, frame_zero_padding=4, available_range=tr(0, count))
    return otio.schema.Clip(name=name, media_reference=reference, source_range=tr(used[0] - first, used[1]))


def gap(frames) -> otio.schema.Gap:
    return otio.schema.Gap(source_range=tr(0, frames))


def save_edit(folder: Path, items, name="cut.otio") -> Path:
    timeline = otio.schema.Timeline(name="cut")
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    track.extend(items)
    timeline.tracks.append(track)
    path = folder / name
    otio.adapters.write_to_file(timeline, str(path))
    return path


def with_plates(folder: Path, *names, files=(1001, 24)):
    for seed, name in enumerate(names, start=1):
        plate(folder / "plates", name, range(files[0], files[0] + files[1]), seed)


def job(edit_path: Path, target: str, out: Path, **extra) -> JobSpec:
    edit_spec = {"path": str(edit_path), "target": target, **extra.pop("edit", {})}
    return JobSpec.from_dict({"edit": edit_spec, "engine": "flow",
                              "output": {"dir": str(out), "preview": False, **extra.pop("output", {})},
                              **extra})


def layout(track) -> list:
    """``(kind, name, record first, frames, role)`` of each child of a track."""
    out = []
    for index, item in enumerate(track):
        record = track.range_of_child_at_index(index)
        ours = item.metadata.get("shotfill") or {}
        out.append((type(item).__name__, item.name, record.start_time.to_frames(), record.duration.to_frames(),
                    ours.get("role")))
    return out


def media_frames(item) -> tuple[int, int]:
    """First and last file number a clip shows."""
    reference, used = item.media_reference, item.trimmed_range()
    return (reference.frame_for_time(used.start_time),
            reference.frame_for_time(used.end_time_exclusive() - rt(1, used.duration.rate)))


def result_tracks(timeline):
    return [t for t in timeline.tracks if tl.is_result_track(t)]


# -- handles: used and placed ---------------------------------------------------------------


def test_a_tail_extension_plays_the_handles_then_the_generated_frames(tmp_path):
    """12 frames after a clip with 8 tail handles: 8 real, 4 generated, no hole::

        shotfill V1.clip1.tail          [ a 1017-1024 ][ gen 1001-1004 ]
        V1                  [ a 1009-1016 ]
                            0               8              16              20
    """
    with_plates(tmp_path, "a")
    edit = save_edit(tmp_path, [clip("a")])
    res = run_job(job(edit, "V1.clip1.tail", tmp_path / "out", frames=12))
    assert res.frames == [1001, 1002, 1003, 1004]                 # the edit rule: from 1001
    assert res.placement["handles_before"] == 8 and res.placement["handles_after"] == 0
    assert any("8 handle frames" in w for w in res.warnings)

    new = tl.load_edit(res.new_edit)
    [track] = result_tracks(new)
    assert track.name == "shotfill V1.clip1.tail"
    assert dict(track.metadata["shotfill"]) == {"results": True, "target_id": "V1.clip1.tail"}
    assert layout(track) == [("Gap", "", 0, 8, None), ("Clip", "a", 8, 8, "handles"),
                             ("Clip", "V1.clip1.tail", 16, 4, "generated")]
    handles, generated = track[1], track[2]
    assert media_frames(handles) == (1017, 1024)
    assert handles.media_reference.target_url_base == "plates/"   # the original media, as the input names it
    assert media_frames(generated) == (1001, 1004)
    assert generated.metadata["shotfill"]["target_id"] == "V1.clip1.tail"
    for f in (1001, 1004):
        read_exr(tmp_path / "out" / f"cut_V1_clip1_tail.{f:04d}.exr")


def test_a_head_extension_ends_with_the_handles_right_before_the_clip(tmp_path):
    """12 frames before clip b (8 head handles), the shot at record 20::

        shotfill V1.clip2.head          [ gen 1001-1004 ][ b 1001-1008 ]
        V1         [ a: 8 ][ gap: 12                    ][ b 1009-1016 ]
                   0       8             8                12            20
    """
    with_plates(tmp_path, "a", "b")
    edit = save_edit(tmp_path, [clip("a"), gap(12), clip("b")])
    res = run_job(job(edit, "V1.clip2.head", tmp_path / "out", frames=12))
    assert res.frames == [1001, 1002, 1003, 1004]
    assert (res.placement["handles_before"], res.placement["handles_after"]) == (0, 8)
    new = tl.load_edit(res.new_edit)       # kept: a track outlives its timeline only while it is held
    [track] = result_tracks(new)
    assert layout(track) == [("Gap", "", 0, 8, None), ("Clip", "V1.clip2.head", 8, 4, "generated"),
                             ("Clip", "b", 12, 8, "handles")]
    assert media_frames(track[2]) == (1001, 1008)


def test_an_extension_within_the_handles_is_refused(tmp_path):
    with_plates(tmp_path, "a")
    edit = save_edit(tmp_path, [clip("a")])
    with pytest.raises(InputError, match="already holds 8 real frames after the out point, enough for 8"):
        run_job(job(edit, "V1.clip1.tail", tmp_path / "out", frames=8))


def test_the_start_frame_numbers_an_edit_extension(tmp_path):
    with_plates(tmp_path, "a")
    edit = save_edit(tmp_path, [clip("a")])
    res = run_job(job(edit, "V1.clip1.tail", tmp_path / "out", frames=10,
                      output={"start_frame": 0}, edit={"write_timeline": False}))
    assert res.frames == [0, 1]
    assert (tmp_path / "out" / "cut_V1_clip1_tail.0000.exr").is_file()


def test_a_bridge_uses_both_handles_and_generates_the_rest(tmp_path):
    """A 20-frame gap between clips with 8 + 8 handles: 4 generated; replace mode keeps the length::

        V1  [ a ][ a 1017-1024 ][ gen 1001-1004 ][ b 1001-1008 ][ b ]
            0    8              16               20             28   36
    """
    with_plates(tmp_path, "a", "b")
    edit = save_edit(tmp_path, [clip("a"), gap(20), clip("b")])
    target = tl.find_targets(tl.load_edit(edit), edit_path=edit)[2]
    assert target.id == "V1.gap1"
    assert target.to_dict()["handle_frames"] == {"a": 8, "b": 8}
    assert target.to_dict()["generated_frames"] == 4

    res = run_job(job(edit, "V1.gap1", tmp_path / "out", edit={"write_mode": "replace"}))
    assert res.frames == [1001, 1002, 1003, 1004]
    assert (res.placement["handles_before"], res.placement["handles_after"]) == (8, 8)
    assert res.placement["record_start"]["value"] == 16
    # the known frames the engine saw end at A's last handle frame used and start at B's first
    summary = res.placement["metadata"]["frame_plan"]
    assert summary.startswith("bridge K") and " G4 " in summary
    new = tl.load_edit(res.new_edit)
    track = new.tracks[0]
    assert layout(track) == [("Clip", "a", 0, 8, None), ("Clip", "a", 8, 8, "handles"),
                             ("Clip", "V1.gap1", 16, 4, "generated"), ("Clip", "b", 20, 8, "handles"),
                             ("Clip", "b", 28, 8, None)]
    assert media_frames(track[1]) == (1017, 1024) and media_frames(track[3]) == (1001, 1008)
    assert track.duration() == rt(36)


def test_a_bridge_in_track_mode_places_the_handles_over_the_gap(tmp_path):
    with_plates(tmp_path, "a", "b")
    edit = save_edit(tmp_path, [clip("a"), gap(20), clip("b")])
    res = run_job(job(edit, "V1.gap1", tmp_path / "out"))
    new = tl.load_edit(res.new_edit)
    [track] = result_tracks(new)
    assert track.name == "shotfill V1.gap1"
    assert layout(track) == [("Gap", "", 0, 8, None), ("Clip", "a", 8, 8, "handles"),
                             ("Clip", "V1.gap1", 16, 4, "generated"), ("Clip", "b", 20, 8, "handles")]
    assert new.tracks[0].range_of_child_at_index(1) == tr(8, 20)   # V1 itself unchanged


def test_a_bridge_the_handles_cover_is_refused_and_says_how(tmp_path):
    """A 12-frame gap between clips with 8 + 8 handles: 6 + 6 real frames fill it."""
    with_plates(tmp_path, "a", "b")
    edit = save_edit(tmp_path, [clip("a"), gap(12), clip("b")])
    target = tl.find_targets(tl.load_edit(edit), edit_path=edit)[2]
    assert (target.handle_frames, target.generated_frames) == ({"a": 6, "b": 6}, 0)
    with pytest.raises(InputError, match=r"handles cover the gap: 6 frames of 'a' .* 6 of 'b' .*"
                                         r"all 12 frames.*trim the clips out over the gap") as failure:
        run_job(job(edit, "V1.gap1", tmp_path / "out"))
    assert failure.value.exit_code == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("gap_frames, a, b, expected", [
    (20, 8, 8, (8, 8)), (12, 8, 8, (6, 6)), (13, 10, 10, (7, 6)), (12, 2, 30, (2, 10)),
    (12, 0, 5, (0, 5)), (12, 30, 0, (12, 0)), (12, None, -3, (0, 0)), (1, 4, 4, (1, 0)),
])
def test_bridge_handles_split(gap_frames, a, b, expected):
    assert tl.bridge_handles(gap_frames, a, b) == expected


def test_a_bridge_without_handles_generates_the_whole_gap(tmp_path):
    with_plates(tmp_path, "a", "b", files=(1009, 8))
    edit = save_edit(tmp_path, [clip("a", files=(1009, 8)), gap(5), clip("b", files=(1009, 8))])
    res = run_job(job(edit, "V1.gap1", tmp_path / "out", edit={"write_mode": "replace"}))
    assert res.frames == [1001, 1002, 1003, 1004, 1005]
    assert (res.placement["handles_before"], res.placement["handles_after"]) == (0, 0)
    new = tl.load_edit(res.new_edit)
    assert [c.name for c in new.tracks[0]] == ["a", "V1.gap1", "b"]


def test_extension_targets_say_their_handles(tmp_path):
    edit = save_edit(tmp_path, [clip("a", used=(1005, 8))])
    found = {t.id: t.to_dict() for t in tl.find_targets(tl.load_edit(edit), edit_path=edit)}
    assert found["V1.clip1.head"]["handle_frames"] == {"available": 4}
    assert found["V1.clip1.tail"]["handle_frames"] == {"available": 12}
    assert found["V1.clip1.tail"]["generated_frames"] is None


# -- results accumulate -----------------------------------------------------------------------


def test_two_targets_run_one_after_the_other_end_in_one_version(tmp_path):
    with_plates(tmp_path, "a", "b")
    edit = save_edit(tmp_path, [clip("a"), gap(20), clip("b")])
    before = sha256(edit)
    first = run_job(job(edit, "V1.gap1", tmp_path / "out1"))
    first_hash = sha256(first.new_edit)
    second = run_job(job(edit, "V1.clip2.tail", tmp_path / "out2", frames=10))
    assert Path(first.new_edit).name == "cut.shotfill.otio"
    assert Path(second.new_edit).name == "cut.shotfill.v2.otio"
    assert sha256(edit) == before and sha256(first.new_edit) == first_hash

    new = tl.load_edit(second.new_edit)
    assert [t.name for t in result_tracks(new)] == ["shotfill V1.gap1", "shotfill V1.clip2.tail"]
    ours = new.metadata["shotfill"]
    assert ours["based_on"] == "cut.otio" and ours["based_on_sha256"] == before
    assert list(ours["versions"]) == ["cut.shotfill.otio", "cut.shotfill.v2.otio"]
    # planning the published edit lists the input's targets, no result clip
    assert [t.id for t in tl.find_targets(new, edit_path=second.new_edit)] == \
        [t.id for t in tl.find_targets(tl.load_edit(edit), edit_path=edit)]


def test_a_new_take_replaces_the_targets_placement(tmp_path):
    with_plates(tmp_path, "a", "b")
    edit = save_edit(tmp_path, [clip("a"), gap(20), clip("b")])
    run_job(job(edit, "V1.gap1", tmp_path / "take1", seed=1))
    take2 = run_job(job(edit, "V1.gap1", tmp_path / "take2", seed=2))
    new = tl.load_edit(take2.new_edit)
    [track] = result_tracks(new)
    [generated] = [c for c in track if (c.metadata.get("shotfill") or {}).get("role") == "generated"]
    assert generated.metadata["shotfill"]["seed"] == 2
    assert "take2" in generated.media_reference.target_url_base
    assert len(new.tracks) == 2                                  # V1 and the target's one track


def test_ids_are_the_same_on_the_input_and_on_published_versions(tmp_path):
    """A version in replace mode (gap1 replaced by three clips) and one in track mode give the input's ids."""
    with_plates(tmp_path, "a", "b", "c")
    edit = save_edit(tmp_path, [clip("a"), gap(20), clip("b"), gap(20), clip("c")])
    ids = [t.id for t in tl.find_targets(tl.load_edit(edit), edit_path=edit)]
    replaced = run_job(job(edit, "V1.gap1", tmp_path / "o1", edit={"write_mode": "replace"}))
    assert [t.id for t in tl.find_targets(tl.load_edit(replaced.new_edit), edit_path=replaced.new_edit)] == ids
    tracked = run_job(job(edit, "V1.gap2", tmp_path / "o2"))
    version = tl.load_edit(tracked.new_edit)
    assert [t.id for t in tl.find_targets(version, edit_path=tracked.new_edit)] == ids
    # both results are on it: gap1 replaced on V1, gap2 on its own track
    assert [c.name for c in version.tracks[0]][1:4] == ["a", "V1.gap1", "b"]
    assert [t.name for t in result_tracks(version)] == ["shotfill V1.gap2"]
    # a new take of the replaced gap, in track mode, puts the gap back and adds its track
    again = run_job(job(edit, "V1.gap1", tmp_path / "o3", seed=5))
    latest = tl.load_edit(again.new_edit)
    assert [type(c).__name__ for c in latest.tracks[0]] == ["Clip", "Gap", "Clip", "Gap", "Clip"]
    assert sorted(t.name for t in result_tracks(latest)) == ["shotfill V1.gap1", "shotfill V1.gap2"]
    assert [t.id for t in tl.find_targets(latest, edit_path=again.new_edit)] == ids


# -- versions: what a new version builds on ------------------------------------------------------


def placement(target_id="V1.gap1", *, folder, frames=20, record_start=8, handles=(0, 0), seed=0):
    """A placement of ``frames`` generated frames (files 1001...) in ``folder``, no engine run."""
    return tl.Placement(
        target_id=target_id, directory=folder, name_prefix="gen.", name_suffix=".exr", frame_zero_padding=4,
        start_frame=1001, end_frame=1000 + frames, rate=RATE, record_start=rt(record_start),
        metadata={"seed": seed}, handles_before=handles[0], handles_after=handles[1])


def bridge_cut(folder: Path, name="cut.otio", *, media_folder="plates") -> Path:
    """``V1  [ a: 8 ][ gap: 20 ][ b: 8 ]``, 8 handles each side of each clip."""
    return save_edit(folder, [clip("a", folder=media_folder), gap(20), clip("b", folder=media_folder)], name)


def test_an_input_that_changed_starts_again_and_says_so(tmp_path):
    edit = bridge_cut(tmp_path)
    first = tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "o1")])
    bridge_cut(tmp_path)                                         # the editor saves the cut again...
    timeline = tl.load_edit(edit)
    timeline.tracks[0][0].name = "a2"                            # ...changed
    otio.adapters.write_to_file(timeline, str(edit))
    notes = []
    second = tl.write_back(edit, tl.load_edit(edit), [placement("V1.clip1.tail", folder=tmp_path / "o2",
                                                                 frames=4, record_start=8)], warnings=notes)
    assert second.name == "cut.shotfill.v2.otio"
    assert notes == [("cut.otio has changed since cut.shotfill.otio was made from it: the new version starts "
                      "again from cut.otio and holds only these results")]
    version = tl.load_edit(second)
    assert [t.name for t in result_tracks(version)] == ["shotfill V1.clip1.tail"]
    assert version.tracks[0][0].name == "a2"
    assert first.is_file()


def test_an_input_that_is_a_version_builds_the_next_version_of_its_edit(tmp_path):
    edit = bridge_cut(tmp_path)
    v1 = tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "o1")])
    v2 = tl.write_back(edit, tl.load_edit(edit), [placement("V1.clip2.tail", folder=tmp_path / "o2",
                                                            frames=4, record_start=36)])
    # working from v1 (an older version): the newest, v2, holds every result so far
    v3 = tl.write_back(v1, tl.load_edit(v1), [placement("V1.clip1.head", folder=tmp_path / "o3",
                                                        frames=4, record_start=0)])
    assert (v1.name, v2.name, v3.name) == ("cut.shotfill.otio", "cut.shotfill.v2.otio", "cut.shotfill.v3.otio")
    version = tl.load_edit(v3)
    assert [t.name for t in result_tracks(version)] == [
        "shotfill V1.gap1", "shotfill V1.clip2.tail", "shotfill V1.clip1.head"]
    assert version.metadata["shotfill"]["based_on"] == "cut.otio"
    assert list(version.metadata["shotfill"]["versions"]) == [v1.name, v2.name, v3.name]


def test_a_version_being_written_is_skipped(tmp_path):
    """A concurrent writer has claimed v2 (empty so far): this one writes v3 from v1."""
    edit = bridge_cut(tmp_path)
    tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "o1")])
    (tmp_path / "cut.shotfill.v2.otio").touch()
    v3 = tl.write_back(edit, tl.load_edit(edit), [placement("V1.clip2.tail", folder=tmp_path / "o2",
                                                            frames=4, record_start=36)])
    assert v3.name == "cut.shotfill.v3.otio"
    assert (tmp_path / "cut.shotfill.v2.otio").stat().st_size == 0
    assert len(result_tracks(tl.load_edit(v3))) == 2


def test_versions_of_another_input_beside_it_are_not_built_on(tmp_path):
    """``cut.shotfill.otio`` written by hand (no shotfill metadata) is skipped, not built on."""
    edit = bridge_cut(tmp_path)
    foreign = tl.load_edit(edit)
    foreign.tracks[0][0].name = "someone else's"
    otio.adapters.write_to_file(foreign, str(tmp_path / "cut.shotfill.otio"))
    out = tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "o1")])
    assert out.name == "cut.shotfill.v2.otio"
    assert tl.load_edit(out).tracks[0][0].name == "a"


def test_an_old_style_result_track_is_recognised_and_its_take_replaced(tmp_path):
    """A version written before result tracks carried metadata: a ``shotfill`` track of result clips."""
    edit = bridge_cut(tmp_path)
    timeline = tl.load_edit(edit)
    old = otio.schema.Track(name="shotfill", kind=otio.schema.TrackKind.Video)
    old.extend([gap(8), otio.schema.Clip(name="V1.gap1", source_range=tr(1001, 20),
                                         metadata={"shotfill": {"target_id": "V1.gap1"}})])
    timeline.tracks.append(old)
    path = tmp_path / "old.otio"
    otio.adapters.write_to_file(timeline, str(path))
    assert [t.id for t in tl.find_targets(tl.load_edit(path), edit_path=path)] == \
        [t.id for t in tl.find_targets(tl.load_edit(edit), edit_path=edit)]
    out = tl.write_back(path, tl.load_edit(path), [placement(folder=tmp_path / "o1")])
    version = tl.load_edit(out)
    assert [t.name for t in version.tracks] == ["V1", "shotfill V1.gap1"]


# -- handles on the edit: checked ---------------------------------------------------------------


def test_more_handle_frames_than_the_media_holds_is_an_error(tmp_path):
    edit = bridge_cut(tmp_path)
    with pytest.raises(TimelineError, match="'V1.gap1': it places 9 handle frames after the out point of the "
                                            "clip before the gap; the media holds 8"):
        tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "o", frames=3, record_start=17,
                                                           handles=(9, 8))])


def test_handle_frames_must_meet_their_clip(tmp_path):
    edit = bridge_cut(tmp_path)
    with pytest.raises(TimelineError, match="handle frames would start at frame 9, not at frame 8"):
        tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "o", frames=4, record_start=17,
                                                           handles=(8, 0))])
    with pytest.raises(TimelineError, match="a extend_backward has no handle frames before its generated"):
        tl.write_back(edit, tl.load_edit(edit), [placement("V1.clip1.head", folder=tmp_path / "o", frames=4,
                                                           record_start=4, handles=(2, 0))])


def test_replace_mode_needs_handles_and_generated_frames_to_fill_the_gap(tmp_path):
    edit = bridge_cut(tmp_path)
    with pytest.raises(TimelineError, match="it holds 3 frames and 8 handle frames, the gap 20"):
        tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "o", frames=3, record_start=16,
                                                           handles=(8, 0))], mode="replace")


# -- media references --------------------------------------------------------------------------


def test_new_clips_are_relative_where_the_edit_is(tmp_path):
    edit = bridge_cut(tmp_path)
    out = tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "renders" / "gap1")])
    version = tl.load_edit(out)
    generated = result_tracks(version)[0][1]
    assert generated.media_reference.target_url_base == "renders/gap1/"
    media = tl.find_targets(version, edit_path=out)[0].clip_a
    assert media.path == str(tmp_path / "plates" / "a.####.exr")


def test_new_clips_are_absolute_urls_where_the_edit_is(tmp_path):
    edit = bridge_cut(tmp_path, media_folder=(tmp_path / "plates").as_uri())
    out = tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "renders")])
    generated = result_tracks(tl.load_edit(out))[0][1]
    assert generated.media_reference.target_url_base == (tmp_path / "renders").as_uri() + "/"


def test_a_version_written_elsewhere_keeps_relative_media_working(tmp_path):
    edit = bridge_cut(tmp_path)
    chosen = tmp_path / "review" / "for_review.otio"
    chosen.parent.mkdir()
    out = tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "renders", handles=(0, 0))],
                        out_path=chosen)
    version = tl.load_edit(out)
    assert version.tracks[0][0].media_reference.target_url_base == "../plates/"
    assert result_tracks(version)[0][1].media_reference.target_url_base == "../renders/"
    assert version.metadata["shotfill"]["based_on"] == "../cut.otio"
    paths = {t.clip_a.path for t in tl.find_targets(version, edit_path=out) if t.clip_a is not None}
    assert paths == {str(tmp_path / "plates" / "a.####.exr"), str(tmp_path / "plates" / "b.####.exr")}


# -- export in the input's format ---------------------------------------------------------------

EDL = """TITLE: cut
FCM: NON-DROP FRAME

001  A        V     C        01:00:00:08 01:00:00:16 00:00:00:00 00:00:00:08
* FROM CLIP NAME: a
002  B        V     C        02:00:00:08 02:00:00:16 00:00:01:04 00:00:01:12
* FROM CLIP NAME: b
"""


def test_an_edl_input_gets_an_edl_version_too(tmp_path):
    """``V1  [ a: 8 ][ gap: 20 ][ b: 8 ]`` as an EDL; the result flattened onto its one track."""
    edit = tmp_path / "cut.edl"
    edit.write_text(EDL)
    timeline = tl.load_edit(edit)
    assert [t.id for t in tl.find_targets(timeline, edit_path=edit)] == ["V1.gap1"]  # offline: no extensions
    notes = []
    out = tl.write_back(edit, timeline, [placement(folder=tmp_path / "renders")], warnings=notes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.edl", "cut.shotfill.edl", "cut.shotfill.otio"]
    assert out.name == "cut.shotfill.otio"
    assert [n for n in notes if "an EDL holds one video track" in n]
    exported = tl.load_edit(tmp_path / "cut.shotfill.edl")
    clips = [(c.name, exported.tracks[0].range_of_child(c)) for c in exported.tracks[0]
             if isinstance(c, otio.schema.Clip)]
    assert clips == [("a", tr(0, 8)), ("V1.gap1", tr(8, 20)), ("b", tr(28, 8))]
    [generated] = [c for c in exported.find_clips() if c.name == "V1.gap1"]
    assert isinstance(generated.media_reference, otio.schema.ImageSequenceReference)
    assert (generated.media_reference.start_frame, generated.media_reference.end_frame()) == (1001, 1020)


def test_an_edl_input_in_replace_mode_exports_without_a_note(tmp_path):
    edit = tmp_path / "cut.edl"
    edit.write_text(EDL)
    notes = []
    tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "renders")], mode="replace",
                  warnings=notes)
    assert notes == [] and (tmp_path / "cut.shotfill.edl").is_file()


def test_an_export_the_adapter_cannot_write_leaves_the_otio_and_says_why(tmp_path, edl_writer_fails):
    edit = tmp_path / "cut.edl"
    edit.write_text(EDL)
    notes = []
    out = tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "r")], mode="replace",
                        warnings=notes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.edl", "cut.shotfill.otio"] and out.is_file()
    assert notes == [(f"{tmp_path / 'cut.shotfill.edl'}: the cmx_3600 adapter could not write it: no room on "
                      "the tape; only cut.shotfill.otio is written")]


def test_warnings_without_a_list_are_python_warnings(tmp_path):
    edit = tmp_path / "cut.edl"
    edit.write_text(EDL)
    with pytest.warns(UserWarning, match="an EDL holds one video track"):
        tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "r")])


def test_publish_prints_the_warnings_on_stderr_and_the_new_edit_last(tmp_path, capsys):
    import json

    from shotfill.cli.root import main

    edit = tmp_path / "cut.edl"
    edit.write_text(EDL)
    p = placement(folder=tmp_path / "r")
    result = {"job_id": "j1", "placement": {
        "target_id": p.target_id, "directory": str(p.directory), "name_prefix": p.name_prefix,
        "name_suffix": p.name_suffix, "frame_zero_padding": 4, "start_frame": 1001, "end_frame": 1020,
        "rate": RATE, "record_start": {"value": 8, "rate": RATE}, "metadata": {"job_id": "j1"}}}
    (tmp_path / "r.result.json").write_text(json.dumps(result))
    assert main(["publish", str(edit), str(tmp_path / "r.result.json")]) == 0
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == str(tmp_path / "cut.shotfill.otio")
    assert "warning: cut.shotfill.edl: an EDL holds one video track" in err


@pytest.mark.parametrize("name, target, suffix, note", [
    ("edl/gap_test.edl", "V1.gap1", ".edl", "an EDL holds one video track"),
    ("fcp7_xml/premiere_example.xml", "V2.gap2", ".xml", "FCP 7 XML (Premiere) holds no image sequences"),
    ("fcpxml/fcpx_project.fcpxml", "V2.gap2", ".fcpxml", "FCPXML holds no image sequences"),
])
def test_real_edits_round_trip_in_their_own_format(shared_data, tmp_path, name, target, suffix, note):
    """A real edit (copied into tmp_path, so its version lands there) with one bridge placed:
    the export in its own format reads back with the result where the gap was, nothing else moved."""
    source = shared_data / "editorial" / name
    edit = tmp_path / source.name
    edit.write_bytes(source.read_bytes())
    timeline = tl.load_edit(edit)
    bridge = {t.id: t for t in tl.find_targets(timeline, edit_path=edit)}[target]
    p = tl.Placement(target_id=target, directory=tmp_path / "renders", name_prefix="gen.", name_suffix=".exr",
                     frame_zero_padding=4, start_frame=1001, end_frame=1000 + bridge.frames, rate=bridge.rate,
                     record_start=bridge.record_range.start_time)
    notes = []
    out = tl.write_back(edit, timeline, [p], warnings=notes)
    exported = out.with_suffix(suffix)
    assert exported.is_file() and [n for n in notes if note in n]
    back = tl.load_edit(exported)
    [generated] = [c for c in back.find_clips() if c.name == target]
    assert generated.trimmed_range().duration.to_frames() == bridge.frames
    placed = generated.parent().range_of_child(generated)
    assert placed.start_time.to_frames(bridge.rate) == bridge.record_range.start_time.to_frames(bridge.rate)
    # every clip of the input plays where it did
    def clip_ranges(t):
        return sorted((c.name, c.parent().range_of_child(c).start_time.to_frames(bridge.rate))
                      for c in t.find_clips() if c.name != target)
    if suffix != ".edl":                   # (the EDL flattens tracks: compare the .otio instead)
        assert clip_ranges(back) == clip_ranges(timeline)
    assert clip_ranges(tl.load_edit(out)) == clip_ranges(timeline)


def test_a_new_take_in_replace_mode_replaces_the_earlier_one_in_place(tmp_path):
    """Take 1 and take 2 of gap1, both in place of the gap: V1 holds take 2 only, as long as before."""
    edit = bridge_cut(tmp_path)
    one = tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "take1", frames=4, record_start=16,
                                                             handles=(8, 8), seed=1)], mode="replace")
    two = tl.write_back(edit, tl.load_edit(edit), [placement(folder=tmp_path / "take2", frames=4, record_start=16,
                                                             handles=(8, 8), seed=2)], mode="replace")
    assert (one.name, two.name) == ("cut.shotfill.otio", "cut.shotfill.v2.otio")
    version = tl.load_edit(two)
    track = version.tracks[0]
    assert layout(track) == [("Clip", "a", 0, 8, None), ("Clip", "a", 8, 8, "handles"),
                             ("Clip", "V1.gap1", 16, 4, "generated"), ("Clip", "b", 20, 8, "handles"),
                             ("Clip", "b", 28, 8, None)]
    assert track[2].metadata["shotfill"]["seed"] == 2
    assert len(version.tracks) == 1 and track.duration() == rt(36)
    bridge = {t.id: t for t in tl.find_targets(version, edit_path=two)}["V1.gap1"]
    assert bridge.record_range == tr(8, 20) and bridge.handle_frames == {"a": 8, "b": 8}


def test_the_bridge_plan_sees_the_handles_as_known_frames(tmp_path):
    """The engine's context of A ends at A's last handle frame used (1024), B's starts at B's first (1001)."""
    from shotfill.plan import Role
    from shotfill.worker import resolve

    with_plates(tmp_path, "a", "b")
    edit = save_edit(tmp_path, [clip("a"), gap(20), clip("b")])
    resolved = resolve(job(edit, "V1.gap1", tmp_path / "out"))
    known = [(f.source, f.source_frame) for f in resolved.plan.frames if f.role is Role.KNOWN]
    a_frames = [n for s, n in known if s == "a"]
    b_frames = [n for s, n in known if s == "b"]
    assert a_frames[-1] == 1024 and b_frames[0] == 1001
    assert [f.output_frame for f in resolved.plan.frames if f.role is Role.GENERATE] == [1001, 1002, 1003, 1004]
    assert resolved.handles == (8, 8)
    assert resolved.record_start == rt(16)


def test_a_relinked_edit_publishes_its_handles(tmp_path):
    """The edit names a folder that is not there; the job and its publish relink by --search-path."""
    with_plates(tmp_path / "found", "a", "b")
    edit = save_edit(tmp_path, [clip("a", folder="gone"), gap(20), clip("b", folder="gone")])
    search = [str(tmp_path / "found")]
    res = run_job(job(edit, "V1.gap1", tmp_path / "out", edit={"search_paths": search}))
    assert (res.placement["handles_before"], res.placement["handles_after"]) == (8, 8)
    new = tl.load_edit(res.new_edit)
    [track] = result_tracks(new)
    assert [c.name for c in track.find_clips()] == ["a", "V1.gap1", "b"]
    handles = track.find_clips()[0]
    assert tl.find_targets(new, edit_path=res.new_edit)[0].clip_a.exists     # the version holds the relinked media
    assert media_frames(handles) == (1017, 1024)
