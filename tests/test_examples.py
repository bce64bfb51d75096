"""The examples and the demo run as a user would run them, so they never rot."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import opentimelineio as otio
import pytest

from shotfill.io.exr import read_exr

EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[1] / "examples"


def run(*args, timeout=300):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    r = run(EXAMPLES / "make_sample_edit.py", out, "--width", 128, "--height", 72)
    assert r.returncode == 0, r.stderr
    return out


def test_extend_a_plate(sample, tmp_path):
    r = run(EXAMPLES / "extend_a_plate.py", sample / "media" / "shotA.####.exr", tmp_path, "--frames", 3)
    assert r.returncode == 0, r.stderr
    assert "3 new frames" in r.stdout
    assert sorted(p.name for p in tmp_path.glob("*.exr")) == [f"shotA_ext.{f}.exr" for f in (1049, 1050, 1051)]


def test_bridge_an_edit(sample, tmp_path):
    edit = sample / "sample_edit.otio"
    before = hashlib.sha256(edit.read_bytes()).hexdigest()
    r = run(EXAMPLES / "bridge_an_edit.py", edit, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "V1.gap1: 20 frames between shotA and shotB (8 + 8 from their handles, 4 to generate)" in r.stdout
    new = otio.adapters.read_from_file(r.stdout.strip().splitlines()[-1].split(": ", 1)[1])
    assert [t.name for t in new.tracks][-1] == "shotfill V1.gap1"
    assert hashlib.sha256(edit.read_bytes()).hexdigest() == before


def test_demo_end_to_end(tmp_path):
    r = run("-m", "shotfill", "demo", "--out", tmp_path, "--width", 160, "--height", 90)
    assert r.returncode == 0, r.stderr
    assert "fill vs the clean render" in r.stdout
    new_edit = tmp_path / "edit" / "sample_edit.shotfill.otio"
    timeline = otio.adapters.read_from_file(str(new_edit))
    added = [c for t in timeline.tracks if t.name.startswith("shotfill") for c in t
             if isinstance(c, otio.schema.Clip)]
    assert sorted(c.metadata["shotfill"]["target_id"] for c in added
                  if c.metadata["shotfill"]["role"] == "generated") == ["V1.clip2.tail", "V1.clip3.fill", "V1.gap1"]
    counts = {d.name: len(list(d.glob("*.exr"))) for d in (tmp_path / "frames").iterdir()}
    assert counts == {"V1.gap1": 4, "V1.clip2.tail": 12, "V1.clip3.fill": 24}   # the gap: 8 + 8 handles, 4 made
    assert (tmp_path / "contact_sheet.png").stat().st_size > 1000
    frame = read_exr(next((tmp_path / "frames" / "V1.gap1").glob("*.exr")))
    assert frame.attributes["shotfill.engine"] == "dit"  # the default engine
    # the fill beats leaving the stand in by a wide margin
    line = next(l for l in r.stdout.splitlines() if "fill vs the clean render" in l)
    filled, left = (float(x.split(" dB")[0].split()[-1]) for x in line.split(":", 1)[1].split("(the stand left in:"))
    assert filled > left + 10
