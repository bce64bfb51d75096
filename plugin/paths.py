"""Where the host side keeps files, per operating system (standard library only).

``engine.json`` sits next to this package in an installed copy (``shotfill
install-host`` writes it): ``{"command": [...], "panel_command": [...]}``, the
engine's command line and the standalone panel's, both in the engine's own
environment, so a host never puts the engine's packages on its path.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ENGINE_CONFIG = Path(__file__).with_name("engine.json")


def read_engine_config(path: Path | None = None) -> dict:
    """The install's engine config (``path``, default :data:`ENGINE_CONFIG`); ``{}`` where
    there is none (a development checkout)."""
    path = path or ENGINE_CONFIG
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a shotfill engine config ({e}); run `shotfill install-host` again") from None
    for key in ("command", "panel_command"):
        value = config.get(key)
        if value is not None and not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise ValueError(f"{path}: {key!r} must be a list of strings; run `shotfill install-host` again")
    return config


def user_data_dir(platform: str = sys.platform, environ: dict | None = None, home: Path | None = None) -> Path:
    """``shotfill`` in the user's application data folder."""
    environ = os.environ if environ is None else environ
    home = home or Path.home()
    if platform == "darwin":
        return home / "Library" / "Application Support" / "shotfill"
    if platform.startswith("win"):
        return Path(environ.get("APPDATA") or home / "AppData" / "Roaming") / "shotfill"
    return Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "shotfill"


def resolve_scripts_dir(platform: str = sys.platform, environ: dict | None = None,
                        home: Path | None = None) -> Path:
    """Resolve's per-user ``Fusion/Scripts/Utility`` folder: its scripts show in
    Workspace > Scripts on every page.

    macOS:   ~/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility
    Windows: %APPDATA%\\Blackmagic Design\\DaVinci Resolve\\Support\\Fusion\\Scripts\\Utility
    Linux:   ~/.local/share/DaVinciResolve/Fusion/Scripts/Utility
    """
    environ = os.environ if environ is None else environ
    home = home or Path.home()
    if platform == "darwin":
        return (home / "Library" / "Application Support" / "Blackmagic Design" / "DaVinci Resolve"
                / "Fusion" / "Scripts" / "Utility")
    if platform.startswith("win"):
        return (Path(environ.get("APPDATA") or home / "AppData" / "Roaming") / "Blackmagic Design"
                / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts" / "Utility")
    return home / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts" / "Utility"


def nuke_dir(home: Path | None = None) -> Path:
    """The user's ``.nuke`` folder (the same on every OS)."""
    return (home or Path.home()) / ".nuke"
