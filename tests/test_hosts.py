"""Host adapters against fakes of the hosts' scripting APIs.

One shared suite (:class:`TestEveryHost`) runs against every adapter, as
OpenAssetIO's apiComplianceSuite does for managers: the selected plate becomes
media, a take comes back placed, and the host is left as it was found. Then
each host's own behaviour: Nuke's undo step, node placement, colour space and
pane registration; Resolve's OTIO export, record frames, clean-up and launcher.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fakes import fake_nuke, fake_resolve
from shotfill_plugin.hosts.base import Generated, HostError, Media

PLUGIN = Path(__file__).resolve().parents[1] / "plugin"


def _frames(folder: Path, name: str, first: int, last: int) -> str:
    """Empty files standing for an EXR sequence; returns its ``####`` pattern."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(first, last + 1):
        (folder / f"{name}.{f:04d}.exr").write_bytes(b"")
    return str(folder / f"{name}.####.exr")


def _take(pattern: str, first: int, last: int, *, record_frame: int | None = 40,
          source: Media | None = None) -> Generated:
    result = {"output_pattern": pattern, "frames": list(range(first, last + 1)), "job_id": "abc"}
    return Generated(target_id="V1.gap1", pattern=pattern, first=first, last=last, result=result,
                     record_frame=record_frame, track_index=0, rate=24.0, source=source, label="Take 1")


# ---------------------------------------------------------------------------
# one world per host: the host's state set up, and ways to look at it
# ---------------------------------------------------------------------------
class NukeWorld:
    """A script with a plate Read node selected."""

    undoable = True
    has_timeline = False

    def __init__(self, tmp_path: Path):
        from shotfill_plugin.hosts.nuke.host import NukeHost

        fake_nuke.scriptClear()
        self.plate_pattern = _frames(tmp_path / "plates", "sh010", 1001, 1024)
        self.plate = fake_nuke.nodes.Read(file=self.plate_pattern, first=1001, last=1024, colorspace="ACEScg",
                                          name="Plate")
        self.plate.setXYpos(100, 200)
        fake_nuke.Undo._stack.clear()
        self.plate.setSelected(True)
        self.host = NukeHost(fake_nuke)
        self.expected = Media("Plate", self.plate_pattern, 1001, 1024, "ACEScg", 24.0)
        self.take = _take(_frames(tmp_path / "out", "sh010_ext", 1025, 1030), 1025, 1030, record_frame=None,
                          source=self.expected)

    def select_nothing(self) -> None:
        self.plate.setSelected(False)

    def touch_state(self) -> None:
        """What an import may do on its way: change the selection."""
        for node in fake_nuke.allNodes():
            node.setSelected(not node.isSelected())

    def state(self) -> dict:
        return {"selected": [n.name() for n in fake_nuke.selectedNodes()]}

    def placed(self) -> list[tuple[str, int, int]]:
        return [(n["file"].value(), n["first"].value(), n["last"].value())
                for n in fake_nuke.allNodes("Read") if n is not self.plate]

    def messages(self) -> list[str]:
        return list(fake_nuke._messages)

    def undo(self) -> None:
        fake_nuke.Undo.undo()


