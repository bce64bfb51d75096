"""The pretrained-model store: a shipped manifest, local folders, checksums, downloads.

The ``wan-vace`` and ``ltx`` engines run open video models through diffusers' pipelines. shotfill
loads such a model only from a local folder in diffusers format, and only after checking it
against a manifest entry (``resources/models.json``, or a studio's own with ``manifest=``):

- **safetensors only**: a folder holding weights in a pickle-based format (``*.bin``, ``*.pt``,
  ``*.pth``, ``*.ckpt``, ``*.pkl``) is refused, whatever else it holds;
- **complete**: every file of the model is there. When the entry pins its file list
  (``"files_pinned": true``) that list is the model; otherwise ``model_index.json`` names the
  components, and each needs its config and its weights (every shard its ``*.safetensors.index.json``
  lists) -- see :func:`component_files`;
- **checksum-matching**: sizes are compared first (cheap), then every file's sha256 is recomputed.
  A checksum comes from the manifest when it pins one (``"sha256": null`` means that release does
  not pin it), else from the ``.shotfill-download.json`` record that :func:`download` writes after
  checking each file against the Hugging Face Hub. A file with neither is refused.

Models live in :func:`models_dir`, one folder per manifest entry (``models_dir() / name``).
Nothing downloads implicitly: only :func:`download` (``shotfill models download NAME``) touches
the network.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Mapping

from ...errors import EngineUnavailableError, InputError
from ...resources import RESOURCES

#: the manifest that ships with shotfill
MANIFEST = RESOURCES / "models.json"
MANIFEST_VERSION = 1
#: written into a model folder by :func:`download`, once every file matched the hub
DOWNLOAD_RECORD = ".shotfill-download.json"
RECORD_VERSION = 1
#: what the last complete check of a folder found: each file's size, modification time and sha256
VERIFIED_STAMP = ".shotfill-verified.json"
#: checksums are computed over this much at a time (the weight files are gigabytes)
CHUNK_BYTES = 8 << 20
#: pickle-based weight formats: never loaded, and a folder holding one is refused
FORBIDDEN_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
#: the ways an engine can place a model on the GPU, as keys of ``gpu_memory_gib``
GPU_MODES = ("gpu", "offload", "group", "sequential")
#: what :func:`download` fetches from the component folders of an entry that does not pin its
#: file list (configs, weights, tokenizer vocabularies); nothing outside those folders but
#: ``model_index.json`` (repositories also keep single-file checkpoints and media at their root)
COMPONENT_SUFFIXES = (".json", ".safetensors", ".txt", ".model")

ProgressFn = Callable[[float, str], None]
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ModelCheckError(InputError):
    """A model folder or manifest is not what it must be; the message names the folder and the file."""


class HubUnreachableError(InputError):
    """The Hugging Face Hub cannot be reached (offline machine, ``HF_HUB_OFFLINE``, no network)."""


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
    """Whether a model folder is there at all (cheap; :func:`verify` says whether it is right)."""
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


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------
def _hash_file(path: Path, digest) -> str:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read :data:`CHUNK_BYTES` at a time."""
    return _hash_file(path, hashlib.sha256())


def _git_blob_sha1(path: Path) -> str:
    """Git's object id of a file: how the hub names a file it does not keep in LFS."""
    return _hash_file(path, hashlib.sha1(f"blob {path.stat().st_size}\0".encode()))


