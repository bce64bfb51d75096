"""``shotfill info PATH`` (what an EXR file, frame sequence, movie or edit holds) and
``shotfill plan EDIT`` (the targets an edit offers): the commands that only look."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import EXIT_OK, MediaError

EXR_MAGIC = b"\x76\x2f\x31\x01"


def edit_arguments(p) -> None:
    """``--rate``, ``--timeline`` and ``--search-path``: how a command reading an edit reads it."""
    from .common import edit_lookup_arguments

    p.add_argument("--rate", type=float, help="frame rate for edits that need one (EDL, ALE)")
    edit_lookup_arguments(p)


def add_parser(sub) -> None:
    """Add ``info`` and ``plan`` to the tree."""
    p = sub.add_parser("info", help="what an EXR, frame sequence, movie or edit holds")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")
    p.add_argument("--decode-all", action="store_true",
                   help="EXR sequences: decode every frame's pixels (default: a sample, time-bounded)")
    edit_arguments(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("plan", help="list the targets of an edit (gaps, heads, tails, fills)")
    p.add_argument("edit")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true",
                   help="also list implausible targets (a bridge of minutes), marked")
    edit_arguments(p)
    p.set_defaults(func=cmd_plan)


def cmd_info(args) -> int:
    info = describe(args.path, rate=args.rate, search_paths=args.search_path or (), timeline=args.timeline,
                    decode_all=args.decode_all)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(format_info(info))
    return EXIT_OK


def read_plan(edit, *, rate=None, timeline=None, search_paths=()) -> dict:
    """What ``shotfill plan`` reports, as data: the timeline, its targets (each with
    ``implausible``: the reason, or None), the relink report, offline counts and, when there
    are no targets, the reasons why."""
    from .. import timeline as tl
    from ..timeline.checks import implausible, no_target_reasons, offline_clips

    report: list = []
    loaded = tl.load_edit(edit, rate=rate, timeline=timeline, search_paths=search_paths, relinked=report)
    targets = tl.find_targets(loaded, edit_path=edit)
    offline, playing = offline_clips(loaded, edit)
    return {
        "timeline": loaded,
        "targets": [(t, implausible(t)) for t in targets],
        "relink": report,
        "offline": offline,
        "clips": playing,
        "reasons": no_target_reasons(loaded, edit) if not targets else [],
    }


def cmd_plan(args) -> int:
    from ..timeline.relink import summary

    plan = read_plan(args.edit, rate=args.rate, timeline=args.timeline, search_paths=args.search_path or ())
    timeline = plan["timeline"]
    shown = [(t, why) for t, why in plan["targets"] if args.all or why is None]
    left_out = len(plan["targets"]) - len(shown)
    if args.json:
        print(json.dumps({"edit": str(Path(args.edit).resolve()), "name": timeline.name,
                          "targets": [{**t.to_dict(), "implausible": why} for t, why in shown],
                          "left_out": [{"id": t.id, "implausible": why} for t, why in plan["targets"]
                                       if (t, why) not in shown],
                          "reasons": plan["reasons"], "offline_clips": plan["offline"], "clips": plan["clips"],
                          "relink": [e.to_dict() for e in plan["relink"]],
                          "tracks": plan_tracks(timeline, args.edit)}, indent=2, default=str))
        return EXIT_OK
    count = len(plan["targets"])
    head = f"{args.edit}: timeline {timeline.name!r}, {count} target{'' if count == 1 else 's'}"
    if left_out:
        head += f" ({left_out} implausible left out; --all lists them)"
    print(head)
    if args.search_path:
        print(f"  relink: {summary(plan['relink'])}")
        for entry in plan["relink"]:
            if entry.status == "ambiguous":
                print(f"    {entry.clip}: {entry.wanted} is in {len(entry.candidates)} places, not relinked: "
                      + ", ".join(entry.candidates))
    if plan["offline"]:
        print(f"  offline: {plan['offline']} of {plan['clips']} clips have no media on disk here"
              + ("" if args.search_path else "; relink with --search-path DIR"))
    for reason in plan["reasons"]:
        print(f"  no targets: {reason}")
    hidden = [(t, why) for t, why in plan["targets"] if why is not None and not args.all]
    for t, why in hidden[:PLAN_LEFT_OUT_LISTED]:
        print(f"  left out: {t.id} {t.kind.value}, {why}")
    if len(hidden) > PLAN_LEFT_OUT_LISTED:
        print(f"  left out: {len(hidden) - PLAN_LEFT_OUT_LISTED} more")
    if not shown:
        return EXIT_OK
    rows = [("TARGET", "KIND", "WHERE (RECORD)", "ADDS", "HANDLES", "GENERATED", "CLIPS")]
    rows += [_plan_row(t, why) for t, why in shown]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    return EXIT_OK


#: Implausible targets ``shotfill plan`` names when it leaves them out (the rest are counted).
PLAN_LEFT_OUT_LISTED = 5


def _plan_row(t, why) -> tuple[str, ...]:
    """One line of ``shotfill plan``: where the target adds frames, how many, from handles or generated."""
    from ..plan import TaskKind

    d = t.to_dict()
    first = d.get("record_first_tc") or str(d.get("record_first"))
    last = d.get("record_last_tc") or str(d.get("record_last"))
    handles = d.get("handle_frames") or {}
    if t.kind is TaskKind.BRIDGE:
        where, adds = f"{first}-{last}", f"{t.frames}"
        handle_text = f"{handles.get('a', 0)} A + {handles.get('b', 0)} B" if handles else "?"
        generated = d.get("generated_frames")
        generated = "0 (handles cover it)" if generated == 0 else str(generated if generated is not None else t.frames)
    elif t.kind in (TaskKind.EXTEND_BACKWARD, TaskKind.EXTEND_FORWARD):
        where = f"before {first}" if t.kind is TaskKind.EXTEND_BACKWARD else f"after {last}"
        available = handles.get("available", 0) if handles else 0
        adds, handle_text = "N (--frames)", f"up to {available}"
        generated = "N" if not available else f"N - {available}"
    else:
        where, adds, handle_text, generated = f"{first}-{last}", f"{t.frames}", "-", f"{t.frames} (masked)"
    clips = t.clip_a.clip_name if t.clip_a is not None else ""
    if t.clip_b is not None:
        clips += f" -> {t.clip_b.clip_name}"
    notes = ([] if d.get("ready", True) else ["media offline"]) + ([f"IMPLAUSIBLE: {why}"] if why else [])
    notes += [f"media damaged: {reason}" for reason in d.get("damaged") or []]
    if notes:
        clips += "  (" + "; ".join(notes) + ")"
    return (t.id, t.kind.value, where, adds, handle_text, generated, clips)


def plan_tracks(timeline, edit_path) -> list[dict]:
    """Every video track's items in record order, for the panel's timeline strip (``plan --json``).

    Each track: ``index`` (in ``timeline.tracks``), ``name``, ``label`` (``V1``... as target ids
    count tracks; None for shotfill's result tracks), ``results`` and the ``target_id`` a result
    track holds. Each item: ``kind`` (clip, gap, transition, or the schema's name), ``name``,
    ``record_first``/``record_last`` (inclusive frames in track time, as targets give them; a
    transition spans the frames it overlaps), ``media`` (a clip's: online, offline or none) and
    ``target_id`` (a clip shotfill placed).
    """
    from collections.abc import Mapping

    import opentimelineio as otio

    from ..timeline.targets import _clip_media, is_result_track, result_target_id

    folder = Path(edit_path).absolute()
    listing, number = [], 0
    for index, track in enumerate(timeline.tracks):
        if track.kind != otio.schema.TrackKind.Video:
            continue
        results = is_result_track(track)
        number += 0 if results else 1
        ours = track.metadata.get("shotfill")
        items, ranges = [], track.range_of_all_children()
        for item in track:
            record = ranges[item]
            kind = {otio.schema.Clip: "clip", otio.schema.Gap: "gap",
                    otio.schema.Transition: "transition"}.get(type(item), item.schema_name().lower())
            entry = {"kind": kind, "name": item.name, "record_first": record.start_time.to_frames(),
                     "record_last": record.start_time.to_frames() + record.duration.to_frames() - 1,
                     "target_id": result_target_id(item)}
            if kind == "clip":
                media = _clip_media(item, folder)
                entry["media"] = "online" if media.exists else ("offline" if media.path else "none")
            items.append(entry)
        track_target = ours.get("target_id") if isinstance(ours, Mapping) else None
        listing.append({"index": index, "name": track.name, "label": None if results else f"V{number}",
                        "results": results,
                        "target_id": track_target or next((i["target_id"] for i in items if i["target_id"]), None),
                        "items": items})
    return listing


def describe(path: str, *, rate: float | None = None, search_paths=(), timeline: str | None = None,
             decode_all: bool = False) -> dict:
    """A json-serialisable description of ``path``; raises ShotfillError subclasses.

    An EXR file is checked whole (every chunk's header, every part decoded); an EXR sequence
    has every frame's header and chunk table checked and a sample of its frames decoded (all of
    them with ``decode_all``), and says which. A damaged frame is a MediaError naming its file.
    """
    from ..timeline.paths import is_edit

    if is_edit(path):
        return _describe_edit(path, rate, search_paths=search_paths, timeline=timeline)
    plain = Path(path.split("#", 1)[0])
    if plain.is_file() and "#" not in path and (plain.suffix.lower() == ".exr" or _has_exr_magic(plain)):
        from ..io.exr import check_exr, exr_info

        info = {"kind": "exr", "path": str(plain), **exr_info(plain)}
        info["check"] = check_exr(plain)
        return info
    from ..io.media import open_source

    with open_source(path) as source:
        info = source.info()
    if info.get("kind") == "exr" and not info.get("still"):
        return {**info, **describe_exr_sequence(info["pattern"], info["frames"], decode_all=decode_all)}
    if info.get("kind") == "exr":     # an unnumbered EXR still: open_source read it; check it whole too
        from ..io.exr import check_exr

        info["check"] = check_exr(info["path"])
    return {"kind": "media", **info}


#: Frames of an EXR sequence decoded by ``shotfill info`` (spread over the range, first and last
#: included), unless ``--decode-all``; and the seconds that decoding may take before it stops.
DECODE_SAMPLE = 8
DECODE_BUDGET_S = 20.0


def describe_exr_sequence(pattern: str, frames: dict, *, decode_all: bool = False,
                          budget_s: float = DECODE_BUDGET_S) -> dict:
    """What an EXR sequence's frames are, frame by frame, and that each is whole.

    Every frame's header is read and its chunk table and chunk headers checked (cheap: no
    pixels); ``compression``, ``channels``, ``pixel_types``, ``data_window``,
    ``display_window`` and ``parts`` are each a list of ``{"value", "frames"}`` (the frames as
    ``[first, last]`` spans), one entry when every frame agrees. Pixels are decoded for a sample
    of :data:`DECODE_SAMPLE` frames spread over the range (all frames with ``decode_all``),
    until ``budget_s`` seconds have gone (``decode_all``: no limit); ``check`` says which
    frames were decoded and which were not.
    """
    import time

    from ..io.exr import check_exr, frame_summary
    from ..io.patterns import _spans, parse_pattern

    files = parse_pattern(pattern)
    numbers = _sequence_frames(frames)
    keys = ("compression", "channels", "pixel_types", "data_window", "display_window", "parts")
    seen: dict[str, dict] = {key: {} for key in keys}
    chunks = 0
    for frame in numbers:
        file = files.path(frame)
        summary = frame_summary(file)
        chunks += check_exr(file, decode=False)["chunks"]
        for key in keys:
            seen[key].setdefault(_hashable(summary[key]), (summary[key], []))[1].append(frame)
    sample = numbers if decode_all else _spread(numbers, DECODE_SAMPLE)
    decoded, started = [], time.monotonic()
    for frame in sample:
        if not decode_all and decoded and time.monotonic() - started > budget_s:
            break
        check_exr(files.path(frame))
        decoded.append(frame)
    described = {key: [{"value": value, "frames": [list(s) for s in _spans(where)]}
                       for value, where in seen[key].values()] for key in keys}
    return {
        "sequence": True,
        **described,
        "check": {"headers": len(numbers), "chunks": chunks, "decoded": [list(s) for s in _spans(decoded)],
                  "decoded_count": len(decoded), "not_decoded": len(numbers) - len(decoded),
                  "seconds": round(time.monotonic() - started, 2)},
    }


def _sequence_frames(frames: dict) -> list[int]:
    """The frame numbers a FrameSource.info() ``frames`` block lists: first..last less the holes."""
    holes = {n for first, last in frames.get("missing", []) for n in range(first, last + 1)}
    return [n for n in range(frames["first"], frames["last"] + 1) if n not in holes]


def _spread(numbers: list[int], count: int) -> list[int]:
    """Up to ``count`` of ``numbers`` spread evenly, the first and last included."""
    if len(numbers) <= count:
        return list(numbers)
    picks = sorted({round(i * (len(numbers) - 1) / (count - 1)) for i in range(count)})
    return [numbers[i] for i in picks]


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def _has_exr_magic(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == EXR_MAGIC


def _describe_edit(path: str, rate: float | None, *, search_paths=(), timeline=None) -> dict:
    import opentimelineio as otio

    from ..timeline import find_targets, load_edit
    from ..timeline.checks import offline_clips

    if not Path(path).exists():
        raise MediaError(path, "no such file")
    tl = load_edit(path, rate=rate, timeline=timeline, search_paths=search_paths)
    tracks = []
    for track in tl.tracks:
        clips = sum(1 for c in track if isinstance(c, otio.schema.Clip))
        gaps = sum(1 for c in track if isinstance(c, otio.schema.Gap))
        tracks.append({"name": track.name, "kind": track.kind, "clips": clips, "gaps": gaps,
                       "duration_frames": track.duration().to_frames() if len(track) else 0})
    duration = tl.duration()
    targets = find_targets(tl, edit_path=path)
    offline, clips = offline_clips(tl, path)
    return {"kind": "edit", "path": str(Path(path).resolve()), "name": tl.name,
            "rate": duration.rate, "duration_frames": duration.to_frames(),
            "tracks": tracks, "targets": len(targets), "offline_clips": offline, "clips": clips}


def format_info(info: dict) -> str:
    """Human-readable lines."""
    kind = info.get("kind")
    if kind == "edit":
        lines = [f"{info['path']}: edit '{info['name']}', {info['duration_frames']} frames at {info['rate']:g} fps, "
                 f"{info['targets']} targets (shotfill plan lists them)"]
        if info.get("offline_clips"):
            lines.append(f"  offline: {info['offline_clips']} of {info['clips']} clips have no media on disk here "
                         "(--search-path DIR relinks them)")
        for t in info["tracks"]:
            lines.append(f"  {t['kind']:<6} {t['name'] or '(unnamed)':<20} {t['clips']} clips, {t['gaps']} gaps, "
                         f"{t['duration_frames']} frames")
        return "\n".join(lines)
    if kind == "exr" and info.get("sequence"):
        return _format_exr_sequence(info)
    if kind == "exr":
        return _format_exr(info)
    fr = info.get("frames", {})
    lines = [f"{info.get('pattern') or info['path']}: {kind}, {info['width']}x{info['height']}, "
             f"frames {fr.get('first')}-{fr.get('last')} ({fr.get('count')})"]
    if fr.get("missing"):
        holes = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in fr["missing"])
        lines.append(f"  missing frames: {holes}")
    for key, label in (("rate", "rate"), ("codec", "codec"), ("bit_depth", "bit depth"),
                       ("default_colourspace", "colour space (default)")):
        if info.get(key) is not None:
            lines.append(f"  {label}: {info[key]}")
    return "\n".join(lines)


def _format_exr_sequence(info: dict) -> str:
    """An EXR sequence: range, holes, size, then each header field once, or per frame span when it varies."""
    fr = info["frames"]
    size = f"{info['width']}x{info['height']}"
    if len(info.get("display_window") or []) > 1:
        size += f" (frame {fr['first']}; the display window varies)"
    lines = [f"{info['pattern']}: EXR sequence, frames {fr['first']}-{fr['last']} ({fr['count']} frames), {size}"]
    if fr.get("missing"):
        holes = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in fr["missing"])
        missing = sum(b - a + 1 for a, b in fr["missing"])
        lines.append(f"  missing frames: {holes} ({missing} frames)")
    labels = (("compression", "compression"), ("channels", "channels"), ("pixel_types", "pixel type"),
              ("data_window", "data window"), ("display_window", "display window"), ("parts", "parts"))
    for key, label in labels:
        entries = info.get(key) or []
        if len(entries) == 1:
            lines.append(f"  {label}: {_field_text(entries[0]['value'])}")
        else:
            lines.append(f"  {label}: varies over the sequence")
            for entry in entries:
                spans = entry["frames"]
                word = "frame" if len(spans) == 1 and spans[0][0] == spans[0][1] else "frames"
                lines.append(f"    {_field_text(entry['value'])}: {word} {_spans_text(spans)}")
    for key, label in (("rate", "rate"), ("default_colourspace", "colour space (default)")):
        if info.get(key) is not None:
            lines.append(f"  {label}: {info[key]}")
    check = info["check"]
    lines.append(f"  checked: {check['headers']} headers and chunk tables ({check['chunks']} chunks); "
                 f"pixels decoded on {check['decoded_count']} frames ({_spans_text(check['decoded'])})"
                 + (f", {check['not_decoded']} not decoded (--decode-all decodes every frame)"
                    if check["not_decoded"] else ""))
    return "\n".join(lines)


def _field_text(value) -> str:
    if isinstance(value, list) and len(value) == 4 and all(isinstance(v, int) for v in value):
        return f"({', '.join(map(str, value))})"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _spans_text(spans) -> str:
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans) or "none"


def _format_exr(info: dict) -> str:
    """exrheader-style lines: one block per part."""
    parts = info.get("parts", [])
    lines = [f"{info['path']}: OpenEXR, {len(parts)} part{'s' if len(parts) != 1 else ''}"
             + (", multi-view " + ", ".join(info["views"]) if info.get("views") else "")
             + (", deep" if info.get("deep") else "")]
    for part in parts:
        name = part.get("name") or "(unnamed)"
        tiles = f", tiles {part['tiles']}" if part.get("tiled") else ""
        lines.append(f"  part {part['index']} {name}: {part['type']}, {part['compression']}{tiles}, "
                     f"{part.get('line_order', '')}")
        lines.append(f"    data window {tuple(part['data_window'])}, display window {tuple(part['display_window'])}")
        chans = ", ".join(f"{c['name']}:{c['type']}" + ("" if tuple(c.get("sampling", (1, 1))) == (1, 1)
                                                          else f"@{c['sampling'][0]}x{c['sampling'][1]}")
                          for c in part.get("channels", []))
        lines.append(f"    channels {chans}")
        for key, value in sorted(part.get("attributes", {}).items()):
            lines.append(f"    {key}: {value}")
    check = info.get("check")
    if check:
        lines.append(f"  checked: {check['chunks']} chunks, "
                     + ("pixels decoded" if check["decoded"] else "deep samples not decoded"))
    return "\n".join(lines)
