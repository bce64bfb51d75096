"""Every issue-16 benchmark in one command: results to bench/results/, one summary file and a markdown table.

Runs, each in its own process and in this order (``--only`` picks some):

=================  =====================================  ==================================
startup            bench/bench_startup.py                 bench/results/startup.json
exr_write          bench/bench_exr_write.py               bench/results/exr_write.json
load               bench/bench_load.py                    bench/results/load.json
main_job           bench/bench_main_job.py                bench/results/main_job.json
dit_attention      bench/bench_dit_attention.py           bench/results/dit_attention.json
peak_memory        bench/bench_peak_memory.py             bench/results/peak_memory.json
=================  =====================================  ==================================

(``dit_attention`` only where its script is in the checkout.) Each gets ``--out`` and, with
``--quick``, ``--quick``. The results and each benchmark's wall time go to
bench/results/issue16.json (with ``--only``, the other benchmarks' entries there are kept), and the
tables the README carries are printed as markdown (and written to bench/results/issue16.md). A
benchmark that fails stops the run with its output.

    python bench/run_all.py [--quick] [--only startup,load] [--results bench/results]
    python bench/run_all.py --table       # the tables again, from the last bench/results/issue16.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
#: name -> script, in the order they run (the longest last)
BENCHMARKS = {
    "startup": "bench_startup.py",
    "exr_write": "bench_exr_write.py",
    "load": "bench_load.py",
    "main_job": "bench_main_job.py",
    "dit_attention": "bench_dit_attention.py",
    "peak_memory": "bench_peak_memory.py",
}


def present(names) -> list[str]:
    """The benchmarks of ``names`` whose script is in the checkout."""
    return [n for n in names if (BENCH / BENCHMARKS[n]).is_file()]


def run_one(name: str, results: Path, quick: bool) -> dict:
    """Run one benchmark; its results file read back, with its wall time."""
    out = results / f"{name}.json"
    command = [sys.executable, str(BENCH / BENCHMARKS[name]), "--out", str(out)] + (["--quick"] if quick else [])
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return {"wall_s": round(wall, 1), "results": json.loads(out.read_text())}


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join("-" if v is None else str(v) for v in row) + " |" for row in rows]
    return lines


def md_startup(r: dict) -> list[str]:
    rows = [[f"`shotfill {name}`" if name != "python -c pass" else "`python -c pass`", round(row["median_s"] * 1000),
             row["ratio_to_python"], ", ".join(row.get("modules", [])) or "-",
             "no" if not row.get("forbidden") else "**yes**"]
            for name, row in r["commands"].items()]
    return _table(["command", "median ms", "x python -c pass", "heavy modules imported", "torch"], rows)


def md_exr_write(r: dict) -> list[str]:
    rows = [[c, row["shotfill_mb_s"], row["binding_mb_s"], row["raw_mb_s"], row["ratio_to_binding"],
             row["ratio_to_raw"], row["file_ratio"]] for c, row in r["compressions"].items()]
    return _table(["compression", "shotfill MB/s", "binding MB/s", "raw bytes + fsync MB/s",
                   "shotfill time / binding", "shotfill time / raw", "file / raw size"], rows)


def md_load(r: dict) -> list[str]:
    rows = [[engine, row["jobs"], row["start_mb"], row["warm_mb"], row["end_mb"], row["growth_per_job_mb"],
             row.get("late_growth_per_job_mb"), row["end_to_warm"], row["s_per_job"]]
            for engine, row in r["engines"].items()]
    return _table(["engine", "jobs", "RSS start MB", "after 1st job", "end", "MB / job after 1st",
                   "MB / job, 2nd half", "end / after 1st", "s / job"], rows)


def md_main_job(r: dict) -> list[str]:
    runs = r["runs"]
    engines = list(runs)
    ratio = r.get("ratio_dit_to_flow")
    header = ["stage"] + [f"{e} {when} s" for when in ("cold", "warm") for e in engines]
    if ratio:
        header += ["dit / flow cold", "dit / flow warm"]
    rows = []
    for stage in runs[engines[0]]["cold"]["stages"]:
        row = [stage] + [runs[e][when]["stages"][stage] for when in ("cold", "warm") for e in engines]
        if ratio:
            row += [ratio["cold"][stage], ratio["warm"][stage]]
        rows.append(row)
    return _table(header, rows)


def md_peak_memory(r: dict) -> list[str]:
    goal = r["settings"]["goal_gb"]
    rows = []
    for engine, row in r["engines"].items():
        if "killed_over_gb" in row:
            peak = f"> {row['killed_over_gb']} (killed in {row['killed_in_stage']})"
        elif "timed_out_s" in row:
            peak = f">= {row['peak_rss_gb']} (stopped after {row['timed_out_s']} s in {row['killed_in_stage']})"
        else:
            peak = row["peak_rss_gb"]
        stages = row.get("profile", {}).get("stage_peak_gb", {})
        by_stage = ", ".join(f"{k} {v}" for k, v in stages.items() if k not in ("start", "prepare")) or None
        within = {True: "yes", False: "**no**", None: "not known"}[row["within_goal"]]
        rows.append([engine, peak, within, by_stage, row["wall_s"]])
    return _table(["engine", "peak RSS GB", f"within {goal} GB", "peak by stage, GB (sampled every 20 ms)", "wall s"],
                  rows)


def md_dit_attention(r: dict) -> list[str]:
    """bench_dit_attention.py's table (its ``sizes``), with the matmul rate it measured alongside."""
    try:
        rows = [[e["name"], e["tokens"], e["ours_s"], e["wan_s"], e["ratio_wan_over_ours"], e["ours_gflops"],
                 f"{e['ours_share_of_matmul']:.0%}", f"{e['wan_share_of_matmul']:.0%}"] for e in r["sizes"]]
    except (KeyError, TypeError) as e:
        return [f"(bench/results/dit_attention.json has no {e} where this table reads it: see the file)"]
    return _table(["size", "tokens", "ours s", "Wan s", "Wan / ours", "ours GFLOP/s", "ours share of matmul",
                   "Wan share"], rows) + ["", f"fp32 matmul, best of the run: {r.get('matmul_gflops')} GFLOP/s"]


