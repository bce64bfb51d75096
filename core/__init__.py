"""shotfill: generative shot extension, bridging and fill for film post-production.

The engine side. Importing this package is cheap: heavy modules (numpy, torch,
OpenEXR, OpenTimelineIO) are imported by the submodules that need them.
"""
__version__ = "0.1.0"
