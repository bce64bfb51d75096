"""The shotfill panel docked in Nuke.

``register`` is what ``menu.py`` calls: the panel joins the Pane menu (so it
docks, and Nuke restores it with a saved layout) and gets a command in the
Nuke menu. ``registerWidgetAsPanel`` builds the widget from an expression
with no arguments, so :class:`NukePanel` takes none.
"""
from __future__ import annotations

import nuke
from nukescripts import panels

from ...panel import ShotfillPanel
from .host import NukeHost

PANEL_ID = "uk.co.shotfill.panel"
PANEL_TITLE = "shotfill"
#: evaluated by Nuke's WidgetKnob in its own namespace: importable from anywhere
WIDGET = "__import__('shotfill_plugin.hosts.nuke.panel', fromlist=['NukePanel']).NukePanel"
MENU_PATH = "shotfill/Open panel"


class NukePanel(ShotfillPanel):
    """The panel, with the selected Read nodes as its plates."""

    def __init__(self, parent=None):
        super().__init__(NukeHost(nuke), parent=parent)


def show_panel():
    """Open the panel (docked where the layout last had it)."""
    return panels.restorePanel(PANEL_ID)


def register() -> None:
    """Add the dockable pane and the menu command (GUI sessions only: called from menu.py)."""
    panels.registerWidgetAsPanel(WIDGET, PANEL_TITLE, PANEL_ID)
    nuke.menu("Nuke").addCommand(MENU_PATH, show_panel)
