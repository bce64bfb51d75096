"""What a take looks like: the contact sheet, and its window frame by frame.

:class:`PreviewView` shows the contact sheet; :class:`FrameScrubber` steps
through the window's frames, each drawn by a :class:`FrameView` (a fill before
and after), with a :class:`RoleStrip` of the frames' roles under it.
"""
from __future__ import annotations

import html

from ..protocol import PreviewFrame, PreviewRole
from ..qt import QtCore, QtGui, QtWidgets, Signal, mouse_pos
from .palette import CLIP, FILL, GENERATED, OFFLINE

_ROLE_COLOURS = {PreviewRole.KNOWN: CLIP, PreviewRole.GENERATE: GENERATED, PreviewRole.FILL: FILL}
_ROLE_TEXT = {PreviewRole.KNOWN: "known: the plate, context for the engine",
              PreviewRole.GENERATE: "generated",
              PreviewRole.FILL: "fill: the plate before, the result after"}


class PreviewView(QtWidgets.QScrollArea):
    """The contact sheet at the height of the view, scrolled sideways across the seam.

    A sheet is one row of thumbnails (known frames, then the generated ones
    outlined, then known again), so it is shown as tall as the view allows
    (never more than twice its size) and scrolls horizontally.
    """

    MAX_SCALE = 2.0

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._pixmap: QtGui.QPixmap | None = None
        self._label = QtWidgets.QLabel()
        self._label.setAlignment(QtCore.Qt.AlignCenter)
        self._label.setWordWrap(True)
        self.setWidget(self._label)
        self.setAlignment(QtCore.Qt.AlignCenter)
        self.setMinimumSize(240, 120)
        self.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)

    def pixmap(self) -> QtGui.QPixmap | None:
        """The picture shown, at its own size (None: a placeholder text is shown)."""
        return self._pixmap

    def show_image(self, path: str | None, placeholder: str) -> None:
        pixmap = QtGui.QPixmap(path) if path else None
        self._pixmap = pixmap if pixmap is not None and not pixmap.isNull() else None
        if self._pixmap is None:
            self._label.setPixmap(QtGui.QPixmap())
            self._label.setText(placeholder)
        self._rescale()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        view = self.viewport().size()
        if self._pixmap is None:
            self.setWidgetResizable(True)
            return
        self.setWidgetResizable(False)
        height = view.height()
        if self._pixmap.width() * height / self._pixmap.height() > view.width():
            height -= self.horizontalScrollBar().sizeHint().height()   # room for the scroll bar
        scale = min(self.MAX_SCALE, max(1, height) / self._pixmap.height())
        shown = self._pixmap.scaledToHeight(max(1, int(self._pixmap.height() * scale)),
                                            QtCore.Qt.SmoothTransformation)
        self._label.setPixmap(shown)
        self._label.resize(shown.size())


class FrameView(QtWidgets.QWidget):
    """One frame of the window, as large as the view allows.

    A generated frame is outlined as on the contact sheet; a filled frame shows
    the plate before and the result after, side by side, the result outlined.
    """

    GAP = 12
    OUTLINE = 3
    #: small previews are enlarged at most this much
    MAX_SCALE = 4.0

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._pictures: list[tuple[str, QtGui.QPixmap | None, str, bool]] = []
        self.placeholder = ""
        self.setMinimumSize(160, 90)
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Expanding)

    def show_frame(self, frame: PreviewFrame | None, placeholder: str = "") -> None:
        self.placeholder = placeholder
        self._pictures = []
        if frame is not None:
            shown = [("before", frame.before, False), ("after", frame.after, True)] \
                if frame.role is PreviewRole.FILL else [("", frame.after, frame.is_new)]
            for caption, path, outlined in shown:
                pixmap = QtGui.QPixmap(path) if path else QtGui.QPixmap()
                self._pictures.append((caption, None if pixmap.isNull() else pixmap, path or "", outlined))
        self.update()

    def pictures(self) -> list[tuple[str, QtGui.QPixmap | None]]:
        """``(caption, picture)`` as shown (None: the file could not be read)."""
        return [(caption, pixmap) for caption, pixmap, _, _ in self._pictures]

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QtGui.QPainter(self)
        painter.fillRect(self.rect(), self.palette().color(QtGui.QPalette.Base))
        if not self._pictures:
            painter.setPen(self.palette().color(QtGui.QPalette.PlaceholderText))
            painter.drawText(self.rect().adjusted(8, 8, -8, -8), QtCore.Qt.AlignCenter | QtCore.Qt.TextWordWrap,
                             self.placeholder)
            return
        painter.setRenderHint(QtGui.QPainter.SmoothPixmapTransform)
        count = len(self._pictures)
        caption_h = painter.fontMetrics().height() + 4 if count > 1 else 0
        margin = self.OUTLINE + 2
        cell_w = (self.width() - 2 * margin - self.GAP * (count - 1)) / count
        cell_h = self.height() - 2 * margin - caption_h
        for i, (caption, pixmap, path, outlined) in enumerate(self._pictures):
            cell = QtCore.QRectF(margin + i * (cell_w + self.GAP), margin + caption_h, cell_w, cell_h)
            painter.setPen(self.palette().color(QtGui.QPalette.Text))
            painter.drawText(QtCore.QRectF(cell.left(), margin, cell_w, caption_h), QtCore.Qt.AlignCenter, caption)
            if pixmap is None:
                painter.setPen(OFFLINE.lighter(160))
                painter.drawText(cell, QtCore.Qt.AlignCenter | QtCore.Qt.TextWordWrap, f"cannot read {path}")
                continue
            scale = min(self.MAX_SCALE, cell.width() / pixmap.width(), cell.height() / pixmap.height())
            size = QtCore.QSizeF(pixmap.width() * scale, pixmap.height() * scale)
            target = QtCore.QRectF(QtCore.QPointF(cell.center().x() - size.width() / 2,
                                                  cell.top() + (cell.height() - size.height()) / 2), size)
            painter.drawPixmap(target, pixmap, QtCore.QRectF(pixmap.rect()))
            if outlined:
                painter.setPen(QtGui.QPen(GENERATED, self.OUTLINE, QtCore.Qt.SolidLine, QtCore.Qt.SquareCap,
                                          QtCore.Qt.MiterJoin))
                painter.setBrush(QtCore.Qt.NoBrush)
                half = self.OUTLINE / 2
                painter.drawRect(target.adjusted(-half, -half, half, half))


