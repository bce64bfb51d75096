"""The commands the panel calls (``shotfill --help``, ``info``, ``plan``) import no torch, no diffusers, no cv2.

Each command runs in a fresh interpreter on the files of a sample edit (bench/bench_startup.py's
probe: the CLI's ``main`` called in-process, then ``sys.modules`` read).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from shotfill.synthetic.sample_edit import make_sample_edit

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_startup.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_startup", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return make_sample_edit(tmp_path_factory.mktemp("startup") / "sample", width=48, height=32)


@pytest.mark.parametrize("name", ["--help", "info exr", "info png", "plan"])
def test_the_panels_commands_import_no_torch(sample, name):
    found = bench.imported_modules(bench.commands(sample)[name])
    assert found["rc"] == 0
    assert not set(found["modules"]) & {"torch", "diffusers", "transformers", "safetensors"}, found
    if name != "info png":                  # a PNG is decoded by cv2; EXR, edits and help need none
        assert "cv2" not in found["modules"], found
    assert "av" not in found["modules"] and "scipy" not in found["modules"], found
    if name in ("--help", "info exr"):      # only edits need OpenTimelineIO (shotfill.timeline loads lazily)
        assert "opentimelineio" not in found["modules"], found


def test_the_probe_sees_a_module_the_command_imports(sample):
    # the probe reads the child's sys.modules: a PNG's info needs cv2, and the probe says so
    assert "cv2" in bench.imported_modules(bench.commands(sample)["info png"])["modules"]


def test_a_failing_command_is_an_error_not_an_empty_list(tmp_path):
    with pytest.raises(RuntimeError, match="info"):
        bench.imported_modules(["info", str(tmp_path / "missing.####.exr")])


def test_ratios_are_to_the_bare_interpreters_median():
    table = bench.ratios({"python -c pass": [0.05, 0.04, 0.06], "plan": [0.2, 0.1, 0.3]}, "python -c pass")
    assert table["python -c pass"]["ratio_to_python"] == 1.0
    assert table["plan"]["median_s"] == 0.2 and table["plan"]["ratio_to_python"] == 4.0
    assert table["plan"]["added_s"] == pytest.approx(0.15)


def test_the_bench_writes_its_results(tmp_path):
    out = tmp_path / "startup.json"
    assert bench.main(["--repeats", "1", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results["commands"]) == {"python -c pass", "--help", "info exr", "info png", "plan"}
    assert all(row["forbidden"] == [] for name, row in results["commands"].items() if name != "python -c pass")
