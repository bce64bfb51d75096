"""The shape of the code: import directions and cycles, read from the import statements.

``core/`` (imported as ``shotfill``) is read with :mod:`ast`; every import counts, at the top
of a module or inside a function (a lazy import is still a dependency). The rules:

- no import cycle between modules;
- no cycle between the subpackages of any package (``shotfill.io`` and ``shotfill.engines``
  may not import each other, nor ``engines.dit`` and ``engines.classical``);
- ``models/`` imports nothing from ``engines/`` (models are the model files only);
- the job schema (``job.py``) does not import the engine registry;
- nothing outside ``cli/`` imports ``cli/`` (the command line is a front door, not a library);
- the host side (``plugin/``, imported as ``shotfill_plugin``) imports nothing of the engine and
  nothing beyond the standard library, Qt and the hosts' own modules; core takes only the event
  protocol from it.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE, PLUGIN = ROOT / "core", ROOT / "plugin"


def _modules(folder: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``folder`` (a package's name is its ``__init__``)."""
    found = {}
    for path in sorted(folder.rglob("*.py")):
        parts = [package, *path.relative_to(folder).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules ``name`` imports (absolute names; ``from . import x`` names module ``x`` when it is one)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in known)
    return found


CORE_MODULES = _modules(CORE, "shotfill")
GRAPH = {name: {m for m in _imports(name, path, CORE_MODULES) if m in CORE_MODULES and m != name}
         for name, path in CORE_MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _importers_of(prefix: str) -> dict[str, set[str]]:
    return {name: {m for m in deps if m == prefix or m.startswith(prefix + ".")} for name, deps in GRAPH.items()}


def test_the_graph_is_read():
    """The reader sees the edges it should (a reader that found nothing would pass every rule)."""
    assert "shotfill.io.exr" in GRAPH["shotfill.worker.run"]          # a lazy import inside run_job
    assert "shotfill.io.media" in GRAPH["shotfill.worker.resolve"]     # `from ..io import media`
    assert "shotfill.errors" in GRAPH["shotfill.plan"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules():
    cycle = _cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _packages() -> list[str]:
    return sorted(name for name, path in CORE_MODULES.items() if path.name == "__init__.py")


@pytest.mark.parametrize("package", _packages())
def test_no_import_cycle_between_the_subpackages_of(package):
    """Modules under ``package`` collapsed to its direct children: that graph has no cycle."""
    def child(module: str) -> str | None:
        if not module.startswith(package + "."):
            return None
        return module[len(package) + 1:].split(".")[0]

    children: dict[str, set[str]] = {}
    for name, deps in GRAPH.items():
        source = child(name)
        if source is None:
            continue
        children.setdefault(source, set())
        children[source].update(c for c in map(child, deps) if c is not None and c != source)
    cycle = _cycle(children)
    assert cycle is None, f"{package}: its parts import each other: " + " -> ".join(cycle)


def test_models_import_nothing_from_the_engines():
    offenders = {name: deps for name, deps in _importers_of("shotfill.engines").items()
                 if name.startswith("shotfill.models") and deps}
    assert not offenders, offenders


def test_the_job_schema_does_not_import_the_engine_registry():
    assert not {m for m in GRAPH["shotfill.job"] if m.startswith("shotfill.engines")}


def test_nothing_outside_the_cli_imports_the_cli():
    offenders = {name: deps for name, deps in _importers_of("shotfill.cli").items()
                 if deps and not (name == "shotfill.cli" or name.startswith("shotfill.cli."))
                 and name != "shotfill.__main__"}
    assert not offenders, offenders


def test_no_engine_state_is_read_back_after_a_call():
    """Engines return an EngineResult; nothing keeps ``last_info``/``last_confidence`` to be read back."""
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in CORE_MODULES.values()
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if "last_info" in line or "last_confidence" in line]
    assert not offenders, offenders


def test_the_host_side_imports_only_the_standard_library_qt_and_its_hosts():
    allowed = set(sys.stdlib_module_names) | {"shotfill_plugin", "PySide6", "PySide2", "nuke", "nukescripts",
                                               "DaVinciResolveScript", "fusionscript", "__future__"}
    plugin_modules = _modules(PLUGIN, "shotfill_plugin")
    offenders = {}
    for name, path in plugin_modules.items():
        outside = {m for m in _imports(name, path, plugin_modules) if m.split(".")[0] not in allowed}
        if outside:
            offenders[name] = outside
    assert not offenders, offenders


def test_core_takes_only_the_event_protocol_from_the_host_side():
    """The protocol module is shared; ``shotfill install-host`` (the cli) runs the host side's installer."""
    plugin_modules = _modules(PLUGIN, "shotfill_plugin")
    for name, path in CORE_MODULES.items():
        taken = {m for m in _imports(name, path, plugin_modules) if m in plugin_modules} - {"shotfill_plugin"}
        allowed = {"shotfill_plugin.protocol"}
        if name.startswith("shotfill.cli"):
            allowed.add("shotfill_plugin.install")
        assert taken <= allowed, (name, taken)


def test_the_light_front_doors_do_not_import_torch():
    """``shotfill --help``, ``info`` and ``plan`` (what the panel calls) stay quick: no torch, no diffusers."""
    code = ("import sys; import shotfill.cli, shotfill.timeline, shotfill.worker, shotfill.io.exr, shotfill.job; "
            "heavy = sorted(m for m in ('torch', 'diffusers') if m in sys.modules); print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_building_the_command_line_imports_no_library():
    """``shotfill --help`` answers at once: the parser tree imports no numpy, OpenCV, OTIO or torch."""
    code = ("import sys; from shotfill.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('numpy', 'cv2', 'opentimelineio', 'OpenEXR', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_weights_load_without_pickle():
    """Model files are read as safetensors; nothing in the package unpickles: no ``pickle`` import,
    and every ``torch.load`` (an optimizer state the trainer wrote itself) says ``weights_only=True``."""
    offenders = []
    for path in sorted([*CORE.rglob("*.py"), *PLUGIN.rglob("*.py")]):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(n and n.split(".")[0] in ("pickle", "cPickle", "dill", "joblib") for n in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports a pickle module")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
                owner = node.func.value
                if isinstance(owner, ast.Name) and owner.id == "torch":
                    safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                               for k in node.keywords)
                    if not safe:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: torch.load without weights_only=True")
    assert offenders == []
