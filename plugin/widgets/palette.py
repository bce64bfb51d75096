"""The colours the panel's widgets draw with (RGB), one table so the strip and the previews agree."""
from __future__ import annotations

from ..qt import QtGui

#: a clip on the timeline strip; a known frame of the window
CLIP = QtGui.QColor(88, 98, 112)
#: a gap to bridge
GAP = QtGui.QColor(230, 150, 40)
#: a fill, and a filled frame of the window
FILL = QtGui.QColor(120, 90, 170)
#: the selected target
ACCENT = QtGui.QColor(70, 160, 255)
#: offline media, and a picture that cannot be read
OFFLINE = QtGui.QColor(150, 60, 60)
#: outline of generated pictures: the contact sheet's (``shotfill.io.contact.GENERATED_COLOUR``)
GENERATED = QtGui.QColor(255, 150, 0)
#: a clip shotfill placed on the edit (a result, or the handles it placed with one)
RESULT = QtGui.QColor(52, 120, 80)
#: a transition across a cut
TRANSITION = QtGui.QColor(200, 200, 120)