def _is_hidden(rel: PurePosixPath) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _walk(folder: Path) -> Iterable[PurePosixPath]:
    """Every file under ``folder``, as POSIX paths relative to it."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            yield PurePosixPath(path.relative_to(folder).as_posix())


def _refuse_pickles(folder: Path) -> None:
    pickles = [str(rel) for rel in _walk(folder) if rel.suffix.lower() in FORBIDDEN_SUFFIXES]
    if pickles:
        raise ModelCheckError(
            f"{folder}: weights in a pickle-based format are refused ({', '.join(pickles)}); "
            f"shotfill loads safetensors only: remove them, or use a safetensors release of the model")


def _model_index(folder: Path) -> dict:
    path = folder / "model_index.json"
    if not path.is_file():
        raise ModelCheckError(f"{folder}: no model_index.json: not a model folder in diffusers format")
    try:
        index = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelCheckError(f"{path}: cannot be read ({e})") from None
    if not isinstance(index, dict):
        raise ModelCheckError(f"{path}: must be a JSON object")
    return index


def component_files(folder: Path) -> set[str]:
    """The files of a diffusers-format folder, found from its ``model_index.json``.

    Each component the index names (``"vae": ["diffusers", "AutoencoderKLWan"]``) is a folder
    that must hold, by its class: ``scheduler_config.json`` for a ``*Scheduler``;
    ``tokenizer_config.json`` for a ``*Tokenizer*``; for any other class (a model) ``config.json``
    and its weights: every shard listed by each ``*.safetensors.index.json``, or at least one
    ``*.safetensors``. Returns ``model_index.json`` and every file in those folders (hidden files
    aside); raises :class:`ModelCheckError` naming what is missing.
    """
    files = {"model_index.json"}
    for component, cls in _components(_model_index(folder)).items():
        comp = folder / component
        if not comp.is_dir():
            raise ModelCheckError(f"{folder}: component folder '{component}/' ({cls}) is missing")
        present = {f"{component}/{rel}" for rel in _walk(comp) if not _is_hidden(rel)}
        if cls.endswith("Scheduler"):
            required = {f"{component}/scheduler_config.json"}
        elif "Tokenizer" in cls:
            required = {f"{component}/tokenizer_config.json"}
        else:
            required = {f"{component}/config.json"} | _weight_files(folder, component, present)
        missing = sorted(required - present)
        if missing:
            raise ModelCheckError(f"{folder}: missing {', '.join(missing)} (component '{component}', {cls})")
        files |= present
    return files


def _components(index: Mapping) -> dict[str, str]:
    """The components a ``model_index.json`` names, folder -> class (optional ones left empty skipped)."""
    return {name: str(spec[1]) for name, spec in sorted(index.items())
            if not name.startswith("_") and isinstance(spec, list) and len(spec) == 2 and spec[1] is not None}


def _weight_files(folder: Path, component: str, present: set[str]) -> set[str]:
    """The weight files a model component needs: the shards its indexes list, or its safetensors."""
    indexes = sorted(p for p in present if p.endswith(".safetensors.index.json"))
    if not indexes:
        weights = {p for p in present if p.endswith(".safetensors")}
        if not weights:
            raise ModelCheckError(f"{folder}: component '{component}' has no safetensors weights")
        return weights
    shards = set()
    for rel in indexes:
        try:
            weight_map = json.loads((folder / rel).read_text())["weight_map"]
            for shard in weight_map.values():
                _check_relative(shard, str(folder / rel))
                shards.add(f"{component}/{shard}")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise ModelCheckError(f"{folder / rel}: not a readable shard index ({e})") from None
    return shards


# ---------------------------------------------------------------------------
# the download record
# ---------------------------------------------------------------------------
def _read_record(folder: Path) -> dict | None:
    """The ``.shotfill-download.json`` of a folder, checked; None when there is none."""
    path = folder / DOWNLOAD_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelCheckError(f"{path}: cannot be read ({e})") from None
    at = str(path)
    if not isinstance(record, dict) or record.get("version") != RECORD_VERSION \
            or not isinstance(record.get("name"), str) or not isinstance(record.get("files"), dict):
        raise ModelCheckError(f"{path}: not a shotfill download record (version {RECORD_VERSION})")
    for rel, spec in record["files"].items():
        if _check_file_spec(rel, spec, at)["sha256"] is None or spec["size"] is None:
            raise ModelCheckError(f"{path}: file '{rel}' has no size or checksum")
    return record


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


# ---------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifiedModel:
    """A model folder that passed :func:`verify`.

    ``checksum`` is the sha256 of the sorted ``{file: sha256}`` JSON: one value naming exactly these
    weights, for provenance (EXR headers). ``files`` maps each file to its ``size``, ``sha256`` and
    ``source``: where the expected checksum came from (``"manifest"`` or ``"download record"``).
    """

    entry: ModelEntry
    path: Path
    checksum: str
    files: dict[str, dict]


def verify(target: str | Path, *, engine: str | None = None, name: str | None = None,
           manifest: str | Path | None = None, progress: ProgressFn | None = None,
           rehash: bool = True) -> VerifiedModel:
    """Check a model folder completely: safetensors only, every file there, sizes, then every sha256.

    ``target`` is a manifest name (its folder in :func:`models_dir`) or a folder. A folder is matched
    to its entry by ``name`` when given. Otherwise the candidates are the entries that pin the sha256
    of its ``model_index.json``, or failing those the entries of its pipeline class that pin none;
    then the entry its download record names; then those of ``engine``; then the one candidate the
    folder fits (complete, sizes right, a checksum for every file). A folder fitting none is refused
    with each candidate's problem; one fitting several is refused as ambiguous. With ``engine``, the
    entry must be of that engine.

    Every check writes a :data:`VERIFIED_STAMP` in the folder (when it can) with each file's size,
    modification time and sha256. With ``rehash`` False (what engines do: a farm opens the same
    model for every task), a file whose size and modification time match the stamp, and whose
    stamped sha256 matches the expected one, is not hashed again; everything else still is.
    """
    entries = load_manifest(manifest)
    if name is None and isinstance(target, str) and target in entries:
        entry, folder = entries[target], models_dir() / target
        if not folder.is_dir():
            raise ModelCheckError(f"model '{entry.name}' is not present in {folder}: "
                                  f"shotfill models download {entry.name} ({entry.size_text})")
    else:
        folder = Path(target)
        if not folder.is_dir():
            raise ModelCheckError(f"{folder}: neither a model folder nor a model name "
                                  f"(known: {', '.join(entries) or 'none'})")
        entry = _entry(name, entries) if name is not None else _match_entry(folder, entries, engine)
    if engine is not None and entry.engine != engine:
        raise ModelCheckError(f"{folder}: model '{entry.name}' is a {entry.engine} model, not {engine}")
    return _check_folder(folder, entry, progress, rehash=rehash)


def _match_entry(folder: Path, entries: Mapping[str, ModelEntry], engine: str | None) -> ModelEntry:
    """The entry a folder holds (see :func:`verify`); refuses a folder that fits none, or several."""
    index = _model_index(folder)
    index_sha = sha256_file(folder / "model_index.json")
    pins = {n: e.files.get("model_index.json", {}).get("sha256") for n, e in entries.items()}
    candidates = [n for n, sha in pins.items() if sha == index_sha] or [
        n for n, sha in pins.items() if sha is None and entries[n].pipeline == index.get("_class_name")]
    record = _read_record(folder)
    if record is not None:
        if record["name"] not in candidates:
            raise ModelCheckError(f"{folder}: its {DOWNLOAD_RECORD} names model '{record['name']}', "
                                  f"which this manifest does not hold or whose model_index.json differs")
        return entries[record["name"]]
    if engine is not None:
        candidates = [n for n in candidates if entries[n].engine == engine]
    if not candidates:
        of_engine = f" of engine {engine}" if engine is not None else ""
        raise ModelCheckError(f"{folder}: no model{of_engine} in this manifest fits its model_index.json "
                              f"({index.get('_class_name')}); known: {', '.join(entries) or 'none'}")
    if len(candidates) == 1:
        return entries[candidates[0]]
    problems = {}
    for n in candidates:
        try:
            _plan_folder(folder, entries[n])
        except ModelCheckError as e:
            problems[n] = str(e).removeprefix(f"{folder}: ")
    fitting = [n for n in candidates if n not in problems]
    if len(fitting) == 1:
        return entries[fitting[0]]
    if not fitting:
        raise ModelCheckError(f"{folder}: not a complete, checksum-matching model of this manifest: "
                              + "; ".join(f"as {n}: {why}" for n, why in problems.items()))
    raise ModelCheckError(f"{folder}: cannot tell which model this is (could be: {', '.join(fitting)}); "
                          f"name it: shotfill models verify {folder} --name NAME")


def _plan_folder(folder: Path, entry: ModelEntry) -> dict[str, dict]:
    """Every check short of hashing; returns the :func:`_checksum_plan` the hashes must match."""
    _refuse_pickles(folder)
    record = _read_record(folder)
    if record is not None and record["name"] != entry.name:
        raise ModelCheckError(f"{folder}: its {DOWNLOAD_RECORD} says it holds model '{record['name']}', "
                              f"not '{entry.name}'")
    expected = set(entry.files) if entry.files_pinned else set(entry.files) | component_files(folder)

    missing = sorted(rel for rel in expected if not (folder / rel).is_file())
    if missing:
        raise ModelCheckError(f"{folder}: incomplete model '{entry.name}': missing {_names(missing)}")
    extra = sorted(str(rel) for rel in _walk(folder)
                   if rel.suffix == ".safetensors" and not _is_hidden(rel) and str(rel) not in expected)
    if extra:
        raise ModelCheckError(f"{folder}: {_names(extra)} not part of model '{entry.name}'")

    plan = _checksum_plan(entry, expected, record)
    wrong_size = [f"{rel} ({(folder / rel).stat().st_size} bytes, expected {spec['size']})"
                  for rel, spec in plan.items()
                  if spec["size"] is not None and (folder / rel).stat().st_size != spec["size"]]
    if wrong_size:
        raise ModelCheckError(f"{folder}: wrong size: {_names(wrong_size)}")
    unchecked = [rel for rel, spec in plan.items() if spec["sha256"] is None]
    if unchecked:
        why = f"the folder has no {DOWNLOAD_RECORD}" if record is None else f"its {DOWNLOAD_RECORD} does not list them"
        raise ModelCheckError(
            f"{folder}: no checksum for {_names(unchecked)}: the manifest does not pin them and {why}; "
            f"get the model with `shotfill models download {entry.name}` "
            f"(or pin a folder you trust with `shotfill models record`)")
    return plan


def _check_folder(folder: Path, entry: ModelEntry, progress: ProgressFn | None, *,
                  rehash: bool = True) -> VerifiedModel:
    """:func:`_plan_folder`, then recompute every sha256 (not those the stamp vouches for, without ``rehash``)."""
    plan = _plan_folder(folder, entry)
    stamp = {} if rehash else _read_stamp(folder, entry.name)
    total = sum((folder / rel).stat().st_size for rel in plan) or 1
    done, mismatched, checked, stamped = 0, [], {}, {}
    for rel, spec in plan.items():
        stat = (folder / rel).stat()
        known = stamp.get(rel, {})
        if known.get("size") == stat.st_size and known.get("mtime_ns") == stat.st_mtime_ns \
                and known.get("sha256") == spec["sha256"]:
            actual = spec["sha256"]
        else:
            if progress is not None:
                progress(done / total, f"sha256 {rel}")
            actual = sha256_file(folder / rel)
        stamped[rel] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": actual}
        if actual != spec["sha256"]:
            mismatched.append(f"{rel} (sha256 {actual[:12]}…, expected {spec['sha256'][:12]}… "
                              f"from the {spec['source']})")
        checked[rel] = {"size": stat.st_size, "sha256": actual, "source": spec["source"]}
        done += stat.st_size
    if mismatched:
        raise ModelCheckError(f"{folder}: checksum mismatch: {_names(mismatched)}")
    if stamped != stamp:  # something was hashed: record it (an open that trusted every file writes nothing)
        try:
            _write_json_atomic(folder / VERIFIED_STAMP,
                               {"version": RECORD_VERSION, "name": entry.name, "files": stamped})
        except OSError:  # a read-only model folder (shared storage): every open hashes again
            pass
    if progress is not None:
        progress(1.0, f"verified {entry.name}")
    return VerifiedModel(entry=entry, path=folder.resolve(), checksum=_checksum(checked), files=checked)


def _read_stamp(folder: Path, name: str) -> dict[str, dict]:
    """The files of a folder's :data:`VERIFIED_STAMP` for model ``name``; empty when there is none or it is unreadable."""
    try:
        stamp = json.loads((folder / VERIFIED_STAMP).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(stamp, dict) or stamp.get("version") != RECORD_VERSION or stamp.get("name") != name \
            or not isinstance(stamp.get("files"), dict):
        return {}
    return {rel: spec for rel, spec in stamp["files"].items() if isinstance(spec, dict)}


def _checksum_plan(entry: ModelEntry, expected: set[str], record: dict | None) -> dict[str, dict]:
    """For each expected file: the size and sha256 it must have, and where the checksum comes from.

    The manifest's pin wins; a file it leaves unpinned takes the download record's values; a file
    with neither gets ``sha256`` None (refused by the caller).
    """
    recorded = record["files"] if record is not None else {}
    plan = {}
    for rel in sorted(expected):
        pinned = entry.files.get(rel, {"size": None, "sha256": None})
        if pinned["sha256"] is not None:
            plan[rel] = {**pinned, "source": "manifest"}
        elif rel in recorded:
            size = pinned["size"] if pinned["size"] is not None else recorded[rel]["size"]
            plan[rel] = {"size": size, "sha256": recorded[rel]["sha256"], "source": "download record"}
        else:
            plan[rel] = {**pinned, "source": None}
    return plan


def _checksum(files: Mapping[str, dict]) -> str:
    blob = json.dumps({rel: spec["sha256"] for rel, spec in sorted(files.items())}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _names(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


# ---------------------------------------------------------------------------
# what an engine calls
# ---------------------------------------------------------------------------
def open_model(model: str | Path | None, *, engine: str, manifest: str | Path | None = None,
               progress: ProgressFn | None = None) -> VerifiedModel:
    """The verified model an engine runs.

    ``model`` None: the first entry of ``engine`` (manifest order) whose folder is present in
    :func:`models_dir`. A name or a folder: :func:`verify` it, as a model of ``engine``.
    """
    if model is not None:
        return verify(model, engine=engine, manifest=manifest, progress=progress, rehash=False)
    entries = [e for e in load_manifest(manifest).values() if e.engine == engine]
    if not entries:
        raise EngineUnavailableError(f"the model manifest has no {engine} model")
    for entry in entries:
        if is_present(models_dir() / entry.name):
            return verify(entry.name, engine=engine, manifest=manifest, progress=progress, rehash=False)
    first = entries[0]
    raise EngineUnavailableError(f"no {engine} model is present in {models_dir()}: "
                                 f"shotfill models download {first.name} ({first.size_text})")


# ---------------------------------------------------------------------------
# download
# ---------------------------------------------------------------------------
def _hub_offline() -> bool:
    from huggingface_hub import constants

    # the constant is read when huggingface_hub is imported; the variable may have been set since
    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in constants.ENV_VARS_TRUE_VALUES


def _unreachable(dest: Path, name: str, reason: str) -> HubUnreachableError:
    return HubUnreachableError(
        f"cannot reach the Hugging Face Hub: this machine is offline ({reason}); download on an online "
        f"machine (shotfill models download {name}) and copy the folder to {dest}, "
        f"then `shotfill models verify {name}`")


def download(name: str, *, manifest: str | Path | None = None, dest: str | Path | None = None,
             progress: ProgressFn | None = None) -> VerifiedModel:
    """Fetch a manifest entry with huggingface_hub, check every file against the hub, then :func:`verify`.

    The revision is resolved to a commit first, so the folder holds one exact snapshot. Each file's
    sha256 (LFS) or git object id is compared with the hub's, and the result is written to
    ``dest / .shotfill-download.json``: the checksum source for the files the manifest does not pin.
    Offline (``HF_HUB_OFFLINE``, no network) raises :class:`HubUnreachableError` before writing anything.
    """
    entry = _entry(name, load_manifest(manifest))
    dest = Path(dest) if dest is not None else models_dir() / name
    if entry.repo_id is None:
        raise ModelCheckError(f"model '{name}' has no repo_id: it cannot be downloaded; copy its folder to {dest}")
    if _hub_offline():
        raise _unreachable(dest, name, "HF_HUB_OFFLINE is set")

    import httpx2
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        info = HfApi().model_info(entry.repo_id, revision=entry.revision, files_metadata=True)
        hub = {s.rfilename: s for s in info.siblings}
        components = None
        if not entry.files_pinned:
            snapshot_download(entry.repo_id, revision=info.sha, allow_patterns=["model_index.json"], local_dir=dest)
            components = set(_components(_model_index(dest)))
        wanted = _files_to_fetch(entry, hub, components)
        (dest / DOWNLOAD_RECORD).unlink(missing_ok=True)     # a failed download must not look verified
        if progress is not None:
            progress(0.0, f"downloading {len(wanted)} files of {entry.repo_id}@{info.sha[:12]}")
        snapshot_download(entry.repo_id, revision=info.sha, allow_patterns=wanted, local_dir=dest)
    except (OfflineModeIsEnabled, LocalEntryNotFoundError, httpx2.TransportError) as e:
        raise _unreachable(dest, name, type(e).__name__) from None
    except HfHubHTTPError as e:
        raise ModelCheckError(f"cannot download '{name}' from {entry.repo_id}@{entry.revision or 'main'}: "
                              f"{str(e).splitlines()[0]}") from None

    files = {}
    for i, rel in enumerate(wanted):
        if progress is not None:
            progress(0.5 + 0.5 * i / len(wanted), f"checking {rel} against the hub")
        files[rel] = _check_against_hub(dest, rel, hub[rel])
    _write_json_atomic(dest / DOWNLOAD_RECORD, {"version": RECORD_VERSION, "name": name,
                                                "repo_id": entry.repo_id, "revision": info.sha,
                                                "checked_against_hub": True, "files": files})
    return verify(dest, name=name, manifest=manifest, progress=progress)


def _files_to_fetch(entry: ModelEntry, hub: Mapping[str, object], components: set[str] | None) -> list[str]:
    """The repository files to download: the pinned list, or ``model_index.json`` and its components' files."""
    absent = sorted(rel for rel in entry.files if rel not in hub)
    if absent:
        raise ModelCheckError(f"{entry.repo_id}@{entry.revision or 'main'} has no {_names(absent)}: "
                              f"the manifest entry '{entry.name}' does not match the repository")
    if components is None:
        return sorted(entry.files)
    return sorted(rel for rel in hub
                  if rel in entry.files or rel == "model_index.json"
                  or (rel.split("/", 1)[0] in components and rel.endswith(COMPONENT_SUFFIXES)))


def _check_against_hub(dest: Path, rel: str, sibling) -> dict:
    """Size and sha256 of a downloaded file, after checking it is the hub's (LFS sha256 or git id)."""
    path = dest / rel
    size = path.stat().st_size
    if sibling.size is not None and size != sibling.size:
        raise ModelCheckError(f"{path}: {size} bytes, the hub says {sibling.size}: download again")
    sha = sha256_file(path)
    if sibling.lfs is not None:
        if sha != sibling.lfs.sha256:
            raise ModelCheckError(f"{path}: sha256 {sha[:12]}… differs from the hub's {sibling.lfs.sha256[:12]}…")
    elif sibling.blob_id is not None and _git_blob_sha1(path) != sibling.blob_id:
        raise ModelCheckError(f"{path}: content differs from the hub's (git object {sibling.blob_id[:12]}…)")
    return {"size": size, "sha256": sha}


# ---------------------------------------------------------------------------
# pinning a model
# ---------------------------------------------------------------------------
def record_entry(folder: str | Path, *, name: str, engine: str, licence: str, pipeline: str | None = None,
                 repo_id: str | None = None, revision: str | None = None,
                 gpu_memory_gib: Mapping[str, float | None] | None = None,
                 native_frame_rate: float | None = None, max_frames: int | None = None,
                 resolution: str | None = None, source: str = "",
                 progress: ProgressFn | None = None) -> dict:
    """A manifest entry pinning every file of a folder (size and sha256): how a model gets pinned.

    The folder must be a complete diffusers-format model (see :func:`component_files`) with no
    pickle-based weights. ``pipeline`` defaults to the ``_class_name`` of its ``model_index.json``.
    Returns the entry as a dict, ready for ``manifest["models"][name]`` (and checked by
    :meth:`ModelEntry.from_dict`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelCheckError(f"{folder}: not a folder")
    _refuse_pickles(folder)
    rels = sorted(component_files(folder))
    files = {}
    for i, rel in enumerate(rels):
        if progress is not None:
            progress(i / len(rels), f"sha256 {rel}")
        files[rel] = {"size": (folder / rel).stat().st_size, "sha256": sha256_file(folder / rel)}
    entry = {
        "engine": engine,
        "pipeline": pipeline or str(_model_index(folder).get("_class_name", "")),
        "repo_id": repo_id,
        "revision": revision,
        "licence": licence,
        "size_bytes": sum(spec["size"] for spec in files.values()),
        "gpu_memory_gib": {mode: (gpu_memory_gib or {}).get(mode) for mode in GPU_MODES},
        "native_frame_rate": native_frame_rate,
        "max_frames": max_frames,
        "resolution": resolution,
        "files_pinned": True,
        "files": files,
        "source": source,
    }
    ModelEntry.from_dict(name, entry, str(folder))
    return entry


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
