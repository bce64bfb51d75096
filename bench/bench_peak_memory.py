"""Peak resident memory of a 3840x2160 16-frame plate extended by 48 frames, engine by engine, against a 6 GB goal.

A 4K extension must not hold the whole shot in memory: 64 frames of 3840x2160 RGB float32 are 6.4 GB
on their own. The plate is procedural (:mod:`shotfill.synthetic`, rendered at a quarter of the size
and scaled up, since rendering 4K frames takes minutes) and written as half-float EXR; then each
engine runs ``run_job`` (an extension by ``--frames``) in its own child process. The child's peak
RSS comes from the kernel when it is reaped (``os.wait4``: the child's own ``ru_maxrss``; the
``RUSAGE_CHILDREN`` figure is the largest of all children so far, so it cannot tell engines apart).
The child also samples its RSS every 20 ms and keeps the peak of each worker stage (prepare,
read, generate, seam, write, preview), written to a file as it goes; with ``--trace`` it also
lists, at the start of each stage, the source lines holding the most memory (tracemalloc, from the
first stage after ``prepare``: what the job holds, not what importing the engine allocates).

A child whose RSS passes ``--kill-above-gb`` (default 10: this machine is shared) is killed, and
its row says in which stage: the figure is then a lower bound. One still running after
``--timeout-s`` (default 180) is stopped the same way (``timed_out_s``): its peak is the peak so far.

    python bench/bench_peak_memory.py [--engines flow,motion,baseline,dit] [--size 3840x2160]
        [--plate-frames 16] [--frames 48] [--kill-above-gb 10] [--trace] [--out bench/results/peak_memory.json]

``--quick`` runs 1920x1080.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

GB = 1024 ** 3
GOAL_GB = 6.0


def rss_of(pid: int | str = "self") -> int:
    """Resident bytes of process ``pid`` now (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0


def write_plate(folder: Path, width: int, height: int, frames: int, *, scale: int = 4, seed: int = 3) -> str:
    """A procedural pan rendered at ``1/scale`` of ``width x height``, scaled up (cubic) and written frame by frame
    as half-float EXR (never the whole shot in memory); returns the pattern."""
    import cv2

    from shotfill.io.colour import ColourTransform
    from shotfill.io.exr import write_exr
    from shotfill.synthetic import CameraMove, ShotSpec
    from shotfill.synthetic.render import render_frame

    if width % scale or height % scale:
        raise ValueError(f"{width}x{height} is not a multiple of the render scale {scale}")
    spec = ShotSpec(seed=seed, width=width // scale, height=height // scale, frames=frames, camera=CameraMove.PAN,
                    speed=0.01)
    linear = ColourTransform("lin_rec709")
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(frames):
        small = linear.from_working(render_frame(spec, t).frame).astype(np.float32)
        big = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        write_exr(folder / f"plate.{1001 + t:04d}.exr", np.clip(big, 0.0, 65504.0).astype(np.float16), compression="zip")
    return str(folder / "plate.####.exr")


class StageMemory:
    """An event sink that knows the worker's current stage, and a sampler thread keeping each stage's peak RSS;
    the profile is written to ``path`` (JSON) at every stage change and at the end."""

    def __init__(self, path: Path, trace: bool = False, interval: float = 0.02):
        self.path, self.trace, self.interval = path, trace, interval
        self.stage = "start"
        self.peaks: dict[str, int] = {}
        self.holders: dict[str, list] = {}
        self._stop = threading.Event()
        self._saving = threading.Lock()      # the sampler and the worker's thread both save
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._note()
        self.save()

    def emit(self, event) -> None:
        if getattr(event, "kind", None) == "stage" and event.stage != self.stage:
            self._note()
            self.stage = event.stage
            if self.trace and self.stage != "prepare":
                import tracemalloc

                if not tracemalloc.is_tracing():
                    # from the read stage on: what the job holds, not the engine's imports (tracing
                    # torch's import makes it minutes long)
                    tracemalloc.start(4)
                self.holders[self.stage] = top_holders()
            self.save()

    def _note(self) -> None:
        self.peaks[self.stage] = max(self.peaks.get(self.stage, 0), rss_of())

    def _sample(self) -> None:
        count = 0
        while not self._stop.wait(self.interval):
            self._note()
            count += 1
            if count % 25 == 0:        # twice a second: a child killed mid-stage leaves its stage's peak so far
                self.save()

    def save(self) -> None:
        profile = {"stage": self.stage, "stage_peak_gb": {k: round(v / GB, 3) for k, v in dict(self.peaks).items()},
                   "holders_at_stage_start": dict(self.holders)}
        temporary = self.path.with_name(self.path.name + ".tmp")   # whole or absent when the child is killed
        with self._saving:
            temporary.write_text(json.dumps(profile, indent=2))
            os.replace(temporary, self.path)


def top_holders(count: int = 6) -> list[dict]:
    """The source lines holding the most traced memory now (each allocation's innermost frame in this project's
    files, not numpy's or Python's)."""
    import tracemalloc

    snapshot = tracemalloc.take_snapshot()
    by_line: dict[str, int] = {}
    for stat in snapshot.statistics("traceback"):
        frames = list(stat.traceback)[::-1]      # most recent first
        frame = next((f for f in frames if _ours(f.filename)), frames[0])
        where = f"{_short(frame.filename)}:{frame.lineno}"
        by_line[where] = by_line.get(where, 0) + stat.size
    top = sorted(by_line.items(), key=lambda kv: -kv[1])[:count]
    return [{"line": where, "gb": round(size / GB, 3)} for where, size in top]


def _ours(filename: str) -> bool:
    """A file of this project (or its tests, or this script), not of Python or an installed package."""
    import sysconfig

    library = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])
    return not filename.startswith("<") and not filename.startswith(library) and "site-packages" not in filename


