"""Start-up of the commands the panel calls (``shotfill --help``, ``info``, ``plan``): what they import, how long they take.

The panel runs ``shotfill info`` on every sequence a user drops and ``shotfill plan`` on every edit
it opens, so these must stay cheap: no torch (nor diffusers, nor cv2 where avoidable). Each
command runs in a fresh interpreter on real files (the sample edit of
:mod:`shotfill.synthetic.sample_edit`, written once to a temporary folder): once to list the heavy
modules it imported (the CLI's ``main`` called in-process, then ``sys.modules`` read), then
``--repeats`` times as ``python -m shotfill ...`` interleaved with ``python -c pass``, so each
command's wall time is a ratio to a bare interpreter measured in the same run (this machine is noisy).

    python bench/bench_startup.py [--repeats 7] [--out bench/results/startup.json]

``--quick`` does 3 repeats.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: modules none of the panel's commands may import (``torch`` and what pulls it in)
FORBIDDEN = ("torch", "diffusers", "transformers", "safetensors")
#: heavy modules a command should avoid where it can; reported, not refused
HEAVY = ("cv2", "av", "PIL", "scipy", "OpenEXR", "opentimelineio", "numpy", "psutil")

#: run in a fresh interpreter: the CLI's main on argv, then the heavy modules it imported, as JSON on stdout's last line
_PROBE = """
import json, sys
from shotfill.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print()
print(json.dumps({"rc": code, "modules": sorted(m for m in %r if m in sys.modules)}))
"""


def commands(sample) -> dict[str, list[str]]:
    """The panel's commands on the files of a sample edit (:class:`~shotfill.synthetic.sample_edit.SampleEdit`)."""
    return {
        "--help": ["--help"],
        "info exr": ["info", str(sample.shot("shotA").media)],
        "info png": ["info", str(sample.shot("shotC").mask)],
        "plan": ["plan", str(sample.edit)],
    }


def imported_modules(argv: list[str], *, timeout: float = 120) -> dict:
    """``shotfill ARGV``'s exit code and the modules of :data:`FORBIDDEN` and :data:`HEAVY` it imported,
    from a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", _PROBE % (FORBIDDEN + HEAVY,), *argv],
                          capture_output=True, text=True, timeout=timeout)
    lines = done.stdout.strip().splitlines()
    found = json.loads(lines[-1]) if done.returncode == 0 and lines else {"rc": done.returncode}
    if found["rc"] not in (0, None):
        raise RuntimeError(f"shotfill {' '.join(argv)} failed ({found['rc']}):\n{done.stderr[-2000:]}")
    return found


def wall_time(command: list[str]) -> float:
    """Seconds a subprocess takes from start to exit (its output discarded); it must exit 0."""
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def interleaved(runs: dict[str, list[str]], repeats: int) -> dict[str, list[float]]:
    """Each command's wall times, the commands taken in turn ``repeats`` times (noise hits them all alike)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, command in runs.items():
            times[name].append(wall_time(command))
    return times


def ratios(times: dict[str, list[float]], baseline: str) -> dict[str, dict]:
    """Median seconds per command, its ratio to ``baseline``'s median and the seconds it adds over it."""
    base = statistics.median(times[baseline])
    out = {}
    for name, values in times.items():
        median = statistics.median(values)
        out[name] = {"median_s": round(median, 4), "ratio_to_python": round(median / base, 2),
                     "added_s": round(median - base, 4), "runs": len(values)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    parser.add_argument("--out", default="bench/results/startup.json")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    from shotfill.synthetic.sample_edit import make_sample_edit

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shotfill-startup-") as tmp:
        sample = make_sample_edit(Path(tmp) / "sample", width=64, height=36)
        cli = commands(sample)
        modules = {name: imported_modules(argv) for name, argv in cli.items()}
        runs = {"python -c pass": [sys.executable, "-c", "pass"]}
        runs.update({name: [sys.executable, "-m", "shotfill", *argv] for name, argv in cli.items()})
        times = interleaved(runs, repeats)
    table = ratios(times, "python -c pass")
    for name, found in modules.items():
        table[name]["modules"] = found["modules"]
        table[name]["forbidden"] = [m for m in found["modules"] if m in FORBIDDEN]
    results = {"settings": {"repeats": repeats, "python": sys.version.split()[0], "date": time.strftime("%Y-%m-%d"),
                            "bench_s": round(time.perf_counter() - began, 1)},
               "commands": table}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    for name, row in table.items():
        print(f"{name:16s} {row['median_s']*1000:7.0f} ms  x{row['ratio_to_python']:<5} {row.get('modules', '')}")
    bad = [name for name, row in table.items() if row.get("forbidden")]
    if bad:
        print(f"imports torch or its kin: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
