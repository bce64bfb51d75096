"""A job bundle on disk: its layout, :class:`Bundle` (what ``bundle.json`` says) and
:class:`BundlePlan` (what an export is about to write)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..errors import InputError
from ..job import JobSpec

#: bundle layout version written into ``bundle.json``
BUNDLE_VERSION = 1
TEMPLATE_FILE = "template.yaml"
DEADLINE_VALUES_FILE = "parameter_values.yaml"
OPENJD_VALUES_FILE = "openjd_params.json"
MANIFEST_FILE = "bundle.json"
README_FILE = "README.md"
JOBS_DIR = "jobs"


@dataclasses.dataclass(frozen=True)
class Bundle:
    """A job bundle written by :func:`export_bundle`, as its ``bundle.json`` describes it.

    ``edit`` is the edit Publish writes a new version of (None for a bundle made from a job
    spec with plain sources: Publish then only checks the results).
    """

    path: Path
    edit: str | None
    targets: tuple[str, ...]
    write_mode: str
    rate: float | None
    export_format: str | None
    timeline: str | int | None = None   # the edit's timeline, in a file holding several
    search_paths: tuple[str, ...] = ()  # where the edit's offline media was relinked from

    @classmethod
    def load(cls, path) -> "Bundle":
        path = Path(path).expanduser().resolve()
        manifest = path / MANIFEST_FILE
        try:
            data = json.loads(manifest.read_text())
        except FileNotFoundError:
            raise InputError(f"{path}: not a shotfill farm bundle (no {MANIFEST_FILE}; "
                             "make one with `shotfill farm export`)") from None
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"{manifest}: cannot be read: {e}") from None
        version = data.get("shotfill_bundle")
        if version != BUNDLE_VERSION:
            raise InputError(f"{manifest}: bundle version {version!r}; this shotfill reads version "
                             f"{BUNDLE_VERSION} (export the bundle again)")
        return cls(path=path, edit=data["edit"], targets=tuple(data["targets"]), write_mode=data["write_mode"],
                   rate=data["rate"], export_format=data["export_format"], timeline=data.get("timeline"),
                   search_paths=tuple(data.get("search_paths", ())))

    def job_path(self, target: str) -> Path:
        return self.path / JOBS_DIR / f"{target}.json"

    def job(self, target: str) -> JobSpec:
        """The job spec of ``target``; InputError when the bundle has no such target."""
        if target not in self.targets:
            raise InputError(f"{self.path}: no target '{target}' in this bundle "
                             f"(targets: {', '.join(self.targets)})")
        return JobSpec.load(self.job_path(target))


def result_path(spec: JobSpec) -> Path:
    """Where the worker writes the result of a bundle's job (its output name is always set)."""
    return Path(spec.output.dir) / f"{spec.output.name}.result.json"



@dataclasses.dataclass
class BundlePlan:
    """What a bundle will hold: one job spec per target, and the write-back options."""


    name: str
    jobs: dict                      # target id -> JobSpec
    kinds: dict                     # target id -> TaskKind value (for the README)
    edit: str | None
    write_mode: str
    rate: float | None
    export_format: str | None
    skipped: dict                   # target id -> why it was left out
    timeline: str | int | None = None   # the edit's timeline, in a file holding several
    search_paths: tuple[str, ...] = ()  # where the edit's offline media was relinked from

