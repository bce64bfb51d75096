"""The shotfill panel: pick a target, set it up, generate takes, compare them, apply one.

:class:`ShotfillPanel` lays out the widgets (:mod:`shotfill_plugin.widgets`:
the timeline strip, the stage bars, the contact sheet and the frame scrubber),
which only render :class:`~shotfill_plugin.state.PanelState`. The user's
actions go through its methods (``load_edit``, ``generate``, ``cancel``,
``apply_take``), which ask the host, the job client or the state to act; the
state then signals and the widgets redraw.

Layout (side by side; a dock narrower than :attr:`ShotfillPanel.NARROW` stacks
the two columns and scrolls)::

    [Open edit...]  sample_edit.otio - shotfill sample edit
    status line
    +- timeline strip: every track ------+  +- [Frames] [Contact sheet] ---+
    | targets table                      |  | the frame, before | after    |
    | settings form                      |  | roles, slider, label         |
    |                                    |  +- takes ------------[Apply]---+
    | [Generate] why not [Cancel]        |  | each take: sheet, summary,   |
    |                                    |  | trust strip, warnings        |
    | overall progress, ETA, stage bars  |  +- log ------------------------+
    +------------------------------------+  +------------------------------+
"""
from __future__ import annotations

import html
import os

from . import client as client_mod
from . import paths
from .client import JobClient, JobFinished
from .hosts.base import Host, HostError
from .hosts.standalone import HandOffHost, StandaloneHost
from .qt import QtCore, QtGui, QtWidgets, Signal
from .state import (COLOURSPACES, COMPRESSIONS, MAX_SEED, MAX_TAKES, WRITE_MODES, LogEntry, LogLevel, Operation,
                    PanelState, SettingsStore, Status, Take, TakeStatus)
from .widgets import FrameScrubber, PreviewView, StageBars, TakeRow, TimelineStrip

#: colours of the status line
_STATUS_COLOURS = {Status.EMPTY: "#3a3a3a", Status.LOADED: "#34404c", Status.RUNNING: "#1f4f7a",
                   Status.DONE: "#2d5e34", Status.CANCELLED: "#6a5420", Status.ERROR: "#7a2626"}
_WRITE_MODE_LABELS = {"track": "on a new track", "replace": "in place of the gap"}
#: the targets table's columns and their header tooltips
_COLUMNS = {"Target": "the target's id, as `shotfill plan` lists it",
            "Operation": "what the take does",
            "Record": "where it sits in the edit (record timecode)",
            "Frames": "frames a take places on the edit",
            "From handles": "of those, the clips' real handle frames (a bridge: A's tail + B's head)",
            "Generated": "of those, the frames the engine makes",
            "Clips": "the clips involved"}
