"""``shotfill install-host``: what lands where, updates in place, nothing of the engine on a host's path."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shotfill_plugin import install, paths


def test_nuke_install_adds_only_the_plugin_folder(tmp_path, capsys):
    target = tmp_path / ".nuke"
    target.mkdir()
    (target / "init.py").write_text("nuke.pluginAddPath('./gizmos')")      # the user's own, no newline
    assert install.main(["nuke", "--target", str(target), "--engine-command", "/opt/sf/bin/python -m shotfill"]) == 0
    plugin_dir = target / "shotfill"
    assert (plugin_dir / "shotfill_plugin" / "panel.py").is_file()
    for module in ("protocol.py", "widgets/__init__.py", "widgets/preview.py", "widgets/progress.py",
                   "widgets/timeline_strip.py", "widgets/palette.py"):
        assert (plugin_dir / "shotfill_plugin" / module).is_file(), module
    assert not list((plugin_dir / "shotfill_plugin").rglob("__pycache__"))
    assert (plugin_dir / "menu.py").read_text() == (install.PACKAGE / "hosts" / "nuke" / "menu.py").read_text()
    assert (plugin_dir / "init.py").is_file()
    config = json.loads((plugin_dir / "shotfill_plugin" / "engine.json").read_text())
    assert config["command"] == ["/opt/sf/bin/python", "-m", "shotfill"]
    assert config["panel_command"] == [sys.executable, "-m", "shotfill_plugin.app"]
    init = (target / "init.py").read_text()
    assert init.startswith("nuke.pluginAddPath('./gizmos')\n")              # kept, line ended
    assert f"nuke.pluginAddPath({str(plugin_dir)!r})" in init
    assert "site-packages" not in init
    assert "Nuke > shotfill > Open panel" in capsys.readouterr().out


def test_nuke_install_again_updates_in_place(tmp_path):
    target = tmp_path / ".nuke"
    install.main(["nuke", "--target", str(target)])
    (target / "shotfill" / "shotfill_plugin" / "stale.py").write_text("")
    install.main(["nuke", "--target", str(target), "--engine-command", "shotfill"])
    init = (target / "init.py").read_text()
    assert init.count(install.BEGIN) == 1 and init.count("pluginAddPath") == 1
    assert not (target / "shotfill" / "shotfill_plugin" / "stale.py").exists()
    config = json.loads((target / "shotfill" / "shotfill_plugin" / "engine.json").read_text())
    assert config["command"] == ["shotfill"]


def test_the_installed_copy_finds_its_engine_without_the_engine_on_its_path(tmp_path):
    """A host's Python with only the plugin folder on its path: the copy imports, reads its
    engine.json, and never imports the engine or its packages."""
    target = tmp_path / ".nuke"
    install.main(["nuke", "--target", str(target), "--engine-command", "/opt/sf/bin/shotfill"])
    code = textwrap.dedent(f"""
        import sys
        sys.path = [p for p in sys.path if "site-packages" not in p]
        sys.path.insert(0, {str(target / "shotfill")!r})
        import shotfill_plugin.hosts.nuke.host, shotfill_plugin.paths as paths
        from shotfill_plugin.protocol import WarningEvent, parse_event
        assert parse_event('{{"event": "warning", "message": "x"}}') == WarningEvent("x")
        print(shotfill_plugin.__file__)
        print(paths.read_engine_config()["command"])
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("shotfill", "numpy", "torch")))
    """)
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    where, command, engine_modules = out.stdout.splitlines()
    assert where.startswith(str(target / "shotfill" / "shotfill_plugin"))
    assert command == "['/opt/sf/bin/shotfill']" and engine_modules == "[]"


def test_resolve_install_writes_a_script_that_adds_only_the_plugin_copy(tmp_path):
    scripts, lib = tmp_path / "Scripts" / "Utility", tmp_path / "lib"
    assert install.main(["resolve", "--target", str(scripts), "--lib", str(lib)]) == 0
    script = (scripts / "shotfill.py").read_text()
    assert f"sys.path.insert(0, {str(lib)!r})" in script and "site-packages" not in script
    assert "launcher.main(launcher.resolve_app(globals()))" in script
    assert (lib / "shotfill_plugin" / "hosts" / "resolve" / "host.py").is_file()
    compile(script, "shotfill.py", "exec")


def test_dry_run_changes_nothing(tmp_path, capsys):
    target = tmp_path / ".nuke"
    assert install.main(["nuke", "--target", str(target), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert not target.exists()
    assert out.count("would ") == 4 and "pluginAddPath" in out
    assert install.main(["resolve", "--target", str(tmp_path / "s"), "--lib", str(tmp_path / "l"), "--dry-run"]) == 0
    assert not (tmp_path / "s").exists() and not (tmp_path / "l").exists()


@pytest.mark.parametrize("platform, environ, expected", [
    ("darwin", {}, "Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility"),
    ("win32", {"APPDATA": "/roaming"}, "/roaming/Blackmagic Design/DaVinci Resolve/Support/Fusion/Scripts/Utility"),
    ("linux", {}, ".local/share/DaVinciResolve/Fusion/Scripts/Utility"),
])
def test_resolve_scripts_folder_per_os(platform, environ, expected):
    home = Path("/home/ed")
    folder = paths.resolve_scripts_dir(platform, environ, home).as_posix()
    assert folder.endswith(expected) and (platform == "win32" or folder.startswith("/home/ed/"))


def test_a_broken_engine_config_is_named(tmp_path):
    bad = tmp_path / "engine.json"
    bad.write_text('{"command": "shotfill"}')
    with pytest.raises(ValueError, match=r"engine\.json: 'command' must be a list of strings"):
        paths.read_engine_config(bad)
    bad.write_text("{")
    with pytest.raises(ValueError, match="not a shotfill engine config"):
        paths.read_engine_config(bad)
    assert paths.read_engine_config(tmp_path / "none.json") == {}
