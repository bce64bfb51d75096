"""Typed events: JSON lines for the worker protocol, a bar with ETA for people, one form for both sides."""
import ast
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shotfill import errors, events
from shotfill.events import (DemoEvent, ErrorEvent, FrameEvent, HumanSink, JsonLinesSink, ListSink, PreviewEvent,
                             PreviewFrame, PreviewFramesEvent, PreviewRole, Progress, ProgressEvent, ResultEvent,
                             StageEvent, WarningEvent)
from shotfill_plugin import client, protocol

PROTOCOL = Path(protocol.__file__)


def test_jsonl_one_object_per_line():
    buf = io.StringIO()
    sink = JsonLinesSink(buf)
    sink.emit(StageEvent("read", "x"))
    sink.emit(FrameEvent(1001, "/a/b.1001.exr", False))
    assert buf.getvalue() == ('{"event": "stage", "stage": "read", "message": "x"}\n'
                              '{"event": "frame", "frame": 1001, "path": "/a/b.1001.exr", "skipped": false}\n')


def test_progress_is_monotonic_over_stages():
    sink = ListSink()
    p = Progress(sink)
    for stage in ("prepare", "read", "generate", "write"):
        p.begin(stage)
        for f in (0.25, 0.5, 1.0):
            p.update(f)
    fr = [e["fraction"] for e in sink.of("progress")]
    assert fr == sorted(fr)
    assert 0.0 <= fr[0] and fr[-1] <= 1.0
    assert [e["stage"] for e in sink.of("stage")] == ["prepare", "read", "generate", "write"]


def test_progress_events_carry_a_message_only_when_there_is_one():
    sink = ListSink()
    p = Progress(sink)
    p.begin("generate", "engine flow")
    p.update(0.5, "frame 1/2")
    p.finish()
    assert sink.events[0] == {"event": "stage", "stage": "generate", "message": "engine flow"}
    assert list(sink.events[1]) == ["event", "stage", "fraction", "eta_s"]
    assert sink.events[2]["message"] == "frame 1/2"
    assert sink.events[3] == {"event": "progress", "stage": "generate", "fraction": 1.0, "eta_s": 0.0}


def test_human_sink_prints_bar_and_messages():
    buf = io.StringIO()
    sink = HumanSink(buf)
    sink.emit(StageEvent("generate", "engine flow"))
    sink.emit(ProgressEvent("generate", 1.0, 0))
    sink.emit(WarningEvent("prompt ignored"))
    sink.emit(ErrorEvent("no frames", 2))
    out = buf.getvalue()
    assert out == ("generate: engine flow\n[##############################] 100.0% generate ETA 0s\n"
                   "warning: prompt ignored\nerror: no frames\n")


# ---------------------------------------------------------------------------
# one protocol, shared by the engine and the host side
# ---------------------------------------------------------------------------
def test_the_engine_and_the_client_use_the_protocols_tables():
    assert events.STAGE_WEIGHTS is protocol.STAGE_WEIGHTS is client.STAGE_WEIGHTS
    assert events.STAGES is protocol.STAGES is client.STAGES == tuple(protocol.STAGE_WEIGHTS)
    for name in ("EXIT_OK", "EXIT_INTERNAL", "EXIT_BAD_INPUT", "EXIT_CANCELLED"):
        assert getattr(errors, name) == getattr(protocol, name) == getattr(client, name)
    assert (errors.EXIT_OK, errors.EXIT_INTERNAL, errors.EXIT_BAD_INPUT, errors.EXIT_CANCELLED) == (0, 1, 2, 3)
    assert errors.InputError.exit_code == protocol.EXIT_BAD_INPUT
    assert errors.CancelledError.exit_code == protocol.EXIT_CANCELLED
    assert client.parse_event is protocol.parse_event and client.StageEvent is events.StageEvent


def test_the_protocol_imports_only_the_standard_library():
    tree = ast.parse(PROTOCOL.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert not any(isinstance(node, ast.ImportFrom) and node.level > 0 for node in ast.walk(tree))
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_the_protocol_runs_with_the_standard_library_alone(tmp_path):
    """A host's Python: this file alone on the path, no site-packages (no shotfill, Qt or numpy)."""
    (tmp_path / "protocol.py").write_text(PROTOCOL.read_text())
    script = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import protocol; "
              "e = protocol.parse_event('{\"event\": \"warning\", \"message\": \"x\"}'); "
              "assert e.to_dict() == {'event': 'warning', 'message': 'x'}, e")
    subprocess.run([sys.executable, "-I", "-S", "-c", script], check=True, cwd=tmp_path)


EXAMPLES = [
    StageEvent("read", "20 frames"),
    ProgressEvent("generate", 0.45, 0.2, "extend_forward: frame 1/2"),
    ProgressEvent("read", 0.02, None),
    FrameEvent(1049, "/o/a.1049.exr", True),
    PreviewEvent("/o/a.contact.png"),
    PreviewFramesEvent((PreviewFrame(0, PreviewRole.KNOWN, "a 1039", "/p/x.k_a_1039.png"),
                        PreviewFrame(1, PreviewRole.FILL, "1005", "/p/x.1005.after.png", "/p/x.1005.before.png"))),
    WarningEvent("prompt ignored"),
    ResultEvent({"job_id": "j", "output_pattern": "/o/a.####.exr", "frames": [1, 2], "contact_sheet": None}),
    ResultEvent({"job_id": "j", "output_pattern": "/o/a.####.exr", "frames": [1, 2], "warnings": ["w"],
                 "frame_trust": [{"frame": 1, "trust": 0.82, "method": "interpolated"},
                                 {"frame": 2, "trust": None, "method": None}]}),
    ErrorEvent("shot.1010.exr: frame 1010 is missing", 2),
    DemoEvent("/d/edit.otio", "/d/sheet.png", 45.9, 16.6, [{"job_id": "j"}]),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.kind)
