"""The plugin system: hooks, collection, lazy discovery, failures and missing plugins."""

import sys
from importlib import metadata

import pluggy
import pytest

from ato.adict import ADict
from ato.errors import PluginNotInstalledError
from ato.plugins import hookimpl
from ato.plugins import manager as plugin_manager
from ato.plugins.manager import collect, get_plugin_manager
from tests.conftest import ROOT  # noqa: F401


class UpperFormat:
    """A toy format: one `key=VALUE` per line, values upper-cased on dump."""

    PLUGIN_NAME = "upper"
    suffixes = (".upper",)

    @staticmethod
    def loads(text, path, **kwargs):
        return dict(line.split("=", 1) for line in text.splitlines() if line)

    @staticmethod
    def dumps(data, path, **kwargs):
        return "".join(f"{k}={str(v).upper()}\n" for k, v in data.items())


class UpperPlugin:
    @hookimpl
    def ato_register_formats(self):
        return UpperFormat


@pytest.fixture
def pm():
    return get_plugin_manager(load_entrypoints=False)


@pytest.fixture
def registered():
    """Register UpperPlugin on the global manager and undo it afterwards."""
    pm = plugin_manager.plugin_manager()
    pm.register(UpperPlugin(), name="undo")
    plugin_manager._registries.clear()
    yield pm
    pm.unregister(name="undo")
    plugin_manager._registries.clear()


class TestCollect:
    def test_core_registers_json_through_the_hook(self, pm):
        """Core's JSON format comes through the same hook a third party uses."""
        formats = collect(pm.hook.ato_register_formats)
        assert formats["json"].suffixes == (".json",)

    def test_registered_plugin_is_collected(self, pm):
        """A plugin registered in place is collected by PLUGIN_NAME."""
        pm.register(UpperPlugin(), name="upper")
        assert collect(pm.hook.ato_register_formats)["upper"] is UpperFormat

    def test_duplicate_names_refused(self, pm):
        """Two classes with one PLUGIN_NAME are an error naming both."""
        class Other(UpperFormat):
            pass

        class OtherPlugin:
            @hookimpl
            def ato_register_formats(self):
                return Other

        pm.register(UpperPlugin(), name="a")
        pm.register(OtherPlugin(), name="b")
        with pytest.raises(ValueError, match="registers 'upper', already used by"):
            collect(pm.hook.ato_register_formats)

    def test_incomplete_class_is_refused_by_name(self):
        """A class lacking a member of its seam's interface fails when collected."""
        from ato.errors import UnknownPluginError
        from ato.plugins.interfaces import ConfigFormat

        class NoDump:
            PLUGIN_NAME = "nodump"
            suffixes = (".nd",)

            @staticmethod
            def loads(text, path):
                return {}

        class NoDumpPlugin:
            @hookimpl
            def ato_register_formats(self):
                return NoDump

        pm = get_plugin_manager(load_entrypoints=False)
        pm.register(NoDumpPlugin(), name="nodump")
        with pytest.raises(UnknownPluginError, match=r"NoDump \('nodump'\) lacks dumps of ConfigFormat"):
            collect(pm.hook.ato_register_formats, ConfigFormat)

    def test_misspelt_hook_fails_at_start(self):
        """check_pending() rejects an implementation of an unknown hook."""
        class Typo:
            @hookimpl
            def ato_register_format(self):
                return UpperFormat

        pm = get_plugin_manager(load_entrypoints=False)
        pm.register(Typo())
        with pytest.raises(pluggy.PluginValidationError, match="unknown hook"):
            pm.check_pending()


class TestFormatsThroughTheSeam:
    def test_load_and_dump(self, registered, tmp_path):
        """A registered format serves from_file and dump by suffix."""
        path = tmp_path / "c.upper"
        ADict(name="abc").dump(path)
        assert path.read_text() == "name=ABC\n"
        assert ADict.from_file(path) == {"name": "ABC"}

    def test_unknown_suffix(self, tmp_path):
        """An unknown suffix names the installed formats."""
        path = tmp_path / "c.weird"
        path.write_text("x")
        with pytest.raises(LookupError, match="no installed plugin provides '.weird'"):
            ADict.from_file(path)


class TestDiscovery:
    def test_broken_plugin_reported_and_others_work(self, monkeypatch):
        """A plugin that fails to import is listed with its error; the rest loads."""
        class EP:
            def __init__(self, name, loader):
                self.name, self.group, self._loader, self.dist = name, "ato", loader, None

            def load(self):
                return self._loader()

        def broken():
            raise ImportError("no module named 'missing_dep'")

        eps = [EP("broken", broken), EP("upper", lambda: UpperPlugin())]
        monkeypatch.setattr(metadata, "entry_points", lambda group=None: eps)
        plugin_manager.reset()
        try:
            assert plugin_manager.failures() == [("broken", "ImportError: no module named 'missing_dep'")]
            assert "upper" in plugin_manager.registry("format")
        finally:
            monkeypatch.undo()
            plugin_manager.reset()

    def test_import_scope_loads_no_plugins(self):
        """Plugins are discovered on first use, never at `import ato.scope`."""
        import subprocess

        code = ("import sys, ato.scope, ato.adict; "
                "print('pluggy' in sys.modules, 'ato.plugins.manager' in sys.modules)")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.stdout.strip() == "False False"

    def test_disabled_plugin_gives_install_hint(self, tmp_path):
        """Without ato-formats, YAML asks to install it (simulated by blocking it)."""
        import os
        import subprocess

        (tmp_path / "c.yaml").write_text("a: 1\n")
        code = ("from ato.adict import ADict\n"
                "try:\n    ADict.from_file('c.yaml')\n"
                "except LookupError as e:\n    print(type(e).__name__, e)\n")
        env = dict(os.environ, ATO_DISABLE_PLUGINS="formats")
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                              capture_output=True, text=True)
        assert proc.stdout.strip() == (
            "PluginNotInstalledError reading or writing '.yaml' files (c.yaml) needs the "
            "ato-formats distribution: pip install ato-formats")
        assert issubclass(PluginNotInstalledError, LookupError)


class TestAtoCommand:
    def test_ato_plugins_lists_providers(self):
        """`ato plugins` names each plugin and what it provides."""
        import subprocess

        proc = subprocess.run([sys.executable, "-m", "ato.cli", "plugins"], capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        assert "formats: json (.json), jsonl (.jsonl)" in proc.stdout
        assert "commands: plugins" in proc.stdout
