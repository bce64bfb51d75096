"""``shotfill install-host nuke|resolve``: register the panel with a host.

Only a copy of this package (standard library and Qt code) goes where the host
looks; the engine stays in its own environment and is started as a separate
process, its command written to ``engine.json`` inside the copy. Nothing puts
the engine's site-packages on a host's path.

Nuke (``--target`` defaults to ``~/.nuke``)::

    ~/.nuke/shotfill/shotfill_plugin/     this package, with engine.json
    ~/.nuke/shotfill/init.py, menu.py     run by Nuke from the plugin folder
    ~/.nuke/init.py                       + nuke.pluginAddPath("~/.nuke/shotfill")

Resolve (``--target`` defaults to the per-user Scripts/Utility folder:
macOS ``~/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility``,
Windows ``%APPDATA%\\Blackmagic Design\\DaVinci Resolve\\Support\\Fusion\\Scripts\\Utility``,
Linux ``~/.local/share/DaVinciResolve/Fusion/Scripts/Utility``)::

    <user data>/shotfill/resolve-plugin/shotfill_plugin/   this package, with engine.json (--lib)
    <Scripts/Utility>/shotfill.py                          Workspace > Scripts > shotfill

Running it again updates an install in place. ``--dry-run`` prints the steps
and changes nothing.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Callable, Tuple

from . import paths

PACKAGE = Path(__file__).resolve().parent
#: the lines added to the user's ~/.nuke/init.py sit between these markers
BEGIN, END = "# >>> shotfill >>>", "# <<< shotfill <<<"

RESOLVE_SCRIPT = '''"""shotfill: generate shot extensions, bridges and fills on the current timeline.

Written by `shotfill install-host resolve`; run from Workspace > Scripts > shotfill.
"""
import sys

sys.path.insert(0, {lib!r})
from shotfill_plugin.hosts.resolve import launcher

launcher.main(launcher.resolve_app(globals()))
'''

#: (what it does, in words; the action)
Step = Tuple[str, Callable[[], None]]


def copy_package(destination: Path, config: dict) -> list[Step]:
    """Steps that copy this package to ``destination`` (replacing an older copy) with its engine config."""
    def copy() -> None:
        if destination.exists():
            shutil.rmtree(destination)
        shutil.copytree(PACKAGE, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "engine.json"))
        (destination / paths.ENGINE_CONFIG.name).write_text(json.dumps(config, indent=2) + "\n")

    return [(f"copy {PACKAGE} to {destination} with {paths.ENGINE_CONFIG.name}: "
             f"engine `{' '.join(config['command'])}`", copy)]


def nuke_steps(target: Path, config: dict) -> list[Step]:
    plugin_dir = target / "shotfill"
    steps = copy_package(plugin_dir / "shotfill_plugin", config)
    for name in ("init.py", "menu.py"):
        source = PACKAGE / "hosts" / "nuke" / name
        steps.append((f"write {plugin_dir / name}",
                      lambda source=source, name=name: shutil.copyfile(source, plugin_dir / name)))
    block = f"{BEGIN}\nimport nuke\nnuke.pluginAddPath({str(plugin_dir)!r})\n{END}\n"
    init = target / "init.py"
    steps.append((f"add nuke.pluginAddPath({str(plugin_dir)!r}) to {init}",
                  lambda: _write_block(init, block)))
    return steps


def resolve_steps(target: Path, lib: Path, config: dict) -> list[Step]:
    steps = copy_package(lib / "shotfill_plugin", config)
    script = target / "shotfill.py"
    text = RESOLVE_SCRIPT.format(lib=str(lib))

    def write() -> None:
        target.mkdir(parents=True, exist_ok=True)
        script.write_text(text)

    steps.append((f"write {script} (Workspace > Scripts > shotfill)", write))
    return steps


def _write_block(path: Path, block: str) -> None:
    """Add ``block`` to ``path``, or replace the shotfill block already there."""
    text = path.read_text() if path.exists() else ""
    marked = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)
    if marked.search(text):
        text = marked.sub(lambda _: block, text)
    else:
        text += ("" if not text or text.endswith("\n") else "\n") + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shotfill install-host",
                                     description="Register the shotfill panel with Nuke or Resolve.")
    parser.add_argument("host", choices=("nuke", "resolve"))
    parser.add_argument("--target", metavar="DIR",
                        help="the host's folder: ~/.nuke for Nuke, the Scripts/Utility folder for Resolve")
    parser.add_argument("--lib", metavar="DIR", help="Resolve: where the plugin copy goes "
                                                     "(default: shotfill/resolve-plugin in the user data folder)")
    parser.add_argument("--engine-command", metavar="CMD",
                        help=f"the engine command the host starts (default: {sys.executable} -m shotfill)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    engine = shlex.split(args.engine_command) if args.engine_command else [sys.executable, "-m", "shotfill"]
    config = {"command": engine, "panel_command": [sys.executable, "-m", "shotfill_plugin.app"]}
    if args.host == "nuke":
        steps = nuke_steps(Path(args.target or paths.nuke_dir()).expanduser(), config)
    else:
        lib = Path(args.lib or paths.user_data_dir() / "resolve-plugin").expanduser()
        steps = resolve_steps(Path(args.target or paths.resolve_scripts_dir()).expanduser(), lib, config)
    for description, action in steps:
        print(("would " if args.dry_run else "") + description)
        if not args.dry_run:
            action()
    if not args.dry_run:
        where = "Nuke > shotfill > Open panel" if args.host == "nuke" else "Workspace > Scripts > shotfill"
        print(f"done: restart the host, then {where}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
