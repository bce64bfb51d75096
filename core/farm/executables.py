"""The programs a bundle runs: the ``shotfill`` console script its tasks call, and ``openjd``."""
from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

from ..errors import InputError


def _console_script(name: str) -> str | None:
    """Absolute path of console script ``name``: this environment's first, else on PATH; or None."""
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (name, f"{name}.exe"):
        if (scripts / candidate).is_file():
            return str(scripts / candidate)
    found = shutil.which(name)
    return None if found is None else str(Path(found).absolute())


def default_shotfill_command() -> str:
    """The ``shotfill`` console script of this environment (what farm tasks run by default)."""
    found = _console_script("shotfill")
    if found is None:
        scripts = Path(sysconfig.get_path("scripts"))
        raise InputError(f"no `shotfill` console script in {scripts} or on PATH: install shotfill "
                         "(pip install -e .) or name the command the workers run (--shotfill-command)")
    return found



def openjd_command() -> str:
    """The ``openjd`` console script (the Open Job Description CLI); InputError when it is not installed."""
    found = _console_script("openjd")
    if found is None:
        raise InputError("the Open Job Description CLI is not installed (pip install 'shotfill[farm]' "
                         "or pip install openjd-cli)")
    return found
