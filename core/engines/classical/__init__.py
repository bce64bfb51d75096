"""Engines without weights: optical flow (``flow``) and the trivial references (``baseline``)."""
