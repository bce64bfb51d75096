"""shotfill host side: standard library and the host's Qt only (no numpy, no torch)."""
