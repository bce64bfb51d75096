"""Helpers that put an edit into a real editing engine for the tests (:mod:`.mlt`: MLT's ``melt``)."""
