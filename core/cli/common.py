"""What the ``shotfill`` subcommands share: the parser class of the tree, event sinks,
engine options, and the report of an internal error."""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Callable

from ..errors import EXIT_INTERNAL

EVENT_MODES = ("human", "jsonl", "openjd")


class CommandParser(argparse.ArgumentParser):
    """The parser of every subcommand of the ``shotfill`` tree.

    ``arguments``: a function that adds the command's arguments, called the first time the
    command is parsed or its help formatted, not when the tree is built: a command whose
    defaults live in a heavy module (``train``: torch) costs nothing to ``shotfill --help``.

    ``own_errors``: arguments the command does not know are reported under the command's own
    name (``shotfill farm: error: unrecognized arguments: ...``), not the root's.
    """

    def __init__(self, *args, arguments: Callable[[argparse.ArgumentParser], None] | None = None,
                 own_errors: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._arguments = arguments
        self.own_errors = own_errors

    def _add_arguments(self) -> None:
        if self._arguments is not None:
            arguments, self._arguments = self._arguments, None
            arguments(self)

    def parse_known_args(self, args=None, namespace=None):
        self._add_arguments()
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and self.own_errors:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    def format_usage(self) -> str:
        self._add_arguments()
        return super().format_usage()

    def format_help(self) -> str:
        self._add_arguments()
        return super().format_help()


def sink_for(events: str):
    """The event sink of an ``--events`` mode: people on stderr, JSON lines or Open Job Description lines on stdout."""
    from ..events import HumanSink, JsonLinesSink

    if events == "openjd":
        from ..farm import OpenJDSink

        return OpenJDSink(sys.stdout)
    return JsonLinesSink(sys.stdout) if events == "jsonl" else HumanSink(sys.stderr)


def edit_lookup_arguments(p: argparse.ArgumentParser) -> None:
    """``--timeline`` and ``--search-path`` (alias ``--media-root``), for every command that reads an edit
    (their values go to the job spec's ``edit.timeline`` and ``edit.search_paths``)."""
    p.add_argument("--timeline", metavar="NAME|N",
                   help="the timeline to use in an edit file holding several (an FCPXML library): its name, "
                        "or its number counted from 1")
    p.add_argument("--search-path", "--media-root", dest="search_path", action="append", metavar="DIR",
                   help="a folder to look for offline media in, by file name (recursive; repeatable)")


def engine_option_arguments(p: argparse.ArgumentParser) -> None:
    """The options :func:`engine_options` reads, for every command that runs an engine."""
    p.add_argument("--model", help="model: a checkpoint folder (the same path on every farm worker), or a name "
                                   "from `shotfill models list` (default: the engine's)")
    p.add_argument("--manifest", metavar="FILE", help="model manifest other than the shipped one (wan-vace, ltx)")
    p.add_argument("--memory", help="GPU memory mode for wan-vace and ltx (see `shotfill engines`; default auto)")
    p.add_argument("--steps", type=int, help="denoising steps (model engines; default: the engine's)")
    p.add_argument("--engine-option", action="append", metavar="KEY=VALUE",
                   help="any other engine option, e.g. working_size=512 (repeatable)")


def engine_options(args) -> dict:
    """The engine's options from ``--model``, ``--manifest``, ``--memory``, ``--steps`` and ``--engine-option``.

    ``--engine-option KEY=VALUE`` values are read as JSON when they parse (``8``, ``2.5``, ``false``)
    and as text otherwise; the engine checks each name and value.
    """
    from ..engines import parse_option

    options = dict(parse_option(item, "--engine-option") for item in args.engine_option or [])
    for key in ("model", "manifest", "memory", "steps"):
        value = getattr(args, key, None)
        if value is not None:
            options[key] = str(Path(value).resolve()) if key == "manifest" else value
    if options.get("model") and Path(options["model"]).exists():  # a folder; a bare name is a manifest name
        options["model"] = str(Path(options["model"]).resolve())
    return options


def internal_error(prog: str, error: Exception) -> int:
    """Report an unexpected exception at a command boundary: one line, the traceback on request."""
    print(f"{prog}: internal error: {type(error).__name__}: {error}", file=sys.stderr)
    if os.environ.get("SHOTFILL_DEBUG"):
        traceback.print_exception(error)
    else:
        print("  (set SHOTFILL_DEBUG=1 for the traceback)", file=sys.stderr)
    return EXIT_INTERNAL
