"""The job's progress: one bar for the whole job with its ETA, and one thin bar per stage."""
from __future__ import annotations

from ..qt import QtWidgets
from ..state import STAGES, PanelState, Status


class StageBars(QtWidgets.QWidget):
    """The whole job's bar with ETA, and one thin bar per stage."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        layout = QtWidgets.QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setVerticalSpacing(2)
        self.overall = QtWidgets.QProgressBar()
        self.overall.setRange(0, 1000)
        self.overall.setTextVisible(True)
        self.caption = QtWidgets.QLabel("")
        self.caption.setWordWrap(True)
        layout.addWidget(self.overall, 0, 0, 1, 4)
        layout.addWidget(self.caption, 1, 0, 1, 4)
        self.bars: dict[str, QtWidgets.QProgressBar] = {}
        for i, stage in enumerate(STAGES):
            label = QtWidgets.QLabel(stage)
            bar = QtWidgets.QProgressBar()
            bar.setRange(0, 100)
            bar.setMaximumHeight(12)
            bar.setTextVisible(False)
            row, col = 2 + i // 2, (i % 2) * 2
            layout.addWidget(label, row, col)
            layout.addWidget(bar, row, col + 1)
            self.bars[stage] = bar
        layout.setColumnStretch(1, 1)
        layout.setColumnStretch(3, 1)

    def show_progress(self, state: PanelState) -> None:
        p = state.progress
        self.overall.setValue(int(round(p.fraction * 1000)))
        self.overall.setFormat(f"{p.fraction * 100:.0f}%")
        if state.status is Status.RUNNING:
            eta = f"  ETA {_seconds(p.eta_s)}" if p.eta_s is not None else ""
            self.caption.setText(f"{p.stage}{': ' + p.message if p.message else ''}{eta}")
        else:
            self.caption.setText("")
        for stage, bar in self.bars.items():
            f = p.fractions.get(stage)
            bar.setEnabled(f is not None)
            bar.setValue(int(round((f or 0.0) * 100)))
            bar.setToolTip(f"{stage}: {'not reached' if f is None else f'{f * 100:.0f}%'}")


def _seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
