"""The ``dit`` engine: the project's own video diffusion transformer."""
from .engine import SHIPPED_MODEL, DiTEngine, check_sampling

__all__ = ["SHIPPED_MODEL", "DiTEngine", "check_sampling"]
