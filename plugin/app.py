"""``shotfill-panel``: the panel as a standalone app, on any edit OTIO can read.

    shotfill-panel EDIT                      open the edit, run takes, apply them
    shotfill-panel EDIT --screenshot P.png   render the panel with EDIT loaded, save, exit
    shotfill-panel EDIT --results-out R.json hand applied takes to the calling host (Resolve)

Applying a take saves a new version of the edit next to it (the input is never
changed) and prints its path. The engine command comes from
``SHOTFILL_ENGINE_COMMAND`` or ``shotfill`` on PATH (see :mod:`.client`).
Offscreen rendering works for ``--screenshot``: ``QT_QPA_PLATFORM=offscreen``.

Exit codes: 0 done, 2 the edit could not be opened (the screenshot still shows why), or Qt
(PySide6) is not installed: the message says to install the ``[panel]`` extra.
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Qt is imported in main(), so that a missing Qt is said, not a traceback
    from .qt import QtGui

#: the Qt bindings the panel runs on (:mod:`.qt`)
QT_BINDINGS = ("PySide6", "PySide2")
#: what to do when neither is installed
QT_MISSING_HINT = ("shotfill-panel needs Qt for Python (PySide6), which is not installed for {python}: "
                   "install the panel extra, pip install 'shotfill[panel]'")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if not (200 <= w <= 8000 and 200 <= h <= 8000):
        raise argparse.ArgumentTypeError(f"size {text} is outside 200x200..8000x8000")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shotfill-panel", description=__doc__.splitlines()[0])
    parser.add_argument("edit", nargs="?", help="an edit: .otio, .edl, .xml (FCP 7), .fcpxml, .aaf, ...")
    parser.add_argument("--screenshot", metavar="PNG", help="save the panel with the edit loaded, and exit")
    parser.add_argument("--size", type=_size, default=(1360, 860), metavar="WxH",
                        help="window size (default 1360x860)")
    parser.add_argument("--results-out", metavar="JSON",
                        help="Apply writes the chosen takes here for the host that started the panel, "
                             "instead of saving a new edit")
    return parser


def dark_palette() -> QtGui.QPalette:
    """A dark palette like the hosts' (the panel is made to sit inside Nuke and Resolve)."""
    from .qt import QtGui

    p = QtGui.QPalette()
    colours = {QtGui.QPalette.Window: (45, 45, 48), QtGui.QPalette.WindowText: (220, 220, 220),
               QtGui.QPalette.Base: (30, 30, 32), QtGui.QPalette.AlternateBase: (38, 38, 41),
               QtGui.QPalette.Text: (220, 220, 220), QtGui.QPalette.Button: (55, 55, 58),
               QtGui.QPalette.ButtonText: (220, 220, 220), QtGui.QPalette.Highlight: (70, 130, 200),
               QtGui.QPalette.HighlightedText: (255, 255, 255), QtGui.QPalette.ToolTipBase: (60, 60, 60),
               QtGui.QPalette.ToolTipText: (230, 230, 230), QtGui.QPalette.PlaceholderText: (130, 130, 130)}
    for role, rgb in colours.items():
        p.setColor(role, QtGui.QColor(*rgb))
    for role in (QtGui.QPalette.WindowText, QtGui.QPalette.Text, QtGui.QPalette.ButtonText):
        p.setColor(QtGui.QPalette.Disabled, role, QtGui.QColor(120, 120, 120))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.results_out and not args.edit:
        print("shotfill-panel: --results-out needs the EDIT the host exported", file=sys.stderr)
        return 2
    try:
        from .qt import QtWidgets, exec_
    except ImportError as e:
        if e.name not in QT_BINDINGS:
            raise
        print(QT_MISSING_HINT.format(python=sys.executable), file=sys.stderr)
        return 2
    from .hosts.standalone import HandOffHost, StandaloneHost
    from .panel import ShotfillPanel

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["shotfill-panel"])
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    host = HandOffHost(args.edit, args.results_out) if args.results_out else StandaloneHost()
    panel = ShotfillPanel(host)
    panel.resize(*args.size)
    loaded = panel.load_edit(args.edit) if args.edit else True
    if not loaded:
        print(f"shotfill-panel: {panel.state.status_message}", file=sys.stderr)
    if args.screenshot:
        panel.show()
        app.processEvents()
        if not panel.grab().save(args.screenshot):
            print(f"shotfill-panel: cannot write {args.screenshot}", file=sys.stderr)
            return 1
        print(args.screenshot)
        return 0 if loaded else 2
    panel.applied.connect(print)
    panel.show()
    return exec_(app)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
