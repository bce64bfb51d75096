"""What the panel needs from a host application, and nothing more.

Each host (Nuke, Resolve, the standalone app) gives the panel its current
media or edit and places finished takes back, leaving itself as it was found::

    host = NukeHost(nuke)
    plates = host.current_media()            # the selected Read nodes, as Media
    with host.preserved():                   # one undo step, selection restored
        host.import_result(generated)        # a new Read node next to the plate

Adapters are thin: one host call per step, no logic the panel could hold.
Every adapter passes the same test suite (``tests/test_hosts.py``).
"""
from __future__ import annotations

import abc
import contextlib
import dataclasses
from typing import Iterator


class HostError(Exception):
    """The host cannot do what was asked; the message says what to do instead."""


@dataclasses.dataclass(frozen=True)
class Media:
    """A frame sequence the host has open.

    ``path`` is a frame pattern (``/plates/sh010.####.exr`` or ``sh010.%04d.exr``),
    ``first``/``last`` the inclusive frame range, ``colourspace`` the host's name
    for the sequence's colour space (None: the file's own).
    """

    name: str
    path: str
    first: int
    last: int
    colourspace: str | None = None
    rate: float | None = None

    def source_spec(self) -> dict:
        """The job's ``source`` (or ``mask``) object for this sequence."""
        spec = {"path": self.path, "frame_range": [self.first, self.last]}
        if self.colourspace:
            spec["colourspace"] = self.colourspace
        return spec


@dataclasses.dataclass(frozen=True)
class Generated:
    """A finished take, as a host places it.

    ``pattern`` holds frames ``first..last``. Edit targets carry
    ``record_frame``, where the first generated frame sits on the timeline
    (0 = the timeline's first frame), and ``track_index``, the target's track
    in the edit, and ``write_mode`` (``track``: on a new track; ``replace``: in
    place of the gap). Host media targets carry ``source``, the plate it
    continues. ``colourspace`` is the output space the take was written in
    (None: the source's own). ``result`` is the worker's whole result
    (``shotfill publish`` reads it).
    """

    target_id: str
    pattern: str
    first: int
    last: int
    result: dict
    record_frame: int | None = None
    track_index: int | None = None
    rate: float | None = None
    source: Media | None = None
    colourspace: str | None = None
    write_mode: str = "track"
    label: str = ""

    @classmethod
    def from_result(cls, result: dict, *, target_id: str, source: Media | None = None,
                    track_index: int | None = None, colourspace: str | None = None,
                    write_mode: str = "track", label: str = "") -> "Generated":
        """From the worker's result event; the record frame comes from its edit placement."""
        frames = result["frames"]
        placement = result.get("placement") or None
        record_frame = rate = None
        if placement is not None:
            rate = float(placement["rate"])
            start = placement["record_start"]
            record_frame = int(round(float(start["value"]) * rate / float(start["rate"])))
        return cls(target_id=target_id, pattern=result["output_pattern"], first=min(frames),
                   last=max(frames), result=result, record_frame=record_frame,
                   track_index=track_index, rate=rate, source=source, colourspace=colourspace,
                   write_mode=write_mode, label=label)


    @property
    def handles(self) -> tuple[int, int]:
        """``(before, after)``: real frames of the neighbouring clips' handles that belong right
        before and after the generated ones on the edit (the placement's; 0 where it has none)."""
        placement = self.result.get("placement") or {}
        return int(placement.get("handles_before") or 0), int(placement.get("handles_after") or 0)

    def to_dict(self) -> dict:
        """JSON-ready (a hand-off file entry); ``source`` is not carried."""
        d = dataclasses.asdict(self)
        del d["source"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Generated":
        try:
            return cls(target_id=str(d["target_id"]), pattern=str(d["pattern"]), first=int(d["first"]),
                       last=int(d["last"]), result=dict(d["result"]), record_frame=d.get("record_frame"),
                       track_index=d.get("track_index"), rate=d.get("rate"), colourspace=d.get("colourspace"),
                       write_mode=d.get("write_mode", "track"), label=d.get("label", ""))
        except (KeyError, TypeError, ValueError) as e:
            raise HostError(f"not a shotfill take: {e}") from None


class Host(abc.ABC):
    """The panel's view of a host application."""

    #: shown in the panel's title and log
    name: str = "host"

    @abc.abstractmethod
    def current_media(self) -> list[Media]:
        """The sequences the user has selected, in the host's order (empty: none)."""

    @abc.abstractmethod
    def current_edit(self, folder: str) -> str | None:
        """The path of the edit the host has open, exported into ``folder`` (made if
        needed) where it must be written first; None where the host has no timeline."""

    @abc.abstractmethod
    def import_result(self, generated: Generated) -> str:
        """Place a finished take in the host; returns what was made, in words."""

    @abc.abstractmethod
    def preserved(self) -> contextlib.AbstractContextManager:
        """A context in which changes are one undo step and selection and current timeline
        come back as they were, also when the block raises."""

    @abc.abstractmethod
    def show_message(self, text: str, *, error: bool = False) -> None:
        """Tell the user something the host's own way."""


@contextlib.contextmanager
def nothing_to_restore() -> Iterator[None]:
    """:meth:`Host.preserved` for hosts whose state an import does not touch."""
    yield
