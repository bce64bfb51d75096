"""The panel driven as a person would, with a real worker on a tiny edit.

Every state the panel can be in (empty, loaded, running, done, cancelled,
error) is saved as a screenshot under the test's tmp folder, and also under
``$SHOTFILL_SCREENSHOTS`` when that is set, to be looked at.
"""
from __future__ import annotations

import dataclasses
import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shotfill_plugin import client
from shotfill_plugin.client import (ErrorEvent, FrameEvent, JobClient, JobFinished, JobStatus, OutputLine,
                                    PreviewEvent, PreviewFrame, PreviewFramesEvent, PreviewRole, ProgressEvent,
                                    ProtocolError, ResultEvent, StageEvent, WarningEvent, parse_event)
from shotfill_plugin.hosts.standalone import HandOffHost, StandaloneHost
from shotfill_plugin.panel import ShotfillPanel
from shotfill_plugin.qt import QtCore
from shotfill_plugin.state import Settings, SettingsStore, Status, TakeStatus

PLUGIN = Path(__file__).resolve().parents[1] / "plugin"
ENGINE = f"{sys.executable} -m shotfill"
WORKER_TIMEOUT_MS = 240_000  # a hang guard, not a timing check: the dit engine on a shared 2-core CPU can take minutes


@pytest.fixture(scope="module")
def edit(tmp_path_factory) -> Path:
    """The project's sample edit, small: V1 = shotA | gap 12 | shotB | shotC (with a mask)."""
    from shotfill.synthetic import make_sample_edit

    return Path(make_sample_edit(tmp_path_factory.mktemp("edit"), width=128, height=72).edit)


@pytest.fixture
def shoot(tmp_path):
    """``shoot(panel, name)`` saves a screenshot of the panel in its current state."""
    folders = [tmp_path / "screenshots"]
    if os.environ.get("SHOTFILL_SCREENSHOTS"):
        folders.append(Path(os.environ["SHOTFILL_SCREENSHOTS"]))

    def save(panel: ShotfillPanel, name: str) -> Path:
        QtCore.QCoreApplication.processEvents()
        image = panel.grab()
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            assert image.save(str(folder / f"panel_{name}.png"))
        return folders[0] / f"panel_{name}.png"

    return save


