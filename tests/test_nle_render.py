"""The write-back proved in a real editing engine: MLT (``melt``, the engine of Kdenlive and Shotcut).

An edit of three procedural shots with handles and a gap; shotfill's ``flow`` engine extends shot
B's tail and bridges the gap, each job publishing a new version of the edit. melt renders the
input edit and every published edit frame by frame (through :mod:`nle.mlt`), and the tests check:

(a) every frame of a clip shotfill placed (``metadata["shotfill"]``) shows the file that clip names
    (the same file rendered alone by melt, bit for bit; that file within one 8-bit level of the
    EXR decoded), every generated frame of each job is shown somewhere, and a placement leaves
    no hole (no black frame from where its target starts to its last frame);
(b) nothing else moved: every other frame of a published edit is the input edit's frame.

The edit (24 fps, 96x54; media numbered from 1001, relative paths ``media/``)::

    media A  1001 [== clip A: 1001-1016 ==] 1020                        4 tail handles
    media B                     1001 [ clip B: 1004-1017 ] 1020         3 head, 3 tail handles
    media C                                          1001 [ clip C: 1001-1010 ]
    V1            [ A, 16  ][ gap, 10 ][ B, 14        ][ C, 10 ]
    record        0         16         26             40       50

Strips of the frames around each placement (before, every placed frame, after) are written
beside the renders, ``<pytest tmp>/melt*/published<N>_<target>.png``, to look at.

The converter's own tests (frame numbers from OpenTimelineIO, what it refuses) run without melt;
the render tests skip with a reason when melt is not installed, or fail when
``SHOTFILL_REQUIRE_MELT`` is set (for CI, so that a missing install cannot pass unseen).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from nle import mlt
from shotfill.io.contact import write_png
from shotfill.io.exr import write_exr
from shotfill.job import JobSpec
from shotfill.synthetic.render import CameraMove, ShotSpec, render_frame
from shotfill.worker import run_job

W, H, RATE = 96, 54, 24
FIRST = 1001
#: (name, seed, files on disk, first and last frame the clip plays)
SHOTS = (("shotA", 1, 20, (1001, 1016)), ("shotB", 2, 20, (1004, 1017)), ("shotC", 3, 10, (1001, 1010)))
GAP = 10
TAIL = ("V1.clip2.tail", 6)     # the extension: target and --frames
BRIDGE = "V1.gap1"


def _require_melt() -> None:
    if mlt.MELT is None:
        if os.environ.get("SHOTFILL_REQUIRE_MELT"):
            pytest.fail("SHOTFILL_REQUIRE_MELT is set but melt is not installed (apt-get install -y melt)")
        pytest.skip("melt (MLT, the engine of Kdenlive and Shotcut) is not installed: apt-get install -y melt")


# -- the edit and the jobs ----------------------------------------------------------------------


def _write_shot(folder: Path, name: str, seed: int, count: int) -> None:
    """A procedural shot (:mod:`shotfill.synthetic`) moving fast enough that neighbouring frames differ."""
    camera = CameraMove.ORBIT if name == "shotB" else CameraMove.PAN
    spec = ShotSpec(seed=seed, width=W, height=H, frames=count, camera=camera, speed=0.02)
    for i in range(count):
        write_exr(folder / f"{name}.{FIRST + i:04d}.exr", render_frame(spec, i).frame)


def _sequence(name: str, count: int) -> otio.schema.ImageSequenceReference:
    return otio.schema.ImageSequenceReference(
        target_url_base="media/", name_prefix=f"{name}.", name_suffix=".exr", start_frame=FIRST, frame_step=1,
        rate=RATE, frame_zero_padding=4,
        available_range=TimeRange(RationalTime(FIRST, RATE), RationalTime(count, RATE)))


def _make_edit(root: Path) -> Path:
    (root / "media").mkdir(parents=True)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for name, seed, count, (first, last) in SHOTS:
        _write_shot(root / "media", name, seed, count)
        track.append(otio.schema.Clip(
            name=name, media_reference=_sequence(name, count),
            source_range=TimeRange(RationalTime(first, RATE), RationalTime(last - first + 1, RATE))))
        if name == "shotA":
            track.append(otio.schema.Gap(source_range=TimeRange(RationalTime(0, RATE), RationalTime(GAP, RATE))))
    timeline = otio.schema.Timeline(name="nle proof", global_start_time=RationalTime(3600 * RATE, RATE))
    timeline.tracks.append(track)
    edit = root / "cut.otio"
    otio.adapters.write_to_file(timeline, str(edit))
    return edit


@dataclasses.dataclass
class Jobs:
    edit: Path
    results: dict            # target id -> JobResult

    @property
    def published(self) -> list[Path]:
        """Every edit the jobs published, oldest first (one per job, or fewer if they accumulate)."""
        paths = [Path(r.new_edit) for r in self.results.values()]
        return list(dict.fromkeys(paths))


@pytest.fixture(scope="module")
def jobs(tmp_path_factory) -> Jobs:
    _require_melt()
    root = tmp_path_factory.mktemp("nle")
    edit = _make_edit(root)
    results = {}
    for target, frames in (TAIL, (BRIDGE, None)):
        spec = {"edit": {"path": str(edit), "target": target}, "engine": "flow",
                "output": {"dir": str(root / "out" / target.replace(".", "_")), "preview": False}}
        if frames is not None:
            spec["frames"] = frames
        result = run_job(JobSpec.from_dict(spec))
        assert result.new_edit, f"{target}: the job published no edit"
        results[target] = result
    return Jobs(edit, results)


# -- the renders ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Render:
    path: Path
    timeline: otio.schema.Timeline
    shown: list[mlt.Shown]
    frames: list[np.ndarray]

    def placed(self) -> list[tuple[otio.schema.Clip, range]]:
        """Every clip shotfill placed, with its record frames."""
        out = []
        for track in self.timeline.video_tracks():
            for index, item in enumerate(track):
                if isinstance(item, otio.schema.Clip) and "shotfill" in item.metadata:
                    start = round(track.range_of_child_at_index(index).start_time.rescaled_to(RATE).value)
                    out.append((item, range(start, start + round(item.duration().rescaled_to(RATE).value))))
        return out


@dataclasses.dataclass
class Renders:
    input: Render
    published: list[Render]
    alone: dict              # media file -> the frame melt renders from it alone
    folder: Path


@pytest.fixture(scope="module")
def renders(jobs, tmp_path_factory) -> Renders:
    _require_melt()
    folder = tmp_path_factory.mktemp("melt")
    done, alone = set(), {}

    def render(path: Path, name: str) -> Render:
        timeline = otio.adapters.read_from_file(str(path))
        shown = mlt.shown(timeline, path)
        frames = mlt.render(mlt.edit_to_mlt(timeline, path, width=W, height=H), folder / name, frames=len(shown))
        for track in timeline.video_tracks():
            for clip in track.find_clips():
                seq = mlt.sequence_of(clip, path)
                if seq.pattern not in done:
                    done.add(seq.pattern)
                    alone.update(mlt.render_sequence(seq, folder / f"alone{len(done)}", width=W, height=H, rate=RATE))
        return Render(path, timeline, shown, frames)

    return Renders(render(jobs.edit, "input"), [render(p, f"published{i}") for i, p in enumerate(jobs.published)],
                   alone, folder)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a, b)


# -- the converter, without melt ----------------------------------------------------------------------


def _tiny_edit(root: Path, available_from: int) -> otio.schema.Timeline:
    """``[ clip: files 1009-1012 ][ gap 3 ][ clip: files 1001-1002 ]`` of one sequence 1001-1016, whose
    ``available_range`` starts at ``available_from`` (1001: media time = file number; 0: from zero)."""
    (root / "media").mkdir(parents=True, exist_ok=True)
    for frame in range(1001, 1017):
        (root / "media" / f"s.{frame:04d}.exr").touch()

    def clip(first_file: int, count: int) -> otio.schema.Clip:
        ref = _sequence("s", 16)
        ref.available_range = TimeRange(RationalTime(available_from, RATE), RationalTime(16, RATE))
        start = available_from + first_file - 1001
        return otio.schema.Clip(name=f"s{first_file}", media_reference=ref,
                                source_range=TimeRange(RationalTime(start, RATE), RationalTime(count, RATE)))

    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    track.extend([clip(1009, 4), otio.schema.Gap(source_range=TimeRange(duration=RationalTime(3, RATE))),
                  clip(1001, 2)])
    return otio.schema.Timeline(name="tiny", tracks=[track])


@pytest.mark.parametrize("available_from", [1001, 0])
def test_the_converter_takes_every_frame_number_from_opentimelineio(tmp_path, available_from):
    timeline = _tiny_edit(tmp_path, available_from)
    edit = tmp_path / "tiny.otio"
    xml = ET.fromstring(mlt.edit_to_mlt(timeline, edit, width=W, height=H))
    profile = xml.find("profile")
    assert (profile.get("width"), profile.get("height"), profile.get("frame_rate_num"),
            profile.get("frame_rate_den")) == (str(W), str(H), "24", "1")
    track = xml.find("playlist[@id='track0']")
    assert [(e.tag, e.get("in"), e.get("out"), e.get("length")) for e in track] == [
        ("entry", "8", "11", None), ("blank", None, None, "3"), ("entry", "0", "1", None)]
    resource = xml.find(f"producer[@id='{track[0].get('producer')}']/property[@name='resource']").text
    assert resource == f"image2:{tmp_path.absolute()}/media/s.%04d.exr?start_number=1001&framerate=24/1"
    assert [t.get("producer") for t in xml.find("tractor/multitrack")] == ["background", "track0"]
    shown = mlt.shown(timeline, edit)
    assert [s.path.name if s.path else None for s in shown] == [
        "s.1009.exr", "s.1010.exr", "s.1011.exr", "s.1012.exr", None, None, None, "s.1001.exr", "s.1002.exr"]


def test_the_converter_names_what_it_does_not_play(tmp_path):
    timeline = _tiny_edit(tmp_path, 1001)
    edit = tmp_path / "tiny.otio"
    (tmp_path / "media" / "s.1011.exr").unlink()
    with pytest.raises(mlt.ConversionError, match=r"clip 's1009' on track 'V1': media file .*s\.1011\.exr is missing"):
        mlt.shown(timeline, edit)
    track = timeline.tracks[0]
    track.insert(1, otio.schema.Transition(name="dissolve", in_offset=RationalTime(1, RATE),
                                           out_offset=RationalTime(1, RATE)))
    with pytest.raises(mlt.ConversionError, match="transition 'dissolve' is not played"):
        mlt.edit_to_mlt(timeline, edit, width=W, height=H)
    del track[1]
    track[0].media_reference = otio.schema.ExternalReference(target_url="movie.mov")
    with pytest.raises(mlt.ConversionError, match="clip 's1009': media ExternalReference is not an image sequence"):
        mlt.edit_to_mlt(timeline, edit, width=W, height=H)


def test_media_urls_resolve_as_the_edit_names_them(tmp_path):
    edit = tmp_path / "cuts" / "cut.otio"
    assert mlt.media_path("media/a%20b.0001.exr", edit) == tmp_path / "cuts" / "media" / "a b.0001.exr"
    assert mlt.media_path((tmp_path / "x y.exr").as_uri(), edit) == tmp_path / "x y.exr"
    with pytest.raises(mlt.ConversionError, match="only file URLs"):
        mlt.media_path("https://example.invalid/a.exr", edit)


# -- the engine's reading of the frames -----------------------------------------------------------------


def test_melt_decodes_each_exr_frame_as_its_scene_linear_values_times_255(renders):
    for path, image in renders.alone.items():
        diff = np.abs(image.astype(int) - mlt.decode_8bit(path).astype(int))
        assert image.shape == (H, W, 3) and diff.max() <= 1, f"{path}: melt's frame is {diff.max()} levels off"
    # a one-frame slip would show: neighbouring frames of each shot differ far beyond that level
    for name, _, count, _ in SHOTS:
        frames = [renders.alone[renders.input.path.parent / "media" / f"{name}.{FIRST + i:04d}.exr"]
                  for i in range(count)]
        assert min(np.abs(a.astype(int) - b.astype(int)).max() for a, b in zip(frames, frames[1:])) > 8


def test_the_input_edit_renders_as_opentimelineio_reads_it(renders):
    render = renders.input
    assert len(render.frames) == 16 + GAP + 14 + 10
    for t, (shown, frame) in enumerate(zip(render.shown, render.frames)):
        if shown.path is None:
            assert not frame.any(), f"record frame {t}: the gap is not black"
        else:
            assert _same(frame, renders.alone[shown.path]), f"record frame {t}: not {shown.path.name}"
    assert [render.shown[t].path.name for t in (0, 15, 26, 39, 40)] == [
        "shotA.1001.exr", "shotA.1016.exr", "shotB.1004.exr", "shotB.1017.exr", "shotC.1001.exr"]


# -- (a) the generated frames are where shotfill placed them -------------------------------------------


def _strip(render: Render, frames: list[int], path: Path) -> None:
    """The given record frames side by side, 2x, black where the edit ends (to look at)."""
    black = np.zeros((H, W, 3), np.uint8)
    row = np.concatenate([render.frames[t] if 0 <= t < len(render.frames) else black for t in frames], axis=1)
    write_png(path, np.repeat(np.repeat(row, 2, axis=0), 2, axis=1))


def _by_target(render: Render) -> dict[str, range]:
    """Per target, the record frames its placed clips span (handles and generated frames alike)."""
    spans: dict[str, list[range]] = {}
    for clip, records in render.placed():
        spans.setdefault(clip.metadata["shotfill"].get("target_id"), []).append(records)
    return {target: range(min(r.start for r in rs), max(r.stop for r in rs)) for target, rs in spans.items()}


def test_every_published_frame_shows_the_file_its_shotfill_clip_names(jobs, renders):
    shown_files = set()
    for n, render in enumerate(renders.published):
        placed = render.placed()
        assert placed, f"{render.path}: no clip with shotfill metadata"
        for clip, records in placed:
            visible = [t for t in records if render.shown[t].clip is clip]
            assert visible, f"{render.path}: clip '{clip.name}' is hidden under another placement"
            for t in visible:
                expected = renders.alone[render.shown[t].path]
                assert _same(render.frames[t], expected), (
                    f"{render.path}: record frame {t} of '{clip.name}' is not {render.shown[t].path.name}")
                shown_files.add(render.shown[t].path)
        # the frames around each placement: before, first, last, after (and a strip of them to look at)
        for target, records in _by_target(render).items():
            before, after = records.start - 1, records.stop
            _strip(render, [before, *records, after], renders.folder / f"published{n}_{target}.png")
            for t in (before, after):
                if 0 <= t < len(renders.input.frames) and not render.shown[t].is_shotfill:
                    assert _same(render.frames[t], renders.input.frames[t]), (
                        f"{render.path}: record frame {t} beside {target} changed")
    for target, result in jobs.results.items():
        generated = {Path(result.output_pattern.replace("####", f"{f:04d}")) for f in result.frames}
        assert generated, f"{target}: the job generated no frame"
        missing = sorted(p.name for p in generated - shown_files)
        assert not missing, f"{target}: generated frames never shown in a published edit: {missing}"


def _target_start(jobs: Jobs, target: str) -> int:
    """Where a target starts on the input edit: the gap's first frame, or the frame after the clip."""
    timeline = otio.adapters.read_from_file(str(jobs.edit))
    track = timeline.tracks[0]
    if target == BRIDGE:
        index = next(i for i, item in enumerate(track) if isinstance(item, otio.schema.Gap))
        return round(track.range_of_child_at_index(index).start_time.value)
    return round(track.range_of_child_at_index(2).end_time_exclusive().value)     # clip2 = shotB


