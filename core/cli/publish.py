"""``shotfill publish EDIT RESULTS...``: place finished results on a new version of an edit."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import EXIT_OK, InputError


def add_parser(sub) -> None:
    """Add ``publish`` to the tree."""
    p = sub.add_parser("publish", help="place finished results on a new version of an edit")
    p.add_argument("edit")
    p.add_argument("results", nargs="+", help="*.result.json files written by jobs")
    p.add_argument("--write-mode", choices=("track", "replace"), default="track")
    p.add_argument("--rate", type=float)
    p.add_argument("--export", metavar="ADAPTER")
    p.set_defaults(func=cmd_publish)


def cmd_publish(args) -> int:
    from ..timeline import publish

    results = []
    for p in args.results:
        try:
            results.append(json.loads(Path(p).read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"{p}: not a shotfill result file ({e})") from None
    out = publish(args.edit, results, mode=args.write_mode, rate=args.rate, export_format=args.export)
    print(out)
    return EXIT_OK
