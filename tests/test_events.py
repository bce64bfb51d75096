"""Typed events: JSON lines for the worker protocol, a bar with ETA for people."""
import io
import json

from shotfill.events import HumanSink, JsonLinesSink, ListSink, Progress


def test_jsonl_one_object_per_line():
    buf = io.StringIO()
    sink = JsonLinesSink(buf)
    sink.emit({"event": "stage", "stage": "read", "message": "x"})
    sink.emit({"event": "frame", "frame": 1001, "path": "/a/b.1001.exr", "skipped": False})
    lines = buf.getvalue().splitlines()
    assert [json.loads(l)["event"] for l in lines] == ["stage", "frame"]


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


def test_human_sink_prints_bar_and_messages():
    buf = io.StringIO()
    sink = HumanSink(buf)
    sink.emit({"event": "stage", "stage": "generate", "message": "engine flow"})
    sink.emit({"event": "progress", "stage": "generate", "fraction": 1.0, "eta_s": 0})
    sink.emit({"event": "warning", "message": "prompt ignored"})
    out = buf.getvalue()
    assert "generate: engine flow" in out and "100.0%" in out and "warning: prompt ignored" in out
