"""Checking a model folder: safetensors only (pickle-based weights refused), every file there
(:func:`component_files`), sizes, then every sha256 against the manifest or the download record,
with a verified stamp so engines need not rehash unchanged files; and pinning a folder one trusts
(:func:`record_entry`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Mapping

from ....errors import EngineUnavailableError
from .manifest import (GPU_MODES, ModelCheckError, ModelEntry, _check_file_spec, _check_relative, _entry,
                       _write_json_atomic, is_present, load_manifest, models_dir)

#: written into a model folder by :func:`~shotfill.engines.pretrained.store.download`, once every file matched the hub
DOWNLOAD_RECORD = ".shotfill-download.json"
RECORD_VERSION = 1
#: what the last complete check of a folder found: each file's size, modification time and sha256
VERIFIED_STAMP = ".shotfill-verified.json"
#: checksums are computed over this much at a time (the weight files are gigabytes)
CHUNK_BYTES = 8 << 20
#: pickle-based weight formats: never loaded, and a folder holding one is refused
FORBIDDEN_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")

ProgressFn = Callable[[float, str], None]


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
