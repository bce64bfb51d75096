"""A take in the takes list: its picture, title and summary, a strip of its frames' trust, its warnings.

:class:`TrustStrip` draws one cell per written frame, coloured by the engine's trust in it (reds
below :data:`~shotfill_plugin.protocol.LOW_TRUST`; from it, amber through yellow to green at 1;
grey where the engine gives none), hatched where no motion was followed (a dissolve, a held frame); hovering a
cell tells its frame, trust and method. :class:`TakeRow` is one take's row.
"""
from __future__ import annotations

import html

from ..protocol import LOW_TRUST, FrameTrust
from ..qt import QtCore, QtGui, QtWidgets
from ..state import Take, TakeStatus
from .palette import CLIP

#: (trust, colour) stops the strip's colours run through: reds below LOW_TRUST, then a step to amber,
#: yellow and green, so a weak frame never reads as a middling one
_LOW_STOPS = ((0.0, (165, 30, 30)), (LOW_TRUST, (215, 70, 50)))
_STOPS = ((LOW_TRUST, (230, 150, 40)), (0.6, (205, 195, 70)), (1.0, (70, 170, 90)))
#: methods that follow no motion: their cells are hatched
_NO_MOTION = ("dissolve", "held")
#: the colour of warnings: an amber that reads on a light and on a dark panel
WARNING_COLOUR = "#c8841a"


def trust_colour(trust: float | None) -> QtGui.QColor:
    """The colour of a cell of the strip (grey: the engine gives no trust)."""
    if trust is None:
        return QtGui.QColor(CLIP)
    trust = min(1.0, max(0.0, trust))
    stops = _LOW_STOPS if trust < LOW_TRUST else _STOPS
    for (t0, c0), (t1, c1) in zip(stops, stops[1:]):
        if trust <= t1:
            f = (trust - t0) / (t1 - t0)
            return QtGui.QColor(*(int(round(a + (b - a) * f)) for a, b in zip(c0, c1)))
    return QtGui.QColor(*stops[-1][1])


class TrustStrip(QtWidgets.QWidget):
    """One cell per written frame of a take, coloured by trust; a tooltip per cell."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._entries: tuple[FrameTrust, ...] = ()
        self.setFixedHeight(12)
        self.setMinimumWidth(60)
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)
        self.setMouseTracking(True)

    def set_entries(self, entries) -> None:
        self._entries = tuple(entries)
        self.setVisible(bool(self._entries))
        self.update()

    def entries(self) -> tuple[FrameTrust, ...]:
        return self._entries

    def cell_rect(self, index: int) -> QtCore.QRectF:
        width = self.width() / max(1, len(self._entries))
        return QtCore.QRectF(index * width, 0, width, self.height())

    def cell_at(self, x: float) -> int | None:
        """The index of the cell under ``x`` (None: no cells)."""
        if not self._entries:
            return None
        return min(max(0, int(x / self.cell_rect(0).width())), len(self._entries) - 1)

    def tooltip_at(self, index: int) -> str:
        """``frame 1017: trust 0.12 (low: below 0.2), extrapolated``."""
        e = self._entries[index]
        if e.trust is None:
            trust = "no trust given by the engine"
        else:
            trust = f"trust {e.trust:.2f}" + (f" (low: below {LOW_TRUST:g})" if e.is_low else "")
        return f"frame {e.frame}: {trust}, {e.method or 'left as it was'}"

    def event(self, event) -> bool:
        if event.type() == QtCore.QEvent.ToolTip:
            index = self.cell_at(event.pos().x())
            if index is None:
                QtWidgets.QToolTip.hideText()
            else:
                QtWidgets.QToolTip.showText(event.globalPos(), self.tooltip_at(index), self)
            return True
        return super().event(event)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QtGui.QPainter(self)
        gap = 1.0 if self.cell_rect(0).width() > 4 else 0.0
        for i, e in enumerate(self._entries):
            cell = self.cell_rect(i).adjusted(0, 1, -gap, -1)
            colour = trust_colour(e.trust)
            painter.fillRect(cell, colour)
            if e.method in _NO_MOTION:
                painter.fillRect(cell, QtGui.QBrush(colour.darker(170), QtCore.Qt.BDiagPattern))


class TakeRow(QtWidgets.QWidget):
    """One take: its contact sheet small, title, summary, trust strip and warnings."""

    THUMB = QtCore.QSize(144, 40)

    def __init__(self, take: Take, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.thumb = QtWidgets.QLabel()
        self.thumb.setFixedSize(self.THUMB)
        self.thumb.setAlignment(QtCore.Qt.AlignCenter)
        self.title = QtWidgets.QLabel()
        self.summary = QtWidgets.QLabel()
        self.summary.setWordWrap(True)
        self.trust = TrustStrip()
        self.warnings = QtWidgets.QLabel()
        self.warnings.setWordWrap(True)
        self.warnings.setTextFormat(QtCore.Qt.RichText)
        text = QtWidgets.QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.title)
        text.addWidget(self.summary)
        text.addWidget(self.trust)
        text.addWidget(self.warnings)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(4, 3, 4, 3)
        layout.addWidget(self.thumb, 0, QtCore.Qt.AlignTop)
        layout.addLayout(text, 1)
        self.show_take(take)

    def show_take(self, take: Take) -> None:
        pixmap = QtGui.QPixmap(take.contact_sheet) if take.contact_sheet else QtGui.QPixmap()
        if pixmap.isNull():
            self.thumb.setPixmap(QtGui.QPixmap())
        else:
            self.thumb.setPixmap(pixmap.scaled(self.THUMB, QtCore.Qt.KeepAspectRatio, QtCore.Qt.SmoothTransformation))
        self.title.setText(f"<b>{html.escape(take.title)}</b>")
        self.summary.setText(html.escape(take.summary()))
        self.trust.set_entries(take.frame_trust)
        shown = take.warnings if take.status is not TakeStatus.QUEUED else []
        self.warnings.setText("<br>".join(f'<span style="color:{WARNING_COLOUR}">warning: {html.escape(w)}</span>'
                                          for w in shown))
        self.warnings.setVisible(bool(shown))
