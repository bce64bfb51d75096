"""The Nuke adapter: one Nuke call per step, through the ``nuke`` module it is given.

    from shotfill_plugin.hosts.nuke.host import NukeHost
    host = NukeHost(nuke)
    host.current_media()             # the selected Read nodes: file, first, last, colorspace
    with host.preserved():           # one undo step; the selection comes back as it was
        host.import_result(take)     # a new Read node beside the plate it continues

Standard library only: it runs in ``nuke -t`` as well as in the GUI.
"""
from __future__ import annotations

import contextlib
import re
from typing import Iterator

from ..base import Generated, Host, Media

#: Read colour spaces that mean "the file type's default" (``default (linear)``,
#: ``default (scene_linear)``): the job then keeps the EXR's own space
_DEFAULT_COLOURSPACE = re.compile(r"default \(.*\)")
#: how far right of the plate the new Read node goes, in node-graph units
_NODE_GAP = 40


class NukeHost(Host):
    name = "Nuke"

    def __init__(self, nuke):
        self.nuke = nuke

    def current_media(self) -> list[Media]:
        fps = float(self.nuke.root()["fps"].value())
        media = []
        for node in self.nuke.selectedNodes("Read"):
            colourspace = node["colorspace"].value()
            media.append(Media(name=node.name(), path=node["file"].value(), first=int(node["first"].value()),
                               last=int(node["last"].value()),
                               colourspace=None if _DEFAULT_COLOURSPACE.fullmatch(colourspace) else colourspace,
                               rate=fps))
        return media

    def current_edit(self, folder: str) -> str | None:
        return None

    def import_result(self, generated: Generated) -> str:
        nuke = self.nuke
        read = nuke.nodes.Read()
        read["file"].setValue(generated.pattern)
        for knob in ("first", "origfirst"):
            read[knob].setValue(generated.first)
        for knob in ("last", "origlast"):
            read[knob].setValue(generated.last)
        read["label"].setValue(generated.label)
        plate = nuke.toNode(generated.source.name) if generated.source is not None else None
        if plate is not None:
            read.setXYpos(plate.xpos() + plate.screenWidth() + _NODE_GAP, plate.ypos())
        made = f"new Read node {read.name()}: {generated.pattern} {generated.first}-{generated.last}"
        # the take is written in the chosen output space, else in the plate's own
        space = generated.colourspace or (plate["colorspace"].value() if plate is not None else None)
        if space:
            try:
                read["colorspace"].setValue(space)
            except ValueError:
                made += f" (set its colorspace to {space}: this script's colour config has no such name)"
        return made

    @contextlib.contextmanager
    def preserved(self) -> Iterator[None]:
        """One undo step ("shotfill: apply take"); on an error it is undone. The
        selection is restored either way."""
        nuke = self.nuke
        selected = nuke.selectedNodes()
        nuke.Undo.begin("shotfill: apply take")
        try:
            yield
        except BaseException:
            nuke.Undo.cancel()
            self._select(selected)
            raise
        self._select(selected)
        nuke.Undo.end()

    def _select(self, nodes: list) -> None:
        for node in self.nuke.selectedNodes():
            node.setSelected(False)
        for node in nodes:
            node.setSelected(True)

    def show_message(self, text: str, *, error: bool = False) -> None:
        self.nuke.message(("shotfill error: " if error else "shotfill: ") + text)

