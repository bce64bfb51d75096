"""A fake of Nuke's ``nuke`` and ``nukescripts`` modules for the host tests.

Only the calls shotfill makes, with the names, signatures and return types of
the Nuke Python API reference (learn.foundry.com/nuke/developers/.../pythondevguide):

- ``nuke.nodes.Read(**knobs) -> Node``; ``nuke.selectedNodes(filter=None) -> list``;
  ``nuke.allNodes(filter=None, group=None) -> list``; ``nuke.toNode(s) -> Node | None``;
  ``nuke.root() -> Node``; ``nuke.message(prompt) -> None``; ``nuke.menu(name) -> Menu``;
  ``nuke.pluginAddPath(args, addToSysPath=True)``; ``nuke.scriptClear()``; ``nuke.env``.
- ``Node.Class()``, ``name()``, ``knob(name)``, ``node[name]``, ``xpos()``, ``ypos()``,
  ``setXYpos(x, y)``, ``screenWidth()``, ``isSelected()``, ``setSelected(selected)``.
- ``Knob.name()``, ``value()``, ``getValue()``, ``setValue(value) -> bool``;
  ``Enumeration_Knob.values() -> list``, and ``setValue`` refuses a value not in
  the list (``ValueError``), as Nuke does.
- ``nuke.Undo.begin(name=None)``, ``end()``, ``cancel()``, ``undo()``,
  ``undoSize() -> int``, ``undoDescribe(n) -> str``: changes made between
  ``begin`` and ``end`` are one undo step; ``cancel`` undoes and discards them.
- ``nukescripts.panels.registerWidgetAsPanel(widget, name, id, create=False)``,
  ``registerPanel(id, command)``, ``restorePanel(id)``.

Changes made outside an undo group are each their own step, as in Nuke.
Names starting with an underscore are the fake's own, for tests to look at.
"""
from __future__ import annotations

import sys
import types

env = {"gui": True, "NukeVersionMajor": 15}

_nodes: list["Node"] = []
_messages: list[str] = []
_menus: dict[str, "Menu"] = {}
_plugin_paths: list[str] = []


# ---------------------------------------------------------------------------
# undo
# ---------------------------------------------------------------------------
class Undo:
    """Nuke's undo system: all methods are class-level."""

    _stack: list[tuple[str, list]] = []      # (name, [revert, ...]) per step
    _group: list | None = None
    _group_name = ""

    @classmethod
    def begin(cls, name=None) -> None:
        cls._group, cls._group_name = [], name or ""

    @classmethod
    def end(cls) -> None:
        if cls._group:
            cls._stack.append((cls._group_name, cls._group))
        cls._group = None

    @classmethod
    def cancel(cls) -> None:
        for revert in reversed(cls._group or []):
            revert()
        cls._group = None

    @classmethod
    def undo(cls) -> None:
        if cls._stack:
            _, reverts = cls._stack.pop()
            for revert in reversed(reverts):
                revert()

    @classmethod
    def undoSize(cls) -> int:  # noqa: N802 - Nuke's name
        return len(cls._stack)

    @classmethod
    def undoDescribe(cls, n) -> str:  # noqa: N802 - Nuke's name
        return cls._stack[-1 - n][0]

    @classmethod
    def _record(cls, revert) -> None:
        if cls._group is not None:
            cls._group.append(revert)
        else:
            cls._stack.append(("", [revert]))


# ---------------------------------------------------------------------------
# knobs and nodes
# ---------------------------------------------------------------------------
class Knob:
    def __init__(self, name: str, value=""):
        self._name = name
        self._value = value

    def name(self) -> str:
        return self._name

    def value(self):
        return self._value

    def getValue(self):  # noqa: N802 - Nuke's name
        return self._value

    def setValue(self, value) -> bool:  # noqa: N802 - Nuke's name
        old = self._value
        self._value = value
        Undo._record(lambda: setattr(self, "_value", old))
        return True


class Int_Knob(Knob):  # noqa: N801 - Nuke's name
    def setValue(self, value) -> bool:  # noqa: N802
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"{self._name}: an int is required")
        return super().setValue(int(value))


class Enumeration_Knob(Knob):  # noqa: N801 - Nuke's name
    def __init__(self, name: str, values: list[str], value: str):
        super().__init__(name, value)
        self._values = list(values)

    def values(self) -> list[str]:
        return list(self._values)

    def setValue(self, value) -> bool:  # noqa: N802
        if value not in self._values:
            raise ValueError(f"Illegal value '{value}' for {self._name}")
        return super().setValue(value)


#: the colour spaces a Read offers (Nuke's default config, plus an ACES name)
COLORSPACES = ["default (linear)", "linear", "sRGB", "rec709", "Gamma2.2", "ACEScg"]


def _read_knobs() -> dict[str, Knob]:
    return {"file": Knob("file", ""), "first": Int_Knob("first", 1), "last": Int_Knob("last", 1),
            "origfirst": Int_Knob("origfirst", 1), "origlast": Int_Knob("origlast", 1),
            "colorspace": Enumeration_Knob("colorspace", COLORSPACES, "default (linear)"),
            "label": Knob("label", "")}


