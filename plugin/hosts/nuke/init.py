"""Nuke runs this in every session, batch (``nuke -t``) included, from the plugin folder.

It builds no interface and imports no Qt: it only checks that the host side
is importable from this folder (standard library only), so a broken install
says so when Nuke starts rather than when the panel is opened.
"""
import shotfill_plugin.hosts.nuke.host  # noqa: F401
