"""Downloading a model: a manifest entry fetched from the Hugging Face Hub at one exact commit,
every file checked against the hub (LFS sha256 or git object id), the result recorded in the
folder (:data:`~shotfill.engines.pretrained.store.DOWNLOAD_RECORD`) and then verified.

Nothing downloads implicitly: only :func:`download` (``shotfill models download NAME``) touches
the network.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping

from ....errors import InputError
from .manifest import ModelCheckError, ModelEntry, _entry, _write_json_atomic, load_manifest, models_dir
from .verification import (DOWNLOAD_RECORD, RECORD_VERSION, ProgressFn, VerifiedModel, _components, _hash_file,
                     _model_index, _names, sha256_file, verify)

#: what :func:`download` fetches from the component folders of an entry that does not pin its
#: file list (configs, weights, tokenizer vocabularies); nothing outside those folders but
#: ``model_index.json`` (repositories also keep single-file checkpoints and media at their root)
COMPONENT_SUFFIXES = (".json", ".safetensors", ".txt", ".model")


class HubUnreachableError(InputError):
    """The Hugging Face Hub cannot be reached (offline machine, ``HF_HUB_OFFLINE``, no network)."""


def _git_blob_sha1(path: Path) -> str:
    """Git's object id of a file: how the hub names a file it does not keep in LFS."""
    return _hash_file(path, hashlib.sha1(f"blob {path.stat().st_size}\0".encode()))


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
