"""Frame patterns and sequence discovery: the numbered files of an image sequence.

A :class:`FramePattern` names numbered files (``/shots/a.####.exr``, ``a.%04d.exr``,
``a.@@@@.exr``); :func:`parse_pattern` reads one from a path. The private helpers here find the
one sequence in a folder or the sequence a numbered file belongs to, describe frame lists and
select frame ranges (``#frames=A-B``) for :func:`shotfill.io.media.open_source`.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import re
from pathlib import Path

from ..errors import InputError, MediaError

RASTER_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
EXR_SUFFIXES = frozenset({".exr"})
SEQUENCE_SUFFIXES = RASTER_SUFFIXES | EXR_SUFFIXES

# A frame token in a file name: "####", "@@@@", "%04d" or "%d".
_TOKEN = re.compile(r"(?P<hashes>#+)|(?P<ats>@+)|%(?:0(?P<width>[1-9][0-9]*))?d")
# A file stem that ends in a frame number: "shot.0012" -> ("shot.", "0012").
_NUMBERED_STEM = re.compile(r"(?P<prefix>.*?)(?P<digits>[0-9]+)")
_DIGITS = re.compile(r"[0-9]+")
# "video.mp4#frames=285-377"
_RANGE_SUFFIX = re.compile(r"(?P<spec>.*)#frames=(?P<first>-?[0-9]+)-(?P<last>-?[0-9]+)")


# ---------------------------------------------------------------------------
# patterns
# ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FramePattern:
    """Numbered files ``directory / f"{prefix}{frame:0{padding}d}{suffix}"``.

    ``shot.####.exr`` has prefix ``"shot."``, suffix ``".exr"`` and padding 4;
    padding 1 means unpadded numbers (``shot.7.exr``, ``shot.12.exr``). Numbers
    wider than the padding are written in full (``shot.10000.exr``), as printf
    does. Frame numbers are non-negative.
    """

    directory: Path
    prefix: str
    suffix: str
    padding: int

    def path(self, frame: int) -> Path:
        """The file that holds ``frame``."""
        return self.directory / f"{self.prefix}{frame:0{self.padding}d}{self.suffix}"

    def glob_frames(self) -> list[int]:
        """The frame numbers whose files are on disk, ascending (none when the directory is missing).

        A file belongs to the pattern only when its number is written exactly as
        :meth:`path` writes it, so ``shot.12.exr`` is not frame 12 of ``shot.####.exr``.
        """
        if not self.directory.is_dir():
            return []
        frames = []
        lo, hi = len(self.prefix), -len(self.suffix) if self.suffix else None
        with os.scandir(self.directory) as entries:
            for entry in entries:
                name = entry.name
                if not (name.startswith(self.prefix) and name.endswith(self.suffix)):
                    continue
                digits = name[lo:hi]
                if (_DIGITS.fullmatch(digits) and f"{int(digits):0{self.padding}d}" == digits
                        and entry.is_file()):
                    frames.append(int(digits))
        return sorted(frames)

    def display(self) -> str:
        """The file name with one ``#`` per digit of padding: ``shot.####.exr``."""
        return f"{self.prefix}{'#' * self.padding}{self.suffix}"

    def __str__(self) -> str:
        return str(self.directory / self.display())


def parse_pattern(text: str | Path) -> FramePattern | None:
    """The pattern ``text`` names, or None when its file name has no frame token.

    Tokens: ``####`` or ``@@@@`` (one character per digit; a single ``#`` or
    ``@`` is unpadded), ``%04d`` or ``%d``. Only the file name is searched, not
    the directories above it. Raises InputError when the name holds more than
    one token.
    """
    path = Path(text)
    tokens = list(_TOKEN.finditer(path.name))
    if not tokens:
        return None
    if len(tokens) > 1:
        found = ", ".join(repr(t.group()) for t in tokens)
        raise InputError(f"{text}: the file name holds more than one frame token ({found})")
    token = tokens[0]
    if token["hashes"] or token["ats"]:
        padding = len(token.group())
    else:
        padding = int(token["width"] or 1)
    name = path.name
    return FramePattern(path.parent, name[:token.start()], name[token.end():], padding)