@pytest.fixture
def make_panel(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv(client.ENGINE_ENV, ENGINE)

    def make(host=None, **settings) -> ShotfillPanel:
        store = SettingsStore(tmp_path / "config" / "panel.json", studio_path="")
        if settings:
            store.save(Settings(**settings))
        panel = ShotfillPanel(host or StandaloneHost(), store=store)
        panel.resize(1280, 820)
        panel.show()
        qtbot.addWidget(panel)
        return panel

    return make


def _wait_idle(qtbot, panel: ShotfillPanel) -> None:
    qtbot.waitUntil(lambda: not panel.client.is_running() and not panel.state.queued_takes(),
                    timeout=WORKER_TIMEOUT_MS)


def _click_target(qtbot, panel: ShotfillPanel, target_id: str) -> None:
    """Click the target in the timeline strip, as a person would."""
    rect = panel.strip.rect_of(target_id)
    qtbot.mouseClick(panel.strip, QtCore.Qt.LeftButton, pos=rect.center().toPoint())
    assert panel.state.selected_id == target_id


# ---------------------------------------------------------------------------
# the panel, end to end
# ---------------------------------------------------------------------------
def test_empty_panel(make_panel, shoot):
    panel = make_panel()
    assert panel.state.status is Status.EMPTY
    assert not panel.generate_button.isEnabled() and not panel.apply_button.isEnabled()
    assert panel.engine_box.findText("flow") >= 0 and panel.engine_box.findText("baseline") >= 0
    # the engines only: not the memory modes `shotfill engines` lists after them
    assert panel.engine_box.findText("auto") < 0 and panel.engine_box.findText("offload") < 0
    assert panel.engine_box.currentText() == "dit"                     # the default engine
    shoot(panel, "empty")


def test_load_run_two_takes_and_apply_one(make_panel, shoot, qtbot, edit, tmp_path):
    host = StandaloneHost()
    panel = make_panel(host, output_dir=str(tmp_path / "renders"))
    assert panel.load_edit(str(edit))
    state = panel.state
    assert state.status is Status.LOADED and len(state.targets) == 8
    gap = next(t for t in state.targets if t.id == "V1.gap1")
    assert (gap.frames, gap.record_first_tc, gap.clips) == (20, "01:00:01:16", "shotA -> shotB")
    assert (gap.handle_frames, gap.generated_frames) == ({"a": 8, "b": 8}, 4)    # 8 + 8 handles, 4 to make
    assert panel.table.topLevelItemCount() == 8
    _click_target(qtbot, panel, "V1.gap1")
    shoot(panel, "loaded")

    events = []
    panel.client.event.connect(events.append)
    running_shot = []

    def shoot_while_running(event):
        if isinstance(event, ProgressEvent) and event.stage == "write" and not running_shot:
            running_shot.append(shoot(panel, "running"))

    panel.client.event.connect(shoot_while_running)
    panel.takes_spin.setValue(2)
    qtbot.mouseClick(panel.generate_button, QtCore.Qt.LeftButton)
    assert state.status is Status.RUNNING and not panel.generate_button.isEnabled()
    _wait_idle(qtbot, panel)

    assert running_shot, "no progress event arrived while the worker ran"
    progress = [e for e in events if isinstance(e, ProgressEvent)]
    assert len(progress) > 5 and progress[-1].fraction == 1.0
    assert {e.stage for e in events if isinstance(e, StageEvent)} >= {"read", "generate", "write", "preview"}
    assert sum(isinstance(e, FrameEvent) for e in events) == 8        # the 4 generated frames, twice
    assert state.status is Status.DONE
    takes = state.takes
    assert [(t.seed, t.status) for t in takes] == [(0, TakeStatus.DONE), (1, TakeStatus.DONE)]
    assert takes[0].out_dir != takes[1].out_dir
    assert all(Path(t.contact_sheet).is_file() for t in takes)
    assert all(Path(t.out_dir, "job.json").is_file() for t in takes)
    assert state.progress.fractions["generate"] == 1.0 and state.progress.fractions["timeline"] is None
    assert panel.takes_list.count() == 2

    panel.takes_list.setCurrentRow(1)
    assert state.take is takes[1] and panel.preview.pixmap() is not None
    assert not panel.preview.pixmap().isNull()
    assert panel.preview.horizontalScrollBar().maximum() > 0         # the sheet scrolls across the seam
    shoot(panel, "done")

    qtbot.mouseClick(panel.apply_button, QtCore.Qt.LeftButton)
    [new_edit] = host.new_edits
    assert Path(new_edit).is_file() and Path(new_edit).parent == edit.parent and new_edit != str(edit)
    assert takes[1].applied and "saved" in state.status_message
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(new_edit)
    assert [t.name for t in timeline.tracks if t.name.startswith("shotfill")]
    shoot(panel, "applied")


def test_cancel_stops_the_take_and_drops_the_queue(make_panel, shoot, qtbot, edit, tmp_path):
    panel = make_panel(output_dir=str(tmp_path / "renders"), frames=48, takes=2)
    assert panel.load_edit(str(edit))
    _click_target(qtbot, panel, "V1.clip1.tail")

    def cancel_once_running(event):
        if isinstance(event, StageEvent) and event.stage == "read":
            qtbot.mouseClick(panel.cancel_button, QtCore.Qt.LeftButton)

    panel.client.event.connect(cancel_once_running)
    qtbot.mouseClick(panel.generate_button, QtCore.Qt.LeftButton)
    _wait_idle(qtbot, panel)
    assert [t.status for t in panel.state.takes] == [TakeStatus.CANCELLED, TakeStatus.CANCELLED]
    assert panel.state.status is Status.CANCELLED
    assert "running the same take again resumes" in panel.state.takes[0].message
    assert panel.generate_button.isEnabled() and not panel.apply_button.isEnabled()
    shoot(panel, "cancelled")


def test_a_refused_job_is_an_error_not_a_hang(make_panel, shoot, qtbot, edit, tmp_path):
    panel = make_panel(output_dir=str(tmp_path / "renders"), engine="no-such-engine")
    assert panel.load_edit(str(edit))
    _click_target(qtbot, panel, "V1.gap1")
    qtbot.mouseClick(panel.generate_button, QtCore.Qt.LeftButton)
    _wait_idle(qtbot, panel)
    assert panel.state.status is Status.ERROR
    assert "the job was refused" in panel.state.status_message
    assert "unknown engine 'no-such-engine'" in panel.state.status_message
    assert panel.state.takes[0].status is TakeStatus.FAILED
    assert panel.generate_button.isEnabled()
    shoot(panel, "error")


def test_an_edit_that_cannot_be_read_is_said(make_panel, tmp_path):
    panel = make_panel()
    bad = tmp_path / "cut.otio"
    bad.write_text("{ not json")
    assert not panel.load_edit(str(bad))
    assert panel.state.status is Status.ERROR and str(bad) in panel.state.status_message
    assert "cut.otio" in panel.status_label.text()


def test_missing_engine_is_a_readable_message(make_panel, monkeypatch, tmp_path, qtbot, edit):
    monkeypatch.setenv(client.ENGINE_ENV, str(tmp_path / "no" / "shotfill"))
    panel = ShotfillPanel(StandaloneHost(), store=SettingsStore(tmp_path / "p.json", studio_path=""))
    qtbot.addWidget(panel)
    assert "cannot list the engines" in panel.state.log_entries[-1].text
    assert not panel.load_edit(str(edit))
    assert "does not exist" in panel.state.status_message and client.ENGINE_ENV in panel.state.status_message


def test_handoff_host_writes_the_applied_takes(make_panel, qtbot, edit, tmp_path):
    results = tmp_path / "applied.json"
    panel = make_panel(HandOffHost(str(edit), str(results)), output_dir=str(tmp_path / "renders"))
    assert not panel.open_button.isVisible()
    assert panel.load_from_host()
    _click_target(qtbot, panel, "V1.gap1")
    panel.generate()
    _wait_idle(qtbot, panel)
    panel.apply_take()
    [entry] = json.loads(results.read_text())
    # the generated frames start after shot A's 8 tail handles (gap at 40); the placement carries the handles
    assert entry["target_id"] == "V1.gap1" and entry["record_frame"] == 48
    assert entry["first"] == 1001 and entry["last"] == 1004
    placement = entry["result"]["placement"]
    assert (placement["handles_before"], placement["handles_after"]) == (8, 8)


# ---------------------------------------------------------------------------
# the job client on its own
# ---------------------------------------------------------------------------
def _run_client(qtbot, command, tmp_path) -> list:
    c = JobClient(command)
    events = []
    c.event.connect(events.append)
    with qtbot.waitSignal(c.event, timeout=WORKER_TIMEOUT_MS,
                          check_params_cb=lambda e: isinstance(e, JobFinished)):
        c.start({"version": 1}, tmp_path / "job.json")
    assert not c.is_running()
    return events


def test_client_reports_a_command_that_cannot_start(qtbot, tmp_path):
    events = _run_client(qtbot, [str(tmp_path / "missing-engine")], tmp_path)
    [finished] = events
    assert finished.status is JobStatus.FAILED
    assert "cannot start the shotfill engine" in finished.message and "missing-engine" in finished.message


def test_client_reports_a_crash(qtbot, tmp_path):
    crash = [sys.executable, "-c", "import os, signal, sys; print('about to go', file=sys.stderr); "
                                   "sys.stderr.flush(); os.kill(os.getpid(), signal.SIGKILL)"]
    finished = _run_client(qtbot, crash, tmp_path)[-1]
    assert finished.status is JobStatus.FAILED and "stopped unexpectedly" in finished.message
    assert "about to go" in finished.message


def test_client_reports_a_worker_that_gives_no_result(qtbot, tmp_path):
    quiet = [sys.executable, "-c", "print('hello'); print('{\"event\": \"progress\"}')"]
    events = _run_client(qtbot, quiet, tmp_path)
    assert OutputLine("hello") in events
    assert any(isinstance(e, WarningEvent) and "no valid 'stage'" in e.message for e in events)
    assert events[-1].status is JobStatus.FAILED and "without a result" in events[-1].message


def test_client_reports_bad_input_with_the_workers_message(qtbot, tmp_path):
    events = _run_client(qtbot, [sys.executable, "-m", "shotfill"], tmp_path)
    assert events[-1].status is JobStatus.FAILED and events[-1].exit_code == client.EXIT_BAD_INPUT
    assert "the job was refused" in events[-1].message and "output" in events[-1].message


# ---------------------------------------------------------------------------
# the event protocol
# ---------------------------------------------------------------------------
def test_parse_every_event_kind():
    assert parse_event('{"event":"stage","stage":"read","message":"20 frames"}') == StageEvent("read", "20 frames")
    assert parse_event('{"event":"progress","stage":"write","fraction":1,"eta_s":null}') == \
        ProgressEvent("write", 1.0, None)
    assert parse_event('{"event":"frame","frame":7,"path":"/o/a.0007.exr","skipped":false}') == \
        FrameEvent(7, "/o/a.0007.exr", False)
    assert parse_event('{"event":"preview","path":"/o/a.png"}') == PreviewEvent("/o/a.png")
    assert parse_event('{"event":"warning","message":"prompt ignored"}') == WarningEvent("prompt ignored")
    assert parse_event('{"event":"error","message":"no","exit_code":2}') == ErrorEvent("no", 2)
    result = parse_event('{"event":"result","output_pattern":"/o/a.####.exr","frames":[1,2],"exit_code":0}')
    assert isinstance(result, ResultEvent) and result.frames == [1, 2] and "event" not in result.result
    assert parse_event("libpng warning: iCCP") == OutputLine("libpng warning: iCCP")
    assert parse_event("[1, 2]") == OutputLine("[1, 2]")


@pytest.mark.parametrize("line", [
    '{"event":"progress","stage":"write","fraction":"half"}',
    '{"event":"frame","frame":true,"path":"x","skipped":false}',
    '{"event":"result","frames":[1]}',
    '{"event":"teleport"}',
])
def test_malformed_events_are_protocol_errors(line):
    with pytest.raises(ProtocolError):
        parse_event(line)


def test_the_client_and_the_engine_share_one_protocol():
    from shotfill import errors, events
    from shotfill_plugin import protocol

    assert client.STAGE_WEIGHTS is events.STAGE_WEIGHTS is protocol.STAGE_WEIGHTS
    assert client.STAGES is events.STAGES is protocol.STAGES
    assert client.parse_event is protocol.parse_event and client.ProgressEvent is events.ProgressEvent
    assert (client.EXIT_BAD_INPUT, client.EXIT_CANCELLED) == (errors.EXIT_BAD_INPUT, errors.EXIT_CANCELLED)


def test_engine_command_order(monkeypatch, tmp_path):
    monkeypatch.setenv(client.ENGINE_ENV, '"/opt/my tools/python" -m shotfill')
    assert client.engine_command() == ["/opt/my tools/python", "-m", "shotfill"]
    monkeypatch.delenv(client.ENGINE_ENV)
    config = tmp_path / "engine.json"
    config.write_text(json.dumps({"command": ["/opt/sf/bin/shotfill"]}))
    monkeypatch.setattr(client.paths, "ENGINE_CONFIG", config)
    assert client.engine_command() == ["/opt/sf/bin/shotfill"]


# ---------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------
def test_settings_are_layered_and_checked(tmp_path):
    studio = tmp_path / "studio.json"
    studio.write_text(json.dumps({"engine": "baseline", "seed": 7, "compression": "dwaa", "frames": 12}))
    user = tmp_path / "user" / "panel.json"
    user.parent.mkdir()
    user.write_text(json.dumps({"seed": 3, "takes": 99, "colour": "acescg", "prompt": "dusk"}))
    settings, problems = SettingsStore(user, studio_path=str(studio)).load()
    assert (settings.engine, settings.seed, settings.compression, settings.frames, settings.prompt) == \
        ("baseline", 3, "dwaa", 12, "dusk")
    assert settings.takes == 1
    assert any("'takes' must be a whole number 1..8" in p and str(user) in p for p in problems)
    assert any("unknown setting 'colour'" in p for p in problems)


def test_the_panel_remembers_settings(make_panel, tmp_path, qtbot):
    panel = make_panel()
    panel.frames_spin.setValue(36)
    panel.seed_spin.setValue(5)
    panel.compression_box.setCurrentText("piz")
    panel.compression_box.activated.emit(panel.compression_box.currentIndex())
    saved = json.loads((tmp_path / "config" / "panel.json").read_text())
    assert (saved["frames"], saved["seed"], saved["compression"]) == (36, 5, "piz")
    again = make_panel()
    assert (again.frames_spin.value(), again.seed_spin.value(), again.compression_box.currentText()) == \
        (36, 5, "piz")


def test_the_studio_defaults_come_from_the_environment(monkeypatch, tmp_path):
    studio = tmp_path / "studio.json"
    studio.write_text(json.dumps({"output_dir": "/mnt/renders/shotfill", "write_mode": "replace"}))
    monkeypatch.setenv("SHOTFILL_STUDIO_DEFAULTS", str(studio))
    settings, problems = SettingsStore(tmp_path / "none.json").load()
    assert problems == [] and settings.output_dir == "/mnt/renders/shotfill" and settings.write_mode == "replace"


# ---------------------------------------------------------------------------
# the host side stays light
# ---------------------------------------------------------------------------
def _plugin_modules() -> list[str]:
    names = []
    for path in sorted(PLUGIN.rglob("*.py")):
        parts = path.relative_to(PLUGIN).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        names.append(".".join(("shotfill_plugin",) + parts))
    return names


def test_every_plugin_module_imports_without_the_engine_packages():
    """Standard library and Qt only: the fakes stand in for Nuke's modules, which the
    Nuke panel imports; nothing may pull in numpy, torch, OpenTimelineIO, OpenEXR or the engine."""
    fakes = Path(__file__).parent
    code = textwrap.dedent(f"""
        import importlib, os, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        sys.path.insert(0, {str(fakes)!r})
        from fakes import fake_nuke
        sys.modules.update(nuke=fake_nuke, nukescripts=fake_nuke.nukescripts)
        sys.modules["nukescripts.panels"] = fake_nuke.panels
        for name in {_plugin_modules()!r}:
            importlib.import_module(name)
        heavy = ("numpy", "torch", "opentimelineio", "OpenEXR", "Imath", "cv2", "PyOpenColorIO", "shotfill")
        print(sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert len(_plugin_modules()) >= 15


def test_plugin_code_is_python_3_7_syntax():
    """Nuke 13 runs Python 3.7: no syntax newer than that anywhere on the host side."""
    for path in PLUGIN.rglob("*.py"):
        ast.parse(path.read_text(), str(path), feature_version=(3, 7))


# ---------------------------------------------------------------------------
# shotfill-panel
# ---------------------------------------------------------------------------
def test_app_screenshot_of_an_edit(edit, tmp_path):
    shot = tmp_path / "app.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", client.ENGINE_ENV: ENGINE,
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    out = subprocess.run([sys.executable, "-m", "shotfill_plugin.app", str(edit), "--screenshot", str(shot),
                          "--size", "1100x720"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    from PySide6 import QtGui

    image = QtGui.QImage(str(shot))
    assert (image.width(), image.height()) == (1100, 720)
    missing = subprocess.run([sys.executable, "-m", "shotfill_plugin.app", str(tmp_path / "none.otio"),
                              "--screenshot", str(tmp_path / "err.png")], capture_output=True, text=True,
                             timeout=120, env=env)
    assert missing.returncode == 2 and "none.otio" in missing.stderr and (tmp_path / "err.png").is_file()


# ---------------------------------------------------------------------------
# scrubbing a take's frames, and the engine's model
# ---------------------------------------------------------------------------
def _shown_image(panel: ShotfillPanel, caption: str = ""):
    """The picture the scrubber shows (the one with ``caption`` for a fill), as a QImage."""
    pictures = dict(panel.scrubber.view.pictures())
    assert pictures[caption] is not None, f"the scrubber shows no picture {caption!r}"
    return pictures[caption].toImage()


def test_scrub_the_frames_of_a_bridge_and_of_a_fill(make_panel, shoot, qtbot, edit, tmp_path):
    panel = make_panel(output_dir=str(tmp_path / "renders"))
    assert panel.load_edit(str(edit))
    state, scrubber = panel.state, panel.scrubber
    assert not scrubber.slider.isEnabled() and scrubber.view.pictures() == []
    _click_target(qtbot, panel, "V1.gap1")
    panel.generate()
    _wait_idle(qtbot, panel)

    bridge = state.takes[0]
    frames = bridge.preview_frames
    roles = [f.role for f in frames]
    assert roles.count(PreviewRole.GENERATE) == 4 and roles[0] is roles[-1] is PreviewRole.KNOWN
    first_new = roles.index(PreviewRole.GENERATE)
    assert frames[first_new].label == "G 1001" and frames[0].label.startswith("a ")
    assert frames[-1].label.startswith("b ") and all(Path(f.after).is_file() for f in frames)
    # it opens at the seam: the first generated frame, outlined
    assert panel.preview_tabs.currentWidget() is scrubber
    assert (scrubber.slider.maximum(), scrubber.slider.value()) == (len(frames) - 1, first_new)
    assert "G 1001" in scrubber.caption.text() and "generated" in scrubber.caption.text()
    generated = _shown_image(panel)
    shoot(panel, "scrub_bridge")

    scrubber.slider.setValue(first_new - 1)                  # the last known frame of shot A
    assert bridge.preview_position == first_new - 1
    assert frames[first_new - 1].label in scrubber.caption.text() and "known" in scrubber.caption.text()
    assert _shown_image(panel) != generated
    scrubber.setFocus()
    qtbot.keyClick(scrubber, QtCore.Qt.Key_Right)
    assert bridge.preview_position == first_new and _shown_image(panel) == generated
    qtbot.keyClick(scrubber, QtCore.Qt.Key_End)
    assert bridge.preview_position == len(frames) - 1 and scrubber.slider.value() == len(frames) - 1
    qtbot.keyClick(scrubber, QtCore.Qt.Key_Right)            # past the end: stays on the last frame
    assert bridge.preview_position == len(frames) - 1

    _click_target(qtbot, panel, "V1.clip3.fill")
    panel.generate()
    _wait_idle(qtbot, panel)
    fill = state.takes[1]
    assert state.take is fill and len(fill.preview_frames) == 24
    assert all(f.role is PreviewRole.FILL and Path(f.before).is_file() for f in fill.preview_frames)
    assert [caption for caption, _ in scrubber.view.pictures()] == ["before", "after"]
    assert _shown_image(panel, "before") != _shown_image(panel, "after")
    assert "fill" in scrubber.caption.text() and fill.preview_frame.label in scrubber.caption.text()
    scrubber.slider.setValue(12)
    shoot(panel, "scrub_fill")

    panel.takes_list.setCurrentRow(0)                        # each take keeps its own frames
    assert scrubber.slider.maximum() == len(frames) - 1 and scrubber.slider.value() == len(frames) - 1
    assert frames[-1].label in scrubber.caption.text()
    panel.takes_list.setCurrentRow(1)
    assert scrubber.slider.value() == 12 and fill.preview_frames[12].label in scrubber.caption.text()
    panel.preview_tabs.setCurrentWidget(panel.preview)       # the contact sheet is still there
    assert panel.preview.pixmap() is not None


def test_the_model_is_remembered_and_sent_only_when_set(make_panel, qtbot, edit, tmp_path):
    model = tmp_path / "models" / "dit_studio"
    panel = make_panel(output_dir=str(tmp_path / "renders"))
    assert panel.load_edit(str(edit))
    _click_target(qtbot, panel, "V1.gap1")
    panel.model_edit.setText(str(model))
    panel.model_edit.editingFinished.emit()
    assert json.loads((tmp_path / "config" / "panel.json").read_text())["model"] == str(model)
    assert make_panel().model_edit.text() == str(model)

    panel.generate()                                         # no checkpoint there: the job is refused
    _wait_idle(qtbot, panel)
    take = panel.state.takes[0]
    assert take.job["engine_options"] == {"model": str(model)} and "dit_studio" in take.out_dir
    assert take.status is TakeStatus.FAILED and panel.state.status is Status.ERROR
    assert "dit_studio: no manifest.json" in panel.state.status_message

    panel.model_edit.clear()
    panel.model_edit.editingFinished.emit()
    [plain] = panel.state.queue_takes()
    assert "engine_options" not in plain.job and plain.out_dir != take.out_dir


def test_parse_preview_frames():
    line = json.dumps({"event": "preview_frames", "frames": [
        {"position": 0, "role": "known", "label": "a 1039", "after": "/p/x.k_a_1039.png", "before": None},
        {"position": 1, "role": "fill", "label": "1005", "after": "/p/x.1005.after.png",
         "before": "/p/x.1005.before.png"}]})
    assert parse_event(line) == PreviewFramesEvent((
        PreviewFrame(0, PreviewRole.KNOWN, "a 1039", "/p/x.k_a_1039.png", None),
        PreviewFrame(1, PreviewRole.FILL, "1005", "/p/x.1005.after.png", "/p/x.1005.before.png")))
    assert not parse_event(line).frames[0].is_new and parse_event(line).frames[1].is_new


@pytest.mark.parametrize("frames, named", [
    ('"none"', "'frames'"),
    ('[{"position": 0, "role": "guessed", "label": "G 1", "after": "/a.png"}]', "'role'"),
    ('[{"position": 0, "role": "known", "label": "a 1"}]', "'after'"),
    ('[{"position": 0, "role": "known", "label": "a 1", "after": "/a.png", "before": 3}]', "'before'"),
    ('["/a.png"]', "frame 0"),
])
def test_malformed_preview_frames_are_protocol_errors(frames, named):
    with pytest.raises(ProtocolError, match=named):
        parse_event('{"event": "preview_frames", "frames": %s}' % frames)


def test_takes_that_differ_only_in_prompt_or_steps_get_their_own_folders():
    from shotfill_plugin.state import Settings, _take_folder

    class Op:
        user_sets_length = False

    class T:
        id = "V1.gap1"
        operation = Op()

    base = Settings()
    names = {_take_folder(T(), base, 0),
             _take_folder(T(), dataclasses.replace(base, prompt="dusk"), 0),
             _take_folder(T(), dataclasses.replace(base, steps=30), 0),
             _take_folder(T(), dataclasses.replace(base, compression="piz"), 0)}
    assert len(names) == 4
    assert _take_folder(T(), base, 0) == "V1_gap1_dit_s0"           # defaults: the plain name
    assert _take_folder(T(), dataclasses.replace(base, prompt="dusk"), 0) == \
        _take_folder(T(), dataclasses.replace(base, prompt="dusk"), 0)   # same settings resume


# ---------------------------------------------------------------------------
# how far each take can be trusted: a strip of its frames' trust, and its warnings
# ---------------------------------------------------------------------------
def _feed_take(panel: ShotfillPanel, frame_trust: list, warnings: list):
    """Run the selected target's next take on events the test writes, as the worker would send them."""
    state = panel.state
    [take] = state.queue_takes()
    state.start_take(take)
    for w in warnings:
        state.apply_event(take, WarningEvent(w))
    state.apply_event(take, ResultEvent({"output_pattern": "/o/x.####.exr", "frames": [e["frame"] for e in frame_trust],
                                         "warnings": warnings, "frame_trust": frame_trust}))
    state.apply_event(take, JobFinished(JobStatus.DONE, "finished"))
    return take


def test_each_take_shows_a_trust_strip_and_its_warnings(make_panel, shoot, qtbot, edit, tmp_path):
    from shotfill_plugin.protocol import LOW_TRUST, FrameTrust
    from shotfill_plugin.widgets.takes import trust_colour

    panel = make_panel(output_dir=str(tmp_path / "renders"), engine="flow", frames=12)
    assert panel.load_edit(str(edit))
    _click_target(qtbot, panel, "V1.gap1")
    panel.generate()                                         # a real worker: shot A and B share no motion
    _wait_idle(qtbot, panel)
    bridge = panel.state.takes[0]
    assert bridge.status is TakeStatus.DONE
    handles = "8 handle frames of 'shotA' and 8 of 'shotB' are real frames of the gap; generating the 4 between them"
    fallback = ("bridge: fell back to a dissolve on frames 1001-1004: the shots do not follow one motion; "
                "the result is a cross-dissolve")
    assert bridge.warnings == [handles, fallback]
    assert [(e.frame, e.method) for e in bridge.frame_trust] == [(f, "dissolve") for f in range(1001, 1005)]
    row = panel.take_row(0)
    assert row.trust.isVisible() and len(row.trust.entries()) == 4
    assert fallback in row.warnings.text() and row.warnings.isVisible()
    assert "trust 0.00 (lowest 0.00)" in bridge.summary() and "2 warnings" in bridge.summary()
    shoot(panel, "trust_bridge")

    # an extension whose motion fades: its weak frames are red, its strong ones green, each cell tells
    _click_target(qtbot, panel, "V1.clip2.tail")
    trust = [0.92, 0.81, 0.66, 0.5, 0.37, 0.26, 0.19, 0.15, 0.11, 0.08, 0.06, 0.05]
    low = "frames 1045-1050 of the extension: trust below 0.2 (lowest 0.05: the motion could not be followed)"
    entries = [{"frame": 1039 + i, "trust": t, "method": "extrapolated"} for i, t in enumerate(trust)]
    ext = _feed_take(panel, entries, [low])
    assert ext.frame_trust == tuple(FrameTrust(e["frame"], e["trust"], e["method"]) for e in entries)
    assert ext.warnings == [low]
    panel.takes_list.setCurrentRow(1)
    row = panel.take_row(1)
    strip = row.trust
    assert strip.tooltip_at(0) == "frame 1039: trust 0.92, extrapolated"
    assert strip.tooltip_at(11) == f"frame 1050: trust 0.05 (low: below {LOW_TRUST:g}), extrapolated"
    assert strip.cell_at(strip.cell_rect(6).center().x()) == 6
    image = strip.grab().toImage()
    colours = [image.pixelColor(strip.cell_rect(i).center().toPoint()) for i in (0, 11)]
    assert colours == [trust_colour(0.92), trust_colour(0.05)]
    assert colours[0].green() > colours[0].red() and colours[1].red() > 2 * colours[1].green()
    assert trust_colour(None) != trust_colour(0.0) and trust_colour(LOW_TRUST) != trust_colour(0.0)
    below, at = trust_colour(LOW_TRUST - 0.01), trust_colour(LOW_TRUST)   # a step at the threshold
    assert at.green() - below.green() > 60
    assert low in row.warnings.text()
    assert row.height() >= row.warnings.height() + row.trust.height()     # the row makes room for them
    shoot(panel, "trust")


def test_the_panel_seeds_are_the_jobs(make_panel, qtbot, edit, tmp_path):
    from shotfill.job import MAX_SEED
    from shotfill_plugin.state import MAX_SEED as PANEL_MAX_SEED

    assert PANEL_MAX_SEED == MAX_SEED
    panel = make_panel(output_dir=str(tmp_path / "renders"), seed=MAX_SEED - 1, takes=2)
    assert panel.load_edit(str(edit))
    assert panel.state.can_generate() == (True, "")
    panel.state.update_settings(takes=3)                     # seeds 2147483646..2147483648: one too many
    ok, why = panel.state.can_generate()
    assert not ok and "would need seed 2147483648" in why and "lower the seed or the takes" in why
    assert not panel.generate_button.isEnabled() and "2147483648" in panel.generate_button.toolTip()


# ---------------------------------------------------------------------------
# the panel explains itself: why Generate is disabled, every item of the edit, handles and
# generated frames, search folders, and a hint when Qt is missing
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_plan(edit) -> dict:
    """``shotfill plan --json`` of the sample edit, from the real engine."""
    return client.plan(str(edit), command=ENGINE.split())


def _plan_with(plan: dict, target_id: str, **changes) -> dict:
    """``plan`` with target ``target_id``'s entry changed (the others as they are)."""
    plan = json.loads(json.dumps(plan))
    entry = next(t for t in plan["targets"] if t["id"] == target_id)
    for key, value in changes.items():
        if key in ("clip_a", "clip_b") and entry[key]:
            entry[key].update(value)
        else:
            entry[key] = value
    return plan


def _state_for(plan: dict | None, target_id: str | None = None, **settings):
    from shotfill_plugin.state import PanelState

    state = PanelState(Settings(**settings))
    if plan is not None:
        state.load_plan(plan)
        if target_id is not None:
            state.select_target(target_id)
            assert state.selected_id == target_id
    return state


@pytest.mark.parametrize("case, reason", [
    ("nothing loaded", "no edit loaded"),
    ("no targets", "no targets in shotfill sample edit"),
    ("no target picked", "choose a target"),
    ("the filter shows none", "no Fill targets in this edit: set Show to All targets"),
    ("media offline", "media offline: shotB (add the folder that holds it to Search folders)"),
    ("handles cover the gap", "nothing to generate: the handles (6 + 6 frames) cover the 12-frame gap"),
    ("frames within the handles", "set Frames to add above 8: the clip has 8 handle frames there"),
    ("a job is running", "job running: wait for it or cancel it"),
    ("seeds past the largest", "would need seed 2147483648"),
])
def test_generate_says_why_it_cannot_run(sample_plan, case, reason):
    from shotfill_plugin.state import MAX_SEED

    plan, target, settings = sample_plan, "V1.gap1", {}
    if case == "nothing loaded":
        plan = target = None
    elif case == "no targets":
        plan, target = {**sample_plan, "targets": []}, None
    elif case == "the filter shows none":
        plan = {**sample_plan, "targets": [t for t in sample_plan["targets"] if t["kind"] != "fill"]}
        settings = {"operation": "fill"}
        target = None
    elif case == "media offline":
        plan = _plan_with(sample_plan, "V1.gap1", ready=False, clip_b={"exists": False})
    elif case == "handles cover the gap":
        plan = _plan_with(sample_plan, "V1.gap1", frames=12, handle_frames={"a": 6, "b": 6}, generated_frames=0)
    elif case == "frames within the handles":
        target, settings = "V1.clip1.tail", {"frames": 8}
    elif case == "seeds past the largest":
        settings = {"seed": MAX_SEED - 1, "takes": 3}
    state = _state_for(plan, target, **settings)
    if case == "no target picked":
        state.selected_id = None
    if case == "a job is running":
        state.start_take(state.queue_takes()[0])
    ok, why = state.can_generate()
    assert not ok and reason in why, why
    if case == "frames within the handles":           # one frame past the handles, it can run
        state.update_settings(frames=9)
        assert state.can_generate() == (True, "")
        assert state.target.frame_split(state.settings) == (8, 1)


def test_what_the_search_folders_relinked_is_said(sample_plan):
    relink = [{"track": "V1", "clip": "shotA", "status": "relinked", "wanted": "a.1001.exr", "path": "/p/a.1001.exr",
               "candidates": []},
              {"track": "V1", "clip": "shotB", "status": "ambiguous", "wanted": "b.1001.exr", "path": None,
               "candidates": ["/p/x/b.1001.exr", "/p/y/b.1001.exr"]},
              {"track": "V1", "clip": "shotC", "status": "not_found", "wanted": "c.1001.exr", "path": None,
               "candidates": []}]
    state = _state_for({**sample_plan, "relink": relink})
    assert "relinked 1 clip(s) from the search folders, 2 not relinked (see the log)" in state.status_message
    lines = [e.text for e in state.log_entries]
    assert "clip shotB (track V1) not relinked: b.1001.exr is in 2 places: /p/x/b.1001.exr, /p/y/b.1001.exr" in lines
    assert "clip shotC (track V1) not relinked: no c.1001.exr in the search folders" in lines


def test_implausible_targets_left_out_are_said(sample_plan):
    plan = {**sample_plan, "left_out": [{"id": "V1.gap7", "implausible": "a bridge of 12114 frames (8 min 24 s)"}]}
    state = _state_for(plan)
    assert "1 implausible target(s) left out, V1.gap7: a bridge of 12114 frames" in state.status_message


def test_generate_can_run_on_a_ready_target(sample_plan):
    state = _state_for(sample_plan, "V1.gap1")
    assert state.can_generate() == (True, "")
    assert state.target.frame_split(state.settings) == (16, 4)   # 8 + 8 handle frames, 4 generated


def test_the_reason_shows_beside_generate(make_panel, qtbot, edit, shoot):
    panel = make_panel()
    assert panel.generate_reason.isVisible() and panel.generate_reason.text() == "no edit loaded"
    assert panel.generate_reason.geometry().top() < panel.generate_button.geometry().bottom()   # one row
    assert panel.load_edit(str(edit))
    _click_target(qtbot, panel, "V1.clip1.tail")
    assert panel.generate_button.isEnabled() and panel.generate_reason.text() == ""
    panel.frames_spin.setValue(8)                            # within shot A's 8 tail handles
    assert not panel.generate_button.isEnabled()
    assert panel.generate_reason.text().startswith("set Frames to add above 8")
    assert panel.generate_reason.text() in panel.generate_button.toolTip()
    shoot(panel, "generate_reason")
    panel.frames_spin.setValue(12)
    assert panel.generate_button.isEnabled() and panel.generate_reason.text() == ""


def test_the_table_shows_frames_from_handles_and_generated(make_panel, edit):
    panel = make_panel(frames=24)
    assert panel.load_edit(str(edit))
    header = [panel.table.headerItem().text(c) for c in range(panel.table.columnCount())]
    assert header == ["Target", "Operation", "Record", "Frames", "From handles", "Generated", "Clips"]
    rows = {panel.table.topLevelItem(i).text(0): [panel.table.topLevelItem(i).text(c) for c in range(7)]
            for i in range(panel.table.topLevelItemCount())}
    assert rows["V1.gap1"][3:6] == ["20", "8 + 8", "4"]          # a bridge: A's tail + B's head handles
    assert rows["V1.clip1.tail"][3:6] == ["+24", "8", "16"]      # an extension: its handles first
    assert rows["V1.clip1.head"][3:6] == ["+24", "0", "24"]
    assert rows["V1.clip3.fill"][3:6] == ["24", "0", "24"]
    panel.frames_spin.setValue(30)
    assert panel.table.topLevelItem(1).text(0) == "V1.clip1.tail" and panel.table.topLevelItem(1).text(5) == "22"


def _messy_edit(folder: Path, edit: Path) -> Path:
    """The sample edit with a long track name, a long clip name whose media is offline, a
    dissolve before it, and a result track shotfill placed for V1.gap1."""
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(edit))
    track = timeline.tracks[0]
    track.name = "picture lock, reel 2, conformed from editorial's 2026-12-01 turnover"
    clips = [item for item in track if isinstance(item, otio.schema.Clip)]
    clips[2].name = "shotC_with_the_long_name_an_avid_bin_gives_v003"
    clips[2].media_reference.target_url_base = str(folder / "nowhere") + "/"
    track.insert(list(track).index(clips[2]), otio.schema.Transition(
        name="dissolve", in_offset=otio.opentime.RationalTime(4, 24), out_offset=otio.opentime.RationalTime(4, 24)))
    results = otio.schema.Track(name="shotfill V1.gap1", kind=otio.schema.TrackKind.Video,
                                metadata={"shotfill": {"results": True, "target_id": "V1.gap1"}})
    results.append(otio.schema.Gap(duration=otio.opentime.RationalTime(40, 24)))
    results.append(otio.schema.Clip(name="V1.gap1", metadata={"shotfill": {"target_id": "V1.gap1"}},
                                    source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(1001, 24),
                                                                         otio.opentime.RationalTime(20, 24))))
    timeline.tracks.append(results)
    path = edit.parent / f"messy_{folder.name}.otio"          # beside the edit: its media paths are relative
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _pixel(widget, point):
    return widget.grab().toImage().pixelColor(point.toPoint())


