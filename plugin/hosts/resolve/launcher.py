"""Workspace > Scripts > shotfill: run the panel on Resolve's current timeline.

``shotfill install-host resolve`` puts a three-line script in Resolve's
Scripts/Utility folder that calls :func:`main` (this package is copied next to
the engine config, outside Resolve's folders). :func:`main`:

1. exports the current timeline as OTIO (Resolve 18.5+; older ones get a message),
2. starts the panel from the engine's environment on it
   (``python -m shotfill_plugin.app EDIT --results-out applied.json``) and waits,
3. places every take applied in the panel on a new video track at its record
   frame, and puts the current timeline back.

Resolve's own Python only runs standard-library code here; the panel, Qt and
the engine run in their own process.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from ... import paths
from ..base import Generated, HostError
from .host import ResolveHost


def resolve_app(namespace: dict):
    """Resolve's scripting object: ``bmd.scriptapp("Resolve")`` inside Resolve (Workspace >
    Scripts defines ``bmd``), else through ``DaVinciResolveScript`` (external scripting)."""
    bmd = namespace.get("bmd")
    if bmd is not None:
        return bmd.scriptapp("Resolve")
    import DaVinciResolveScript

    return DaVinciResolveScript.scriptapp("Resolve")


def panel_command() -> list[str]:
    """The panel's command line, from the install's engine config."""
    try:
        command = paths.read_engine_config().get("panel_command")
    except ValueError as e:
        raise HostError(str(e)) from None
    if not command:
        raise HostError(f"no panel command in {paths.ENGINE_CONFIG}: run `shotfill install-host resolve`")
    return command


def main(resolve, *, command: list[str] | None = None, work_root: str | None = None) -> int:
    """Export, run the panel, place the applied takes. Returns 0, or 1 after telling why not."""
    try:
        host = ResolveHost(resolve)
    except HostError as e:
        print(f"shotfill error: {e}")
        return 1
    try:
        name = f"{host.project.GetName()}_{host.timeline.GetName()}"
        work = Path(work_root or paths.user_data_dir() / "resolve") / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        work.mkdir(parents=True, exist_ok=True)
        edit = host.current_edit(str(work))
        applied = work / "applied.json"
        if applied.exists():
            applied.unlink()
        run = subprocess.run([*(command or panel_command()), edit, "--results-out", str(applied)])
        if run.returncode != 0:
            raise HostError(f"the panel stopped with exit code {run.returncode}")
        if not applied.exists():
            host.show_message("no take was applied; the timeline is unchanged")
            return 0
        takes = [Generated.from_dict(d) for d in json.loads(applied.read_text())]
        with host.preserved():
            made = [host.import_result(take) for take in takes]
        host.show_message("\n".join(made))
        return 0
    except (HostError, OSError, ValueError) as e:
        host.show_message(str(e), error=True)
        return 1
