"""The standalone app's hosts: an edit file on disk, or a hand-off to a calling host.

:class:`StandaloneHost` applies a take by ``shotfill publish``: every take
applied in the session (one per target) goes onto a new version of the edit,
saved next to it (``cut.shotfill.v2.otio``, ``v3``...); the input is never
changed.

:class:`HandOffHost` is for a host that runs the panel as a separate process
and places results itself (Resolve, whose Python has no Qt): applying a take
writes its result into a JSON file the host reads when the panel closes.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .. import client
from .base import Generated, Host, HostError, Media, nothing_to_restore


class StandaloneHost(Host):
    """An OTIO-readable edit on disk."""

    name = "standalone"

    def __init__(self, edit: str | None = None, *, command: list[str] | None = None):
        self.command = command
        self.new_edits: list[str] = []
        self.edit: str | None = None
        self._applied: dict[str, Path] = {}   # target id -> result file of the take applied
        if edit:
            self.open(edit)

    def open(self, edit: str) -> None:
        """Work on ``edit`` from now on; takes applied to another edit are forgotten."""
        self.edit = str(Path(edit).resolve())
        self._applied.clear()

    def current_media(self) -> list[Media]:
        return []

    def current_edit(self, folder: str) -> str | None:
        return self.edit

    def import_result(self, generated: Generated) -> str:
        if self.edit is None:
            raise HostError("open an edit first: a take is placed on a new version of the edit")
        if not generated.result.get("placement"):
            raise HostError(f"take {generated.label or generated.target_id} was not made from an edit target")
        path = Path(generated.pattern).parent / "take.result.json"
        path.write_text(json.dumps(generated.result, indent=2) + "\n")
        self._applied[generated.target_id] = path
        try:
            new_edit = client.publish(self.edit, [str(p) for p in self._applied.values()],
                                      write_mode=generated.write_mode, command=self.command)
        except client.ClientError as e:
            del self._applied[generated.target_id]
            raise HostError(f"could not place the take on the edit: {e}") from None
        self.new_edits.append(new_edit)
        return f"saved {new_edit} with {len(self._applied)} take(s) placed"

    def preserved(self):
        return nothing_to_restore()

    def show_message(self, text: str, *, error: bool = False) -> None:
        print(("error: " if error else "") + text)


class HandOffHost(Host):
    """Collects applied takes for the host that started the panel (see ``hosts/resolve``).

    ``results_path`` ends up holding a JSON list of :meth:`Generated.to_dict`,
    one per target (applying another take of a target replaces the earlier one).
    """

    name = "hand-off"

    def __init__(self, edit: str, results_path: str):
        self.edit = str(Path(edit).resolve())
        self.results_path = Path(results_path)
        self._taken: dict[str, dict] = {}

    def current_media(self) -> list[Media]:
        return []

    def current_edit(self, folder: str) -> str | None:
        return self.edit

    def import_result(self, generated: Generated) -> str:
        self._taken[generated.target_id] = generated.to_dict()
        tmp = self.results_path.with_name(f".{self.results_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(list(self._taken.values()), indent=2) + "\n")
        os.replace(tmp, self.results_path)
        return (f"{generated.label or generated.target_id} is handed to the host: it is placed "
                f"when this window closes ({len(self._taken)} take(s) so far)")

    def preserved(self):
        return nothing_to_restore()

    def show_message(self, text: str, *, error: bool = False) -> None:
        print(("error: " if error else "") + text)

