"""The root of the ``shotfill`` command tree: the parser every subcommand hangs from, and the
dispatch behind one error boundary.

Each subcommand group is a module of :mod:`shotfill.cli` with an ``add_parser(subparsers)``
that adds its parsers (their handlers set as ``func``); building the tree imports nothing
heavy, so ``shotfill --help``, ``info`` and ``plan`` never import torch.
"""
from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..errors import EXIT_CANCELLED, EXIT_OK, CancelledError, ShotfillError
from .common import CommandParser, internal_error
from .demo import add_parser as add_demo
from .engines import add_parser as add_engines
from .eval import add_parser as add_eval
from .farm import add_parser as add_farm
from .generate import add_parser as add_generate
from .info import add_parser as add_info
from .install_host import add_parser as add_install_host
from .models import add_parser as add_models
from .publish import add_parser as add_publish
from .train import add_parser as add_train

#: each subcommand group's ``add_parser``, in the order ``shotfill --help`` lists the commands
GROUPS = (add_info, add_generate, add_publish, add_demo, add_eval, add_farm, add_train, add_install_host,
          add_engines, add_models)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shotfill",
        description="Generative shot extension, bridging and fill for EXR plates and edits.",
        epilog="Exit codes: 0 done, 2 bad input, 3 cancelled, 1 internal error.")
    parser.add_argument("--version", action="version", version=f"shotfill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
    for add_parser in GROUPS:
        add_parser(sub)
    return parser


def main(argv=None) -> int:
    """``shotfill ...``; returns the exit code (0 done, 2 bad input, 3 cancelled, 1 internal error)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CancelledError:
        print("shotfill: cancelled; frames written so far are complete and a re-run resumes",
              file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print("shotfill: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except ShotfillError as e:
        print(f"shotfill: error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:             # `shotfill info x.exr | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:  # noqa: BLE001 - the boundary: one line, traceback on request
        return internal_error("shotfill", e)
