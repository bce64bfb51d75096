"""The frame plan: every job is "what is known, what is generated".

A :class:`FramePlan` is an ordered window of frames. Each position is either

- ``KNOWN``: a real frame from the media, given to the engine as context and
  never written again (original pixels are never regenerated);
- ``GENERATE``: a whole new frame;
- ``FILL``: a real frame whose masked pixels are generated.

Mask convention, everywhere in shotfill: **1 = generate, 0 = keep** (as in Wan
VACE). A ``GENERATE`` frame has a mask of all ones, a ``KNOWN`` frame all zeros.

The four tasks as windows (K = context frames, N = frames to generate)::

    extend forward    [K known from the clip's tail][N generate]
    extend backward   [N generate][K known from the clip's head]
    bridge            [K known from A's tail][N generate][K known from B's head]
    fill              [F fill frames, each with its own mask]
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Iterable, Sequence

from .errors import InputError, JobSpecError


class TaskKind(str, enum.Enum):
    EXTEND_FORWARD = "extend_forward"
    EXTEND_BACKWARD = "extend_backward"
    BRIDGE = "bridge"
    FILL = "fill"


class Role(str, enum.Enum):
    KNOWN = "known"
    GENERATE = "generate"
    FILL = "fill"


@dataclasses.dataclass(frozen=True)
class PlanFrame:
    """One position of the window.

    ``source`` names the input the frame comes from ("a", "b"; None when the
    frame is generated) and ``source_frame`` its frame number there.
    ``output_frame`` is the frame number the result is written as (None for
    known context frames, which are never written).
    """

    role: Role
    source: str | None = None
    source_frame: int | None = None
    output_frame: int | None = None

    def to_dict(self) -> dict:
        return {
            "role": self.role.value,
            "source": self.source,
            "source_frame": self.source_frame,
            "output_frame": self.output_frame,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "PlanFrame":
        try:
            return cls(
                role=Role(d["role"]),
                source=d.get("source"),
                source_frame=d.get("source_frame"),
                output_frame=d.get("output_frame"),
            )
        except (KeyError, ValueError, TypeError) as e:
            raise JobSpecError("plan.frames", f"bad frame entry {d!r}: {e}") from None


@dataclasses.dataclass(frozen=True)
class FramePlan:
    kind: TaskKind
    frames: tuple[PlanFrame, ...]

    # -- views -----------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frames)

    def positions(self, role: Role) -> list[int]:
        return [i for i, f in enumerate(self.frames) if f.role is role]

    @property
    def known_positions(self) -> list[int]:
        return self.positions(Role.KNOWN)

    @property
    def generate_positions(self) -> list[int]:
        return self.positions(Role.GENERATE)

    @property
    def fill_positions(self) -> list[int]:
        return self.positions(Role.FILL)

    @property
    def written_positions(self) -> list[int]:
        """Positions whose result is written to disk (generated and filled frames)."""
        return [i for i, f in enumerate(self.frames) if f.role is not Role.KNOWN]

    @property
    def output_frames(self) -> list[int]:
        return [self.frames[i].output_frame for i in self.written_positions]

    def summary(self) -> str:
        """A compact string for EXR headers and logs, e.g. ``K8 G24``."""
        letters = {Role.KNOWN: "K", Role.GENERATE: "G", Role.FILL: "F"}
        out, prev, count = [], None, 0
        for f in self.frames:
            if f.role is prev:
                count += 1
                continue
            if prev is not None:
                out.append(f"{letters[prev]}{count}")
            prev, count = f.role, 1
        if prev is not None:
            out.append(f"{letters[prev]}{count}")
        return f"{self.kind.value} " + " ".join(out)

    # -- serialisation -----------------------------------------------------
    def to_dict(self) -> dict:
        return {"kind": self.kind.value, "frames": [f.to_dict() for f in self.frames]}

    @classmethod
    def from_dict(cls, d: dict) -> "FramePlan":
        try:
            kind = TaskKind(d["kind"])
        except (KeyError, ValueError) as e:
            raise JobSpecError("plan.kind", f"unknown or missing task kind: {e}") from None
        return cls(kind=kind, frames=tuple(PlanFrame.from_dict(f) for f in d.get("frames", [])))

    # -- builders ------------------------------------------------------------
    @classmethod
    def extend(cls, source_frames: Sequence[int], frames: int, *, backward: bool = False,
               context: int = 8, source: str = "a", first_output_frame: int | None = None) -> "FramePlan":
        """Extend a clip whose available frame numbers are ``source_frames``.

        Output frames are numbered from ``first_output_frame``; by default they
        continue the source's numbering: a clip numbered 1001-1040 extended forward
        by 8 gives 1041-1048, backward 993-1000. (Plans count positions too, so the
        plan allows numbers below 0; the worker never writes one, see
        :func:`shotfill.worker.resolve.resolve`.)
        """
        source_frames = _check_frames(source_frames, "source")
        _check_count(frames, "frames")
        _check_count(context, "context")
        if backward:
            known = source_frames[:context]
            start = source_frames[0] - frames if first_output_frame is None else first_output_frame
            _check_first_output(start)
            gen = [PlanFrame(Role.GENERATE, output_frame=start + i) for i in range(frames)]
            kn = [PlanFrame(Role.KNOWN, source, f) for f in known]
            return cls(TaskKind.EXTEND_BACKWARD, tuple(gen + kn))
        known = source_frames[-context:]
        start = source_frames[-1] + 1 if first_output_frame is None else first_output_frame
        _check_first_output(start)
        kn = [PlanFrame(Role.KNOWN, source, f) for f in known]
        gen = [PlanFrame(Role.GENERATE, output_frame=start + i) for i in range(frames)]
        return cls(TaskKind.EXTEND_FORWARD, tuple(kn + gen))

    @classmethod
    def bridge(cls, a_frames: Sequence[int], b_frames: Sequence[int], frames: int, *,
               context: int = 8, first_output_frame: int | None = None) -> "FramePlan":
        """Bridge the tail of A to the head of B with ``frames`` new frames.

        Output frames are numbered from ``first_output_frame`` (default: the
        frame after A's last, so the bridge continues A's numbering).
        """
        a_frames = _check_frames(a_frames, "a")
        b_frames = _check_frames(b_frames, "b")
        _check_count(frames, "frames")
        _check_count(context, "context")
        start = a_frames[-1] + 1 if first_output_frame is None else first_output_frame
        _check_first_output(start)
        kn_a = [PlanFrame(Role.KNOWN, "a", f) for f in a_frames[-context:]]
        gen = [PlanFrame(Role.GENERATE, output_frame=start + i) for i in range(frames)]
        kn_b = [PlanFrame(Role.KNOWN, "b", f) for f in b_frames[:context]]
        return cls(TaskKind.BRIDGE, tuple(kn_a + gen + kn_b))

    @classmethod
    def fill(cls, source_frames: Sequence[int], *, source: str = "a",
             first_output_frame: int | None = None) -> "FramePlan":
        """Fill masked pixels on every frame; output numbers equal source numbers, or run
        from ``first_output_frame`` in the source's order."""
        source_frames = _check_frames(source_frames, "source")
        start = source_frames[0] if first_output_frame is None else first_output_frame
        _check_first_output(start)
        shift = start - source_frames[0]
        return cls(TaskKind.FILL, tuple(PlanFrame(Role.FILL, source, f, f + shift) for f in source_frames))


def _check_frames(frames: Iterable[int], name: str) -> list[int]:
    frames = [int(f) for f in frames]
    if not frames:
        raise InputError(f"{name}: no frames to work from")
    return frames


def _check_first_output(first) -> None:
    if not isinstance(first, int) or isinstance(first, bool):
        raise InputError(f"the first output frame must be a whole number, got {first!r}")


def _check_count(n: int, name: str) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InputError(f"{name} must be a whole number of at least 1, got {n!r}")
