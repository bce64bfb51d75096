"""Publishing: finished job results placed on a new version of the edit."""
from __future__ import annotations

from pathlib import Path

import opentimelineio as otio

from ..errors import InputError
from .load import load_edit
from .writeback import Placement, write_back


def publish(edit_path, results: list[dict], *, mode: str = "track", rate: float | None = None,
            export_format: str | None = None, out_path=None, warnings: list | None = None,
            timeline: str | int | None = None, search_paths=()) -> Path:
    """Place finished results (``JobResult.to_dict()``) on a new version of the edit.

    Each result's ``placement`` (:func:`shotfill.worker.placement_dict`) becomes a
    :class:`~shotfill.timeline.Placement`, its handle frames included; see
    :func:`~shotfill.timeline.write_back` for versions, exports and ``warnings``.

    ``timeline`` and ``search_paths`` pick and relink the edit as the jobs did (their
    ``edit.timeline`` and ``edit.search_paths``), so the handle frames they used are there.
    """
    placements = []
    for r in results:
        p = r.get("placement")
        if not p:
            raise InputError(f"result of job {r.get('job_id')} has no edit placement")
        try:
            rs = p["record_start"]
            placements.append(Placement(
                target_id=p["target_id"], directory=Path(p["directory"]), name_prefix=p["name_prefix"],
                name_suffix=p["name_suffix"], frame_zero_padding=p["frame_zero_padding"],
                start_frame=p["start_frame"], end_frame=p["end_frame"], rate=p["rate"],
                record_start=otio.opentime.RationalTime(rs["value"], rs["rate"]), metadata=p["metadata"],
                handles_before=p.get("handles_before", 0), handles_after=p.get("handles_after", 0)))
        except (KeyError, TypeError) as err:
            raise InputError(f"result of job {r.get('job_id')}: its placement is incomplete "
                             f"(missing or bad {err})") from None
    timeline = load_edit(edit_path, rate=rate, timeline=timeline, search_paths=search_paths)
    return write_back(edit_path, timeline, placements, mode=mode, out_path=out_path,
                      export_format=export_format, warnings=warnings)