def _numbered_files(directory: Path) -> dict[tuple[str, str], list[str]]:
    """The numbered image files of ``directory``, grouped by (prefix, suffix): the digit strings."""
    groups: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    with os.scandir(directory) as entries:
        for entry in entries:
            suffix = Path(entry.name).suffix
            if suffix.lower() not in SEQUENCE_SUFFIXES:
                continue
            match = _NUMBERED_STEM.fullmatch(entry.name[: -len(suffix)])
            if match and entry.is_file():
                groups[match["prefix"], suffix].append(match["digits"])
    return groups


def _infer_padding(where: Path, numbers: list[str]) -> int:
    """The padding a set of frame numbers was written with.

    Zero-padded numbers fix it (``0012`` -> 4). Numbers without a leading zero
    fit any padding up to their width; the widest that fits them all is taken
    (``1001 ... 1100`` -> 4, ``8 ... 12`` -> 1).
    """
    padded = {len(n) for n in numbers if len(n) > 1 and n.startswith("0")}
    if len(padded) > 1:
        raise MediaError(where, f"frame numbers mix paddings {sorted(padded)}: rename them "
                                "or give a pattern")
    return padded.pop() if padded else min(len(n) for n in numbers)


def _pattern_of_directory(directory: Path) -> FramePattern:
    """The one sequence of numbered images in ``directory``; hidden files (``.name``) are ignored."""
    groups = {key: numbers for key, numbers in _numbered_files(directory).items()
              if not key[0].startswith(".")}
    if not groups:
        kinds = " ".join(sorted(SEQUENCE_SUFFIXES))
        raise MediaError(directory, f"holds no numbered image files ({kinds})")
    patterns = [FramePattern(directory, prefix, suffix, _infer_padding(directory, numbers))
                for (prefix, suffix), numbers in groups.items()]
    if len(patterns) > 1:
        names = ", ".join(sorted(p.display() for p in patterns))
        raise MediaError(directory, f"holds several sequences ({names}): give one as a pattern")
    return patterns[0]


def _pattern_of_file(file: Path) -> FramePattern | None:
    """The sequence a numbered file belongs to (``shot.0012.exr``), or None for a still."""
    match = _NUMBERED_STEM.fullmatch(file.stem)
    if match is None:
        return None
    prefix = match["prefix"]
    numbers = _numbered_files(file.parent)[prefix, file.suffix]
    return FramePattern(file.parent, prefix, file.suffix, _infer_padding(file, numbers))


# ---------------------------------------------------------------------------
# frame lists and ranges
# ---------------------------------------------------------------------------
def _spans(frames: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive numbers: [1, 2, 3, 7, 8] -> [(1, 3), (7, 8)]."""
    spans: list[tuple[int, int]] = []
    for frame in frames:
        if spans and frame == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], frame)
        else:
            spans.append((frame, frame))
    return spans


def _holes(frames: list[int]) -> list[list[int]]:
    """The gaps between runs, inclusive: [1, 2, 3, 7, 8, 10] -> [[4, 6], [9, 9]]."""
    spans = _spans(frames)
    return [[last + 1, first - 1] for (_, last), (first, _) in zip(spans, spans[1:])]


def _describe_frames(frames: list[int]) -> str:
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in _spans(frames))


def _select_frames(path: str, available: list[int], frame_range: tuple[int, int] | None) -> list[int]:
    """The available frames inside the inclusive ``frame_range`` (all of them when None)."""
    if frame_range is None:
        return available
    first, last = frame_range
    have = _describe_frames(available)
    if first > last:
        raise InputError(f"{path}: frame range {first}-{last} is empty (frames available: {have})")
    if first < available[0] or last > available[-1]:
        raise InputError(f"{path}: frame range {first}-{last} is outside the frames available ({have})")
    selected = [f for f in available if first <= f <= last]
    if not selected:
        raise InputError(f"{path}: none of frames {first}-{last} exist (frames available: {have})")
    return selected


def _split_range_suffix(spec: str) -> tuple[str, tuple[int, int] | None]:
    """``"video.mp4#frames=285-377"`` -> ``("video.mp4", (285, 377))``."""
    if "#frames=" not in spec:
        return spec, None
    match = _RANGE_SUFFIX.fullmatch(spec)
    if match is None:
        raise InputError(f"{spec}: bad frame range suffix; write '#frames=FIRST-LAST'")
    return match["spec"], (int(match["first"]), int(match["last"]))

