"""Nothing overwritten silently: what an output folder already holds under a job's name.

A job writes ``<out>/NAME.####.exr`` and ``<out>/NAME.result.json``. Before any engine runs,
:func:`claim_output` looks at what is there under that name:

- nothing, or only frames (and a result file) this same job wrote: the name is the job's
  (a re-run resumes, as always);
- files another job wrote (their ``shotfill.jobId`` differs), or EXR frames shotfill did not
  write: the output spec's ``if_exists`` decides (:data:`shotfill.job.IF_EXISTS`):

  ``refuse``     :class:`OutputInUseError` (exit 2) naming that job (id, engine, when) and the
                 first such file, and saying how to go on;
  ``overwrite``  the name is this job's; the other job's files of the name (every frame, its
                 result file, contact sheet and preview pictures) are listed to be removed just
                 before this job writes (:func:`remove_replaced`), so nothing mixed remains;
  ``version``    the first name ``NAME_v2``, ``NAME_v3``... that holds nothing of another job
                 (a re-run finds its own frames there and resumes).

A frame whose header cannot be read is nobody's: a frame this job writes at that number is
written again, with a warning. Two jobs running at once on the same output is another matter
(a lock, :mod:`.lock`, taken before this check).

A symbolic link at a name the job writes (a frame of its plan, its result file, its contact sheet,
the ``preview`` folder or a preview picture) is refused (:class:`OutputInUseError`, exit 2) before
anything is written: the job never writes through a link to a place outside its output folder,
and does not silently replace a link someone made either.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import time
from pathlib import Path

from ..errors import InputError, MediaError

#: the most ``NAME_vN`` versions looked at before giving up
MAX_VERSIONS = 999


class OutputInUseError(InputError):
    """The output folder holds another job's frames under this job's name (exit 2)."""


@dataclasses.dataclass(frozen=True)
class Foreign:
    """A file under a job's name that another job (or not shotfill) wrote."""

    path: Path
    job_id: str | None          # None: not written by shotfill
    engine: str | None = None
    task: str | None = None
    seed: int | None = None

    def who(self) -> str:
        if self.job_id is None:
            return "a file shotfill did not write (its header has no shotfill.jobId)"
        details = [f"engine '{self.engine}'" if self.engine else None,
                   f"seed {self.seed}" if self.seed is not None else None, self.task,
                   f"written {_when(self.path)}"]
        return f"job {self.job_id} ({', '.join(d for d in details if d)})"


@dataclasses.dataclass
class Claim:
    """The name a job writes under, what of another job it replaces there, and what to say."""

    name: str
    replaces: list = dataclasses.field(default_factory=list)    # paths removed before the write
    warnings: list = dataclasses.field(default_factory=list)


def frame_files(out_dir: Path, name: str) -> dict[int, Path]:
    """``{frame: path}`` of every ``NAME.<digits>.exr`` in ``out_dir``."""
    pattern = re.compile(re.escape(name) + r"\.([0-9]+)\.exr")
    found = {}
    if out_dir.is_dir():
        for path in out_dir.iterdir():
            m = pattern.fullmatch(path.name)
            if m:
                found[int(m.group(1))] = path
    return dict(sorted(found.items()))


def foreign_files(out_dir: Path, name: str, job_id: str, frames) -> tuple[list[Foreign], list[int]]:
    """The files under ``name`` that another job wrote (the result file first, then frames in order),
    and the frames among ``frames`` (this job's) whose header does not read (written again)."""
    from ..io.exr import read_exr_header

    foreign, damaged = [], []
    result = out_dir / f"{name}.result.json"
    if result.is_file():
        try:
            data = json.loads(result.read_text())
        except (OSError, ValueError):
            data = {}
        other = data.get("job_id") if isinstance(data, dict) else None
        if other != job_id:
            foreign.append(Foreign(result, other if isinstance(other, str) else None,
                                   engine=data.get("engine") if isinstance(data, dict) else None,
                                   task=data.get("task") if isinstance(data, dict) else None))
    mine = set(frames)
    for frame, path in frame_files(out_dir, name).items():
        try:
            header = read_exr_header(path)
        except MediaError:
            if frame in mine:
                damaged.append(frame)
            continue
        other = header.get("shotfill.jobId")
        if other != job_id:
            seed = header.get("shotfill.seed")
            foreign.append(Foreign(path, other if isinstance(other, str) else None,
                                   engine=header.get("shotfill.engine"), task=header.get("shotfill.task"),
                                   seed=seed if isinstance(seed, int) else None))
    return foreign, damaged