class RoleStrip(QtWidgets.QWidget):
    """One cell per frame of the window, coloured by role (known grey, generated orange,
    fill violet), the frame shown outlined: where the seam is at a glance. A click picks a frame."""

    position_clicked = Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._roles: list[PreviewRole] = []
        self._position = 0
        self.setFixedHeight(14)
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)

    def set_roles(self, roles: list[PreviewRole], position: int) -> None:
        self._roles, self._position = roles, position
        self.update()

    def _cell(self, index: int) -> QtCore.QRectF:
        width = self.width() / max(1, len(self._roles))
        return QtCore.QRectF(index * width, 0, width, self.height())

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QtGui.QPainter(self)
        for i, role in enumerate(self._roles):
            painter.fillRect(self._cell(i).adjusted(0.5, 2, -0.5, -2), _ROLE_COLOURS[role])
        if self._roles:
            painter.setPen(QtGui.QPen(QtGui.QColor(240, 240, 240), 2))
            painter.drawRect(self._cell(self._position).adjusted(1, 1, -1, -1))

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self._roles:
            index = int(mouse_pos(event).x() / self._cell(0).width())
            self.position_clicked.emit(min(max(0, index), len(self._roles) - 1))


class FrameScrubber(QtWidgets.QWidget):
    """Scrub a take's window frame by frame: the picture, a strip of roles, a slider and the
    frame's label. Left and Right step (Home and End jump) while it has the focus; it asks
    for a frame through ``position_requested`` and shows what the state then says."""

    position_requested = Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._count = 0
        self._position = 0
        self.view = FrameView()
        self.roles = RoleStrip()
        self.slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.slider.setPageStep(1)
        self.caption = QtWidgets.QLabel()
        self.caption.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.roles)
        layout.addWidget(self.slider)
        layout.addWidget(self.caption)
        self.setFocusPolicy(QtCore.Qt.StrongFocus)
        self.slider.valueChanged.connect(self.position_requested)
        self.roles.position_clicked.connect(self.position_requested)

    def show_frames(self, frames: tuple[PreviewFrame, ...], position: int, placeholder: str) -> None:
        self._count, self._position = len(frames), position
        frame = frames[position] if frames else None
        with QtCore.QSignalBlocker(self.slider):
            self.slider.setRange(0, max(0, len(frames) - 1))
            self.slider.setValue(position)
        self.slider.setEnabled(bool(frames))
        self.roles.set_roles([f.role for f in frames], position)
        self.view.show_frame(frame, placeholder)
        if frame is None:
            self.caption.setText("")
        else:
            self.caption.setText(f"<b>{html.escape(frame.label)}</b> &nbsp; {_ROLE_TEXT[frame.role]}"
                                 f" &nbsp; <span style='color:#909090'>{position + 1} / {len(frames)}</span>")

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        steps = {QtCore.Qt.Key_Left: self._position - 1, QtCore.Qt.Key_Right: self._position + 1,
                 QtCore.Qt.Key_Home: 0, QtCore.Qt.Key_End: self._count - 1}
        if self._count and event.key() in steps:
            self.position_requested.emit(min(max(0, steps[event.key()]), self._count - 1))
        else:
            super().keyPressEvent(event)
