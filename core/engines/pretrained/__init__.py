"""Pretrained open video DiTs through diffusers' pipelines (``wan-vace``, ``ltx``), and the model store
that checks their local folders."""
