"""The model manifest: its entries (:class:`ModelEntry`), where model folders live, the listing
``shotfill models list`` shows, and writing an entry into a studio's own manifest.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Mapping

from ....errors import InputError
from ....resources import RESOURCES

#: the manifest that ships with shotfill
MANIFEST = RESOURCES / "models.json"
MANIFEST_VERSION = 1
#: the ways an engine can place a model on the GPU, as keys of ``gpu_memory_gib``
GPU_MODES = ("gpu", "offload", "group", "sequential")

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ModelCheckError(InputError):
    """A model folder or manifest is not what it must be; the message names the folder and the file."""


# ---------------------------------------------------------------------------
# the manifest
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelEntry:
    """One model of a manifest.

    ``files`` maps a path relative to the model folder to ``{"size": int | None, "sha256": str | None}``;
    ``None`` means the release does not pin that value. ``files_pinned`` says whether ``files`` is the
    model's complete file list, or only the files whose values are known.
    """

    name: str
    engine: str
    pipeline: str
    repo_id: str | None
    revision: str | None
    licence: str
    files: dict[str, dict]
    files_pinned: bool
    size_bytes: int | None = None
    download_gb: float | None = None
    gpu_memory_gib: dict[str, float | None] = field(default_factory=dict)
    native_frame_rate: float | None = None
    max_frames: int | None = None
    resolution: str | None = None
    source: str = ""
    #: how the ``gpu_memory_gib`` figures were made ("measured ..." or "estimated ..."); shown with them
    gpu_memory_basis: str = ""

    @classmethod
    def from_dict(cls, name: str, data: Mapping, where: str) -> "ModelEntry":
        """Build and check an entry; ``where`` (the manifest path) prefixes every error."""
        at = f"{where}: model '{name}'"
        if not isinstance(data, Mapping):
            raise ModelCheckError(f"{at}: must be an object")
        for key in ("engine", "pipeline", "licence"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ModelCheckError(f"{at}: field '{key}' must be a non-empty string")
        for key in ("repo_id", "revision"):
            if key not in data or not isinstance(data[key], (str, type(None))):
                raise ModelCheckError(f"{at}: field '{key}' must be a string or null")
        if not isinstance(data.get("files_pinned"), bool):
            raise ModelCheckError(f"{at}: field 'files_pinned' must be true or false")
        files = data.get("files")
        if not isinstance(files, Mapping) or (data["files_pinned"] and not files):
            raise ModelCheckError(f"{at}: field 'files' must be an object naming the model's files")
        unknown = set(data) - (set(cls.__dataclass_fields__) - {"name"})
        if unknown:
            raise ModelCheckError(f"{at}: unknown field(s) {', '.join(sorted(unknown))}")
        for key, kind in (("size_bytes", int), ("max_frames", int), ("download_gb", (int, float)),
                          ("native_frame_rate", (int, float))):
            _check_optional_number(data.get(key), kind, f"{at}: field '{key}'")
        gpu = data.get("gpu_memory_gib", {})
        if not isinstance(gpu, Mapping) or not set(gpu) <= set(GPU_MODES):
            raise ModelCheckError(f"{at}: field 'gpu_memory_gib' takes the keys {', '.join(GPU_MODES)}")
        for mode, gib in gpu.items():
            _check_optional_number(gib, (int, float), f"{at}: gpu_memory_gib '{mode}'")
        return cls(name=name, engine=data["engine"], pipeline=data["pipeline"], repo_id=data["repo_id"],
                   revision=data["revision"], licence=data["licence"],
                   files={path: _check_file_spec(path, spec, at) for path, spec in files.items()},
                   files_pinned=data["files_pinned"], size_bytes=data.get("size_bytes"),
                   download_gb=data.get("download_gb"), gpu_memory_gib=dict(gpu),
                   native_frame_rate=data.get("native_frame_rate"), max_frames=data.get("max_frames"),
                   resolution=data.get("resolution"), source=data.get("source", ""),
                   gpu_memory_basis=str(data.get("gpu_memory_basis", "")))

    @property
    def size_text(self) -> str:
        """The download size for people: exact when pinned, else the hub's rounded figure."""
        if self.size_bytes is not None:
            return f"{self.size_bytes / 1e9:.1f} GB"
        if self.download_gb is not None:
            return f"about {self.download_gb:.0f} GB"
        return "size unknown"

    @property
    def gpu_memory_text(self) -> str:
        known = {mode: self.gpu_memory_gib.get(mode) for mode in GPU_MODES}
        if all(v is None for v in known.values()):
            return "not measured"
        text = " / ".join(f"{mode} {'?' if v is None else f'{v:g}'}" for mode, v in known.items()) + " GiB"
        return f"{text} ({self.gpu_memory_basis.split()[0]})" if self.gpu_memory_basis else text