MARKDOWN = {"startup": md_startup, "exr_write": md_exr_write, "load": md_load, "main_job": md_main_job,
            "dit_attention": md_dit_attention, "peak_memory": md_peak_memory}
TITLES = {"startup": "Start-up of the panel's commands", "exr_write": "EXR write throughput",
          "load": "Load: small jobs back to back in one worker process",
          "main_job": "The main job (sample edit bridge) by stage, dit against flow",
          "dit_attention": "DiT attention against the Wan transformer",
          "peak_memory": "Peak resident memory of a 48-frame extension"}


def markdown(summary: dict) -> str:
    """The README's tables from :func:`main`'s summary: one per benchmark, with its settings and wall time."""
    lines = []
    for name, entry in summary["benchmarks"].items():
        settings = entry["results"].get("settings", {})
        said = ", ".join(f"{k} {v}" for k, v in settings.items() if k in ("size", "frames", "jobs", "repeats",
                                                                          "plate_frames", "goal_gb"))
        said = f"{said}; " if said else ""
        lines += [f"**{TITLES[name]}** (`bench/{BENCHMARKS[name]}`; {said}{entry['wall_s']} s)", ""]
        lines += MARKDOWN[name](entry["results"]) + [""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark's --quick")
    parser.add_argument("--only", default="", help="comma-separated names (default: all present)")
    parser.add_argument("--results", default=str(BENCH / "results"))
    parser.add_argument("--table", action="store_true", help="only print (and write) the tables of the last issue16.json")
    args = parser.parse_args(argv)
    if args.table:
        table = markdown(json.loads((Path(args.results) / "issue16.json").read_text()))
        (Path(args.results) / "issue16.md").write_text(table + "\n")
        print(table)
        return 0
    wanted = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = [n for n in wanted if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    summary = {"settings": {"quick": args.quick, "date": time.strftime("%Y-%m-%d"),
                            "missing": [n for n in wanted if n not in present(wanted)]}, "benchmarks": {}}
    earlier = results / "issue16.json"
    if args.only and earlier.is_file():      # some benchmarks again: the others' last results are kept
        kept = json.loads(earlier.read_text())["benchmarks"]
        summary["benchmarks"] = {n: kept[n] for n in BENCHMARKS if n in kept}
        summary["settings"]["rerun"] = wanted
    for name in present(wanted):
        print(f"{name} ...", flush=True)
        summary["benchmarks"][name] = run_one(name, results, args.quick)
        print(f"{name}: {summary['benchmarks'][name]['wall_s']} s", flush=True)
    summary["settings"]["wall_s"] = round(time.perf_counter() - began, 1)
    (results / "issue16.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = markdown(summary)
    (results / "issue16.md").write_text(table + "\n")
    print()
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