class ResolveWorld:
    """A project with two timelines; the cut is current, its clip under the playhead."""

    undoable = False
    has_timeline = True

    def __init__(self, tmp_path: Path, capsys=None):
        from shotfill_plugin.hosts.resolve.host import ResolveHost

        self.project = fake_resolve.Project("show")
        pool = self.project.GetMediaPool()
        self.cut = pool.CreateEmptyTimeline("cut v3")
        self.other = pool.CreateEmptyTimeline("selects")
        self.project.SetCurrentTimeline(self.cut)
        self.plate_pattern = _frames(tmp_path / "plates", "sh010", 1001, 1024)
        plate_item = pool.ImportMedia([{"FilePath": self.plate_pattern.replace("####", "%04d"),
                                        "StartIndex": 1001, "EndIndex": 1024}])[0]
        self.cut._place(fake_resolve.TimelineItem(plate_item, 86400, 24, name="sh010"), 1)
        self.cut._playhead_item = self.cut.GetItemListInTrack("video", 1)[0]
        self.resolve = fake_resolve.Resolve(self.project)
        self.host = ResolveHost(self.resolve)
        self.capsys = capsys
        self.expected = Media("sh010", self.plate_pattern.replace("####", "%04d"), 1001, 1024, None, 24.0)
        self.take = _take(_frames(tmp_path / "out", "gap1", 1, 12), 1, 12, record_frame=40)

    def select_nothing(self) -> None:
        self.cut._playhead_item = None

    def touch_state(self) -> None:
        self.project.SetCurrentTimeline(self.other)
        pool = self.project.GetMediaPool()
        pool.SetCurrentFolder(pool.AddSubFolder(pool.GetRootFolder(), "elsewhere"))

    def state(self) -> dict:
        return {"timeline": self.project.GetCurrentTimeline().GetName(),
                "bin": self.project.GetMediaPool().GetCurrentFolder().GetName()}

    def placed(self) -> list[tuple[str, int, int]]:
        out = []
        for index in range(2, self.cut.GetTrackCount("video") + 1):
            for item in self.cut.GetItemListInTrack("video", index):
                props = item.GetMediaPoolItem().GetClipProperty()
                out.append((props["File Path"], int(props["Start"]), int(props["End"])))
        return out

    def messages(self) -> list[str]:
        return self.capsys.readouterr().out.splitlines()


@pytest.fixture(params=["nuke", "resolve"])
def world(request, tmp_path, capsys):
    return NukeWorld(tmp_path) if request.param == "nuke" else ResolveWorld(tmp_path, capsys)


def _same_sequence(pattern_a: str, pattern_b: str) -> bool:
    """``a.####.exr``, ``a.%04d.exr`` and Resolve's ``a.[1001-1012].exr`` name one sequence."""
    import re

    def norm(p):
        return re.sub(r"#+|%0?\d*d|\[\d+-\d+\]", "#", p)

    return norm(pattern_a) == norm(pattern_b)


# ---------------------------------------------------------------------------
# the suite every host adapter passes
# ---------------------------------------------------------------------------
class TestEveryHost:
    def test_the_selected_plate_is_the_media(self, world):
        media = world.host.current_media()
        assert len(media) == 1
        m = media[0]
        assert (m.name, m.first, m.last, m.colourspace, m.rate) == (
            world.expected.name, world.expected.first, world.expected.last, world.expected.colourspace,
            world.expected.rate)
        assert _same_sequence(m.path, world.expected.path)
        assert m.source_spec()["frame_range"] == [world.expected.first, world.expected.last]

    def test_nothing_selected_is_no_media(self, world):
        world.select_nothing()
        assert world.host.current_media() == []

    def test_a_take_comes_back_placed(self, world):
        with world.host.preserved():
            made = world.host.import_result(world.take)
        assert isinstance(made, str) and made
        [(pattern, first, last)] = world.placed()
        assert _same_sequence(pattern, world.take.pattern)
        assert (first, last) == (world.take.first, world.take.last)

    def test_the_host_is_left_as_found(self, world):
        before = world.state()
        with world.host.preserved():
            world.touch_state()
            world.host.import_result(world.take)
        assert world.state() == before

    def test_the_host_is_left_as_found_when_the_import_fails(self, world):
        before = world.state()
        with pytest.raises(RuntimeError, match="boom"):
            with world.host.preserved():
                world.touch_state()
                world.host.import_result(world.take)
                raise RuntimeError("boom")
        assert world.state() == before

    def test_an_import_is_one_undo_step(self, world):
        if not world.undoable:
            pytest.skip(f"{world.host.name}'s scripting API has no undo: the import cleans up itself")
        with world.host.preserved():
            world.host.import_result(world.take)
        assert world.placed()
        world.undo()
        assert world.placed() == []

    def test_the_current_edit(self, world, tmp_path):
        edit = world.host.current_edit(str(tmp_path))
        assert (edit is not None) == world.has_timeline
        if edit is not None:
            assert Path(edit).is_file() and Path(edit).parent == tmp_path

    def test_messages_reach_the_user(self, world):
        world.host.show_message("3 takes placed")
        world.host.show_message("nothing to place", error=True)
        said = "\n".join(world.messages())
        assert "3 takes placed" in said and "nothing to place" in said and "error" in said


