"""The timeline strip: an edit's targets on their tracks, at their record frames; a click picks one."""
from __future__ import annotations

from ..qt import QtCore, QtGui, QtWidgets, Signal, mouse_pos
from ..state import Operation, Target
from .palette import ACCENT, CLIP, FILL, GAP, OFFLINE


class TimelineStrip(QtWidgets.QWidget):
    """The edit's targets on their tracks, at their record frames; a click picks one.

    Clips are grey blocks, gaps (bridges) orange, fills a violet band; a head or
    tail extension is a small arrow inside the clip's edge. The selected target
    is outlined.
    """

    target_clicked = Signal(str)

    ROW = 26
    ARROW = 12
    MARGIN = 8
    GUTTER = 44          # track names, left of the rows

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._targets: list[Target] = []
        self._selected: str | None = None
        self.empty_text = "no edit loaded"
        self.setMinimumHeight(self.ROW + 26)
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)

    def set_targets(self, targets: list[Target], selected: str | None) -> None:
        self._targets, self._selected = targets, selected
        rows = len({t.track_index for t in targets}) or 1
        self.setFixedHeight(self.MARGIN * 2 + rows * (self.ROW + 4) + 16)
        self.update()

    def _shapes(self) -> tuple[list[tuple[QtCore.QRectF, str, bool]], list[tuple[QtCore.QRectF, Target]]]:
        """Clip bodies ``(rect, label, ready)`` and each target's area, in widget pixels."""
        first = min(t.record_first for t in self._targets)
        last = max(t.record_last for t in self._targets)
        rows = self._rows()
        scale = (self.width() - self.GUTTER - 2 * self.MARGIN) / max(1, last - first + 1)
        clips: dict[tuple[int, int, int], tuple[QtCore.QRectF, str, bool]] = {}
        areas = []
        for t in self._targets:
            top = self.MARGIN + rows[t.track_index] * (self.ROW + 4)
            left = self.GUTTER + self.MARGIN + (t.record_first - first) * scale
            right = left + (t.record_last - t.record_first + 1) * scale
            body = QtCore.QRectF(left, top, max(2.0, right - left), self.ROW)
            if t.operation is Operation.BRIDGE:
                areas.append((body, t))
                continue
            label = (t.clip_a or {}).get("clip_name") or (t.media.name if t.media else t.track_name)
            clips.setdefault((t.track_index, t.record_first, t.record_last), (body, label, t.ready))
            if t.operation is Operation.EXTEND_BACKWARD:
                areas.append((QtCore.QRectF(left + 2, top + 5, self.ARROW, self.ROW - 10), t))
            elif t.operation is Operation.EXTEND_FORWARD:
                areas.append((QtCore.QRectF(right - 2 - self.ARROW, top + 5, self.ARROW, self.ROW - 10), t))
            else:
                areas.append((body, t))
        return list(clips.values()), areas

    def _rows(self) -> dict[int, int]:
        """Track index -> row, the highest track on top as in an editor's timeline."""
        return {idx: i for i, idx in enumerate(sorted({t.track_index for t in self._targets}, reverse=True))}

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QtGui.QPainter(self)
        painter.setRenderHint(QtGui.QPainter.Antialiasing)
        painter.fillRect(self.rect(), self.palette().color(QtGui.QPalette.Base))
        if not self._targets:
            painter.setPen(self.palette().color(QtGui.QPalette.PlaceholderText))
            painter.drawText(self.rect(), QtCore.Qt.AlignCenter, self.empty_text)
            return
        clips, areas = self._shapes()
        painter.setPen(self.palette().color(QtGui.QPalette.Text))
        # the track's name, or the label the target ids use for an unnamed one ("V2")
        names = {t.track_index: t.track_name or t.id.split(".")[0] for t in self._targets}
        for index, row in self._rows().items():
            box = QtCore.QRectF(self.MARGIN, self.MARGIN + row * (self.ROW + 4), self.GUTTER - 4, self.ROW)
            painter.drawText(box, QtCore.Qt.AlignVCenter | QtCore.Qt.AlignLeft,
                             painter.fontMetrics().elidedText(names[index], QtCore.Qt.ElideRight, int(box.width())))
        for body, label, ready in clips:
            painter.fillRect(body, CLIP if ready else OFFLINE)
            painter.setPen(QtGui.QColor(235, 235, 235))
            text_box = body.adjusted(self.ARROW + 6, 0, -self.ARROW - 6, 0)
            painter.drawText(text_box, QtCore.Qt.AlignVCenter | QtCore.Qt.AlignLeft,
                             painter.fontMetrics().elidedText(label, QtCore.Qt.ElideRight, int(text_box.width())))
        for rect, t in areas:
            selected = t.id == self._selected
            if t.operation is Operation.BRIDGE:
                painter.fillRect(rect, GAP.darker(140))
                painter.setBrush(QtCore.Qt.NoBrush)
                painter.setPen(QtGui.QPen(GAP, 1, QtCore.Qt.DashLine))
                painter.drawRect(rect.adjusted(0.5, 0.5, -0.5, -0.5))
                painter.setPen(QtGui.QColor(255, 230, 200))
                painter.drawText(rect, QtCore.Qt.AlignCenter, str(t.frames))
            elif t.operation is Operation.FILL:
                painter.fillRect(rect.adjusted(0, rect.height() - 5, 0, 0), FILL)
            else:
                painter.setBrush(ACCENT if selected else QtGui.QColor(200, 200, 200))
                painter.setPen(QtCore.Qt.NoPen)
                painter.drawPolygon(self._arrow(rect, t.operation is Operation.EXTEND_FORWARD))
            if selected:
                painter.setBrush(QtCore.Qt.NoBrush)
                painter.setPen(QtGui.QPen(ACCENT, 2))
                painter.drawRect(rect.adjusted(-1, -1, 1, 1))
        # the record range under the strip, as timecode where the edit has one
        first = min(self._targets, key=lambda t: t.record_first)
        last = max(self._targets, key=lambda t: t.record_last)
        painter.setPen(self.palette().color(QtGui.QPalette.Text))
        bottom = QtCore.QRectF(self.GUTTER + self.MARGIN, self.height() - 16,
                               self.width() - self.GUTTER - 2 * self.MARGIN, 14)
        painter.drawText(bottom, QtCore.Qt.AlignLeft, first.record_first_tc or str(first.record_first))
        painter.drawText(bottom, QtCore.Qt.AlignRight, last.record_last_tc or str(last.record_last))

    @staticmethod
    def _arrow(rect: QtCore.QRectF, forward: bool) -> QtGui.QPolygonF:
        tip = rect.right() if forward else rect.left()
        back = rect.left() if forward else rect.right()
        return QtGui.QPolygonF([QtCore.QPointF(back, rect.top()), QtCore.QPointF(tip, rect.center().y()),
                                QtCore.QPointF(back, rect.bottom())])

    def rect_of(self, target_id: str) -> QtCore.QRectF | None:
        """Where a target is drawn (None: not shown)."""
        return next((rect for rect, t in self._shapes()[1] if t.id == target_id), None) if self._targets else None

    def target_at(self, pos: QtCore.QPointF) -> str | None:
        """The target under ``pos``; arrows and gaps sit on top of clip bodies, so the
        smallest area wins."""
        if not self._targets:
            return None
        hits = [(rect, t) for rect, t in self._shapes()[1] if rect.adjusted(-3, -3, 3, 3).contains(pos)]
        return min(hits, key=lambda h: h[0].width())[1].id if hits else None

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        target_id = self.target_at(mouse_pos(event))
        if target_id is not None:
            self.target_clicked.emit(target_id)
