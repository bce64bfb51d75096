"""Why an edit offers what it offers: the reasons an edit has no targets, the notes worth
printing beside a plan (clips offline), and targets too implausible to offer by default.

:func:`no_target_reasons` looks at the timeline the way :func:`~shotfill.timeline.find_targets`
does (video tracks, shotfill's result tracks left out) and says, in an editor's words, what is
there instead of a target: no video tracks (audio only), no clips, only generators, clips butting
together with no gap, transitions where a gap would be, disabled clips, clips whose media has no
path on this machine (relink with ``--search-path``).

:func:`implausible` is the rule for targets that are almost certainly not what the user wants.
"""
from __future__ import annotations

from pathlib import Path

import opentimelineio as otio

from ..plan import TaskKind
from .targets import MediaKind, _clip_media, _plays, is_result_track

#: A bridge longer than this many seconds is implausible: it is a missing shot, not a gap to bridge.
MAX_BRIDGE_SECONDS = 10.0
#: A bridge longer than both its neighbouring clips is implausible once it is longer than this
#: (short gaps between short clips stay plausible).
MIN_SECONDS_TO_DWARF = 2.0


def implausible(target) -> str | None:
    """Why ``target`` is implausible, or None. Only bridges can be.

    The rule: a bridge is implausible when its gap is longer than :data:`MAX_BRIDGE_SECONDS`
    (10 s), or when it is longer than :data:`MIN_SECONDS_TO_DWARF` (2 s) and longer than both
    neighbouring clips as the edit uses them. Either way the gap is not a join between two
    shots but a missing shot (or an edit read at the wrong rate, a speed effect read as a
    gap); ``shotfill plan`` leaves such targets out unless ``--all`` is given.
    Extensions (the user picks their length) and fills (the clip's own length) never are.
    """
    if target.kind is not TaskKind.BRIDGE or not target.frames:
        return None
    rate = float(target.rate)
    seconds = target.frames / rate
    if seconds > MAX_BRIDGE_SECONDS:
        return f"a {seconds:.1f} s gap ({target.frames} frames): longer than {MAX_BRIDGE_SECONDS:g} s"
    lengths = [m.source_last - m.source_first + 1 for m in (target.clip_a, target.clip_b) if m is not None]
    if seconds > MIN_SECONDS_TO_DWARF and lengths and target.frames > max(lengths):
        return (f"a {seconds:.1f} s gap ({target.frames} frames), longer than both clips beside it "
                f"({' and '.join(str(n) for n in lengths)} frames)")
    return None


def _video_tracks(timeline) -> list:
    return [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video and not is_result_track(t)]


def offline_clips(timeline, edit_path) -> tuple[int, int]:
    """``(offline, playing)``: how many of the playing clips of the video tracks have media that is
    not on this machine (no path, a remote URL, or a file not on disk), out of how many."""
    folder = Path(edit_path).absolute()
    offline = playing = 0
    for track in _video_tracks(timeline):
        for clip in track.find_clips():
            if not _plays(clip):
                continue
            media = _clip_media(clip, folder)
            if media.media_kind is MediaKind.GENERATOR:
                continue
            playing += 1
            offline += 0 if media.exists else 1
    return offline, playing


def no_target_reasons(timeline, edit_path) -> list[str]:
    """Why an edit with no targets has none: one sentence per cause found, most telling first.

    Called when :func:`~shotfill.timeline.find_targets` found nothing; it never returns an empty
    list (the last resort names what the tracks hold).
    """
    folder = Path(edit_path).absolute()
    tracks = list(timeline.tracks)
    video = _video_tracks(timeline)
    audio = [t for t in tracks if t.kind == otio.schema.TrackKind.Audio]
    if not video:
        if audio:
            return [f"the edit has no video tracks, only {len(audio)} audio track{_s(len(audio))}"]
        if any(t.kind == otio.schema.TrackKind.Video for t in tracks):
            return ["the edit's only video tracks are shotfill's own results"]
        return ["the edit holds no tracks"]
    reasons: list[str] = []
    clips = [c for t in video for c in t.find_clips()]
    if not clips:
        items = sum(len(t) for t in video)
        return [f"the video track{_s(len(video))} hold{'' if len(video) > 1 else 's'} no clips"
                + (f" ({items} gaps or other items)" if items else "")]
    playing = [c for c in clips if _plays(c)]
    disabled = len(clips) - len(playing)
    generators = [c for c in playing if isinstance(c.media_reference, otio.schema.GeneratorReference)]
    media_clips = [c for c in playing if c not in generators]
    if playing and not media_clips:
        reasons.append(f"every clip is a generator ({len(generators)}: colour bars, solids, titles): "
                       "there is no media to extend")
    no_path = [c for c in media_clips if _clip_media(c, folder).path is None]
    if media_clips and no_path:
        share = "every clip" if len(no_path) == len(media_clips) else f"{len(no_path)} of {len(media_clips)} clips"
        reasons.append(f"{share} {'has' if share == 'every clip' else 'have'} no media on this machine "
                       "(a missing reference or a remote URL), so no heads or tails to extend: "
                       "relink them with --search-path DIR (folders holding the media)")
    gaps, transitions, butting = _joins(video)
    if transitions:
        reasons.append(f"{transitions} transition{_s(transitions)} join{'s' if transitions == 1 else ''} "
                       "clips where a gap would be (shotfill bridges gaps, not transitions)")
    if not gaps:
        reasons.append("no gaps between playing clips on any video track"
                       + (f" ({butting} cut{_s(butting)} where clips butt together)" if butting else ""))
    if disabled:
        reasons.append(f"{disabled} clip{_s(disabled)} disabled (muted): disabled clips are not targets")
    if not reasons:
        reasons.append(f"{len(video)} video track{_s(len(video))} with {len(clips)} clips, none offering a "
                       "gap, head or tail")
    return reasons


def _joins(video) -> tuple[int, int, int]:
    """``(gaps, transitions, cuts)``: gaps with a playing clip either side, transitions, and cuts
    where two playing clips butt together, over the video tracks."""
    gaps = transitions = butting = 0
    for track in video:
        items = list(track)
        for i, item in enumerate(items):
            if isinstance(item, otio.schema.Transition):
                transitions += 1
            elif isinstance(item, otio.schema.Gap) and 0 < i < len(items) - 1:
                gaps += int(_plays(items[i - 1]) and _plays(items[i + 1]))
            if i and _plays(item) and _plays(items[i - 1]):
                butting += 1
    return gaps, transitions, butting


def _s(n: int) -> str:
    return "" if n == 1 else "s"