class Node:
    _counts: dict[str, int] = {}

    def __init__(self, node_class: str, knobs: dict[str, Knob], name: str | None = None):
        Node._counts[node_class] = Node._counts.get(node_class, 0) + 1
        self._class = node_class
        self._knobs = knobs
        self._name = name or f"{node_class}{Node._counts[node_class]}"
        self._xy = (0, 0)
        self._selected = False

    def Class(self) -> str:  # noqa: N802 - Nuke's name
        return self._class

    def name(self) -> str:
        return self._name

    def knob(self, name: str) -> Knob | None:
        return self._knobs.get(name)

    def knobs(self) -> dict[str, Knob]:
        return dict(self._knobs)

    def __getitem__(self, name: str) -> Knob:
        if name not in self._knobs:
            raise NameError(f"{self._name} has no knob named {name}")
        return self._knobs[name]

    def xpos(self) -> int:
        return self._xy[0]

    def ypos(self) -> int:
        return self._xy[1]

    def setXYpos(self, x: int, y: int) -> None:  # noqa: N802 - Nuke's name
        old = self._xy
        self._xy = (int(x), int(y))
        Undo._record(lambda: setattr(self, "_xy", old))

    def screenWidth(self) -> int:  # noqa: N802 - Nuke's name
        return 80

    def screenHeight(self) -> int:  # noqa: N802 - Nuke's name
        return 78

    def isSelected(self) -> bool:  # noqa: N802 - Nuke's name
        return self._selected

    def setSelected(self, selected: bool) -> None:  # noqa: N802 - Nuke's name
        self._selected = bool(selected)      # selection is not undoable in Nuke


class _NodeConstructors:
    """``nuke.nodes.<Class>(**knobs)``: makes a node without connecting or selecting it."""

    _KNOBS = {"Read": _read_knobs}

    def __getattr__(self, node_class: str):
        def create(**values) -> Node:
            name = values.pop("name", None)
            knobs = self._KNOBS.get(node_class, dict)()
            node = Node(node_class, knobs, name)
            for key, value in values.items():
                node[key]._value = value
            _nodes.append(node)
            Undo._record(lambda: _nodes.remove(node))
            return node

        return create


nodes = _NodeConstructors()


def _root() -> Node:
    return Node("Root", {"fps": Knob("fps", 24.0), "first_frame": Int_Knob("first_frame", 1),
                         "last_frame": Int_Knob("last_frame", 100)}, name="root")


_root_node = _root()


def root() -> Node:
    return _root_node


def selectedNodes(filter=None) -> list[Node]:  # noqa: N802,A002 - Nuke's names
    return [n for n in _nodes if n.isSelected() and (filter is None or n.Class() == filter)]


def selectedNode() -> Node:  # noqa: N802
    chosen = selectedNodes()
    if not chosen:
        raise ValueError("no node selected")
    return chosen[-1]


def allNodes(filter=None, group=None) -> list[Node]:  # noqa: N802,A002
    return [n for n in _nodes if filter is None or n.Class() == filter]


def toNode(s: str) -> Node | None:  # noqa: N802
    return next((n for n in _nodes if n.name() == s), None)


def message(prompt: str) -> None:
    _messages.append(prompt)


def pluginAddPath(args, addToSysPath=True) -> None:  # noqa: N802,N803
    for path in [args] if isinstance(args, str) else list(args):
        _plugin_paths.append(path)
        if addToSysPath and path not in sys.path:
            sys.path.insert(0, path)


def scriptClear() -> None:  # noqa: N802
    """Empty the script (and, here, the fake's undo history and messages)."""
    _nodes.clear()
    _messages.clear()
    Undo._stack.clear()
    Undo._group = None
    Node._counts.clear()


# ---------------------------------------------------------------------------
# menus
# ---------------------------------------------------------------------------
class MenuItem:
    def __init__(self, name: str, command=None):
        self._name = name
        self._command = command

    def name(self) -> str:
        return self._name

    def invoke(self):
        return self._command() if callable(self._command) else exec(self._command, {})


class Menu(MenuItem):
    def __init__(self, name: str):
        super().__init__(name)
        self._items: dict[str, MenuItem] = {}

    def addCommand(self, name, command=None, shortcut=None, icon=None, tooltip=None, index=-1,  # noqa: N802
                   readonly=None, shortcutContext=None, tag=None, tagTarget=None) -> MenuItem:  # noqa: N803
        head, _, rest = name.partition("/")
        if rest:
            return self.addMenu(head).addCommand(rest, command, shortcut, icon, tooltip, index)
        item = self._items[name] = MenuItem(name, command)
        return item

    def addMenu(self, name, icon=None, tooltip=None, index=-1, tag=None, tagTarget=None) -> "Menu":  # noqa: N802,N803
        item = self._items.get(name)
        if not isinstance(item, Menu):
            item = self._items[name] = Menu(name)
        return item

    def findItem(self, name: str) -> MenuItem | None:  # noqa: N802
        head, _, rest = name.partition("/")
        item = self._items.get(head)
        return item.findItem(rest) if rest and isinstance(item, Menu) else (None if rest else item)


def menu(name: str) -> Menu:
    return _menus.setdefault(name, Menu(name))


# ---------------------------------------------------------------------------
# nukescripts.panels
# ---------------------------------------------------------------------------
nukescripts = types.ModuleType("nukescripts")
panels = types.ModuleType("nukescripts.panels")
nukescripts.panels = panels
panels._registered = {}                    # id -> (widget, name)
panels._panels = {}                        # id -> command


def _registerPanel(id, command) -> None:  # noqa: N802,A002
    panels._panels[id] = command


def _restorePanel(id):  # noqa: N802,A002
    return panels._panels[id]()


def _registerWidgetAsPanel(widget, name, id, create=False):  # noqa: N802,A002
    """Records the widget expression; the pane command evaluates it as Nuke's WidgetKnob does."""
    panels._registered[id] = (widget, name)

    def add_panel():
        return eval(widget)()

    menu("Pane").addCommand(name, add_panel)
    _registerPanel(id, add_panel)
    return add_panel() if create else None


panels.registerPanel = _registerPanel
panels.restorePanel = _restorePanel
panels.registerWidgetAsPanel = _registerWidgetAsPanel
nukescripts.registerWidgetAsPanel = _registerWidgetAsPanel
nukescripts.restorePanel = _restorePanel
