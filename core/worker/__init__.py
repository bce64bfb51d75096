"""The worker: a job spec in, EXR frames (and a new version of the edit) out.

The same code runs behind every front door (the command line, the panel's worker process,
a farm task), in one fixed order (:func:`~shotfill.worker.run.run_job`)::

    resolve   job spec (+ edit target) -> sources, frame plan, colour spaces     (resolve.py)
              output name locked for the whole run (another job running there:  (lock.py)
              refused) and claimed: another job's frames refused, replaced or    (existing.py)
              versioned; only then the engine is built
    read      known frames and masks -> working encoding (display-referred)       (run.py)
    generate  engine.generate(plan, frames, masks, ...)
    seam      colour-anchor generated frames to the plate; seam scores
    write     EXR per generated frame, atomic, provenance in the header;         (output.py)
              frames already written by the same job are kept (resume)
    timeline  the generated sequence placed on a new edit next to the input      (shotfill.timeline)
    preview   a contact sheet around each seam, and a small picture of every     (preview.py)
              frame of the window (``preview/``) for the panel to scrub

Known pixels are never regenerated: where the mask is 0 the output is the source pixel
itself (bit-exact when source and output colour spaces agree).
"""
from .output import placement_dict
from .resolve import EDIT_FIRST_FRAME, ResolvedJob, resolve
from .run import JobResult, run_job

__all__ = ["EDIT_FIRST_FRAME", "JobResult", "ResolvedJob", "placement_dict", "resolve", "run_job"]
