"""Pixels in and out: EXR (a bounded header parser, reading, writing), other media, colour
(OpenColorIO transforms, matching, plate anchoring) and contact sheets."""