def test_the_strip_draws_every_item_with_full_names(make_panel, edit, tmp_path, shoot):
    from shotfill_plugin.widgets.palette import CLIP, OFFLINE, RESULT

    messy = _messy_edit(tmp_path, edit)
    plan = client.plan(str(messy), command=ENGINE.split())
    [v1, results] = plan["tracks"]
    assert [i["kind"] for i in v1["items"]] == ["clip", "gap", "clip", "transition", "clip"]
    assert [i["media"] for i in v1["items"] if i["kind"] == "clip"] == ["online", "online", "offline"]
    assert (v1["label"], results["label"], results["results"], results["target_id"]) == \
        ("V1", None, True, "V1.gap1")
    assert [t["id"] for t in plan["targets"] if t["id"] == "V1.gap1"] == ["V1.gap1"]   # the result is no target

    panel = make_panel()
    assert panel.load_edit(str(messy))
    strip = panel.strip
    drawn = [(item.kind, item.name) for _, item, _ in strip.items()]
    assert drawn == [("clip", "shotA"), ("gap", ""), ("clip", "shotB"),
                     ("clip", "shotC_with_the_long_name_an_avid_bin_gives_v003"), ("gap", ""),
                     ("clip", "V1.gap1"), ("transition", "dissolve")]
    titles = [title for _, title in strip.track_titles()]
    assert titles == ["V1.gap1 result",                        # the result track, named after its target
                      "V1 \u00b7 picture lock, reel 2, conformed from editorial's 2026-12-01 turnover"]
    # names are elided to fit, and hovering tells them whole
    [_, (v1_box, _)] = strip.track_titles()
    assert strip.fontMetrics().horizontalAdvance(titles[1]) > v1_box.width()
    assert strip.tooltip_at(v1_box.center()) == titles[1]
    rects = {item.name: rect for rect, item, _ in strip.items() if item.kind == "clip"}
    long_name = "shotC_with_the_long_name_an_avid_bin_gives_v003"
    assert strip.fontMetrics().horizontalAdvance(long_name) > rects[long_name].width()
    tip = strip.tooltip_at(rects[long_name].center())            # the fill target over the whole clip
    assert long_name in tip and "media offline" in tip
    dissolve = next(rect for rect, item, _ in strip.items() if item.kind == "transition")
    assert "dissolve: transition" in strip.tooltip_at(QtCore.QPointF(dissolve.center().x(), dissolve.top() + 1))
    assert "placed by shotfill for V1.gap1" in strip.tooltip_at(rects["V1.gap1"].center())
    gap = strip.rect_of("V1.gap1")
    assert "8 + 8 handle frames of the clips, 4 generated" in strip.tooltip_at(gap.center())
    # the colours say what each clip is
    inside = QtCore.QPointF(3, 3)
    assert _pixel(strip, rects["shotA"].topLeft() + QtCore.QPointF(30, 3)) == CLIP
    assert _pixel(strip, rects[long_name].topLeft() + QtCore.QPointF(30, 3)) == OFFLINE
    assert _pixel(strip, rects["V1.gap1"].topLeft() + inside) == RESULT
    shoot(panel, "messy_edit")


