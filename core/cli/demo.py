"""``shotfill demo``: the main job on a sample edit the project makes itself.

1. Render the sample edit (:func:`shotfill.synthetic.make_sample_edit`): three
   procedural shots as EXR sequences, a 12-frame gap between the first two,
   a light stand to remove from the third, and ``sample_edit.otio``.
2. Run three jobs from the edit's targets, each the same worker a farm task
   or the panel runs: bridge the gap, extend shot B's tail by 12 frames, fill
   the stand's mask on shot C.
3. Publish all three results on one new version of the edit, stack the
   contact sheets, and score the fill against the clean render it hides.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import EXIT_OK
from ..plan import TaskKind
from .common import EVENT_MODES
from .generate import if_exists_arguments

EXTEND_FRAMES = 12


def add_parser(sub) -> None:
    """Add ``demo`` to the tree."""
    p = sub.add_parser("demo", help="make a sample edit and run the main job on it")
    p.add_argument("--out", default="shotfill-demo", help="output folder (default ./shotfill-demo)")
    p.add_argument("--engine", default=None, help="engine (default: the default engine)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--events", choices=EVENT_MODES, default="human")
    if_exists_arguments(p)
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    return run_demo(args.out, engine=args.engine, events=args.events, size=(args.width, args.height),
                    if_exists=args.if_exists)


def run_demo(out, *, engine: str | None = None, events: str = "human",
             size: tuple[int, int] = (640, 360), if_exists: str = "refuse") -> int:
    from shotfill_plugin.protocol import trust_summary

    from ..engines import DEFAULT_ENGINE
    from ..events import DemoEvent, HumanSink, JsonLinesSink
    from ..job import EditSpec, JobSpec, OutputSpec
    from ..timeline import publish
    from ..worker import run_job
    from ..synthetic.sample_edit import make_sample_edit
    from ..timeline import find_targets, load_edit
    from ..worker.existing import check_out_folder

    out = check_out_folder(out, "--out").resolve()
    engine = engine or DEFAULT_ENGINE
    sink = JsonLinesSink(sys.stdout) if events == "jsonl" else HumanSink(sys.stderr)
    say = (lambda *a: None) if events == "jsonl" else print

    say(f"shotfill demo: rendering the sample edit ({size[0]}x{size[1]}) under {out / 'edit'}")
    sample = make_sample_edit(out / "edit", width=size[0], height=size[1])
    targets = find_targets(load_edit(sample.edit), edit_path=sample.edit)
    chosen = [
        next(t for t in targets if t.kind is TaskKind.BRIDGE),
        next(t for t in targets if t.kind is TaskKind.EXTEND_FORWARD and t.clip_a.clip_name == "shotB"),
        next(t for t in targets if t.kind is TaskKind.FILL),
    ]

    results = []
    for target in chosen:
        say(f"\n{target.id}: {target.kind.value} with engine '{engine}'")
        spec = JobSpec(
            edit=EditSpec(path=str(sample.edit), target=target.id, write_timeline=False),
            frames=EXTEND_FRAMES if target.kind is TaskKind.EXTEND_FORWARD else None,
            engine=engine,
            output=OutputSpec(dir=str(out / "frames" / target.id), if_exists=if_exists),
        )
        results.append(run_job(spec, sink))

    new_edit = publish(sample.edit, [r.to_dict() for r in results])
    sheet = _stack([Path(r.contact_sheet) for r in results if r.contact_sheet], out / "contact_sheet.png")
    fill = next(r for r in results if r.task == TaskKind.FILL.value)
    fill_psnr, hole_psnr = _score_fill(sample, fill)

    if events == "jsonl":
        sink.emit(DemoEvent(str(new_edit), str(sheet), fill_psnr, hole_psnr, [r.to_dict() for r in results]))
        return EXIT_OK
    print("\nshotfill demo: done")
    print(f"  input edit:     {sample.edit}")
    print(f"  new edit:       {new_edit}")
    print(f"  contact sheet:  {sheet}")
    print(f"  {'target':<16}{'task':<16}{'frames':>7}  {'seam (1 = as smooth as the shot, at the cut)':<46}"
          f"trust (mean, lowest; 1 = tracked to real frames)")
    for r in results:
        seams = ", ".join(f"{k} {v:.2f}" for k, v in r.seam_scores.items()) or "-"
        summary = trust_summary(r.trust_entries())
        trust = "not given" if summary is None else f"{summary[0]:.2f}, {summary[1]:.2f}"
        print(f"  {r.target:<16}{r.task:<16}{len(r.frames):>7}  {seams:<46}{trust}")
        print(f"  {'':<16}{r.output_pattern}")
        for w in r.warnings:
            print(f"  {'':<16}warning: {w}")
    print(f"  fill vs the clean render, inside the mask: {fill_psnr:.2f} dB PSNR "
          f"(the stand left in: {hole_psnr:.2f} dB)")
    return EXIT_OK


def _score_fill(sample, result) -> tuple[float, float]:
    """PSNR (working encoding) of the filled region against the truth render, and of the unfilled plate."""
    import numpy as np

    from ..io.colour import ColourTransform
    from ..io.exr import read_exr
    from ..io.media import open_source
    from ..quality.metrics import psnr

    tf = ColourTransform("lin_rec709")
    truth = open_source(str(sample.truth_dir / f"shotC_clean.{'#' * 4}.exr"))
    plate = open_source(str(sample.media_dir / f"shotC.{'#' * 4}.exr"))
    masks = open_source(str(sample.media_dir / f"shotC_mask.{'#' * 4}.png"))
    pattern = result.output_pattern.replace("####", "{:04d}")
    got, want, orig, m = [], [], [], []
    for f in result.frames:
        got.append(tf.to_working(read_exr(pattern.format(f)).display_rgb()))
        want.append(tf.to_working(truth.read(f)))
        orig.append(tf.to_working(plate.read(f)))
        m.append(masks.read_mask(f))
    got, want, orig, m = (np.stack(x) for x in (got, want, orig, m))
    return psnr(got, want, mask=m), psnr(orig, want, mask=m)


def _stack(sheets: list[Path], path: Path) -> Path:
    """One PNG with each job's contact sheet under the previous one."""
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in sheets]
    width = max(im.width for im in images)
    canvas = Image.new("RGB", (width, sum(im.height for im in images)), (24, 24, 24))
    y = 0
    for im in images:
        canvas.paste(im, (0, y))
        y += im.height
    tmp = path.with_name(f".{path.name}.tmp")
    canvas.save(tmp, format="PNG")
    tmp.replace(path)
    return path
