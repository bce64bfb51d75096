"""The one small exception hierarchy of shotfill.

Every error a user can cause derives from :class:`InputError` and maps to exit
code 2; a cancelled job raises :class:`CancelledError` (exit code 3); anything
else that escapes is an internal error (exit code 1). Messages name the file,
frame or field at fault, so the command line can print them as one line.
"""
from __future__ import annotations

import errno
import os

# the worker's exit codes are part of the worker protocol, shared with the host side
from shotfill_plugin.protocol import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK  # noqa: F401


class ShotfillError(Exception):
    """Base class of every error shotfill raises on purpose."""

    exit_code = EXIT_INTERNAL


class InputError(ShotfillError):
    """Something the user gave us is wrong: a file, a frame, a field, an option."""

    exit_code = EXIT_BAD_INPUT


class MediaError(InputError):
    """A media file cannot be read: missing, damaged, or not what it claims to be."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnsupportedMediaError(MediaError):
    """A valid file whose content shotfill does not handle (deep EXR, for instance)."""


class MissingFrameError(MediaError):
    """A frame a sequence should hold is not on disk."""

    def __init__(self, path, frame: int):
        self.frame = frame
        super().__init__(path, f"frame {frame} is missing")


class TimelineError(InputError):
    """An edit cannot be read, or a target in it does not exist."""


class JobSpecError(InputError):
    """A job spec (JSON) is malformed; the message names the field."""

    def __init__(self, field: str, reason: str):
        self.field = field
        super().__init__(f"job field '{field}': {reason}")


class ColourError(InputError):
    """An unknown colour space, or a transform OpenColorIO cannot build."""


class EngineUnavailableError(InputError):
    """The engine asked for does not exist here, or cannot run (missing model, package)."""


class CancelledError(ShotfillError):
    """The job was cancelled (SIGINT, SIGTERM or the cancel flag)."""

    exit_code = EXIT_CANCELLED


class OutOfMemoryError(ShotfillError):
    """The GPU ran out of memory; the message names the next ``--memory`` mode to try (exit code 2)."""

    exit_code = EXIT_BAD_INPUT


#: what a write that failed for lack of room means, by its errno
NO_ROOM = {errno.ENOSPC: "the disk is full", errno.EFBIG: "a file size limit was reached",
           errno.EDQUOT: "the disk quota is used up"}


def no_room_hint(error: BaseException) -> str:
    """`` (the disk is full)`` and the like when ``error`` is a write that failed for lack of room, known
    by its errno or, from a library that gives none (OpenEXR), by the system's words for it; else ``""``."""
    for code, meaning in NO_ROOM.items():
        if getattr(error, "errno", None) == code or os.strerror(code) in str(error):
            return f" ({meaning})"
    return ""