def test_the_strip_draws_an_edit_without_targets(make_panel, edit, tmp_path, shoot):
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(edit))
    track = timeline.tracks[0]
    for item in list(track):
        if isinstance(item, otio.schema.Gap):
            track.remove(item)                                     # no gap to bridge,
        else:
            item.media_reference = otio.schema.MissingReference()  # and no media to extend or fill
    path = tmp_path / "offline.otio"
    otio.adapters.write_to_file(timeline, str(path))
    panel = make_panel()
    assert panel.load_edit(str(path))
    assert panel.state.targets == [] and "nothing to do in offline.otio" in panel.state.status_message
    assert "offline" in panel.state.status_message              # the plan's reason (or the panel's own)
    assert [item.name for _, item, _ in panel.strip.items() if item.kind == "clip"] == ["shotA", "shotB", "shotC"]
    assert panel.strip.rect_of("V1.gap1") is None
    assert not panel.generate_button.isEnabled()
    assert panel.generate_reason.text() == "no targets in shotfill sample edit"
    from shotfill_plugin.widgets.palette import OFFLINE

    shot_a = next(rect for rect, item, _ in panel.strip.items() if item.name == "shotA")
    assert _pixel(panel.strip, shot_a.topLeft() + QtCore.QPointF(30, 3)) == OFFLINE
    shoot(panel, "no_targets")


