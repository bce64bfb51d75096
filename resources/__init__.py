"""Data that ships with shotfill: presets, templates, checkpoints."""
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent
