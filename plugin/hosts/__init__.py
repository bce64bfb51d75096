"""Host adapters: a small :class:`~shotfill_plugin.hosts.base.Host` interface and one thin adapter per host.

A host's own modules (``nuke``, Resolve's scripting module) are imported only
inside its folder here, so the rest of the plugin runs anywhere.
"""