def test_a_plan_without_tracks_still_draws_the_targets_clips(sample_plan):
    """An engine whose ``plan --json`` has no ``tracks`` (or host media): the targets' clips."""
    from shotfill_plugin.state import PanelState
    from shotfill_plugin.widgets import TimelineStrip

    state = PanelState()
    state.load_plan({k: v for k, v in sample_plan.items() if k != "tracks"})
    strip = TimelineStrip()
    strip.resize(800, 60)
    strip.set_edit(state.tracks, state.targets, None)
    assert state.tracks == [] and [item.name for _, item, _ in strip.items()] == ["shotA", "shotB", "shotC"]
    assert strip.rect_of("V1.gap1") is not None


# -- search folders ---------------------------------------------------------------------
def test_the_search_folders_the_panel_passes_parse_with_the_real_parser(tmp_path):
    """``shotfill plan`` gets ``--search-path DIR`` per folder, as the engine's parser spells it."""
    from shotfill.cli.root import build_parser

    folders = [str(tmp_path / "plates a"), str(tmp_path / "b")]
    args = client.plan_args("cut.otio", rate=24.0, search_paths=folders)
    parsed = build_parser().parse_args(args)          # an option the engine spells otherwise exits here
    assert (parsed.command, parsed.edit, parsed.json, parsed.rate, parsed.search_path) == \
        ("plan", "cut.otio", True, 24.0, folders)
    assert "--search-path" not in client.plan_args("cut.otio")


