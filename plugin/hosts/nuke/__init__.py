"""Nuke: the selected Read nodes are the plates, a take comes back as a new Read node.

``init.py`` and ``menu.py`` here are what Nuke runs from the plugin folder that
``shotfill install-host nuke`` adds with ``nuke.pluginAddPath``; ``host.py`` is
the adapter (no Qt), ``panel.py`` the docked pane.
"""
