"""EXR write throughput: shotfill's writer against the OpenEXR binding and against raw bytes, per compression.

For each compression (ZIP, PIZ, DWAA, none) the same frames (a procedural plate, scene-linear,
half float on disk) are written three ways, taken in turn frame by frame so the machine's noise
hits them alike:

- ``shotfill``: :func:`shotfill.io.exr.write_exr` from the float32 frame, as the worker calls it
  (half conversion, one plane per channel, a temporary file, fsync, rename, fsync of the folder);
- ``binding``: ``OpenEXR.File({"compression": ..., "type": scanline}, {"RGB": half}).write(path)``,
  the binding writing the same half array directly (no sync);
- ``raw``: the half array's bytes, ``ndarray.tofile`` and ``os.fsync``: the disk's own rate for
  as many bytes as the uncompressed frame.

MB/s are of the uncompressed half RGB frame (W x H x 3 x 2 bytes) per second of writing, so all
three are on one scale; ``ratio_to_binding`` and ``ratio_to_raw`` are shotfill's seconds over theirs
(1.0: as fast), and ``file_ratio`` the file size over the uncompressed bytes.

    python bench/bench_exr_write.py [--size 1920x1080] [--frames 8] [--dir /tmp] [--out bench/results/exr_write.json]

``--quick`` writes 4 frames of 960x540.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

COMPRESSIONS = ("zip", "piz", "dwaa", "none")
WRITERS = ("shotfill", "binding", "raw")
MB = 1024 * 1024


def plate_frames(width: int, height: int, count: int, *, seed: int = 11) -> list[np.ndarray]:
    """``count`` frames of a procedural pan, scene-linear float32 (H, W, 3): what the worker hands the writer."""
    from shotfill.io.colour import ColourTransform
    from shotfill.synthetic import CameraMove, ShotSpec, render_shot

    shot = render_shot(ShotSpec(seed=seed, width=width, height=height, frames=count, camera=CameraMove.PAN,
                                speed=0.01))
    linear = ColourTransform("lin_rec709")
    return [linear.from_working(picture).astype(np.float32) for picture in shot.frames]


def write_shotfill(path: Path, pixels: np.ndarray, compression: str) -> None:
    from shotfill.io.exr import write_exr

    write_exr(path, pixels, compression=compression)


def write_binding(path: Path, half: np.ndarray, compression: str) -> None:
    import OpenEXR

    from shotfill.io.exr.write import COMPRESSIONS as BINDING_COMPRESSIONS

    header = {"compression": BINDING_COMPRESSIONS[compression], "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"RGB": half}) as exr:
        exr.write(str(path))


def write_raw(path: Path, half: np.ndarray) -> None:
    with open(path, "wb") as f:
        half.tofile(f)
        f.flush()
        os.fsync(f.fileno())


def timed(write, *args) -> float:
    start = time.perf_counter()
    write(*args)
    return time.perf_counter() - start


def measure(frames: list[np.ndarray], folder: Path, compressions=COMPRESSIONS) -> dict:
    """Seconds per frame of each writer for each compression, and the files' sizes; interleaved."""
    halves = [f.astype(np.float16) for f in frames]
    seconds = {c: {w: [] for w in WRITERS} for c in compressions}
    sizes = {c: [] for c in compressions}
    for i, (pixels, half) in enumerate(zip(frames, halves)):
        for c in compressions:
            path = folder / f"{c}.{i:04d}"
            seconds[c]["shotfill"].append(timed(write_shotfill, path.with_suffix(".shotfill.exr"), pixels, c))
            seconds[c]["binding"].append(timed(write_binding, path.with_suffix(".binding.exr"), half, c))
            seconds[c]["raw"].append(timed(write_raw, path.with_suffix(".raw"), half))
            sizes[c].append(path.with_suffix(".shotfill.exr").stat().st_size)
            for suffix in (".shotfill.exr", ".binding.exr", ".raw"):
                path.with_suffix(suffix).unlink()
    return {"seconds": seconds, "sizes": sizes, "frame_bytes": int(halves[0].nbytes)}


def summarise(measured: dict) -> dict:
    """Per compression: median MB/s of each writer, shotfill's time over the binding's and over raw, file ratio."""
    frame_mb = measured["frame_bytes"] / MB
    table = {}
    for c, by_writer in measured["seconds"].items():
        median = {w: statistics.median(s) for w, s in by_writer.items()}
        table[c] = {**{f"{w}_mb_s": round(frame_mb / median[w], 1) for w in WRITERS},
                    "ratio_to_binding": round(median["shotfill"] / median["binding"], 2),
                    "ratio_to_raw": round(median["shotfill"] / median["raw"], 2),
                    "file_ratio": round(statistics.median(measured["sizes"][c]) / measured["frame_bytes"], 3)}
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--dir", default=None, help="folder written to (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="4 frames of 960x540")
    parser.add_argument("--out", default="bench/results/exr_write.json")
    args = parser.parse_args(argv)
    width, height = (int(n) for n in args.size.lower().split("x"))
    count = args.frames
    if args.quick:
        width, height, count = 960, 540, 4
    began = time.perf_counter()
    frames = plate_frames(width, height, count)
    with tempfile.TemporaryDirectory(prefix="shotfill-exr-write-", dir=args.dir) as tmp:
        measured = measure(frames, Path(tmp))
    table = summarise(measured)
    results = {"settings": {"size": [width, height], "frames": count, "channels": "RGB half",
                            "frame_mb": round(measured["frame_bytes"] / MB, 2), "dir": args.dir or tempfile.gettempdir(),
                            "date": time.strftime("%Y-%m-%d"), "bench_s": round(time.perf_counter() - began, 1)},
               "compressions": table}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    for c, row in table.items():
        print(f"{c:5s} shotfill {row['shotfill_mb_s']:7.1f} MB/s  binding {row['binding_mb_s']:7.1f}  raw "
              f"{row['raw_mb_s']:7.1f}  x{row['ratio_to_binding']} of binding, x{row['ratio_to_raw']} of raw, "
              f"file {row['file_ratio']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
