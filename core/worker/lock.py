"""One job at a time on an output name: a lock held for the whole run, dropped on any exit.

A running job holds ``<out>/.NAME.<pid>-<random>.lock``: a small JSON file (job id, engine, seed, pid,
host, start time) that the job keeps ``fcntl.flock``-ed until it ends. The kernel drops a flock
when its process dies, however it dies (SIGKILL included), so a lock file a killed job left is
*stale*: the next job finds it unlocked, removes it and goes on. A job that ends (done, refused,
cancelled, failed) removes its own file.

When another *job* holds a lock on the name, :func:`lock_output` raises
:class:`OutputLockedError` (exit 2) naming it. Another attempt of the *same* job (a farm task
retried while its first attempt still runs) is let through: it writes the same frames, each
atomically, and resumes what the other has written.

The holders are looked at and registered under a short ``flock`` on the output folder itself
(milliseconds; no extra file), so two jobs starting at once cannot both miss each other. Lock
files are opened with ``O_NOFOLLOW``: a symbolic link planted at a lock's name is refused, never
written through. ``flock`` on network file systems is only as good as the server's locking.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import socket
import time
import uuid
from pathlib import Path

from ..errors import InputError, MediaError

_FLAGS = os.O_CLOEXEC | os.O_NOFOLLOW


class OutputLockedError(InputError):
    """Another job is writing under this output name right now (exit 2)."""


@dataclasses.dataclass
class OutputLock:
    """The lock a running job holds on ``<out>/NAME``; :meth:`release` ends it (idempotent)."""

    path: Path
    descriptor: int | None
    #: the output name locked (the folder's NAME; a job writing NAME_v2 holds NAME's lock)
    name: str = ""
    #: the output folder was made for this lock (removed again on release when still empty)
    made_folder: bool = False

    def release(self) -> None:
        if self.descriptor is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()            # unlinked while still held: nobody takes a lock on a dead file
        os.close(self.descriptor)         # the flock goes with the descriptor
        self.descriptor = None
        if self.made_folder:
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()  # only when empty: a job refused before writing leaves no folder

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_path(out_dir: Path, name: str, pid: int | None = None) -> Path:
    """A new lock file's name for ``NAME``: the pid (this process's by default) and a random part."""
    return Path(out_dir) / f".{name}.{os.getpid() if pid is None else pid}-{uuid.uuid4().hex[:8]}.lock"


def lock_output(out_dir, name: str, job_id: str, *, engine: str = "", seed: int | None = None) -> OutputLock:
    """Lock ``<out_dir>/NAME`` for job ``job_id`` (the folder is made when missing).

    Raises :class:`OutputLockedError` when another job holds it, and :class:`MediaError` naming
    the folder when it cannot be made or written (read-only, no permission, full).
    """
    out_dir = Path(out_dir)
    made = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MediaError(out_dir, f"the output folder cannot be made: {e.strerror or e}") from None
    try:
        folder = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise MediaError(out_dir, f"the output folder cannot be opened: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)     # held while the holders are looked at (milliseconds)
        except OSError as e:
            raise MediaError(out_dir, f"the output folder cannot be locked ({e.strerror or e}): its file "
                                      "system does not lock files, so two jobs could write here at once") from None
        holders = [h for h in _holders(out_dir, name) if h.get("job_id") != job_id]
        if holders:
            _undo_folder(out_dir, made)
            raise OutputLockedError(_refusal(out_dir, name, job_id, holders))
        path = lock_path(out_dir, name)
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _FLAGS, 0o644)
        except OSError as e:
            _undo_folder(out_dir, made)
            raise MediaError(out_dir, f"the output folder cannot be written ({path.name}: "
                                      f"{e.strerror or e}): nothing was written") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            record = {"job_id": job_id, "engine": engine, "seed": seed, "pid": os.getpid(),
                      "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
            os.write(descriptor, (json.dumps(record) + "\n").encode())
        except OSError as e:
            os.close(descriptor)
            with contextlib.suppress(OSError):
                path.unlink()
            _undo_folder(out_dir, made)
            raise MediaError(out_dir, f"the output folder cannot be written ({path.name}: "
                                      f"{e.strerror or e}): nothing was written") from None
        return OutputLock(path, descriptor, name=name, made_folder=made)
    finally:
        os.close(folder)                       # the folder's flock goes with it


def live_pids(out_dir, name: str) -> set[int]:
    """The processes holding a lock on ``<out_dir>/NAME`` now (a killed one, zombie or not, holds
    none: the kernel dropped its flock)."""
    return {int(h["pid"]) for h in _holders(Path(out_dir), name, remove=False)}


def _holders(out_dir: Path, name: str, remove: bool = True) -> list[dict]:
    """What each live lock on ``name`` says of its job; stale lock files (their process gone:
    nothing holds their flock) are removed on the way (with ``remove``; only under the folder's
    flock, where no lock file is being made)."""
    pattern = re.compile(re.escape(f".{name}.") + r"([0-9]+)-[0-9a-f]+\.lock")
    live = []
    for path in out_dir.iterdir():
        m = pattern.fullmatch(path.name)
        if not m:
            continue
        try:
            descriptor = os.open(path, os.O_RDONLY | _FLAGS)
        except OSError:
            continue                            # gone meanwhile, or a link (never read through)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:             # held: its job is running
                try:
                    record = json.loads(os.read(descriptor, 4096).decode() or "{}")
                except (OSError, ValueError, UnicodeDecodeError):
                    record = {}
                if not isinstance(record, dict):
                    record = {}
                record.setdefault("pid", int(m.group(1)))
                record["path"] = str(path)
                live.append(record)
            else:                               # nobody holds it: a killed job's leftover
                if remove:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
        finally:
            os.close(descriptor)
    return live


def _refusal(out_dir: Path, name: str, job_id: str, holders: list[dict]) -> str:
    h = holders[0]
    details = [f"engine '{h['engine']}'" if h.get("engine") else None,
               f"seed {h['seed']}" if h.get("seed") is not None else None,
               f"pid {h['pid']}" + (f" on {h['host']}" if h.get("host") else ""),
               f"started {h['started']}" if h.get("started") else None]
    who = f"job {h.get('job_id') or '(unknown)'} ({', '.join(d for d in details if d)})"
    more = f" and {len(holders) - 1} other job(s)" if len(holders) > 1 else ""
    return (f"{out_dir}: another job is writing {name} right now: {who}{more} holds {h['path']}; this job is "
            f"{job_id}. Nothing was written. Wait for it to end (or stop it), or choose another --out or --name.")


def _undo_folder(out_dir: Path, made: bool) -> None:
    if made:
        with contextlib.suppress(OSError):
            out_dir.rmdir()
