"""The timeline strip: the edit's tracks, every clip, gap and transition, with the targets on top;
a click picks a target."""
from __future__ import annotations

from ..qt import QtCore, QtGui, QtWidgets, Signal, mouse_pos
from ..state import EditTrack, Operation, Target, TrackItem
from .palette import ACCENT, CLIP, FILL, GAP, OFFLINE, RESULT, TRANSITION


class TimelineStrip(QtWidgets.QWidget):
    """The edit as an editor's timeline: one row per video track, the highest on top.

    Every clip is a grey block (red when its media is offline, green when shotfill placed
    it), every gap a dark slot, every transition a hatched band across the cut. Targets sit
    on top: a bridge fills its gap (orange where frames are generated, the clips' colour
    where their handles are real frames), a head or tail extension is an arrow inside the
    clip's edge, a fill a violet band under the clip. The selected target is outlined.
    Track and clip names are elided to fit; the tooltip of each carries the full name.

    With no track listing (host media, or an engine whose ``plan --json`` has none) the
    rows are the targets' tracks and the clips the targets' own.
    """

    target_clicked = Signal(str)

    ROW = 26
    ARROW = 12
    MARGIN = 8
    GUTTER = 120         # track names, left of the rows

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._targets: list[Target] = []
        self._tracks: list[EditTrack] = []
        self._selected: str | None = None
        self.empty_text = "no edit loaded"
        self.setMouseTracking(True)
        self.setMinimumHeight(self.ROW + 26)
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)

    def set_edit(self, tracks: list[EditTrack], targets: list[Target], selected: str | None) -> None:
        """Show ``tracks`` (every item) and ``targets`` on them; ``selected`` is outlined."""
        self._tracks, self._targets, self._selected = list(tracks), list(targets), selected
        rows = len(self._rows()) or 1
        self.setFixedHeight(self.MARGIN * 2 + rows * (self.ROW + 4) + 16)
        self.update()

    def set_targets(self, targets: list[Target], selected: str | None) -> None:
        """Targets only (no track listing): the rows are the targets' tracks."""
        self.set_edit([], targets, selected)

    # -- geometry ----------------------------------------------------------------
    def _shown(self) -> bool:
        return bool(self._targets or any(t.items for t in self._tracks))

    def _rows(self) -> dict[int, int]:
        """Track index -> row, the highest track on top as in an editor's timeline."""
        indices = {t.index for t in self._tracks} | {t.track_index for t in self._targets}
        return {idx: i for i, idx in enumerate(sorted(indices, reverse=True))}

    def _span(self) -> tuple[int, int]:
        firsts = [i.record_first for t in self._tracks for i in t.items] + [t.record_first for t in self._targets]
        lasts = [i.record_last for t in self._tracks for i in t.items] + [t.record_last for t in self._targets]
        return min(firsts), max(lasts)

    def _x(self, frame: float) -> float:
        first, last = self._span()
        scale = (self.width() - self.GUTTER - 2 * self.MARGIN) / max(1, last - first + 1)
        return self.GUTTER + self.MARGIN + (frame - first) * scale

    def _row_top(self, track_index: int) -> float:
        return self.MARGIN + self._rows()[track_index] * (self.ROW + 4)

    def _box(self, track_index: int, first: int, last: int) -> QtCore.QRectF:
        left, right = self._x(first), self._x(last + 1)
        return QtCore.QRectF(left, self._row_top(track_index), max(2.0, right - left), self.ROW)

    def track_titles(self) -> list[tuple[QtCore.QRectF, str]]:
        """Each row's name box and the track's full name, top row first."""
        names = {t.index: t.title for t in self._tracks}
        for t in self._targets:     # the track's name, or the label the target ids use ("V2")
            names.setdefault(t.track_index, t.track_name or t.id.split(".")[0])
        rows = sorted(self._rows().items(), key=lambda kv: kv[1])
        return [(QtCore.QRectF(self.MARGIN, self.MARGIN + row * (self.ROW + 4), self.GUTTER - 6, self.ROW),
                 names[index]) for index, row in rows]

    def items(self) -> list[tuple[QtCore.QRectF, TrackItem, EditTrack | None]]:
        """Every clip, gap and transition drawn, with its track (transitions last: they lie
        across the cut, over the clips). Without a track listing: the targets' clips."""
        shapes, transitions = [], []
        for track in self._tracks:
            for item in track.items:
                if item.record_last < item.record_first:
                    continue                     # nothing on screen (a zero-length item)
                shape = (self._box(track.index, item.record_first, item.record_last), item, track)
                (transitions if item.kind == "transition" else shapes).append(shape)
        if not self._tracks:
            seen = set()
            for t in self._targets:
                if t.operation is Operation.BRIDGE or (t.track_index, t.record_first) in seen:
                    continue
                seen.add((t.track_index, t.record_first))
                name = (t.clip_a or {}).get("clip_name") or (t.media.name if t.media else t.track_name)
                item = TrackItem("clip", name, t.record_first, t.record_last, "online" if t.ready else "offline")
                shapes.append((self._box(t.track_index, t.record_first, t.record_last), item, None))
        return shapes + transitions

    def target_areas(self) -> list[tuple[QtCore.QRectF, Target]]:
        """Where each target is drawn (its clickable area)."""
        areas = []
        for t in self._targets:
            body = self._box(t.track_index, t.record_first, t.record_last)
            if t.operation is Operation.EXTEND_BACKWARD:
                areas.append((QtCore.QRectF(body.left() + 2, body.top() + 5, self.ARROW, self.ROW - 10), t))
            elif t.operation is Operation.EXTEND_FORWARD:
                areas.append((QtCore.QRectF(body.right() - 2 - self.ARROW, body.top() + 5, self.ARROW,
                                            self.ROW - 10), t))
            else:
                areas.append((body, t))
        return areas

    def rect_of(self, target_id: str) -> QtCore.QRectF | None:
        """Where a target is drawn (None: not shown)."""
        return next((rect for rect, t in self.target_areas() if t.id == target_id), None) if self._shown() else None

    def target_at(self, pos: QtCore.QPointF) -> str | None:
        """The target under ``pos``; arrows and gaps sit on top of clip bodies, so the
        smallest area wins."""
        if not self._shown():
            return None
        hits = [(rect, t) for rect, t in self.target_areas() if rect.adjusted(-3, -3, 3, 3).contains(pos)]
        return min(hits, key=lambda h: h[0].width())[1].id if hits else None

    # -- words -------------------------------------------------------------------
    def tooltip_at(self, pos: QtCore.QPointF) -> str:
        """What hovering at ``pos`` tells: the track's full name in the gutter; on a row, the
        target there (if any) and the clip, gap or transition under it, names in full."""
        if not self._shown():
            return ""
        for rect, title in self.track_titles():
            if rect.contains(pos):
                return title
        parts = []
        target_id = self.target_at(pos)
        if target_id is not None:
            t = next(t for t in self._targets if t.id == target_id)
            text = f"{t.id}: {t.operation.label.lower()}, record {t.record_range_text()}"
            handles = t.handle_frames or {}
            if t.operation is Operation.BRIDGE and handles:
                text += (f"\n{handles.get('a', 0)} + {handles.get('b', 0)} handle frames of the clips, "
                         f"{t.generated_frames} generated")
            elif "available" in handles:
                text += f"\n{handles['available']} handle frames on this side, placed before any generated"
            parts.append(text + (f"\n{t.clips}" if t.clips else "") + ("" if t.ready else "\nmedia offline"))
        under = next(((item, track) for rect, item, track in reversed(self.items()) if rect.contains(pos)), None)
        if under is not None:                     # transitions come first: they lie on top
            item, track = under
            if not parts or item.kind == "transition" or not item.name or item.name not in parts[0]:
                parts.append(_describe(item, track))
        return "\n\n".join(parts)

    def event(self, event) -> bool:
        if event.type() == QtCore.QEvent.ToolTip:
            text = self.tooltip_at(QtCore.QPointF(event.pos()))
            if text:
                QtWidgets.QToolTip.showText(event.globalPos(), text, self)
            else:
                QtWidgets.QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    # -- drawing -----------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QtGui.QPainter(self)
        painter.setRenderHint(QtGui.QPainter.Antialiasing)
        painter.fillRect(self.rect(), self.palette().color(QtGui.QPalette.Base))
        if not self._shown():
            painter.setPen(self.palette().color(QtGui.QPalette.PlaceholderText))
            painter.drawText(self.rect(), QtCore.Qt.AlignCenter, self.empty_text)
            return
        metrics = painter.fontMetrics()
        text = self.palette().color(QtGui.QPalette.Text)
        for box, title in self.track_titles():
            painter.setPen(text)
            painter.drawText(box, QtCore.Qt.AlignVCenter | QtCore.Qt.AlignLeft,
                             metrics.elidedText(title, QtCore.Qt.ElideRight, int(box.width())))
            lane = QtCore.QRectF(self.GUTTER + self.MARGIN, box.top(), self.width() - self.GUTTER - 2 * self.MARGIN,
                                 self.ROW)
            painter.fillRect(lane, self.palette().color(QtGui.QPalette.AlternateBase))
        for rect, item, _ in self.items():
            self._draw_item(painter, rect, item)
        for rect, t in self.target_areas():
            self._draw_target(painter, rect, t)
        # the record range under the strip, as timecode where a target at either end gives one
        first, last = self._span()
        first_tc = next((t.record_first_tc for t in self._targets if t.record_first == first and t.record_first_tc),
                        None)
        last_tc = next((t.record_last_tc for t in self._targets if t.record_last == last and t.record_last_tc), None)
        painter.setPen(text)
        bottom = QtCore.QRectF(self.GUTTER + self.MARGIN, self.height() - 16,
                               self.width() - self.GUTTER - 2 * self.MARGIN, 14)
        painter.drawText(bottom, QtCore.Qt.AlignLeft, first_tc or str(first))
        painter.drawText(bottom, QtCore.Qt.AlignRight, last_tc or str(last))

    def _draw_item(self, painter: QtGui.QPainter, rect: QtCore.QRectF, item: TrackItem) -> None:
        if item.kind == "gap":
            painter.setPen(QtGui.QPen(self.palette().color(QtGui.QPalette.Mid), 1, QtCore.Qt.DotLine))
            painter.setBrush(QtCore.Qt.NoBrush)
            painter.drawRect(rect.adjusted(0.5, 0.5, -0.5, -0.5))
            return
        if item.kind == "transition":
            painter.fillRect(rect, QtGui.QBrush(TRANSITION, QtCore.Qt.BDiagPattern))
            painter.setPen(QtGui.QPen(TRANSITION, 1))
            painter.setBrush(QtCore.Qt.NoBrush)
            painter.drawRect(rect.adjusted(0.5, 0.5, -0.5, -0.5))
            return
        colour = RESULT if item.target_id else (OFFLINE if item.offline else CLIP)
        painter.fillRect(rect.adjusted(0.5, 0, -0.5, 0), colour)      # a hairline between clips
        painter.setPen(QtGui.QColor(235, 235, 235))
        text_box = rect.adjusted(self.ARROW + 6, 0, -self.ARROW - 6, 0)
        if text_box.width() > 8:
            painter.drawText(text_box, QtCore.Qt.AlignVCenter | QtCore.Qt.AlignLeft,
                             painter.fontMetrics().elidedText(item.name or item.kind, QtCore.Qt.ElideRight,
                                                              int(text_box.width())))

    def _draw_target(self, painter: QtGui.QPainter, rect: QtCore.QRectF, t: Target) -> None:
        selected = t.id == self._selected
        if t.operation is Operation.BRIDGE:
            painter.fillRect(rect, GAP.darker(140))
            handles = t.handle_frames or {}
            if handles and t.frames:                       # the clips' real handle frames, at each end
                width = rect.width() / t.frames
                painter.fillRect(QtCore.QRectF(rect.left(), rect.top(), width * handles.get("a", 0), rect.height()),
                                 CLIP.darker(115))
                painter.fillRect(QtCore.QRectF(rect.right() - width * handles.get("b", 0), rect.top(),
                                               width * handles.get("b", 0), rect.height()), CLIP.darker(115))
            painter.setBrush(QtCore.Qt.NoBrush)
            painter.setPen(QtGui.QPen(GAP, 1, QtCore.Qt.DashLine))
            painter.drawRect(rect.adjusted(0.5, 0.5, -0.5, -0.5))
            painter.setPen(QtGui.QColor(255, 230, 200))
            generated = t.generated_frames if t.generated_frames is not None else t.frames
            painter.drawText(rect, QtCore.Qt.AlignCenter, str(generated))
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

    @staticmethod
    def _arrow(rect: QtCore.QRectF, forward: bool) -> QtGui.QPolygonF:
        tip = rect.right() if forward else rect.left()
        back = rect.left() if forward else rect.right()
        return QtGui.QPolygonF([QtCore.QPointF(back, rect.top()), QtCore.QPointF(tip, rect.center().y()),
                                QtCore.QPointF(back, rect.bottom())])

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        target_id = self.target_at(mouse_pos(event))
        if target_id is not None:
            self.target_clicked.emit(target_id)


def _describe(item: TrackItem, track: EditTrack | None) -> str:
    """An item's tooltip: its full name, what it is, its record frames, and its media."""
    frames = item.record_last - item.record_first + 1
    where = f"record {item.record_first}-{item.record_last} ({frames} frames)"
    if item.kind == "clip":
        if item.target_id:
            head = f"{item.name}: placed by shotfill for {item.target_id}"
        else:
            head = f"{item.name or '(unnamed clip)'}: clip, media {item.media or 'unknown'}"
    elif item.kind == "gap":
        head = "gap"
    elif item.kind == "transition":
        head = f"{item.name or 'transition'}: transition across the cut"
    else:
        head = f"{item.name or item.kind}: {item.kind}"
    return f"{head}\n{where}" + (f"\non {track.title}" if track is not None else "")
