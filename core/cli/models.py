"""``shotfill models``: the pretrained models the ``wan-vace`` and ``ltx`` engines run.

    shotfill models list [--json]                 every manifest entry: size, GPU memory, present or not
    shotfill models download NAME [--dest DIR]    fetch it from the Hugging Face Hub (online machines only)
    shotfill models verify NAME|FOLDER [--name N] recompute every checksum; exit 2 naming what is wrong
    shotfill models path NAME                     the folder a model lives in
    shotfill models record FOLDER --name N ...    pin a folder's files into a manifest (studio models)

Every action takes ``--manifest FILE`` to use another manifest than the shipped one. Models live in
``$SHOTFILL_MODELS`` (default ``~/.cache/shotfill/models``). Errors are raised as shotfill errors
and reported by the command line's boundary (exit code 2 for a bad model or an offline machine).
"""
from __future__ import annotations

import argparse
import json
import sys

from ..engines.pretrained import store as model_store
from ..errors import EXIT_OK


def _progress(fraction: float, message: str) -> None:
    print(f"  [{fraction:4.0%}] {message}", file=sys.stderr)


def _print_verified(model: model_store.VerifiedModel) -> None:
    for rel, spec in model.files.items():
        print(f"  OK  {rel}  sha256 {spec['sha256'][:16]}…  ({spec['source']})")
    print(f"model '{model.entry.name}' verified in {model.path}: {len(model.files)} files, "
          f"checksum {model.checksum}")


def cmd_list(args) -> int:
    rows = model_store.list_models(args.manifest)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    entries = model_store.load_manifest(args.manifest)
    print(f"models in {model_store.models_dir()}:")
    for row in rows:
        entry = entries[row["name"]]
        state = "present" if row["present"] else "not downloaded"
        print(f"  {row['name']:<22} {row['engine']:<9} {row['size']:<13} "
              f"GPU memory: {entry.gpu_memory_text:<14} {state}")
    return EXIT_OK


def cmd_download(args) -> int:
    model = model_store.download(args.name, manifest=args.manifest, dest=args.dest, progress=_progress)
    _print_verified(model)
    return EXIT_OK


def cmd_verify(args) -> int:
    model = model_store.verify(args.target, name=args.name, engine=args.engine, manifest=args.manifest,
                               progress=_progress)
    _print_verified(model)
    return EXIT_OK


def cmd_path(args) -> int:
    folder = model_store.model_path(args.name, args.manifest)
    print(folder)
    if not model_store.is_present(folder):
        print(f"shotfill: '{args.name}' is not downloaded yet (shotfill models download {args.name})",
              file=sys.stderr)
    return EXIT_OK


def cmd_record(args) -> int:
    gpu = {mode: getattr(args, f"gpu_{mode}") for mode in model_store.GPU_MODES}
    entry = model_store.record_entry(
        args.folder, name=args.name, engine=args.engine, licence=args.licence, pipeline=args.pipeline,
        repo_id=args.repo_id, revision=args.revision, gpu_memory_gib=gpu, native_frame_rate=args.frame_rate,
        max_frames=args.max_frames, resolution=args.resolution, source=args.source, progress=_progress)
    model_store.add_to_manifest(args.manifest, args.name, entry, replace=args.replace)
    print(f"recorded '{args.name}' ({len(entry['files'])} files, {entry['size_bytes']} bytes) in {args.manifest}")
    return EXIT_OK


def add_parser(sub) -> argparse.ArgumentParser:
    """Add ``models`` and its actions to a command line's subparsers."""
    manifest = argparse.ArgumentParser(add_help=False)
    manifest.add_argument("--manifest", metavar="FILE",
                          help="model manifest (default: the one shotfill ships, resources/models.json)")

    p = sub.add_parser("models", help="pretrained models for wan-vace and ltx: list, download, verify, path, record",
                       description="The pretrained models the wan-vace and ltx engines run.")
    actions = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    a = actions.add_parser("list", parents=[manifest], help="every model: size, GPU memory, present or not")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_list)

    a = actions.add_parser("download", parents=[manifest], help="fetch a model from the Hugging Face Hub")
    a.add_argument("name")
    a.add_argument("--dest", metavar="DIR", help="folder to download into (default: its folder in the models dir)")
    a.set_defaults(func=cmd_download)

    a = actions.add_parser("verify", parents=[manifest],
                           help="check a model completely (files, sizes, every sha256); exit 2 naming the fault")
    a.add_argument("target", metavar="NAME|FOLDER")
    a.add_argument("--name", help="with a FOLDER: the manifest entry it must be")
    a.add_argument("--engine", help="with a FOLDER: the engine it must be a model of")
    a.set_defaults(func=cmd_verify)

    a = actions.add_parser("path", parents=[manifest], help="print the folder a model lives in")
    a.add_argument("name")
    a.set_defaults(func=cmd_path)

    a = actions.add_parser("record", help="pin every file of a model folder into a manifest")
    a.add_argument("folder")
    a.add_argument("--manifest", metavar="FILE", required=True, help="manifest to write (created if absent)")
    a.add_argument("--name", required=True, help="the entry's name")
    a.add_argument("--engine", required=True, help="engine that runs it (wan-vace, ltx)")
    a.add_argument("--licence", "--license", dest="licence", required=True)
    a.add_argument("--pipeline", help="diffusers pipeline class (default: model_index.json's _class_name)")
    a.add_argument("--repo-id", help="Hugging Face repository, for `download`")
    a.add_argument("--revision", help="the repository commit these files are")
    a.add_argument("--frame-rate", type=float, help="the model's native frame rate")
    a.add_argument("--max-frames", type=int)
    a.add_argument("--resolution")
    for mode in model_store.GPU_MODES:
        a.add_argument(f"--gpu-{mode}", type=float, metavar="GIB", help=f"GPU memory it needs ({mode})")
    a.add_argument("--source", default="", help="where the model comes from, for the people who read the manifest")
    a.add_argument("--replace", action="store_true", help="overwrite an entry of the same name")
    a.set_defaults(func=cmd_record)
    return p
