"""``shotfill install-host``: register the panel with Nuke or Resolve.

The installer is the plugin's (:mod:`shotfill_plugin.install`, standard library only, so a
host's Python can run it without the engine) and parses its own arguments: this command
hands them over untouched.
"""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    """Add ``install-host`` to the tree."""
    # no option prefix: every argument, `-h` and `--target DIR` included, reaches the installer's own parser
    p = sub.add_parser("install-host", help="register the panel with Nuke or Resolve", add_help=False,
                       prefix_chars="\0")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_install_host)


def cmd_install_host(args) -> int:
    from shotfill_plugin import install

    return install.main(args.argv)
