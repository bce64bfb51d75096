"""DaVinci Resolve: the current timeline exported to OTIO is the edit; takes go back
on new video tracks at their record frames.

Resolve's Python has no Qt, so the panel runs as a separate process in the
engine's environment (``launcher.py``, the Workspace > Scripts entry) and hands
the applied takes back; ``host.py`` places them through Resolve's scripting API.
"""