_LOG_COLOURS = {LogLevel.INFO: None, LogLevel.DETAIL: "#8a8a8a", LogLevel.WARNING: "#e0a040",
                LogLevel.ERROR: "#ff6b6b"}


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
        self.table.setHeaderLabels(list(_COLUMNS))
        for col, tip in enumerate(_COLUMNS.values()):
            self.table.headerItem().setToolTip(col, tip)
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
        self.seed_spin.setRange(0, MAX_SEED)
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
        self.search_edit = QtWidgets.QLineEdit()
        self.search_edit.setPlaceholderText("folders to relink offline media from, by file name")
        self.search_edit.setToolTip(f"Folders searched for media the edit names but that is not where it says "
                                    f"(separate several with {os.pathsep!r}); the edit is read again when "
                                    f"they change. Passed to `shotfill plan` as --search-path, and to each "
                                    f"job as edit.search_paths.")
        self.search_browse = QtWidgets.QToolButton()
        self.search_browse.setText("Add...")

        output_row = QtWidgets.QHBoxLayout()
        output_row.addWidget(self.output_edit, 1)
        output_row.addWidget(self.output_browse)
        search_row = QtWidgets.QHBoxLayout()
        search_row.addWidget(self.search_edit, 1)
        search_row.addWidget(self.search_browse)
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
                 (("Edit write-back", self.write_mode_box),),
                 (("Search folders", search_row),)]
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
        self.generate_reason = QtWidgets.QLabel()      # why Generate is disabled, beside it
        self.generate_reason.setWordWrap(True)
        self.generate_reason.setStyleSheet("color: #e0a040;")
        self.generate_reason.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.generate_reason, 1)
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
        self.takes_list.setMinimumHeight(120)
        # the selected take is outlined, not filled: its text, warnings and trust colours read as they are
        self.takes_list.setStyleSheet("QListWidget::item:selected { background: palette(alternate-base); "
                                      "border: 2px solid rgb(70, 160, 255); }")
        self.takes_list.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        self.takes_list.viewport().installEventFilter(self)    # rows follow the list's width
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

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if watched is self.takes_list.viewport() and event.type() == QtCore.QEvent.Resize:
            self._fit_take_rows()
        return super().eventFilter(watched, event)

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
        self.search_browse.clicked.connect(self._browse_search)
        self.search_edit.editingFinished.connect(self._search_typed)
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
            plan = client_mod.plan(path, command=self.command, search_paths=self.state.settings.search_paths)
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

    def _browse_search(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "A folder with the edit's media",
                                                            str(self.state.output_root().parent))
        if folder:
            self.set_search_paths([*self.state.settings.search_paths, folder])

    def _search_typed(self) -> None:
        self.set_search_paths([p.strip() for p in self.search_edit.text().split(os.pathsep) if p.strip()])

    def set_search_paths(self, folders: list[str]) -> None:
        """Relink offline media from ``folders``: remembered, and the loaded edit is read again."""
        before = self.state.settings.search_paths
        self.state.update_settings(search_paths=folders)
        after = self.state.settings.search_paths
        if after != before and self.state.edit and not self.client.is_running():
            self.load_edit(self.state.edit)

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
                _, generated = t.frame_split(s.settings)
                clips = t.clips + ("" if t.ready else "  (offline)")
                item = QtWidgets.QTreeWidgetItem([t.id, t.operation.label, t.record_range_text(), frames,
                                                  t.handles_text(s.settings),
                                                  "" if generated is None else str(generated), clips])
                item.setData(0, QtCore.Qt.UserRole, t.id)
                item.setToolTip(0, f"{t.id} on {t.track_name or 'an unnamed track'}")
                item.setToolTip(6, clips)
                if t.operation.user_sets_length:
                    item.setToolTip(3, "you choose: Frames to add")
                    available = t.handles_available()
                    if available is not None:
                        item.setToolTip(4, f"the clip has {available} handle frames on this side: "
                                           f"they are placed first, the rest is generated")
                elif t.operation is Operation.BRIDGE and t.handle_frames:
                    item.setToolTip(4, f"{t.handle_frames.get('a', 0)} real frames after the out point of the "
                                       f"clip before, {t.handle_frames.get('b', 0)} before the in point of the "
                                       f"clip after")
                if not t.ready:
                    for col in range(len(_COLUMNS)):
                        item.setForeground(col, QtGui.QBrush(QtGui.QColor(200, 90, 90)))
                self.table.addTopLevelItem(item)
            for col in range(len(_COLUMNS) - 1):
                self.table.resizeColumnToContents(col)
        self.source_label.setText(f"<b>{html.escape(s.source_name)}</b>  {html.escape(s.source)}"
                                  if s.source else "<i>nothing loaded</i>")
        self._render_selection()

    def _render_selection(self) -> None:
        s = self.state
        self.strip.set_edit(s.tracks, s.targets, s.selected_id)
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
                   self.compression_box, self.write_mode_box, self.search_edit)
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
        self.search_edit.setText(os.pathsep.join(st.search_paths))
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
        self.generate_reason.setText(why)
        self.generate_reason.setToolTip(why)
        self.cancel_button.setEnabled(self.client.is_running() or bool(self.state.queued_takes()))
        take = self.state.take
        self.apply_button.setEnabled(take is not None and take.status is TakeStatus.DONE
                                     and take.result is not None and not self.client.is_running())

    def _render_takes(self) -> None:
        s = self.state
        with QtCore.QSignalBlocker(self.takes_list):
            self.takes_list.clear()
            for take in s.takes:
                item = QtWidgets.QListWidgetItem()
                item.setData(QtCore.Qt.AccessibleTextRole, f"{take.title}: {take.summary()}")
                if take.message and take.status is not TakeStatus.DONE:
                    item.setToolTip(take.message)
                self.takes_list.addItem(item)
                self.takes_list.setItemWidget(item, TakeRow(take))
            self._fit_take_rows()
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

    def take_row(self, index: int) -> TakeRow:
        """The row that shows take ``index`` in the takes list."""
        return self.takes_list.itemWidget(self.takes_list.item(index))

    def _fit_take_rows(self) -> None:
        """Each take's row as tall as its wrapped text needs at the list's width."""
        width = self.takes_list.viewport().width()
        for i in range(self.takes_list.count()):
            item = self.takes_list.item(i)
            row = self.takes_list.itemWidget(item)
            if row is not None:
                layout = row.layout()
                height = layout.heightForWidth(width) if layout.hasHeightForWidth() else row.sizeHint().height()
                item.setSizeHint(QtCore.QSize(width, max(height, row.minimumSizeHint().height())))

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