# ---------------------------------------------------------------------------
# Nuke
# ---------------------------------------------------------------------------
def test_nuke_read_node_beside_the_plate_with_its_colour_space(tmp_path):
    w = NukeWorld(tmp_path)
    with w.host.preserved():
        made = w.host.import_result(w.take)
    [read] = [n for n in fake_nuke.allNodes("Read") if n is not w.plate]
    assert read.name() in made
    assert read["colorspace"].value() == "ACEScg"
    assert (read["origfirst"].value(), read["origlast"].value()) == (1025, 1030)
    assert read.ypos() == w.plate.ypos() and read.xpos() > w.plate.xpos() + w.plate.screenWidth()
    assert read["label"].value() == "Take 1"
    assert fake_nuke.Undo.undoSize() == 1 and fake_nuke.Undo.undoDescribe(0) == "shotfill: apply take"
    assert not read.isSelected() and w.plate.isSelected()


def test_nuke_output_colour_space_wins_and_unknown_names_are_said(tmp_path):
    w = NukeWorld(tmp_path)
    with w.host.preserved():
        w.host.import_result(dataclasses.replace(w.take, colourspace="sRGB"))
        made = w.host.import_result(dataclasses.replace(w.take, colourspace="lin_p3d65"))
    reads = [n for n in fake_nuke.allNodes("Read") if n is not w.plate]
    assert reads[0]["colorspace"].value() == "sRGB"
    assert reads[1]["colorspace"].value() == "default (linear)" and "lin_p3d65" in made


def test_nuke_default_colour_space_means_the_files_own(tmp_path):
    w = NukeWorld(tmp_path)
    w.plate["colorspace"].setValue("default (linear)")
    assert w.host.current_media()[0].colourspace is None
    assert "colourspace" not in w.host.current_media()[0].source_spec()


def test_nuke_two_selected_reads_are_plate_and_mask(tmp_path):
    from shotfill_plugin.state import Operation, Settings, targets_for_media

    w = NukeWorld(tmp_path)
    mask = fake_nuke.nodes.Read(file=str(tmp_path / "roto.%04d.png"), first=1001, last=1024, name="Roto")
    mask.setSelected(True)
    media = w.host.current_media()
    assert [m.name for m in media] == ["Plate", "Roto"]
    fills = [t for t in targets_for_media(media) if t.operation is Operation.FILL]
    assert [(t.media.name, t.mask_media.name) for t in fills] == [("Plate", "Roto"), ("Roto", "Plate")]
    assert fills[0].job_fields(Settings())["mask"]["path"].endswith("roto.%04d.png")


def test_nuke_menu_registers_a_dockable_pane_and_a_command(monkeypatch, qtbot, tmp_path):
    import runpy

    monkeypatch.setitem(sys.modules, "nuke", fake_nuke)
    monkeypatch.setitem(sys.modules, "nukescripts", fake_nuke.nukescripts)
    monkeypatch.setitem(sys.modules, "nukescripts.panels", fake_nuke.panels)
    monkeypatch.setenv("SHOTFILL_ENGINE_COMMAND", f"{sys.executable} -m shotfill")
    monkeypatch.setattr("shotfill_plugin.state.default_settings_path", lambda: tmp_path / "panel.json")
    sys.modules.pop("shotfill_plugin.hosts.nuke.panel", None)
    runpy.run_path(str(PLUGIN / "hosts" / "nuke" / "menu.py"))
    from shotfill_plugin.hosts.nuke import panel

    widget, title = fake_nuke.panels._registered[panel.PANEL_ID]
    assert title == "shotfill"
    assert fake_nuke.menu("Pane").findItem("shotfill") is not None
    command = fake_nuke.menu("Nuke").findItem("shotfill/Open panel")
    assert command is not None
    # the pane command evaluates the widget expression anywhere, as Nuke's WidgetKnob does
    fake_nuke.scriptClear()
    shown = command.invoke()
    qtbot.addWidget(shown)
    assert isinstance(shown, panel.NukePanel) and shown.host.name == "Nuke"
    assert shown.open_button.text() == "Load selection from Nuke"


