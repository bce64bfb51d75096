"""Publishing: finished job results placed on a new version of the edit."""
from __future__ import annotations

from pathlib import Path

import opentimelineio as otio

from ..errors import InputError
from .load import load_edit
from .writeback import Placement, write_back


def publish(edit_path, results: list[dict], *, mode: str = "track", rate: float | None = None,
            export_format: str | None = None, out_path=None) -> Path:
    """Place finished results (``JobResult.to_dict()``) on a new version of the edit."""
    placements = []
    for r in results:
        p = r.get("placement")
        if not p:
            raise InputError(f"result of job {r.get('job_id')} has no edit placement")
        rs = p["record_start"]
        placements.append(Placement(
            target_id=p["target_id"], directory=Path(p["directory"]), name_prefix=p["name_prefix"],
            name_suffix=p["name_suffix"], frame_zero_padding=p["frame_zero_padding"],
            start_frame=p["start_frame"], end_frame=p["end_frame"], rate=p["rate"],
            record_start=otio.opentime.RationalTime(rs["value"], rs["rate"]), metadata=p["metadata"]))
    timeline = load_edit(edit_path, rate=rate)
    return write_back(edit_path, timeline, placements, mode=mode, out_path=out_path,
                      export_format=export_format)
