"""Find the gaps of an edit and bridge each one, then place all results on one new edit.

    python examples/bridge_an_edit.py EDIT OUT_DIR [--engine dit|flow|...]

EDIT is any edit OpenTimelineIO reads (.otio, .edl, FCP XML, ...) whose clips link
media on disk, e.g. the one `python examples/make_sample_edit.py` writes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shotfill.engines import DEFAULT_ENGINE
from shotfill.errors import ShotfillError
from shotfill.job import EditSpec, JobSpec, OutputSpec
from shotfill.timeline import publish
from shotfill.worker import run_job
from shotfill.plan import TaskKind
from shotfill.timeline import find_targets, load_edit


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("edit")
    parser.add_argument("out_dir")
    parser.add_argument("--engine", default=DEFAULT_ENGINE)
    args = parser.parse_args(argv)
    try:
        targets = [t for t in find_targets(load_edit(args.edit), edit_path=args.edit)
                   if t.kind is TaskKind.BRIDGE and t.ready]
        if not targets:
            print("no gap with media on both sides in this edit")
            return 0
        results = []
        for t in targets:
            handles = t.handle_frames
            print(f"{t.id}: {t.frames} frames between {t.clip_a.clip_name} and {t.clip_b.clip_name}"
                  f" ({handles['a']} + {handles['b']} from their handles, {t.generated_frames} to generate)")
            if not t.generated_frames:
                print(f"{t.id}: skipped, the clips' handles cover the gap (trim them out over it)")
                continue
            spec = JobSpec(edit=EditSpec(path=args.edit, target=t.id, write_timeline=False),
                           engine=args.engine, output=OutputSpec(dir=str(Path(args.out_dir) / t.id)))
            results.append(run_job(spec))
        if not results:
            return 0
        new_edit = publish(args.edit, [r.to_dict() for r in results])
    except ShotfillError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"new edit: {new_edit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