def test_every_kind_round_trips_through_its_json_form(event):
    line = json.dumps(event.to_dict(), default=str)
    assert client.parse_event(line) == event
    assert protocol.EVENTS[event.kind] is type(event)
    assert list(event.to_dict())[0] == "event" and event.to_dict()["event"] == event.kind


def test_a_results_frame_trust_is_typed_and_checked():
    event = client.parse_event(json.dumps({
        "event": "result", "output_pattern": "/o/a.####.exr", "frames": [1013, 1014, 1015],
        "warnings": ["frames 1014-1015 of the extension: trust below 0.2"],
        "frame_trust": [{"frame": 1013, "trust": 1, "method": "extrapolated"},
                        {"frame": 1014, "trust": 0.19, "method": "extrapolated"},
                        {"frame": 1015, "trust": None, "method": None}]}))
    assert event.frame_trust == (protocol.FrameTrust(1013, 1.0, "extrapolated"),
                                 protocol.FrameTrust(1014, 0.19, "extrapolated"), protocol.FrameTrust(1015))
    assert [e.is_low for e in event.frame_trust] == [False, True, False]
    assert protocol.trust_summary(event.frame_trust) == (0.595, 0.19)
    assert protocol.trust_summary([protocol.FrameTrust(1)]) is None
    assert event.warnings == ("frames 1014-1015 of the extension: trust below 0.2",)
    # a worker from before frame_trust: none, not an error
    old = client.parse_event('{"event": "result", "output_pattern": "/o/a.####.exr", "frames": [1]}')
    assert old.frame_trust == () and old.warnings == ()


@pytest.mark.parametrize("frame_trust, named", [
    ('{"frame": 1}', "'frame_trust'"),
    ('[{"frame": "1", "trust": 0.5, "method": "held"}]', r"\(frame_trust 0\) has no valid 'frame'"),
    ('[{"frame": 1, "trust": 1.5, "method": "held"}]', r"\(frame_trust 0\) has no valid 'trust' \(0\.\.1\)"),
    ('[{"frame": 1, "trust": 0.5}, {"frame": 2, "trust": 0.5, "method": 7}]', r"\(frame_trust 1\) has no valid 'method'"),
    ('[3]', r"\(frame_trust 0\) is not an object"),
])
def test_a_bad_frame_trust_is_named(frame_trust, named):
    with pytest.raises(protocol.ProtocolError, match=named):
        client.parse_event('{"event": "result", "output_pattern": "/o/a.####.exr", "frames": [1], '
                           '"frame_trust": %s}' % frame_trust)


def test_the_examples_cover_every_kind():
    assert {e.kind for e in EXAMPLES} == set(protocol.EVENTS)
    for cls in protocol.EVENTS.values():
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


def test_a_field_at_fault_is_named():
    with pytest.raises(protocol.ProtocolError, match="worker event 'error' has no valid 'exit_code'"):
        ErrorEvent.from_dict({"event": "error", "message": "x", "exit_code": "2"})
    with pytest.raises(protocol.ProtocolError, match="'demo' has no valid 'fill_psnr_db'"):
        client.parse_event('{"event": "demo", "new_edit": "/e", "contact_sheet": "/s", "results": []}')
    with pytest.raises(protocol.ProtocolError, match=r"'preview_frames' \(frame 0\) has no valid 'role'"):
        PreviewFramesEvent.from_entries([{"position": 0, "role": "x", "label": "a", "after": "/a.png"}])


def _worker(*args, cwd) -> tuple[int, list[str]]:
    proc = subprocess.run([sys.executable, "-m", "shotfill", *map(str, args), "--events", "jsonl"],
                          capture_output=True, text=True, cwd=cwd, timeout=300)
    return proc.returncode, proc.stdout.splitlines()


def test_every_event_the_worker_writes_reads_back_byte_for_byte(tmp_path):
    """The JSON lines real jobs write, through the client's parser and back: the same bytes."""
    demo = tmp_path / "demo"
    plate = demo / "edit" / "media" / "shotA.####.exr"
    runs = [
        (0, ["demo", "--out", demo, "--engine", "flow", "--width", 64, "--height", 36]),    # bridge, extend, fill
        (0, ["extend", plate, "--frames", 2, "--engine", "flow", "--prompt", "dusk", "--out", tmp_path / "x"]),
        (0, ["extend", plate, "--frames", 2, "--engine", "flow", "--prompt", "dusk", "--out", tmp_path / "x"]),
        (2, ["extend", demo / "nothere.####.exr", "--frames", 2, "--engine", "flow", "--out", tmp_path / "y"]),
    ]
    seen = set()
    for code, args in runs:
        rc, lines = _worker(*args, cwd=tmp_path)
        assert rc == code, args
        for line in lines:
            event = client.parse_event(line)
            assert not isinstance(event, client.OutputLine), line
            assert json.dumps(event.to_dict(), default=str) == line
            assert type(event).from_dict(json.loads(line)) == event
            seen.add(event.kind)
    assert seen == set(protocol.EVENTS)
