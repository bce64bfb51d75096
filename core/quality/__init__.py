"""Measuring results: picture metrics, seam scores and the evaluation harness (``shotfill eval``)."""