def claim_output(out_dir: Path, name: str, job_id: str, frames, *, if_exists: str, padding: int,
                 about: str = "") -> Claim:
    """The name this job writes under in ``out_dir`` (see the module docstring); raises
    :class:`OutputInUseError` when another job's files are there and ``if_exists`` is ``refuse``.
    ``about`` says what this job is (engine, seed), for the refusal."""
    check_out_folder(out_dir, "the output folder (--out, output.dir)")
    _refuse_links(out_dir, name, frames, padding)     # whatever if_exists says: never through a link
    foreign, damaged = foreign_files(out_dir, name, job_id, frames)
    claim = Claim(name)
    if foreign and if_exists == "version":
        for n in range(2, MAX_VERSIONS + 1):
            candidate = f"{name}_v{n}"
            foreign, damaged = foreign_files(out_dir, candidate, job_id, frames)
            if not foreign:
                claim.name = candidate
                claim.warnings.append(
                    f"{out_dir / name}.{'#' * padding}.exr holds another job's frames: this job writes "
                    f"{out_dir / candidate}.{'#' * padding}.exr (--version)")
                break
        else:
            raise OutputInUseError(f"{out_dir}: {name} and its versions up to _v{MAX_VERSIONS} all hold other "
                                   "jobs' frames: choose another --out or --name")
    elif foreign and if_exists == "overwrite":
        jobs = _jobs(foreign)
        claim.replaces = [f.path for f in foreign] + _pictures(out_dir, name)
        frames_n = sum(f.path.suffix == ".exr" for f in foreign)
        claim.warnings.append(f"replacing {frames_n} frames of {out_dir / name}.{'#' * padding}.exr written by "
                              f"{'; '.join(f.who() for f in jobs)} (--overwrite)")
    elif foreign:
        raise OutputInUseError(_refusal(out_dir, name, job_id, foreign, padding, about))
    if claim.name != name:
        _refuse_links(out_dir, claim.name, frames, padding)
    for frame in damaged:
        claim.warnings.append(f"{out_dir / claim.name}.{frame:0{padding}d}.exr does not read (damaged): "
                              "it is written again")
    return claim


def _refuse_links(out_dir: Path, name: str, frames, padding: int) -> None:
    """OutputInUseError naming the first symbolic link at a name this job writes."""
    candidates = [out_dir / f"{name}.{f:0{padding}d}.exr" for f in frames]
    candidates += [out_dir / f"{name}.result.json", out_dir / f"{name}.contact.png", out_dir / "preview"]
    preview = out_dir / "preview"
    if preview.is_dir() and not preview.is_symlink():
        candidates += sorted(preview.glob(f"{glob.escape(name)}.*.png"))
    for path in candidates:
        if path.is_symlink():
            try:
                target = os.readlink(path)
            except OSError:
                target = "?"
            raise OutputInUseError(
                f"{path} is a symbolic link (to {target}): this job would write there, and it never writes "
                "through a link in its output folder nor replaces one. Nothing was written. Remove the link, "
                "or choose another --out or --name.")


def remove_replaced(paths) -> None:
    """Remove the other job's files an ``overwrite`` claim replaces (just before this job writes)."""
    for path in paths:
        Path(path).unlink(missing_ok=True)


def check_out_folder(path, what: str = "--out") -> Path:
    """``path`` as a folder a command may create and write in: InputError (exit 2) naming it when
    it, or a folder above it, is an existing file."""
    path = Path(path).expanduser().absolute()
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                where = "is a file" if p == path else f"is inside {p}, which is a file"
                raise InputError(f"{what} {path} {where}, not a folder: give a folder (it is made "
                                 "when missing)")
            break
    return path


def _refusal(out_dir: Path, name: str, job_id: str, foreign: list[Foreign], padding: int, about: str) -> str:
    pattern = f"{name}.{'#' * padding}.exr"
    frames = [f for f in foreign if f.path.suffix == ".exr"]
    first = frames[0] if frames else foreign[0]
    jobs = _jobs(foreign)
    more = f" and {len(frames) - 1} more frames of {pattern}" if len(frames) > 1 else ""
    others = f"; files of {len(jobs) - 1} other job(s) too" if len(jobs) > 1 else ""
    text = (f"{out_dir} holds another job's output under this job's name: {first.path}{more} "
            f"{'were' if more else 'was'} written by {first.who()}{others}; this job is {job_id}"
            f"{f' ({about})' if about else ''}. Nothing was written. To replace that job's frames, run again with "
            f"--overwrite (its frames of {pattern} are removed); to keep them and write this job "
            f"beside them as {name}_v2 (the first free version), with --version; or choose another "
            "--out or --name. (In a job file: output.if_exists \"overwrite\" or \"version\".)")
    own = _own_version(out_dir, name, job_id)
    if own is not None:
        text += f" This job's own frames are in {out_dir / own}.{'#' * padding}.exr: --version resumes them."
    return text


def _jobs(foreign: list[Foreign]) -> list[Foreign]:
    """One entry per other job (the first file of each), the frames' writers first."""
    seen, out = set(), []
    for f in sorted(foreign, key=lambda f: f.path.suffix != ".exr"):
        if f.job_id not in seen:
            seen.add(f.job_id)
            out.append(f)
    return out


def _pictures(out_dir: Path, name: str) -> list[Path]:
    """The contact sheet and preview pictures of ``name``."""
    found = [out_dir / f"{name}.contact.png"]
    preview = out_dir / "preview"
    if preview.is_dir():
        found += sorted(preview.glob(f"{glob.escape(name)}.*.png"))
    return [p for p in found if p.is_file()]


def _own_version(out_dir: Path, name: str, job_id: str) -> str | None:
    """The ``NAME_vN`` whose result file this job wrote, if one is there."""
    for n in range(2, MAX_VERSIONS + 1):
        path = out_dir / f"{name}_v{n}.result.json"
        if not path.is_file():
            if not frame_files(out_dir, f"{name}_v{n}"):
                return None
            continue
        try:
            if json.loads(path.read_text()).get("job_id") == job_id:
                return f"{name}_v{n}"
        except (OSError, ValueError, AttributeError):
            continue
    return None


def _when(path: Path) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(path.stat().st_mtime))
    except OSError:
        return "at an unknown time"
