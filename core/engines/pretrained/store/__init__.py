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

One job per module: :mod:`.manifest` (entries, folders, the listing, writing a manifest),
:mod:`.verification` (checking a folder, opening a model for an engine, pinning a folder) and
:mod:`.hub` (fetching from the hub).
"""
from .hub import COMPONENT_SUFFIXES, HubUnreachableError, download
from .manifest import (GPU_MODES, MANIFEST, MANIFEST_VERSION, ModelCheckError, ModelEntry, add_to_manifest, is_present,
                       list_models, load_manifest, model_path, models_dir)
from .verification import (CHUNK_BYTES, DOWNLOAD_RECORD, FORBIDDEN_SUFFIXES, RECORD_VERSION, VERIFIED_STAMP, ProgressFn,
                     VerifiedModel, component_files, open_model, record_entry, sha256_file, verify)

__all__ = [
    "CHUNK_BYTES", "COMPONENT_SUFFIXES", "DOWNLOAD_RECORD", "FORBIDDEN_SUFFIXES", "GPU_MODES", "MANIFEST",
    "MANIFEST_VERSION", "RECORD_VERSION", "VERIFIED_STAMP", "HubUnreachableError", "ModelCheckError", "ModelEntry",
    "ProgressFn", "VerifiedModel", "add_to_manifest", "component_files", "download", "is_present", "list_models",
    "load_manifest", "model_path", "models_dir", "open_model", "record_entry", "sha256_file", "verify",
]
