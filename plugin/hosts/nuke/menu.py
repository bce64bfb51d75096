"""Nuke runs this in GUI sessions, from the plugin folder ``shotfill install-host nuke`` adds.

Registers the shotfill panel as a dockable pane (Pane menu) and adds
Nuke > shotfill > Open panel. Nothing here runs in ``nuke -t``.
"""
from shotfill_plugin.hosts.nuke import panel

panel.register()