def _short(filename: str) -> str:
    marker = "/core/"
    return "core/" + filename.split(marker, 1)[1] if marker in filename else filename


def child(plate: str, engine: str, frames: int, out: Path, profile: Path, trace: bool) -> int:
    """The child: one extension of ``plate`` with ``engine``, its stage profile written to ``profile``."""
    from shotfill.job import JobSpec, OutputSpec, SourceSpec, TaskKind
    from shotfill.worker import run_job

    spec = JobSpec(task=TaskKind.EXTEND_FORWARD, source=SourceSpec(plate), frames=frames, engine=engine,
                   output=OutputSpec(dir=str(out)))
    with StageMemory(profile, trace=trace) as memory:
        result = run_job(spec, memory)
    if len(result.written) != frames:
        raise SystemExit(f"{engine}: wrote {len(result.written)} frames, not {frames}")
    return 0


def run_engine(plate: str, engine: str, frames: int, folder: Path, *, kill_above: float, trace: bool,
               timeout: float | None = None) -> dict:
    """One engine's child: its peak RSS (``os.wait4``), wall time, stage profile; killed past ``kill_above`` bytes
    or ``timeout`` seconds (its peak is then the peak so far)."""
    profile = folder / f"{engine}.profile.json"
    command = [sys.executable, __file__, "--child", engine, "--plate", plate, "--frames", str(frames),
               "--work", str(folder / f"out-{engine}"), "--profile", str(profile)] + (["--trace"] if trace else [])
    start = time.perf_counter()
    log = open(folder / f"{engine}.log", "w+")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    killed_at = timed_out = None
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if killed_at is None and timed_out is None:
            if rss_of(process.pid) > kill_above:
                killed_at = rss_of(process.pid)
                os.kill(process.pid, signal.SIGKILL)
            elif timeout is not None and time.perf_counter() - start > timeout:
                timed_out = time.perf_counter() - start
                os.kill(process.pid, signal.SIGKILL)
        time.sleep(0.02)
    process.returncode = os.waitstatus_to_exitcode(status)       # reaped here, not by Popen
    wall = time.perf_counter() - start
    row = {"peak_rss_gb": round(usage.ru_maxrss * 1024 / GB, 3), "wall_s": round(wall, 1),
           "exit": process.returncode}
    if profile.is_file():
        row["profile"] = json.loads(profile.read_text())
    if killed_at is not None:
        row["killed_over_gb"] = round(kill_above / GB, 1)
        row["killed_in_stage"] = row.get("profile", {}).get("stage")
    elif timed_out is not None:
        row["timed_out_s"] = round(timed_out, 1)
        row["killed_in_stage"] = row.get("profile", {}).get("stage")
    elif process.returncode != 0:
        log.seek(0)
        raise SystemExit(f"{engine} failed ({process.returncode}):\n{log.read()[-3000:]}")
    #: None: not known (stopped by the timeout below the goal)
    row["within_goal"] = (False if killed_at is not None or row["peak_rss_gb"] > GOAL_GB
                          else None if timed_out is not None else True)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="flow,motion,baseline,dit")
    parser.add_argument("--size", default="3840x2160")
    parser.add_argument("--plate-frames", type=int, default=16)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--kill-above-gb", type=float, default=10.0)
    parser.add_argument("--timeout-s", type=float, default=180.0, help="an engine's child is stopped after this")
    parser.add_argument("--trace", action="store_true", help="tracemalloc: what holds the memory at each stage")
    parser.add_argument("--quick", action="store_true", help="1920x1080")
    parser.add_argument("--out", default="bench/results/peak_memory.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--plate", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.plate, args.child, args.frames, Path(args.work), Path(args.profile), args.trace)

    width, height = (1920, 1080) if args.quick else (int(n) for n in args.size.lower().split("x"))
    engines = [e for e in args.engines.split(",") if e]
    began = time.perf_counter()
    results = {"settings": {"size": [width, height], "plate_frames": args.plate_frames, "frames": args.frames,
                            "goal_gb": GOAL_GB, "kill_above_gb": args.kill_above_gb, "timeout_s": args.timeout_s,
                            "plate_and_extension_float32_gb": round((args.plate_frames + args.frames) * width * height * 12
                                                             / GB, 2),
                            "date": time.strftime("%Y-%m-%d")}, "engines": {}}
    with tempfile.TemporaryDirectory(prefix="shotfill-peak-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        plate = write_plate(folder / "plate", width, height, args.plate_frames)
        results["settings"]["plate_s"] = round(time.perf_counter() - t, 1)
        for engine in engines:
            row = run_engine(plate, engine, args.frames, folder, kill_above=args.kill_above_gb * GB, trace=args.trace,
                             timeout=args.timeout_s)
            results["engines"][engine] = row
            over = (f", killed over {row['killed_over_gb']} GB in {row['killed_in_stage']}" if "killed_over_gb" in row
                    else f", stopped after {row['timed_out_s']} s in {row['killed_in_stage']}" if "timed_out_s" in row
                    else "")
            print(f"{engine}: peak {row['peak_rss_gb']} GB in {row['wall_s']} s{over}; by stage "
                  f"{row.get('profile', {}).get('stage_peak_gb')}", flush=True)
    results["settings"]["bench_s"] = round(time.perf_counter() - began, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
