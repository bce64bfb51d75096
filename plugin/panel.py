"""The shotfill panel: pick a target, set it up, generate takes, compare them, apply one.

The widgets here only render :class:`~shotfill_plugin.state.PanelState`. The
user's actions go through :class:`ShotfillPanel`'s methods (``load_edit``,
``generate``, ``cancel``, ``apply_take``), which ask the host, the job client
or the state to act; the state then signals and the widgets redraw.

Layout (side by side; a dock narrower than :attr:`ShotfillPanel.NARROW` stacks
the two columns and scrolls)::

    [Open edit...]  sample_edit.otio - shotfill sample edit
    status line
    +- timeline strip -------------------+  +- [Frames] [Contact sheet] ---+
    | targets table                      |  | the frame, before | after    |
    | settings form                      |  | roles, slider, label         |
    |                                    |  +- takes ------------[Apply]---+
    | [Generate] [Cancel]                |  |                              |
    | overall progress, ETA, stage bars  |  +- log ------------------------+
    +------------------------------------+  +------------------------------+
"""
from __future__ import annotations

import html

from . import client as client_mod
from . import paths
from .client import JobClient, JobFinished, PreviewFrame, PreviewRole
from .hosts.base import Host, HostError
from .hosts.standalone import HandOffHost, StandaloneHost
from .qt import QtCore, QtGui, QtWidgets, Signal, mouse_pos
from .state import (COLOURSPACES, COMPRESSIONS, MAX_TAKES, STAGES, WRITE_MODES, LogEntry, LogLevel,
                    Operation, PanelState, SettingsStore, Status, Take, TakeStatus, Target)

#: colours of the strip and status line (RGB)
_CLIP = QtGui.QColor(88, 98, 112)
_GAP = QtGui.QColor(230, 150, 40)
_FILL = QtGui.QColor(120, 90, 170)
_ACCENT = QtGui.QColor(70, 160, 255)
_OFFLINE = QtGui.QColor(150, 60, 60)
#: outline of generated pictures: the contact sheet's (``shotfill.contact.GENERATED_COLOUR``)
_GENERATED = QtGui.QColor(255, 150, 0)
_ROLE_COLOURS = {PreviewRole.KNOWN: _CLIP, PreviewRole.GENERATE: _GENERATED, PreviewRole.FILL: _FILL}
_ROLE_TEXT = {PreviewRole.KNOWN: "known: the plate, context for the engine",
              PreviewRole.GENERATE: "generated",
              PreviewRole.FILL: "fill: the plate before, the result after"}
_STATUS_COLOURS = {Status.EMPTY: "#3a3a3a", Status.LOADED: "#34404c", Status.RUNNING: "#1f4f7a",
                   Status.DONE: "#2d5e34", Status.CANCELLED: "#6a5420", Status.ERROR: "#7a2626"}
_WRITE_MODE_LABELS = {"track": "on a new track", "replace": "in place of the gap"}
_LOG_COLOURS = {LogLevel.INFO: None, LogLevel.DETAIL: "#8a8a8a", LogLevel.WARNING: "#e0a040",
                LogLevel.ERROR: "#ff6b6b"}


