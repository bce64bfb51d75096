"""``shotfill train vae|dit|export``: train or fine-tune the ``dit`` engine's VAE and transformer.

The training itself is :mod:`shotfill.training`; this is its command line. The handler
gives :func:`~shotfill.training.trainer.train_vae` and :func:`~shotfill.training.trainer.train_dit`
the parsed :class:`argparse.Namespace`, which they read their options from.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import InputError, ShotfillError


def add_parser(sub) -> None:
    """Add ``train`` to the tree (its options are added when it runs: their defaults live beside torch)."""
    p = sub.add_parser("train", help="train or fine-tune the dit engine's VAE and transformer",
                       description="Train the dit engine's VAE and transformer.", arguments=add_arguments,
                       own_errors=True)
    p.set_defaults(func=cmd_train)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The parts of ``shotfill train`` and their options."""
    from ..training import PRESETS, SHARED_ENV

    commands = parser.add_subparsers(dest="part", required=True)
    for part in ("vae", "dit"):
        sub = commands.add_parser(part, help=f"train the {'VAE' if part == 'vae' else 'diffusion transformer'}")
        sub.add_argument("--data", required=True, help="footage folder, 'procedural', or a recipe JSON")
        sub.add_argument("--out", required=True, help="checkpoint folder (vae/, transformer/, logs, state)")
        sub.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
        sub.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
        sub.add_argument("--init", help="start from this checkpoint's weights (fine-tune), e.g. resources/dit")
        sub.add_argument("--steps", type=int, help="stop at this many steps in total (across resumes)")
        sub.add_argument("--seconds", type=float, help="stop after this many seconds of this run")
        sub.add_argument("--shared", help=f"root recipe footage paths are relative to (default ${SHARED_ENV})")
        sub.add_argument("--seed", type=int, default=0)
        if part == "dit":
            sub.add_argument("--guide", action=argparse.BooleanOptionalAction, default=None,
                             help="give the model the flow engine's guess as a clean input (default: the "
                                  "preset's; an unguided model to fine-tune gains the input, unused at first)")
            sub.add_argument("--refine-share", type=float,
                             help="share of samples that learn to refine the flow engine's result "
                                  "(default: the preset's)")
            sub.add_argument("--attention", choices=("full", "factorised"),
                             help="the transformer's attention (default: the preset's, or --init's model's; "
                                  "a full-attention model to fine-tune is converted, weights kept)")
    export = commands.add_parser("export", help="write a checkpoint in the shipped form, with a manifest")
    export.add_argument("checkpoint")
    export.add_argument("--out", required=True)
    export.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    export.add_argument("--model-id", default="shotfill-dit", help="the model's name in the manifest and EXR headers")
    export.add_argument("--strength", type=float, default=1.0,
                        help="the dit engine's default strength for this model (1: from noise; below: refine the flow result)")
    export.add_argument("--steps", type=int, default=10,
                        help="the dit engine's default denoising steps for this model, from --strength down to 0")
    export.add_argument("--samples", type=int, default=1, help="the dit engine's default samples (their mean is kept)")
    export.add_argument("--output", default="picture", choices=("picture", "correction"),
                        help="the dit engine's default output: the model's picture, or the flow result corrected by it")
    export.add_argument("--keep-guess-for", nargs="+", default=(), metavar="TASK",
                        help="task kinds (extend_forward, extend_backward, bridge, fill) on which the dit engine "
                             "keeps its first guess by default: where the model's change was measured to lose")


def cmd_train(args) -> int:
    """Train the part ``args.part`` names, or export a checkpoint; bad input exits 2."""
    import torch

    from ..training import (PRESETS, SHARED_ENV, check_resumable, export_checkpoint, load_data, train_dit,
                            train_vae)

    def log(message: str) -> None:
        print(message, flush=True)

    try:
        from ..worker.existing import check_out_folder

        check_out_folder(args.out, "--out")          # a file there: exit 2 naming it, before any work
        if args.part == "export":
            manifest = export_checkpoint(Path(args.checkpoint), Path(args.out), getattr(torch, args.dtype),
                                         args.model_id, args.strength, args.samples, args.output, args.steps,
                                         tuple(args.keep_guess_for))
            log(f"exported {len(manifest['files'])} weight files to {args.out}")
            return 0
        if args.resume and args.init:
            raise InputError("--resume and --init: choose one (resume continues --out, init fine-tunes from another)")
        if args.steps is None and args.seconds is None:
            raise InputError("give --steps or --seconds (or both): training has no natural end")
        if args.resume:
            check_resumable(Path(args.out), "vae" if args.part == "vae" else "transformer")
        preset = PRESETS[args.preset]
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        shared_text = args.shared or os.environ.get(SHARED_ENV)
        shared = Path(shared_text) if shared_text else None
        Path(args.out).mkdir(parents=True, exist_ok=True)
        clips = load_data(args.data, preset, shared, log)
        if args.part == "vae":
            train_vae(args, preset, clips, device, log)
        else:
            train_dit(args, preset, clips, device, log)
    except ShotfillError as e:
        print(f"shotfill train: {e}", file=sys.stderr)
        return 2 if isinstance(e, InputError) else 1
    return 0
