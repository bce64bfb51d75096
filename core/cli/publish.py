"""``shotfill publish EDIT RESULTS...``: place finished results on a new version of an edit."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import EXIT_OK, InputError
from .common import edit_lookup_arguments


def add_parser(sub) -> None:
    """Add ``publish`` to the tree."""
    p = sub.add_parser("publish", help="place finished results on a new version of an edit")
    p.add_argument("edit")
    p.add_argument("results", nargs="+", help="*.result.json files written by jobs")
    p.add_argument("--write-mode", choices=("track", "replace"), default="track")
    p.add_argument("--rate", type=float)
    p.add_argument("--export", metavar="ADAPTER",
                   help="also write the new version through this adapter (edl, xml, fcpxml...; default: the "
                        "input's own format when it is an EDL, FCP 7 XML or FCPXML)")
    edit_lookup_arguments(p)   # the edit as the jobs read it: --timeline, --search-path
    p.set_defaults(func=cmd_publish)


def cmd_publish(args) -> int:
    from ..timeline import publish

    results = []
    for p in args.results:
        try:
            results.append(json.loads(Path(p).read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"{p}: not a shotfill result file ({e})") from None
    notes: list[str] = []
    out = publish(args.edit, results, mode=args.write_mode, rate=args.rate, export_format=args.export,
                  warnings=notes, timeline=args.timeline, search_paths=tuple(args.search_path or ()))
    for note in notes:                  # on stderr: the last line of stdout is the new edit's path
        print(f"warning: {note}", file=sys.stderr)
    print(out)
    return EXIT_OK
