"""``shotfill info PATH`` (what an EXR file, frame sequence, movie or edit holds) and
``shotfill plan EDIT`` (the targets an edit offers): the commands that only look."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import EXIT_OK, MediaError

EXR_MAGIC = b"\x76\x2f\x31\x01"


def add_parser(sub) -> None:
    """Add ``info`` and ``plan`` to the tree."""
    p = sub.add_parser("info", help="what an EXR, frame sequence, movie or edit holds")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")
    p.add_argument("--rate", type=float)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("plan", help="list the targets of an edit (gaps, heads, tails, fills)")
    p.add_argument("edit")
    p.add_argument("--json", action="store_true")
    p.add_argument("--rate", type=float)
    p.set_defaults(func=cmd_plan)


def cmd_info(args) -> int:
    info = describe(args.path, rate=args.rate)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(format_info(info))
    return EXIT_OK


def cmd_plan(args) -> int:
    from .. import timeline as tl
    from ..plan import TaskKind

    timeline = tl.load_edit(args.edit, rate=args.rate)
    targets = tl.find_targets(timeline, edit_path=args.edit)
    if args.json:
        print(json.dumps({"edit": str(Path(args.edit).resolve()), "name": timeline.name,
                          "targets": [t.to_dict() for t in targets]}, indent=2, default=str))
        return EXIT_OK
    print(f"{args.edit}: {len(targets)} targets")
    for t in targets:
        d = t.to_dict()
        first = d.get("record_first_tc") or d.get("record_first")
        last = d.get("record_last_tc") or d.get("record_last")
        if t.frames is not None:
            frames = f"{t.frames} frames"
        else:
            handles = t.clip_a.handles_after if t.kind is TaskKind.EXTEND_FORWARD else t.clip_a.handles_before
            frames = f"N frames, {handles or 0} handles"
        clip = t.clip_a.clip_name if t.clip_a is not None else ""
        if t.clip_b is not None:
            clip += f" -> {t.clip_b.clip_name}"
        ready = "" if d.get("ready", True) else "  (media offline)"
        print(f"  {t.id:<16} {t.kind.value:<16} {first}-{last}  {frames:<22} {clip}{ready}")
    return EXIT_OK


def describe(path: str, *, rate: float | None = None) -> dict:
    """A json-serialisable description of ``path``; raises ShotfillError subclasses."""
    from ..timeline.paths import is_edit

    if is_edit(path):
        return _describe_edit(path, rate)
    plain = Path(path.split("#", 1)[0])
    if plain.is_file() and "#" not in path and (plain.suffix.lower() == ".exr" or _has_exr_magic(plain)):
        from ..io.exr import exr_info

        return {"kind": "exr", "path": str(plain), **exr_info(plain)}
    from ..io.media import open_source

    return {"kind": "media", **open_source(path).info()}


def _has_exr_magic(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == EXR_MAGIC


def _describe_edit(path: str, rate: float | None) -> dict:
    import opentimelineio as otio

    from ..timeline import find_targets, load_edit

    if not Path(path).exists():
        raise MediaError(path, "no such file")
    tl = load_edit(path, rate=rate)
    tracks = []
    for track in tl.tracks:
        clips = sum(1 for c in track if isinstance(c, otio.schema.Clip))
        gaps = sum(1 for c in track if isinstance(c, otio.schema.Gap))
        tracks.append({"name": track.name, "kind": track.kind, "clips": clips, "gaps": gaps,
                       "duration_frames": track.duration().to_frames() if len(track) else 0})
    duration = tl.duration()
    targets = find_targets(tl, edit_path=path)
    return {"kind": "edit", "path": str(Path(path).resolve()), "name": tl.name,
            "rate": duration.rate, "duration_frames": duration.to_frames(),
            "tracks": tracks, "targets": len(targets)}


def format_info(info: dict) -> str:
    """Human-readable lines."""
    kind = info.get("kind")
    if kind == "edit":
        lines = [f"{info['path']}: edit '{info['name']}', {info['duration_frames']} frames at {info['rate']:g} fps, "
                 f"{info['targets']} targets (shotfill plan lists them)"]
        for t in info["tracks"]:
            lines.append(f"  {t['kind']:<6} {t['name'] or '(unnamed)':<20} {t['clips']} clips, {t['gaps']} gaps, "
                         f"{t['duration_frames']} frames")
        return "\n".join(lines)
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
    return "\n".join(lines)