# ---------------------------------------------------------------------------
# small widgets
# ---------------------------------------------------------------------------
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
            painter.fillRect(body, _CLIP if ready else _OFFLINE)
            painter.setPen(QtGui.QColor(235, 235, 235))
            text_box = body.adjusted(self.ARROW + 6, 0, -self.ARROW - 6, 0)
            painter.drawText(text_box, QtCore.Qt.AlignVCenter | QtCore.Qt.AlignLeft,
                             painter.fontMetrics().elidedText(label, QtCore.Qt.ElideRight, int(text_box.width())))
        for rect, t in areas:
            selected = t.id == self._selected
            if t.operation is Operation.BRIDGE:
                painter.fillRect(rect, _GAP.darker(140))
                painter.setBrush(QtCore.Qt.NoBrush)
                painter.setPen(QtGui.QPen(_GAP, 1, QtCore.Qt.DashLine))
                painter.drawRect(rect.adjusted(0.5, 0.5, -0.5, -0.5))
                painter.setPen(QtGui.QColor(255, 230, 200))
                painter.drawText(rect, QtCore.Qt.AlignCenter, str(t.frames))
            elif t.operation is Operation.FILL:
                painter.fillRect(rect.adjusted(0, rect.height() - 5, 0, 0), _FILL)
            else:
                painter.setBrush(_ACCENT if selected else QtGui.QColor(200, 200, 200))
                painter.setPen(QtCore.Qt.NoPen)
                painter.drawPolygon(self._arrow(rect, t.operation is Operation.EXTEND_FORWARD))
            if selected:
                painter.setBrush(QtCore.Qt.NoBrush)
                painter.setPen(QtGui.QPen(_ACCENT, 2))
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
                painter.setPen(_OFFLINE.lighter(160))
                painter.drawText(cell, QtCore.Qt.AlignCenter | QtCore.Qt.TextWordWrap, f"cannot read {path}")
                continue
            scale = min(self.MAX_SCALE, cell.width() / pixmap.width(), cell.height() / pixmap.height())
            size = QtCore.QSizeF(pixmap.width() * scale, pixmap.height() * scale)
            target = QtCore.QRectF(QtCore.QPointF(cell.center().x() - size.width() / 2,
                                                  cell.top() + (cell.height() - size.height()) / 2), size)
            painter.drawPixmap(target, pixmap, QtCore.QRectF(pixmap.rect()))
            if outlined:
                painter.setPen(QtGui.QPen(_GENERATED, self.OUTLINE, QtCore.Qt.SolidLine, QtCore.Qt.SquareCap,
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


# ---------------------------------------------------------------------------
# the panel
# ---------------------------------------------------------------------------
class ShotfillPanel(QtWidgets.QWidget):
    """The whole panel, for any :class:`Host`."""

    #: a take was placed in the host: what the host made of it
    applied = Signal(str)
    #: narrower than this (pixels), the two columns stack
    NARROW = 900

    def __init__(self, host: Host, *, store: SettingsStore | None = None,
                 command: list[str] | None = None, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.host = host
        self.store = store or SettingsStore()
        self.command = command
        settings, problems = self.store.load()
        self.state = PanelState(settings, self)
        self.client = JobClient(command, self)
        self._running: Take | None = None
        self.setWindowTitle("shotfill")
        self._build()
        self._connect()
        for p in problems:
            self.state.log(LogLevel.WARNING, p)
        self._load_engines()
        self._render_all()

    # -- building ---------------------------------------------------------------
    def _build(self) -> None:
        self.open_button = QtWidgets.QPushButton()
        self.open_button.setVisible(not isinstance(self.host, HandOffHost))
        self.open_button.setText("Open edit..." if isinstance(self.host, StandaloneHost)
                                 else f"Load selection from {self.host.name}")
        self.source_label = QtWidgets.QLabel()
        self.source_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.status_label = QtWidgets.QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setMargin(6)
        self.status_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)

        self.strip = TimelineStrip()
        self.table = QtWidgets.QTreeWidget()
        self.table.setRootIsDecorated(False)
        self.table.setAlternatingRowColors(True)
        self.table.setHeaderLabels(["Target", "Operation", "Record", "Frames", "Clips"])
        self.table.setMinimumHeight(120)

        # settings
        self.operation_box = QtWidgets.QComboBox()
        self.operation_box.addItem("All targets", "all")
        for op in Operation:
            self.operation_box.addItem(op.label, op.value)
        self.frames_spin = QtWidgets.QSpinBox()
        self.frames_spin.setRange(1, 100000)
        self.engine_box = QtWidgets.QComboBox()
        self.engine_box.setEditable(True)
        self.model_edit = QtWidgets.QLineEdit()
        self.model_edit.setPlaceholderText("the model the engine ships with")
        self.model_edit.setToolTip("A folder with the engine's model (for example a fine-tuned "
                                   "checkpoint); empty: the engine's own. Engines without a model refuse it.")
        self.model_browse = QtWidgets.QToolButton()
        self.model_browse.setText("...")
        self.seed_spin = QtWidgets.QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.takes_spin = QtWidgets.QSpinBox()
        self.takes_spin.setRange(1, MAX_TAKES)
        self.takes_spin.setToolTip("takes per Generate, each with the next seed")
        self.steps_spin = QtWidgets.QSpinBox()
        self.steps_spin.setRange(0, 10000)
        self.steps_spin.setSpecialValueText("engine default")
        self.prompt_edit = QtWidgets.QLineEdit()
        self.prompt_edit.setPlaceholderText("for engines with text conditioning")
        self.output_edit = QtWidgets.QLineEdit()
        self.output_browse = QtWidgets.QToolButton()
        self.output_browse.setText("...")
        self.colour_box = QtWidgets.QComboBox()
        self.colour_box.setEditable(True)
        for name in COLOURSPACES:
            self.colour_box.addItem(name or "(the source's own)", name)
        self.compression_box = QtWidgets.QComboBox()
        self.compression_box.addItems(list(COMPRESSIONS))
        self.write_mode_box = QtWidgets.QComboBox()
        for mode in WRITE_MODES:
            self.write_mode_box.addItem(_WRITE_MODE_LABELS[mode], mode)

        output_row = QtWidgets.QHBoxLayout()
        output_row.addWidget(self.output_edit, 1)
        output_row.addWidget(self.output_browse)
        model_row = QtWidgets.QHBoxLayout()
        model_row.addWidget(self.model_edit, 1)
        model_row.addWidget(self.model_browse)
        form = QtWidgets.QGridLayout()
        form.setColumnStretch(1, 1)
        form.setColumnStretch(3, 1)
        pairs = [(("Show", self.operation_box), ("Frames to add", self.frames_spin)),
                 (("Engine", self.engine_box), ("Steps", self.steps_spin)),
                 (("Model", model_row),),
                 (("Seed", self.seed_spin), ("Takes", self.takes_spin)),
                 (("Prompt", self.prompt_edit),),
                 (("Output folder", output_row),),
                 (("Colour space", self.colour_box), ("Compression", self.compression_box)),
                 (("Edit write-back", self.write_mode_box),)]
        for row, cells in enumerate(pairs):
            for col, (label, field) in enumerate(cells):
                form.addWidget(QtWidgets.QLabel(label), row, col * 2)
                span = 3 if len(cells) == 1 else 1
                if isinstance(field, QtWidgets.QLayout):
                    form.addLayout(field, row, col * 2 + 1, 1, span)
                else:
                    form.addWidget(field, row, col * 2 + 1, 1, span)
        settings_box = QtWidgets.QGroupBox("Settings")
        settings_box.setLayout(form)

        self.generate_button = QtWidgets.QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.cancel_button)
        self.stages = StageBars()

        left = QtWidgets.QWidget()
        left_layout = QtWidgets.QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 4, 0)
        left_layout.addWidget(self.strip)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(settings_box)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.stages)

        # preview, takes, log
        self.preview_title = QtWidgets.QLabel()
        self.scrubber = FrameScrubber()
        self.preview = PreviewView()
        self.preview_tabs = QtWidgets.QTabWidget()
        self.preview_tabs.setDocumentMode(True)
        self.preview_tabs.addTab(self.scrubber, "Frames")
        self.preview_tabs.addTab(self.preview, "Contact sheet")
        self.preview_tabs.setTabToolTip(0, "Every frame of the window, one at a time: drag the slider "
                                           "or use Left and Right; fills show before and after")
        self.preview_tabs.setTabToolTip(1, "The known frames next to the generated ones (outlined); "
                                           "scroll across the seam")
        self.takes_list = QtWidgets.QListWidget()
        self.takes_list.setIconSize(QtCore.QSize(144, 40))
        self.takes_list.setMinimumHeight(90)
        self.apply_button = QtWidgets.QPushButton("Apply take")
        self.log_view = QtWidgets.QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.FixedFont))

        preview_box = QtWidgets.QGroupBox("Around the seam")
        preview_layout = QtWidgets.QVBoxLayout(preview_box)
        preview_layout.addWidget(self.preview_title)
        preview_layout.addWidget(self.preview_tabs, 1)
        takes_box = QtWidgets.QGroupBox("Takes")
        takes_layout = QtWidgets.QVBoxLayout(takes_box)
        takes_layout.addWidget(self.takes_list, 1)
        takes_layout.addWidget(self.apply_button)
        log_box = QtWidgets.QGroupBox("Log")
        log_layout = QtWidgets.QVBoxLayout(log_box)
        log_layout.addWidget(self.log_view)
        right = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        right.addWidget(preview_box)
        right.addWidget(takes_box)
        right.addWidget(log_box)
        right.setStretchFactor(0, 4)
        right.setStretchFactor(1, 2)
        right.setStretchFactor(2, 2)

        self.columns = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
        self.columns.setChildrenCollapsible(False)
        self.columns.addWidget(left)
        self.columns.addWidget(right)
        self.columns.setStretchFactor(0, 3)
        self.columns.setStretchFactor(1, 2)
        scroll = QtWidgets.QScrollArea()         # a narrow dock stacks the columns and scrolls
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.NoFrame)
        scroll.setWidget(self.columns)

        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.source_label, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status_label)
        layout.addWidget(scroll, 1)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Side by side when there is room, one above the other in a narrow dock."""
        super().resizeEvent(event)
        orientation = QtCore.Qt.Vertical if self.width() < self.NARROW else QtCore.Qt.Horizontal
        if self.columns.orientation() != orientation:
            self.columns.setOrientation(orientation)

    def _connect(self) -> None:
        s = self.state
        s.targets_changed.connect(self._render_targets)
        s.selection_changed.connect(self._render_selection)
        s.settings_changed.connect(self._on_settings_changed)
        s.status_changed.connect(self._render_status)
        s.status_changed.connect(lambda: self.stages.show_progress(self.state))
        s.progress_changed.connect(lambda: self.stages.show_progress(self.state))
        s.takes_changed.connect(self._render_takes)
        s.preview_changed.connect(self._render_scrubber)
        s.log_added.connect(self._append_log)
        self.client.event.connect(self._on_worker_event)

        self.open_button.clicked.connect(self._open_clicked)
        self.strip.target_clicked.connect(s.select_target)
        self.table.currentItemChanged.connect(self._table_row_changed)
        self.takes_list.currentRowChanged.connect(lambda row: s.select_take(row if row >= 0 else None))
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.apply_button.clicked.connect(self.apply_take)
        self.output_browse.clicked.connect(self._browse_output)
        self.model_browse.clicked.connect(self._browse_model)
        self.scrubber.position_requested.connect(s.scrub_to)

        self.operation_box.activated.connect(
            lambda i: s.update_settings(operation=self.operation_box.itemData(i)))
        self.frames_spin.valueChanged.connect(lambda v: s.update_settings(frames=v))
        self.engine_box.activated.connect(lambda i: s.update_settings(engine=self.engine_box.itemText(i)))
        self.engine_box.lineEdit().editingFinished.connect(
            lambda: s.update_settings(engine=self.engine_box.currentText().strip()))
        self.model_edit.editingFinished.connect(lambda: s.update_settings(model=self.model_edit.text().strip()))
        self.seed_spin.valueChanged.connect(lambda v: s.update_settings(seed=v))
        self.takes_spin.valueChanged.connect(lambda v: s.update_settings(takes=v))
        self.steps_spin.valueChanged.connect(lambda v: s.update_settings(steps=v))
        self.prompt_edit.editingFinished.connect(lambda: s.update_settings(prompt=self.prompt_edit.text()))
        self.output_edit.editingFinished.connect(
            lambda: s.update_settings(output_dir=self.output_edit.text().strip()))
        self.colour_box.activated.connect(lambda i: s.update_settings(colourspace=self.colour_box.itemData(i)))
        self.colour_box.lineEdit().editingFinished.connect(self._colour_typed)
        self.compression_box.activated.connect(
            lambda i: s.update_settings(compression=self.compression_box.itemText(i)))
        self.write_mode_box.activated.connect(
            lambda i: s.update_settings(write_mode=self.write_mode_box.itemData(i)))

    def _load_engines(self) -> None:
        try:
            rows = client_mod.engines(self.command)
        except client_mod.ClientError as e:
            self.state.log(LogLevel.ERROR, f"cannot list the engines: {e}")
            rows = []
        with QtCore.QSignalBlocker(self.engine_box):
            for name, description in rows:
                self.engine_box.addItem(name)
                self.engine_box.setItemData(self.engine_box.count() - 1, description, QtCore.Qt.ToolTipRole)

    # -- user actions -----------------------------------------------------------
    def load_edit(self, path: str) -> bool:
        """Read an edit's targets (``shotfill plan --json``); False (and an error shown) if it fails."""
        if self.client.is_running():
            self.state.fail("a take is running: cancel it or let it finish before opening another edit")
            return False
        try:
            plan = client_mod.plan(path, command=self.command)
            self.state.load_plan(plan)
        except (client_mod.ClientError, ValueError) as e:
            self.state.fail(f"cannot open {path}: {e}")
            return False
        if isinstance(self.host, StandaloneHost):
            self.host.open(plan["edit"])
        return True

    def load_from_host(self) -> bool:
        """The host's edit, else its selected media, as targets."""
        if self.client.is_running():
            self.state.fail("a take is running: cancel it or let it finish before loading again")
            return False
        try:   # a host with a timeline exports it there first
            edit = self.host.current_edit(str(paths.user_data_dir() / "edits"))
            if edit is not None:
                return self.load_edit(edit)
            self.state.load_media(self.host.current_media(), self.host.name)
        except (HostError, OSError) as e:
            self.state.fail(str(e))
            return False
        return self.state.status is not Status.ERROR

    def generate(self) -> None:
        """Queue the takes for the selected target and start the first."""
        try:
            self.state.queue_takes()
        except ValueError as e:
            self.state.fail(f"cannot generate: {e}")
            return
        self._start_next()

    def cancel(self) -> None:
        """Stop the running take (it resumes if run again) and drop the queued ones."""
        self.state.cancel_queued()
        if self.client.is_running():
            self.state.log(LogLevel.WARNING, "cancelling: the worker stops at its next frame")
            self.client.cancel()

    def apply_take(self) -> None:
        """Place the selected take in the host, as one undoable change."""
        take = self.state.take
        if take is None or take.status is not TakeStatus.DONE or take.result is None:
            self.state.fail("pick a finished take to apply")
            return
        try:
            with self.host.preserved():
                message = self.host.import_result(take.generated())
        except HostError as e:
            self.state.fail(f"cannot apply {take.title}: {e}")
            return
        self.state.mark_applied(take, message)
        self.applied.emit(message)

    def _open_clicked(self) -> None:
        if isinstance(self.host, StandaloneHost):
            path, _ = QtWidgets.QFileDialog.getOpenFileName(
                self, "Open an edit", self.state.source,
                "Edits (*.otio *.otioz *.edl *.xml *.fcpxml *.aaf *.ale);;All files (*)")
            if path:
                self.load_edit(path)
        else:
            self.load_from_host()

    def _table_row_changed(self, item, _previous) -> None:
        if item is not None:
            self.state.select_target(item.data(0, QtCore.Qt.UserRole))

    def _browse_output(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Output folder", str(self.state.output_root()))
        if folder:
            self.state.update_settings(output_dir=folder)

    def _browse_model(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Model folder", self.state.settings.model)
        if folder:
            self.state.update_settings(model=folder)

    def _colour_typed(self) -> None:
        text = self.colour_box.currentText().strip()
        index = self.colour_box.findText(text)
        value = self.colour_box.itemData(index) if index >= 0 else text
        self.state.update_settings(colourspace=value)

    # -- the worker ---------------------------------------------------------------
    def _start_next(self) -> None:
        queued = self.state.queued_takes()
        if not queued:
            return
        take = self._running = queued[0]
        self.state.start_take(take)
        self.client.start(take.job, take.job_path)

    def _on_worker_event(self, event) -> None:
        take = self._running
        self.state.apply_event(take, event)
        if isinstance(event, JobFinished):
            self._running = None
            self._start_next()
            self._render_buttons()

    # -- rendering ------------------------------------------------------------------
    def _render_all(self) -> None:
        self._render_settings()
        self._render_targets()
        self._render_status()
        self.stages.show_progress(self.state)
        self._render_takes()

    def _render_targets(self) -> None:
        s = self.state
        visible = s.visible_targets()
        self.strip.empty_text = "no targets in this edit" if s.source else "no edit loaded"
        with QtCore.QSignalBlocker(self.table):
            self.table.clear()
            for t in visible:
                frames = f"+{s.settings.frames}" if t.operation.user_sets_length else str(t.frames)
                clips = t.clips + ("" if t.ready else "  (offline)")
                item = QtWidgets.QTreeWidgetItem([t.id, t.operation.label, t.record_range_text(), frames, clips])
                item.setData(0, QtCore.Qt.UserRole, t.id)
                if t.operation.user_sets_length:
                    item.setToolTip(3, "you choose: Frames to add")
                if not t.ready:
                    for col in range(5):
                        item.setForeground(col, QtGui.QBrush(QtGui.QColor(200, 90, 90)))
                self.table.addTopLevelItem(item)
            for col in range(4):
                self.table.resizeColumnToContents(col)
        self.source_label.setText(f"<b>{html.escape(s.source_name)}</b>  {html.escape(s.source)}"
                                  if s.source else "<i>nothing loaded</i>")
        self._render_selection()

    def _render_selection(self) -> None:
        s = self.state
        self.strip.set_targets(s.targets, s.selected_id)
        with QtCore.QSignalBlocker(self.table):
            for i in range(self.table.topLevelItemCount()):
                item = self.table.topLevelItem(i)
                if item.data(0, QtCore.Qt.UserRole) == s.selected_id:
                    self.table.setCurrentItem(item)
        target = s.target
        self.frames_spin.setEnabled(target is not None and target.operation.user_sets_length)
        self.write_mode_box.setEnabled(target is not None and target.edit is not None)
        self._render_buttons()

    def _on_settings_changed(self) -> None:
        self.store.save(self.state.settings)
        self._render_settings()
        self._render_targets()

    def _render_settings(self) -> None:
        st = self.state.settings
        widgets = (self.operation_box, self.frames_spin, self.engine_box, self.model_edit, self.seed_spin,
                   self.takes_spin, self.steps_spin, self.prompt_edit, self.output_edit, self.colour_box,
                   self.compression_box, self.write_mode_box)
        blockers = [QtCore.QSignalBlocker(w) for w in widgets]
        self.operation_box.setCurrentIndex(max(0, self.operation_box.findData(st.operation)))
        self.frames_spin.setValue(st.frames)
        if self.engine_box.findText(st.engine) < 0:
            self.engine_box.addItem(st.engine)
        self.engine_box.setCurrentIndex(self.engine_box.findText(st.engine))
        self.model_edit.setText(st.model)
        self.seed_spin.setValue(st.seed)
        self.takes_spin.setValue(st.takes)
        self.steps_spin.setValue(st.steps)
        self.prompt_edit.setText(st.prompt)
        self.output_edit.setText(st.output_dir)
        self.output_edit.setPlaceholderText(str(self.state.output_root()) if self.state.source
                                            else "a shotfill folder next to the edit")
        if self.colour_box.findData(st.colourspace) < 0:
            self.colour_box.addItem(st.colourspace, st.colourspace)
        self.colour_box.setCurrentIndex(self.colour_box.findData(st.colourspace))
        self.compression_box.setCurrentText(st.compression)
        self.write_mode_box.setCurrentIndex(self.write_mode_box.findData(st.write_mode))
        del blockers

    def _render_status(self) -> None:
        s = self.state
        colour = _STATUS_COLOURS[s.status]
        self.status_label.setStyleSheet(f"background: {colour}; color: #f0f0f0; border-radius: 3px;")
        title = {Status.EMPTY: "", Status.LOADED: "Ready", Status.RUNNING: "Running",
                 Status.DONE: "Done", Status.CANCELLED: "Cancelled", Status.ERROR: "Error"}[s.status]
        self.status_label.setText(f"<b>{title}</b>{': ' if title else ''}{html.escape(s.status_message)}")
        self._render_buttons()

    def _render_buttons(self) -> None:
        ok, why = self.state.can_generate()
        self.generate_button.setEnabled(ok)
        self.generate_button.setToolTip("" if ok else f"Cannot generate: {why}")
        self.cancel_button.setEnabled(self.client.is_running() or bool(self.state.queued_takes()))
        take = self.state.take
        self.apply_button.setEnabled(take is not None and take.status is TakeStatus.DONE
                                     and take.result is not None and not self.client.is_running())

    def _render_takes(self) -> None:
        s = self.state
        with QtCore.QSignalBlocker(self.takes_list):
            self.takes_list.clear()
            for take in s.takes:
                item = QtWidgets.QListWidgetItem(f"{take.title}\n{take.summary()}")
                if take.contact_sheet:
                    item.setIcon(QtGui.QIcon(take.contact_sheet))
                if take.message and take.status is not TakeStatus.DONE:
                    item.setToolTip(take.message)
                self.takes_list.addItem(item)
            self.takes_list.setCurrentRow(-1 if s.selected_take is None else s.selected_take)
        take = s.take
        if take is None:
            self.preview_title.setText("")
            self.preview.show_image(None, "Generate a take: the frames around the seam show here, "
                                          "the known ones beside the generated ones.")
        else:
            self.preview_title.setText(f"<b>{html.escape(take.title)}</b>  {html.escape(take.summary())}")
            self.preview.show_image(take.contact_sheet, take.message or "no preview yet")
        self._render_scrubber()
        self._render_buttons()

    def _render_scrubber(self) -> None:
        take = self.state.take
        if take is None:
            self.scrubber.show_frames((), 0, "Generate a take: its frames show here one at a time, "
                                             "the generated ones outlined, fills before and after.")
        elif take.status is TakeStatus.DONE:
            self.scrubber.show_frames(take.preview_frames, take.preview_position,
                                      "this take has no frame pictures: see its contact sheet")
        else:
            self.scrubber.show_frames(take.preview_frames, take.preview_position,
                                      take.message or "the frames show here when the take is done")

    def _append_log(self, entry: LogEntry) -> None:
        bar = self.log_view.verticalScrollBar()
        following = bar.value() >= bar.maximum() - 4     # the reader is at the end: stay there
        colour = _LOG_COLOURS[entry.level]
        text = html.escape(entry.line())
        self.log_view.appendHtml(f'<span style="color:{colour}">{text}</span>' if colour else text)
        if following:
            self.log_view.moveCursor(QtGui.QTextCursor.End)
            self.log_view.ensureCursorVisible()


def _seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