def test_nuke_panel_loads_the_selection(monkeypatch, qtbot, tmp_path):
    monkeypatch.setitem(sys.modules, "nuke", fake_nuke)
    monkeypatch.setitem(sys.modules, "nukescripts", fake_nuke.nukescripts)
    monkeypatch.setitem(sys.modules, "nukescripts.panels", fake_nuke.panels)
    from shotfill_plugin.hosts.nuke.panel import NukePanel
    from shotfill_plugin.state import SettingsStore, Status

    w = NukeWorld(tmp_path)
    monkeypatch.setattr("shotfill_plugin.panel.SettingsStore", lambda: SettingsStore(tmp_path / "p.json", ""))
    panel = NukePanel()
    qtbot.addWidget(panel)
    assert panel.load_from_host()
    assert [t.id for t in panel.state.targets] == ["Plate.head", "Plate.tail"]
    job = panel.state.queue_takes()[0].job
    assert job["task"] == "extend_backward" and job["source"]["frame_range"] == [1001, 1024]
    assert job["source"]["colourspace"] == "ACEScg" and job["frames"] == 24
    w.select_nothing()
    assert not panel.load_from_host() and panel.state.status is Status.ERROR
    assert "select a plate in Nuke" in panel.state.status_message


def test_nuke_init_builds_no_ui_in_batch(tmp_path):
    """``init.py`` runs in ``nuke -t`` too: it must not import Qt or the panel."""
    fakes = Path(__file__).parent / "fakes"
    code = textwrap.dedent(f"""
        import runpy, sys
        sys.path[:0] = [{str(fakes.parent)!r}]
        from fakes import fake_nuke
        fake_nuke.env["gui"] = False
        sys.modules["nuke"] = fake_nuke
        runpy.run_path({str(PLUGIN / "hosts" / "nuke" / "init.py")!r})
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "PySide2", "shiboken6")
                        or m.startswith("shotfill_plugin.panel") or m.startswith("shotfill_plugin.qt"))
        print(loaded)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------
# Resolve
# ---------------------------------------------------------------------------
def test_resolve_places_the_take_at_its_record_frame_on_a_new_track(tmp_path):
    w = ResolveWorld(tmp_path)
    w.project.SetCurrentTimeline(w.other)          # the user looks at another timeline
    with w.host.preserved():
        made = w.host.import_result(w.take)
    assert w.cut.GetTrackCount("video") == 2
    assert w.cut.GetTrackName("video", 2) == "shotfill V1.gap1"
    [item] = w.cut.GetItemListInTrack("video", 2)
    assert item.GetStart() == 86400 + 40 and item.GetDuration() == 12
    assert "video track 2" in made and "86440" in made
    assert w.project.GetCurrentTimeline() is w.other
    bins = [f.GetName() for f in w.project.GetMediaPool().GetRootFolder().GetSubFolderList()]
    assert bins == ["shotfill"]


def test_resolve_says_which_handle_frames_it_leaves_to_a_trim(tmp_path):
    """A bridge with handles: the generated frames go after A's handles; Resolve is told the rest."""
    import dataclasses

    w = ResolveWorld(tmp_path)
    placement = {"record_start": {"value": 48, "rate": 24.0}, "rate": 24.0, "handles_before": 8,
                 "handles_after": 6}
    take = dataclasses.replace(w.take, record_frame=48, result={**w.take.result, "placement": placement})
    assert take.handles == (8, 6) and w.take.handles == (0, 0)
    made = w.host.import_result(take)
    [item] = w.cut.GetItemListInTrack("video", 2)
    assert item.GetStart() == 86400 + 48
    assert "the 8 frame(s) before it and 6 after are the clips' own handle frames" in made
    assert "handle" not in w.host.import_result(w.take)


def test_resolve_cleans_up_when_the_place_is_taken(tmp_path):
    w = ResolveWorld(tmp_path)
    plate_item = w.cut.GetItemListInTrack("video", 1)[0].GetMediaPoolItem()
    original = w.cut.AddTrack

    def add_track_with_a_clip(trackType, subTrackType=None):  # noqa: N803
        """The new track already holds a clip where the take would go."""
        original(trackType)
        w.cut._place(fake_resolve.TimelineItem(plate_item, 86440, 5), w.cut.GetTrackCount("video"))
        return True

    w.cut.AddTrack = add_track_with_a_clip
    clips_before = w.project.GetMediaPool().GetRootFolder().GetClipList()
    with pytest.raises(HostError, match="could not place"):
        with w.host.preserved():
            w.host.import_result(w.take)
    assert w.cut.GetTrackCount("video") == 1            # the new track is gone again
    shotfill_bin = w.project.GetMediaPool().GetRootFolder().GetSubFolderList()[0]
    assert shotfill_bin.GetClipList() == []             # and so is the imported clip
    assert w.project.GetMediaPool().GetRootFolder().GetClipList() == clips_before


def test_resolve_missing_frames_are_a_clear_error(tmp_path):
    w = ResolveWorld(tmp_path)
    missing = dataclasses.replace(w.take, pattern=str(tmp_path / "nowhere" / "x.####.exr"))
    with pytest.raises(HostError, match=r"could not import .*x\.####\.exr \(frames 1-12\)"):
        w.host.import_result(missing)
    assert w.cut.GetTrackCount("video") == 1


def test_resolve_older_than_18_5_is_told_how_to_go_on(tmp_path):
    from shotfill_plugin.hosts.resolve.host import ResolveHost

    w = ResolveWorld(tmp_path)
    old = ResolveHost(fake_resolve.Resolve(w.project, version=(18, 1, 4, 9, "")))
    with pytest.raises(HostError, match=r"18\.1\.4\.9 cannot export OTIO.*FCP 7 XML or EDL"):
        old.current_edit(str(tmp_path))


def test_resolve_without_a_timeline_says_so():
    from shotfill_plugin.hosts.resolve.host import ResolveHost

    with pytest.raises(HostError, match="open a timeline"):
        ResolveHost(fake_resolve.Resolve(fake_resolve.Project()))
    with pytest.raises(HostError, match="open a project"):
        ResolveHost(fake_resolve.Resolve(None))


def test_resolve_launcher_exports_runs_the_panel_and_places_applied_takes(tmp_path, capsys):
    """The Workspace > Scripts flow, with a stand-in panel that applies one take."""
    from shotfill_plugin.hosts.resolve import launcher

    w = ResolveWorld(tmp_path)
    chosen = tmp_path / "chosen.json"
    chosen.write_text(json.dumps([w.take.to_dict()]))
    panel = tmp_path / "fake_panel.py"
    panel.write_text(textwrap.dedent(f"""
        import shutil, sys
        edit, flag, out = sys.argv[1:4]
        assert flag == "--results-out" and edit.endswith(".otio")
        shutil.copyfile({str(chosen)!r}, out)
    """))
    code = launcher.main(w.resolve, command=[sys.executable, str(panel)], work_root=str(tmp_path / "work"))
    out = capsys.readouterr().out
    assert code == 0, out
    assert (tmp_path / "work" / "show_cut_v3" / "cut_v3.otio").is_file()
    [item] = w.cut.GetItemListInTrack("video", 2)
    assert item.GetStart() == 86440 and "placed" in out
    assert w.project.GetCurrentTimeline() is w.cut


def test_resolve_launcher_reports_a_missing_panel(tmp_path, capsys):
    from shotfill_plugin.hosts.resolve import launcher

    w = ResolveWorld(tmp_path)
    code = launcher.main(w.resolve, command=[str(tmp_path / "no-such-panel")], work_root=str(tmp_path))
    assert code == 1 and "shotfill error" in capsys.readouterr().out
    assert w.cut.GetTrackCount("video") == 1


def test_resolve_launcher_finds_the_scripting_object():
    from shotfill_plugin.hosts.resolve import launcher

    class Bmd:
        @staticmethod
        def scriptapp(name):
            return f"app:{name}"

    assert launcher.resolve_app({"bmd": Bmd}) == "app:Resolve"


def test_handoff_entries_round_trip():
    g = _take("/out/a.####.exr", 1, 4, source=Media("a", "/p/a.####.exr", 1, 9))
    back = Generated.from_dict(json.loads(json.dumps(g.to_dict())))
    assert back == dataclasses.replace(g, source=None)
    with pytest.raises(HostError, match="not a shotfill take"):
        Generated.from_dict({"pattern": "x"})
