"""One Qt import for the host side.

PySide6 where it exists (Nuke 16 and newer, the standalone panel), else PySide2
(Nuke 13 to 15). Every other plugin module imports Qt from here::

    from .qt import QtCore, QtGui, QtWidgets, Signal

Only the short enum spellings (``QtCore.Qt.AlignLeft``) are used, which both
bindings accept.
"""
from __future__ import annotations

try:
    from PySide6 import QtCore, QtGui, QtWidgets

    QT_API = "PySide6"
except ImportError:  # Nuke 13-15 ship PySide2 only
    from PySide2 import QtCore, QtGui, QtWidgets  # type: ignore[no-redef]

    QT_API = "PySide2"

Signal = QtCore.Signal
Slot = QtCore.Slot


def exec_(obj) -> int:
    """Run a dialog's or application's event loop: ``exec()`` (PySide6) or ``exec_()`` (PySide2)."""
    run = getattr(obj, "exec", None) or obj.exec_
    return run()


def mouse_pos(event) -> "QtCore.QPointF":
    """A mouse event's position in the widget: ``position()`` (Qt 6) or ``localPos()`` (Qt 5)."""
    return event.position() if QT_API == "PySide6" else event.localPos()


__all__ = ["QT_API", "QtCore", "QtGui", "QtWidgets", "Signal", "Slot", "exec_", "mouse_pos"]
