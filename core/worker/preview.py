"""Pictures for people: a contact sheet around each seam, and a small PNG of every frame of the window."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MediaError
from ..events import Progress
from ..plan import Role, TaskKind
from .resolve import ResolvedJob


#: longest side, in pixels, of the per-frame preview pictures
PREVIEW_MAX_SIDE = 480


def write_contact_sheet(job: ResolvedJob, working, result, masks, before, path: Path) -> Path:
    """Rows of frames around each seam; for a fill, the plate before and the result after."""
    from ..io.contact import Thumb, contact_sheet

    plan = job.plan

    def disp(p: int) -> np.ndarray:  # the composite of one position, display-referred (only the frames shown)
        return np.clip(np.where(masks[p][..., None] > 0, result[p], working[p]), 0.0, 1.0)

    rows = []
    gen = plan.generate_positions
    title = job.target.id if job.target is not None else job.name
    if plan.kind is TaskKind.FILL:
        picks = np.linspace(0, len(plan) - 1, num=min(4, len(plan))).round().astype(int)
        rows = [(f"{title} fill: original",
                 [(f"{plan.frames[p].source_frame} before", np.clip(before(p), 0, 1)) for p in picks]),
                (f"{title} fill: result",
                 [Thumb(f"{plan.frames[p].source_frame} after", disp(p), True) for p in picks])]
    else:
        lo, hi = max(0, gen[0] - 2), min(len(plan), gen[-1] + 3)
        if len(gen) > 6:
            keep = set(range(lo, gen[0] + 3)) | set(range(gen[-1] - 2, hi))
        else:
            keep = set(range(lo, hi))
        cells = []
        for p in sorted(keep):
            pf = plan.frames[p]
            label = f"G {pf.output_frame}" if pf.role is Role.GENERATE else f"{pf.source} {pf.source_frame}"
            cells.append(Thumb(label, disp(p), pf.role is Role.GENERATE))
        rows = [(f"{title} {plan.kind.value}", cells)]
    return contact_sheet(rows, path)


def write_preview_frames(job: ResolvedJob, working, result, masks, before, progress: Progress) -> list[dict]:
    """A small PNG of every position of the window, in ``<out>/preview/``, and their entries.

    Known frames are named by where they come from (``NAME.k_a_1039.png``), generated frames
    by their output frame (``NAME.1041.png``); a filled frame has the plate before
    (``NAME.1005.before.png``) and the result after (``NAME.1005.after.png``). Pictures are
    display-referred (the working encoding clipped to [0, 1]), 8-bit, the long side at most
    :data:`PREVIEW_MAX_SIDE`. ``before(position)`` is a filled frame's plate, working encoding.
    """
    from ..io.contact import write_png

    folder = job.out_dir / "preview"
    folder.mkdir(exist_ok=True)
    if folder.is_symlink():          # planted while the job ran (resolve refuses one already there)
        raise MediaError(folder, "is a symbolic link: the preview pictures are not written through it")
    scale = min(1.0, PREVIEW_MAX_SIDE / max(job.width, job.height))
    size = (max(1, round(job.width * scale)), max(1, round(job.height * scale)))

    def save(pixels: np.ndarray, stem: str) -> str:
        return str(write_png(folder / f"{job.name}.{stem}.png", _preview_pixels(pixels, size)))

    entries = []
    for pos, pf in enumerate(job.plan.frames):
        if pf.role is Role.KNOWN:
            label = f"{pf.source} {pf.source_frame}"
            after = save(working[pos], f"k_{pf.source}_{job.frame_number(pf.source_frame)}")
            plate = None
        elif pf.role is Role.GENERATE:
            label = f"G {pf.output_frame}"
            after = save(result[pos], job.frame_number(pf.output_frame))
            plate = None
        else:
            label = str(pf.source_frame)
            stem = job.frame_number(pf.output_frame)
            original = before(pos)
            m = masks[pos][..., None]
            plate = save(original, f"{stem}.before")
            after = save(original + m * (result[pos] - original), f"{stem}.after")
        entries.append({"position": pos, "role": pf.role.value, "label": label, "after": after,
                        "before": plate})
        progress.update((pos + 1) / len(job.plan))
    return entries


def _preview_pixels(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Working-encoding pixels as an 8-bit picture of ``size`` (width, height)."""
    import cv2

    shown = np.clip(pixels, 0.0, 1.0)
    if shown.shape[1::-1] != size:
        shown = cv2.resize(shown, size, interpolation=cv2.INTER_AREA)
    return np.round(shown * 255.0).astype(np.uint8)
