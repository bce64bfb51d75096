"""Shared test fixtures.

Real third-party material lives in ``../shared/data`` beside the checkout (never
copied into the project); tests that need it skip with a reason when it is absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SHOTFILL_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; skips the test when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture
def edl_writer_fails(monkeypatch):
    """OpenTimelineIO's EDL adapter (cmx_3600) fails to write, with "no room on the tape"; every other
    adapter writes as usual."""
    import opentimelineio as otio

    real = otio.adapters.write_to_file

    def failing(timeline, filepath, adapter_name=None, **kwargs):
        if adapter_name == "cmx_3600":
            raise ValueError("no room on the tape")
        return real(timeline, filepath, adapter_name=adapter_name, **kwargs)

    monkeypatch.setattr(otio.adapters, "write_to_file", failing)