def test_search_folders_are_remembered_and_reach_plan_and_jobs(make_panel, qtbot, edit, tmp_path, monkeypatch):
    from shotfill.job import JobSpec

    folders = [str(tmp_path / "plates"), str(tmp_path / "more plates")]
    for folder in folders:
        Path(folder).mkdir()
    panel = make_panel(output_dir=str(tmp_path / "renders"))
    assert panel.load_edit(str(edit))
    calls = []
    real_plan = client.plan
    monkeypatch.setattr(client, "plan", lambda *a, **k: calls.append(k["search_paths"]) or real_plan(*a, **k))
    panel.search_edit.setText(os.pathsep.join(folders))
    panel.search_edit.editingFinished.emit()
    assert calls == [tuple(folders)] and panel.state.status is Status.LOADED    # the edit read again with them
    assert json.loads((tmp_path / "config" / "panel.json").read_text())["search_paths"] == folders
    assert make_panel().search_edit.text() == os.pathsep.join(folders)
    _click_target(qtbot, panel, "V1.gap1")
    [take] = panel.state.queue_takes()
    assert take.job["edit"]["search_paths"] == folders
    assert JobSpec.from_dict(take.job).edit.search_paths == tuple(folders)      # the engine's job reads it
    panel.search_edit.clear()
    panel.search_edit.editingFinished.emit()
    assert calls[-1] == () and "search_paths" not in panel.state.queue_takes()[0].job["edit"]
    settings, problems = Settings.from_dict({"search_paths": "/plates"}, "test")
    assert settings.search_paths == () and "must be a list of folder paths" in problems[0]


# -- no Qt ----------------------------------------------------------------------------------
def test_the_panel_without_qt_says_to_install_the_extra(tmp_path):
    code = ("import sys; sys.modules['PySide6'] = None; sys.modules['PySide2'] = None\n"
            "from shotfill_plugin import app\n"
            f"sys.exit(app.main([{str(tmp_path / 'cut.otio')!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "pip install 'shotfill[panel]'" in out.stderr and "PySide6" in out.stderr
    assert "Traceback" not in out.stderr
    help_ = subprocess.run([sys.executable, "-c", code.replace(repr(str(tmp_path / "cut.otio")), "'--help'")],
                           capture_output=True, text=True, timeout=60)
    assert help_.returncode == 0 and "shotfill-panel" in help_.stdout         # --help needs no Qt