def _check_optional_number(value, kind, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, kind) or value < 0):
        raise ModelCheckError(f"{what} must be a non-negative number or null")


def _check_file_spec(path: str, spec, at: str) -> dict:
    _check_relative(path, at)
    if not isinstance(spec, Mapping) or set(spec) != {"size", "sha256"}:
        raise ModelCheckError(f"{at}: file '{path}' must be {{\"size\": ..., \"sha256\": ...}}")
    size, sha = spec["size"], spec["sha256"]
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ModelCheckError(f"{at}: file '{path}': size must be a byte count or null")
    if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        raise ModelCheckError(f"{at}: file '{path}': sha256 must be 64 lowercase hex digits or null")
    return {"size": size, "sha256": sha}


def _check_relative(path: str, at: str) -> None:
    """A manifest or record path must stay inside the model folder."""
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts or "\\" in path:
        raise ModelCheckError(f"{at}: '{path}' is not a path inside the model folder")


def load_manifest(manifest: str | Path | None = None) -> dict[str, ModelEntry]:
    """Read a manifest (default: the shipped ``resources/models.json``): name -> entry, in file order."""
    path = Path(manifest) if manifest is not None else MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelCheckError(f"{path}: manifest not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelCheckError(f"{path}: not a readable manifest ({e})") from None
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        raise ModelCheckError(f"{path}: manifest version must be {MANIFEST_VERSION}")
    models = data.get("models")
    if not isinstance(models, dict):
        raise ModelCheckError(f"{path}: field 'models' must be an object")
    return {name: ModelEntry.from_dict(name, entry, str(path)) for name, entry in models.items()}


def models_dir() -> Path:
    """Where models live: ``$SHOTFILL_MODELS`` when set, else ``~/.cache/shotfill/models``."""
    env = os.environ.get("SHOTFILL_MODELS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "shotfill" / "models"


def _entry(name: str, entries: Mapping[str, ModelEntry]) -> ModelEntry:
    if name not in entries:
        raise ModelCheckError(f"unknown model '{name}' (known: {', '.join(entries) or 'none'})")
    return entries[name]


def model_path(name: str, manifest: str | Path | None = None) -> Path:
    """The folder of a manifest entry: ``models_dir() / name`` (present or not)."""
    return models_dir() / _entry(name, load_manifest(manifest)).name


def is_present(folder: Path) -> bool:
    """Whether a model folder is there at all (cheap; :func:`~shotfill.engines.pretrained.store.verify` says
    whether it is right)."""
    return (folder / "model_index.json").is_file()


def list_models(manifest: str | Path | None = None) -> list[dict]:
    """One row per manifest entry: name, engine, sizes, GPU memory, whether present, and its folder."""
    rows = []
    for name, entry in load_manifest(manifest).items():
        folder = models_dir() / name
        rows.append({"name": name, "engine": entry.engine, "pipeline": entry.pipeline,
                     "repo_id": entry.repo_id, "revision": entry.revision, "licence": entry.licence,
                     "size_bytes": entry.size_bytes, "download_gb": entry.download_gb, "size": entry.size_text,
                     "gpu_memory_gib": {mode: entry.gpu_memory_gib.get(mode) for mode in GPU_MODES},
                     "present": is_present(folder), "path": str(folder)})
    return rows


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


# ---------------------------------------------------------------------------
# pinning a model: the entry written into a manifest
# ---------------------------------------------------------------------------
def add_to_manifest(manifest: str | Path, name: str, entry: Mapping, *, replace: bool = False) -> None:
    """Write ``entry`` under ``name`` into a manifest file, creating the file when it does not exist."""
    path = Path(manifest)
    if path.exists():
        load_manifest(path)                 # refuse to extend a manifest that is not valid
        data = json.loads(path.read_text())
    else:
        data = {"version": MANIFEST_VERSION, "models": {}}
    if name in data["models"] and not replace:
        raise ModelCheckError(f"{path}: already has a model '{name}' (use --replace to overwrite it)")
    data["models"][name] = dict(entry)
    _write_json_atomic(path, data)