@pytest.mark.parametrize("target", [TAIL[0], BRIDGE])
def test_a_placement_starts_where_its_target_does_and_leaves_no_hole(jobs, renders, target):
    holding = [r for r in renders.published if target in _by_target(r)]
    assert holding, f"no published edit holds a clip of {target}"
    start = _target_start(jobs, target)
    for render in holding:
        records = _by_target(render)[target]
        if target == BRIDGE:
            assert records == range(start, start + GAP), f"{render.path}: {target} spans {records}, the gap is " \
                f"{range(start, start + GAP)}"
        assert records.start == start, f"{render.path}: {target} starts at record frame {records.start}, not {start}"
        for t in records:
            shown = render.shown[t]
            assert shown.is_shotfill and shown.clip.metadata["shotfill"].get("target_id") == target, (
                f"{render.path}: record frame {t} in {target} shows "
                f"{shown.clip.name if shown.clip else 'nothing (black)'}")
            assert render.frames[t].any(), f"{render.path}: record frame {t} in {target} is black"


# -- (b) nothing else moved -------------------------------------------------------------------------------


def test_every_other_frame_of_a_published_edit_is_the_input_edits_frame(renders):
    original = renders.input
    for render in renders.published:
        covered = {t for _, records in render.placed() for t in records}
        assert len(render.frames) >= len(original.frames), f"{render.path}: the edit got shorter"
        assert set(range(len(original.frames), len(render.frames))) <= covered, (
            f"{render.path}: frames past the input's end that shotfill did not place")
        kept = [t for t in range(len(original.frames)) if t not in covered]
        assert kept, f"{render.path}: shotfill covers the whole edit"
        moved = [t for t in kept if not _same(render.frames[t], original.frames[t])]
        assert not moved, f"{render.path}: record frames {moved} changed outside shotfill's placements"
