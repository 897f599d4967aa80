"""The plugin system: hooks, collection, lazy discovery, and isolation.

Isolation tests install small plugin distributions *for real* (a ``*.dist-info`` with an
``entry_points.txt`` on ``sys.path``), so discovery goes through ``importlib.metadata``
exactly as for a pip-installed plugin.  Each checks three things: the user gets one line
naming the distribution, the entry point and the fault when touching the broken thing;
every built-in and every other plugin keeps working; ``ato plugins`` says what is wrong.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from importlib import metadata

import pluggy
import pytest

from ato import cli
from ato.adict import ADict
from ato.errors import (
    AtoError,
    ConfigFileError,
    PluginError,
    PluginNotInstalledError,
    UnknownPluginError,
)
from ato.plugins import hookimpl
from ato.plugins import manager as plugin_manager
from ato.plugins.manager import check_plugin, collect, get_plugin_manager


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


GOOD_FORMAT = '''
from ato.plugins import hookimpl

class {cls}:
    PLUGIN_NAME = {name!r}
    suffixes = {suffixes!r}

    @staticmethod
    def loads(text, path, **kwargs):
        return {{"by": {name!r}}}

    @staticmethod
    def dumps(data, path, **kwargs):
        return {name!r} + "\\n"

@hookimpl
def ato_register_formats():
    return {cls}
'''


class Installed:
    """Installs plugin distributions into a tmp dir on ``sys.path`` and hides real ones."""

    def __init__(self, tmp_path, monkeypatch, capsys):
        self.root = tmp_path / "site"
        self.root.mkdir()
        self.monkeypatch, self.capsys = monkeypatch, capsys
        self.modules: list[str] = []
        self.hidden: set[str] = set()
        self.targets: set[str] = set()   # entry points installed here are never hidden
        monkeypatch.syspath_prepend(str(self.root))
        real = metadata.entry_points

        def entry_points(**kwargs):
            return [ep for ep in real(**kwargs) if ep.dist is None
                    or ep.dist.name not in self.hidden or ep.value in self.targets]

        real_version = metadata.version

        def version(name):
            installed_here = any(self.root.glob(f"{name.replace('-', '_')}-*.dist-info"))
            if name in self.hidden and not installed_here:
                raise metadata.PackageNotFoundError(name)
            return real_version(name)

        monkeypatch.setattr(metadata, "entry_points", entry_points)
        monkeypatch.setattr(metadata, "version", version)
        plugin_manager.reset()

    def install(self, dist: str, entry_points: dict, modules: dict, version: str = "1.0"):
        """A distribution ``dist`` whose ``ato`` entry points are ``entry_points`` and
        whose top-level modules are ``{name: source}``."""
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
        self.targets.update(entry_points.values())
        (info / "entry_points.txt").write_text(f"[ato]\n{lines}")
        for name, source in modules.items():
            (self.root / f"{name}.py").write_text(textwrap.dedent(source))
            self.modules.append(name)
        importlib.invalidate_caches()
        plugin_manager.reset()

    def hide(self, *dists: str) -> None:
        """Act as if ``dists`` were not installed."""
        self.hidden.update(dists)
        plugin_manager.reset()

    def setenv(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(name, value)
        plugin_manager.reset()

    def ato(self, *argv) -> tuple[int, str, str]:
        """Run the ``ato`` command in-process: (exit status, stdout, stderr)."""
        self.capsys.readouterr()
        try:
            code = cli.main(list(argv))
        except SystemExit as e:
            code = e.code
        out, err = self.capsys.readouterr()
        return code, out, err

    def plugins_row(self, name: str) -> dict:
        code, out, _ = self.ato("plugins", "--json")
        assert code == 0
        return {row["name"]: row for row in json.loads(out)["plugins"]}[name]

    def builtins_still_work(self, tmp_path) -> None:
        """JSON (core), YAML (ato-formats), `ato --help` and `ato plugins` all work."""
        ADict(a=1).dump(tmp_path / "o.json")
        assert ADict.from_file(tmp_path / "o.json") == {"a": 1}
        ADict(a=2).dump(tmp_path / "o.yaml")
        assert ADict.from_file(tmp_path / "o.yaml") == {"a": 2}
        code, out, _ = self.ato("--help")
        assert code == 0 and "plugins" in out
        code, out, _ = self.ato("plugins")
        assert code == 0 and "core  [ato-core" in out

    def close(self) -> None:
        for name in self.modules:
            sys.modules.pop(name, None)
        plugin_manager.reset()


@pytest.fixture
def site(tmp_path, monkeypatch, capsys):
    env = Installed(tmp_path, monkeypatch, capsys)
    yield env
    monkeypatch.undo()
    env.close()


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

    def test_strict_collect_names_both_sides_of_a_collision(self, pm):
        """Two classes with one PLUGIN_NAME: strict collect raises naming the loser, the
        winner and how to choose."""
        class Other(UpperFormat):
            suffixes = (".other",)

        class OtherPlugin:
            @hookimpl
            def ato_register_formats(self):
                return Other

        pm.register(UpperPlugin(), name="a")
        pm.register(OtherPlugin(), name="b")
        with pytest.raises(PluginError, match=r"plugin 'b' .*format 'upper' is also provided "
                                              r"by plugin 'a' .*ATO_PREFER_PLUGINS=b"):
            collect(pm.hook.ato_register_formats)
        assert collect(pm.hook.ato_register_formats, strict=False)["upper"] is UpperFormat

    def test_incomplete_class_is_refused_by_name(self, pm):
        """A class lacking a member of its seam's interface is refused, by name."""
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

        pm.register(NoDumpPlugin(), name="nodump")
        with pytest.raises(PluginError, match=r"NoDump \('nodump'\) lacks dumps, which "
                                              r"ConfigFormat requires"):
            collect(pm.hook.ato_register_formats)

    def test_check_plugin_lists_every_problem(self):
        """check_plugin, for a plugin's own tests: [] for a good plugin, each fault else."""
        assert check_plugin(UpperPlugin()) == []

        class Bad:
            @hookimpl
            def ato_register_formats(self):
                return [UpperFormat, None]

            @hookimpl
            def ato_register_commands(self):
                raise RuntimeError("boom")

        problems = check_plugin(Bad())
        assert problems == ["ato_register_formats() returned None in place of a class",
                            "ato_register_commands() raised RuntimeError: boom"]

    def test_check_plugin_reports_a_misspelt_hook(self):
        """A misspelt hook is rejected with the hook it probably meant."""
        class Typo:
            @hookimpl
            def ato_register_format(self):
                return UpperFormat

        assert check_plugin(Typo()) == [
            "@hookimpl ato_register_format() is not an Ato hook; did you mean "
            "ato_register_formats()?"]


class TestFormatsThroughTheSeam:
    def test_load_and_dump(self, registered, tmp_path):
        """A registered format serves from_file and dump by suffix."""
        path = tmp_path / "c.upper"
        ADict(name="abc").dump(path)
        assert path.read_text() == "name=ABC\n"
        assert ADict.from_file(path) == {"name": "ABC"}

    def test_unknown_suffix(self, tmp_path):
        """An unknown suffix names the installed suffixes."""
        path = tmp_path / "c.weird"
        path.write_text("x")
        with pytest.raises(UnknownPluginError, match=r"no installed plugin provides '.weird' "
                                                     r"\(installed: .*\.json"):
            ADict.from_file(path)

    def test_missing_file_names_the_path(self, tmp_path, monkeypatch):
        """A missing config file is one AtoError naming the path and where it was looked
        up; it is still a FileNotFoundError."""
        from ato.errors import ConfigFileNotFoundError

        monkeypatch.chdir(tmp_path)
        with pytest.raises(ConfigFileNotFoundError) as info:
            ADict.from_file("configs/nope.yaml")
        assert str(info.value) == f"configs/nope.yaml: config file does not exist (looked up in {tmp_path})"
        assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, AtoError)
        assert info.value.filename == "configs/nope.yaml"
        with pytest.raises(ConfigFileNotFoundError, match=r"^/abs/x.json: config file does not exist$"):
            ADict().load("/abs/x.json")

    def test_directory_and_binary_files(self, tmp_path):
        """A directory or a file that is not UTF-8 is a ConfigFileError naming it."""
        (tmp_path / "d.json").mkdir()
        with pytest.raises(ConfigFileError, match=r"d.json: is a directory, not a config file"):
            ADict.from_file(tmp_path / "d.json")
        (tmp_path / "b.json").write_bytes(b'{"a": "\xff"}')
        with pytest.raises(ConfigFileError, match=r"b.json: is not UTF-8 text \(byte 0xff at "
                                                  r"offset 7\)"):
            ADict.from_file(tmp_path / "b.json")

    def test_a_subcommand_turns_a_missing_file_into_one_line(self, site, tmp_path):
        """A command that loads a config exits 2 with one line naming the missing path."""
        site.install("loader", {"loader": "loader_plugin"}, {"loader_plugin": """
            from ato.plugins import hookimpl
            from ato.adict import ADict

            class Load:
                PLUGIN_NAME = "load"
                @staticmethod
                def add_arguments(parser):
                    parser.add_argument("path")
                @staticmethod
                def run(args):
                    print(ADict.from_file(args.path))
                    return 0

            @hookimpl
            def ato_register_commands():
                return Load
        """})
        missing = tmp_path / "missing.yaml"
        code, out, err = site.ato("load", str(missing))
        assert (code, out) == (2, "")
        assert err == f"ato load: error: {missing}: config file does not exist\n"

    def test_longest_suffix_wins(self, pm, registered, tmp_path):
        """A multi-part suffix (`.upper.json`) beats the plain one it ends with."""
        class Double(UpperFormat):
            PLUGIN_NAME = "double"
            suffixes = (".upper.json",)

        class DoublePlugin:
            @hookimpl
            def ato_register_formats(self):
                return Double

        registered.register(DoublePlugin(), name="double")
        plugin_manager._registries.clear()
        try:
            assert plugin_manager.format_for("a.upper.json") is Double
            assert plugin_manager.format_for("a.json").PLUGIN_NAME == "json"
            assert plugin_manager.format_for("A.UPPER") is UpperFormat
        finally:
            registered.unregister(name="double")


class TestIsolation:
    """Each way one plugin can be wrong; every other plugin and built-in keeps working."""

    def test_module_that_fails_to_import(self, site, tmp_path):
        site.install("needs-torchx", {"torchx": "torchx_plugin"},
                     {"torchx_plugin": "import torchx_missing_dependency\n"}, version="2.1")
        site.builtins_still_work(tmp_path)
        assert "1 plugin problem(s): run 'ato plugins' for details" in site.ato("--help")[1]
        assert site.ato("plugins", "--check")[0] == 1
        assert site.ato("plugins")[0] == 0
        row = site.plugins_row("torchx")
        assert (row["distribution"], row["version"], row["state"]) == ("needs-torchx", "2.1", "broken")
        assert row["reason"] == ("import failed: ModuleNotFoundError: No module named "
                                 "'torchx_missing_dependency'")
        code, out, _ = site.ato("plugins")
        assert ("torchx  [needs-torchx 2.1]  broken: import failed: ModuleNotFoundError: "
                "No module named 'torchx_missing_dependency'") in out
        with pytest.raises(UnknownPluginError, match=r"no installed plugin provides '.tx'.*; 1 "
                           r"broken plugin\(s\) might provide it: 'torchx' \(needs-torchx "
                           r"2.1\) \(details: ato plugins\)$"):
            ADict(a=1).dump(tmp_path / "x.tx")

    def test_misspelt_hook(self, site, tmp_path):
        """`@hookimpl def ato_register_format()` breaks its own plugin, not `.json`."""
        site.install("typo-dist", {"typo": "typo_plugin"}, {"typo_plugin": """
            from ato.plugins import hookimpl

            @hookimpl
            def ato_register_format():
                return []
        """})
        site.builtins_still_work(tmp_path)
        row = site.plugins_row("typo")
        assert row["state"] == "broken"
        assert row["reason"] == ("@hookimpl ato_register_format() is not an Ato hook; did you "
                                 "mean ato_register_formats()?")

    def test_hook_with_arguments_the_spec_lacks(self, site, tmp_path):
        """A mistyped hook signature is pluggy's validation error, on one line."""
        site.install("args-dist", {"args": "args_plugin"}, {"args_plugin": """
            from ato.plugins import hookimpl

            @hookimpl
            def ato_register_formats(config):
                return []
        """})
        site.builtins_still_work(tmp_path)
        row = site.plugins_row("args")
        assert row["state"] == "broken"
        assert "ato_register_formats" in row["reason"] and "config" in row["reason"]
        assert "\n" not in row["reason"]

    def test_hook_without_hookimpl(self, site, tmp_path):
        """A function named like a hook but not marked would silently never run."""
        site.install("unmarked", {"unmarked": "unmarked_plugin"}, {"unmarked_plugin": """
            def ato_register_formats():
                return []
        """})
        site.builtins_still_work(tmp_path)
        assert site.plugins_row("unmarked")["reason"] == (
            "ato_register_formats() lacks @hookimpl, so Ato would never call it "
            "(from ato.plugins import hookimpl)")

    def test_hook_that_raises(self, site, tmp_path):
        """A tracker hook whose own import fails breaks no unrelated tracker lookup."""
        site.install("s3-tracker", {"s3": "s3_plugin"}, {"s3_plugin": """
            from ato.plugins import hookimpl

            @hookimpl
            def ato_register_trackers():
                import boto_not_installed
                return boto_not_installed.Tracker

            @hookimpl
            def ato_register_formats():
                class Ini:
                    PLUGIN_NAME = "ini"
                    suffixes = (".ini",)
                    loads = staticmethod(lambda text, path, **kw: {"ini": True})
                    dumps = staticmethod(lambda data, path, **kw: "")
                return Ini
        """})
        site.builtins_still_work(tmp_path)
        assert plugin_manager.tracker_for_url("sqlite:///x.db").PLUGIN_NAME == "sql"
        (tmp_path / "c.ini").write_text("")
        assert ADict.from_file(tmp_path / "c.ini") == {"ini": True}  # its other hook works
        # loaded (its formats work), so not called broken: its failing hook is named
        with pytest.raises(UnknownPluginError, match=r"'s3' URLs: no installed plugin provides "
                           r"'s3' \(installed: [^)]*\); 1 loaded plugin\(s\) whose "
                           r"ato_register_trackers\(\) failed might provide it: 's3' "
                           r"\(s3-tracker 1.0\): ato_register_trackers\(\) raised "
                           r"ModuleNotFoundError: No module named 'boto_not_installed'$"):
            plugin_manager.tracker_for_url("s3://bucket/runs")
        with pytest.raises(UnknownPluginError) as info:  # its formats hook worked
            ADict(a=1).dump(tmp_path / "x.zzz")
        assert "broken" not in str(info.value)
        row = site.plugins_row("s3")
        assert row["state"] == "loaded" and row["provides"] == {"formats": ["ini (.ini)"]}
        assert row["errors"] == ["ato_register_trackers() raised ModuleNotFoundError: "
                                 "No module named 'boto_not_installed'"]

    @pytest.mark.parametrize("returned, message", [
        ("'yaml'", "ato_register_formats() returned 'yaml' (a str), not a class"),
        ("[object()]", "ato_register_formats() returned <object object at"),
        ("[42, None]", "ato_register_formats() returned 42 (an int), not a class"),
    ])
    def test_hook_returning_the_wrong_thing(self, site, tmp_path, returned, message):
        site.install("wrong", {"wrong": "wrong_plugin"}, {"wrong_plugin": f"""
            from ato.plugins import hookimpl

            @hookimpl
            def ato_register_formats():
                return {returned}
        """})
        site.builtins_still_work(tmp_path)
        row = site.plugins_row("wrong")
        assert row["state"] == "broken" and row["reason"].startswith(message)
        code, out, _ = site.ato("plugins")
        assert "wrong  [wrong 1.0]  broken: ato_register_formats() returned" in out

    @pytest.mark.parametrize("body", ["return None", "return", "pass", "return []"])
    def test_hook_returning_nothing_provides_nothing(self, site, tmp_path, body):
        """None is pluggy's "no result": like [], it provides nothing and is no error."""
        site.install("optional", {"optional": "optional_plugin"}, {"optional_plugin": f"""
            from ato.plugins import hookimpl

            @hookimpl
            def ato_register_formats():
                {body}

            @hookimpl
            def ato_register_commands():
                class Hello:
                    PLUGIN_NAME = "hello"
                    add_arguments = staticmethod(lambda parser: None)
                    run = staticmethod(lambda args: 0)
                return Hello
        """})
        site.builtins_still_work(tmp_path)
        row = site.plugins_row("optional")
        assert row["state"] == "loaded" and row["errors"] == []
        assert row["provides"] == {"commands": ["hello"]}
        assert site.ato("plugins", "--check")[0] == 0

    def test_plugin_whose_every_hook_fails_is_broken(self, site, tmp_path):
        """Loaded but nothing usable and something failed: broken, first error as reason,
        the others as error lines; one usable hook keeps it loaded (test_hook_that_raises)."""
        site.install("allbad", {"allbad": "allbad_plugin"}, {"allbad_plugin": """
            from ato.plugins import hookimpl

            @hookimpl
            def ato_register_formats():
                raise RuntimeError("no formats today")

            @hookimpl
            def ato_register_commands():
                return "hello"

            @hookimpl
            def ato_register_trackers():
                return None
        """})
        site.builtins_still_work(tmp_path)
        row = site.plugins_row("allbad")
        assert row["state"] == "broken" and row["provides"] == {}
        assert row["reason"] == "ato_register_formats() raised RuntimeError: no formats today"
        assert row["errors"] == ["ato_register_commands() returned 'hello' (a str), not a class"]
        code, out, _ = site.ato("plugins")
        assert ("allbad  [allbad 1.0]  broken: ato_register_formats() raised RuntimeError: "
                "no formats today\n    error: ato_register_commands() returned 'hello'") in out

    def test_unknown_key_lists_only_plugins_that_might_provide_it(self, site, tmp_path):
        """Short: count and names; a plugin whose refused classes claim other keys, or whose
        failing hook is of another seam, is not listed."""
        site.install("importfail", {"importfail": "importfail_plugin"},
                     {"importfail_plugin": "import not_there_at_all\n"})
        site.install("otherseam", {"otherseam": "otherseam_plugin"}, {"otherseam_plugin": """
            from ato.plugins import hookimpl

            @hookimpl
            def ato_register_trackers():
                raise RuntimeError("x" * 500)
        """})
        site.install("otherkey", {"otherkey": "otherkey_plugin"}, {"otherkey_plugin": """
            from ato.plugins import hookimpl

            class Half:
                PLUGIN_NAME = "half"
                suffixes = (".half",)

            @hookimpl
            def ato_register_formats():
                return Half
        """})
        site.install("noname", {"noname": "noname_plugin"}, {"noname_plugin": """
            from ato.plugins import hookimpl

            class Anon:
                suffixes = (".anon",)

            @hookimpl
            def ato_register_formats():
                return [Anon, "yaml"]
        """})
        with pytest.raises(UnknownPluginError) as info:
            ADict(a=1).dump(tmp_path / "o.zzz")
        message = str(info.value)
        assert message.endswith("; 2 broken plugin(s) might provide it: 'importfail' "
                                "(importfail 1.0), 'noname' (noname 1.0) (details: ato plugins)")
        assert "otherseam" not in message and "otherkey" not in message
        assert len(message) < 400 and "x" * 50 not in message
        with pytest.raises(PluginError, match=r"'.half' files .*Half \('half'\) lacks dumps"):
            ADict(a=1).dump(tmp_path / "o.half")  # the refused claim itself is named in full
        with pytest.raises(UnknownPluginError) as info:
            plugin_manager.search_algorithm("ashaa")
        assert info.value.args[0].endswith("might provide it: 'importfail' (importfail 1.0) "
                                           "(details: ato plugins)")
        assert "did you mean 'asha'?" in str(info.value)

    def test_format_lacking_dumps(self, site, tmp_path):
        """Only the incomplete format is refused; touching it names plugin and fault."""
        site.install("props", {"props": "props_plugin"}, {"props_plugin": """
            from ato.plugins import hookimpl

            class Props:
                PLUGIN_NAME = "props"
                suffixes = (".props",)
                @staticmethod
                def loads(text, path, **kwargs):
                    return {}

            @hookimpl
            def ato_register_formats():
                return Props
        """})
        site.builtins_still_work(tmp_path)
        expected = ("writing or reading '.props' files ({}): plugin 'props' (props 1.0, entry "
                    "point props = props_plugin): format class props_plugin.Props ('props') "
                    "lacks dumps, which ConfigFormat requires")
        with pytest.raises(PluginError) as info:
            ADict(a=1).dump(tmp_path / "o.props")
        assert str(info.value) == expected.format(tmp_path / "o.props").replace(
            "writing or reading", "reading or writing")
        assert not (tmp_path / "o.props").exists()
        row = site.plugins_row("props")
        assert row["state"] == "broken"
        assert row["reason"].endswith("lacks dumps, which ConfigFormat requires")

    def test_member_that_is_not_a_method(self, site, tmp_path):
        site.install("nocall", {"nocall": "nocall_plugin"}, {"nocall_plugin": """
            from ato.plugins import hookimpl

            class NoCall:
                PLUGIN_NAME = "nocall"
                suffixes = (".nc",)
                loads = staticmethod(lambda text, path, **kw: {})
                dumps = None

            @hookimpl
            def ato_register_formats():
                return NoCall
        """})
        with pytest.raises(PluginError, match=r"NoCall \('nocall'\): dumps is None, not a method"):
            ADict(a=1).dump(tmp_path / "x.nc")
        site.builtins_still_work(tmp_path)

    def test_dumps_returning_bytes_leaves_the_file_untouched(self, site, tmp_path):
        site.install("bytesfmt", {"bytesfmt": "bytes_plugin"}, {"bytes_plugin": """
            from ato.plugins import hookimpl

            class B:
                PLUGIN_NAME = "b"
                suffixes = (".b",)
                loads = staticmethod(lambda text, path, **kw: {})
                dumps = staticmethod(lambda data, path, **kw: b"x")

            @hookimpl
            def ato_register_formats():
                return B
        """})
        (tmp_path / "keep.b").write_text("old")
        with pytest.raises(PluginError, match=r"plugin 'bytesfmt' .*B.dumps returned a bytes, "
                                              r"not the text"):
            ADict(a=1).dump(tmp_path / "keep.b")
        assert (tmp_path / "keep.b").read_text() == "old"

    @pytest.mark.parametrize("raises, expected", [
        ("RuntimeError('disk on fire')", PluginError),
        ("KeyError('k')", PluginError),
        ("ConfigFileError(path, 'RZ cannot hold the key 1')", ConfigFileError),
    ])
    def test_dumps_that_raises_is_the_plugin_s_fault_unless_an_ato_error(
            self, site, tmp_path, raises, expected):
        """Any other exception from dumps is a PluginError naming the plugin, distribution
        and file with the original message; an Ato error passes through; nothing is
        written either way."""
        site.install("rzfmt", {"rz": "rz_plugin"}, {"rz_plugin": f"""
            from ato.errors import ConfigFileError
            from ato.plugins import hookimpl

            class RZ:
                PLUGIN_NAME = "rz"
                suffixes = (".rz",)
                loads = staticmethod(lambda text, path, **kw: {{}})

                @staticmethod
                def dumps(data, path, **kw):
                    raise {raises}

            @hookimpl
            def ato_register_formats():
                return RZ
        """})
        path = tmp_path / "o.rz"
        with pytest.raises(expected) as info:
            ADict(a=1).dump(path)
        if expected is PluginError:
            message = str(info.value)
            assert message.startswith(f"writing {path}: plugin 'rz' (rzfmt 1.0")
            assert "RZ.dumps raised " + raises.split("(")[0] in message
            assert raises.split("'")[1] in message and "\n" not in message
        else:
            assert str(info.value) == f"{path}: RZ cannot hold the key 1"
        assert not path.exists()
        site.builtins_still_work(tmp_path)

    @pytest.mark.parametrize("suffixes, fault", [
        ('(".conf")', "suffixes must be a tuple of strings, got the string '.conf'; write "
                      "('.conf',) with the comma"),
        # every problem is named: the missing comma and the upper case
        ('(".BS")', "suffixes must be a tuple of strings, got the string '.BS'; write "
                    "('.bs',) with the comma; and '.BS' is not a lower-case suffix with its "
                    "dot, like '.conf'"),
        ('("bs")', "suffixes must be a tuple of strings, got the string 'bs'; write "
                   "('bs',) with the comma; and 'bs' is not a lower-case suffix with its dot"),
        ('("conf",)', "suffixes 'conf' is not a lower-case suffix with its dot, like '.conf'"),
        ('(".CONF",)', "suffixes '.CONF' is not a lower-case suffix with its dot"),
        ('()', "suffixes must be a non-empty tuple of strings, got ()"),
        ('(".conf", 3)', "suffixes holds 3, not a string"),
    ])
    def test_bad_suffixes(self, site, tmp_path, suffixes, fault):
        """A string is not a tuple (`.conf` must not match `a.c`); a suffix has its dot."""
        site.install("conf", {"conf": "conf_plugin"}, {"conf_plugin": GOOD_FORMAT.format(
            cls="Conf", name="conf", suffixes=()).replace("suffixes = ()", f"suffixes = {suffixes}")})
        site.builtins_still_work(tmp_path)
        (tmp_path / "a.c").write_text("{}")
        with pytest.raises(UnknownPluginError, match="no installed plugin provides '.c'"):
            ADict.from_file(tmp_path / "a.c")
        row = site.plugins_row("conf")
        assert row["state"] == "broken" and fault in row["reason"]

    def test_string_suffix_is_named_when_touched(self, site, tmp_path):
        site.install("conf", {"conf": "conf_plugin"}, {"conf_plugin": GOOD_FORMAT.format(
            cls="Conf", name="conf", suffixes=".conf")})
        with pytest.raises(PluginError, match=r"plugin 'conf' \(conf 1.0, entry point conf = "
                                              r"conf_plugin\): format class conf_plugin.Conf "
                                              r"\('conf'\): suffixes must be a tuple"):
            ADict(a=1).dump(tmp_path / "x.conf")

    def test_class_without_plugin_name(self, site, tmp_path):
        site.install("anon", {"anon": "anon_plugin"}, {"anon_plugin": """
            from ato.plugins import hookimpl

            class Search:
                def main(self, func):
                    return func

            @hookimpl
            def ato_register_search_algorithms():
                return Search
        """})
        site.builtins_still_work(tmp_path)
        assert plugin_manager.search_algorithm("hyperband").PLUGIN_NAME == "hyperband"
        assert site.plugins_row("anon")["reason"] == (
            "search class anon_plugin.Search has no "
            "PLUGIN_NAME (a non-empty string); got None")

    def test_tracker_with_bad_schemes(self, site, tmp_path):
        site.install("jl", {"jl": "jl_plugin"}, {"jl_plugin": """
            from ato.plugins import hookimpl

            class T:
                PLUGIN_NAME = "jl"
                schemes = ("jl://",)
                logger = classmethod(lambda cls, config, **kw: None)
                finder = classmethod(lambda cls, config, **kw: None)

            @hookimpl
            def ato_register_trackers():
                return T
        """})
        assert plugin_manager.tracker_for_url("sqlite:///x.db").PLUGIN_NAME == "sql"
        assert "schemes 'jl://' is not a lower-case URL scheme without ':'" in \
            site.plugins_row("jl")["reason"]

    def test_command_lacking_run(self, site, tmp_path):
        """`ato --help` and other commands work; the command itself says what is wrong."""
        site.install("norun", {"norun": "norun_plugin"}, {"norun_plugin": """
            from ato.plugins import hookimpl

            class Sync:
                PLUGIN_NAME = "sync"
                help = "sync runs"
                @staticmethod
                def add_arguments(parser):
                    pass

            @hookimpl
            def ato_register_commands():
                return Sync
        """})
        site.builtins_still_work(tmp_path)
        code, out, err = site.ato("sync")
        assert (code, out) == (2, "")
        assert err == ("ato: error: 'ato sync': plugin 'norun' (norun 1.0, entry point norun = "
                       "norun_plugin): command class norun_plugin.Sync ('sync') lacks run, which "
                       "Command requires\n")

    def test_command_whose_add_arguments_fails(self, site, tmp_path):
        """A broken add_arguments affects only its own command, as one line."""
        site.install("clash", {"clash": "clash_plugin"}, {"clash_plugin": """
            from ato.plugins import hookimpl

            class Clash:
                PLUGIN_NAME = "clash"
                help = "100% broken"
                @staticmethod
                def add_arguments(parser):
                    parser.add_argument("--x")
                    parser.add_argument("--x")
                @staticmethod
                def run(args):
                    return 0

            @hookimpl
            def ato_register_commands():
                return Clash
        """})
        site.builtins_still_work(tmp_path)
        code, out, _ = site.ato("--help")
        assert "100% broken" in out
        code, out, err = site.ato("clash")
        assert code == 2 and err.count("\n") == 1
        assert err.startswith("ato: error: 'ato clash' is unusable: plugin 'clash' (clash 1.0, "
                              "entry point clash = clash_plugin): Clash.add_arguments(parser) "
                              "raised ArgumentError: argument --x: conflicting option string")

    def test_command_named_like_a_builtin(self, site, tmp_path):
        """Core's `plugins` always wins, even over ATO_PREFER_PLUGINS; the loser is reported."""
        site.install("shadow", {"shadow": "shadow_plugin"}, {"shadow_plugin": """
            from ato.plugins import hookimpl

            class Plugins:
                PLUGIN_NAME = "plugins"
                @staticmethod
                def add_arguments(parser):
                    pass
                @staticmethod
                def run(args):
                    print("shadowed!")
                    return 0

            @hookimpl
            def ato_register_commands():
                return Plugins
        """})
        site.builtins_still_work(tmp_path)
        row = site.plugins_row("shadow")
        assert row["state"] == "loaded" and row["provides"] == {}
        assert row["conflicts"] == [
            "command 'plugins' is also provided by built-in plugin 'core' (ato-core "
            f"{metadata.version('ato-core')}, module ato.plugins.builtin), which takes "
            "precedence; core's built-in commands cannot be replaced; give yours another "
            "name"]
        site.setenv("ATO_PREFER_PLUGINS", "shadow")   # the diagnostic cannot be replaced
        code, out, _ = site.ato("plugins")
        assert code == 0 and "shadowed!" not in out and "shadow  [shadow 1.0]  loaded" in out
        assert "conflict: command 'plugins' is also provided by built-in plugin 'core'" in out
        assert site.plugins_row("shadow")["provides"] == {}

    def test_preferred_plugin_still_wins_a_core_format(self, site, tmp_path):
        """Only core's commands are fixed: ATO_PREFER_PLUGINS may replace its JSON format."""
        site.install("fastjson", {"fastjson": "fastjson_plugin"}, {
            "fastjson_plugin": GOOD_FORMAT.format(cls="F", name="fastjson", suffixes=(".json",))})
        (tmp_path / "c.json").write_text("{}")
        assert ADict.from_file(tmp_path / "c.json") == {}
        site.setenv("ATO_PREFER_PLUGINS", "fastjson")
        assert ADict.from_file(tmp_path / "c.json") == {"by": "fastjson"}

    def test_two_formats_on_one_suffix(self, site, tmp_path):
        """Precedence: Ato's own distributions, then entry-point names in order; the loser
        is reported; ATO_PREFER_PLUGINS chooses."""
        site.install("zeta-yaml", {"zeta": "zeta_plugin"}, {"zeta_plugin": GOOD_FORMAT.format(
            cls="Z", name="zeta", suffixes=(".yaml", ".cfg"))})
        site.install("alpha-cfg", {"alpha": "alpha_plugin"}, {"alpha_plugin": GOOD_FORMAT.format(
            cls="A", name="alpha", suffixes=(".cfg",))})
        (tmp_path / "c.cfg").write_text("")
        site.builtins_still_work(tmp_path)               # .yaml stays ato-formats'
        assert ADict.from_file(tmp_path / "c.cfg") == {"by": "alpha"}
        row = site.plugins_row("zeta")
        assert row["provides"] == {} and len(row["conflicts"]) == 2
        assert row["conflicts"][0].startswith("format 'zeta' claims '.yaml', already served by "
                                              "plugin 'formats' (ato-formats")
        code, out, _ = site.ato("plugins")
        assert "    conflict: format 'zeta' claims '.cfg', already served by plugin 'alpha'" in out

        site.setenv("ATO_PREFER_PLUGINS", "zeta")
        assert ADict.from_file(tmp_path / "c.cfg") == {"by": "zeta"}
        assert ADict.from_file(tmp_path / "o.yaml") == {"by": "zeta"}
        assert site.plugins_row("alpha")["conflicts"][0].startswith(
            "format 'alpha' claims '.cfg', already served by plugin 'zeta'")

    def test_duplicate_entry_point_name(self, site, tmp_path):
        """A third party reusing `sql` as its entry-point name cannot hide ato-sql."""
        site.install("evil-sql", {"sql": "evil_plugin"}, {"evil_plugin": GOOD_FORMAT.format(
            cls="E", name="evil", suffixes=(".evil",))})
        assert plugin_manager.tracker_for_url("sqlite:///x.db").PLUGIN_NAME == "sql"
        states = [(r.distribution, r.state) for r in plugin_manager.plugin_records()
                  if r.name == "sql"]
        assert states == [("ato-sql", "loaded"), ("evil-sql", "broken")]
        code, out, _ = site.ato("plugins")
        assert ("sql  [evil-sql 1.0]  broken: the entry-point name 'sql' is already used by "
                "ato-sql") in out

    def test_disabled_plugin_is_listed_as_disabled(self, site, tmp_path):
        """ATO_DISABLE_PLUGINS shows the plugin's own distribution, as disabled; a name
        that matches no plugin is a note."""
        site.setenv("ATO_DISABLE_PLUGINS", "formats, fromats")
        code, out, _ = site.ato("plugins")
        version = metadata.version("ato-formats")
        assert f"formats  [ato-formats {version}]  disabled by ATO_DISABLE_PLUGINS\n" in out
        assert "note: ATO_DISABLE_PLUGINS names 'fromats', which is no installed plugin" in out
        assert "ato-core (built in)" not in out
        with pytest.raises(PluginNotInstalledError, match=r"needs the ato-formats distribution, "
                           r"which is installed but its plugin 'formats' is disabled"):
            ADict(a=1).dump(tmp_path / "x.yaml")


class TestInstallHints:
    """With a distribution absent, each feature it provides names it."""

    @pytest.mark.parametrize("dist, action", [
        ("ato-formats", lambda t: ADict.from_file(t / "c.yaml")),
        ("ato-formats", lambda t: ADict(a=1).dump(t / "c.toml")),
        ("ato-mmlab", lambda t: ADict.from_file(t / "c.py")),
        ("ato-mmlab", lambda t: ADict.compose_hierarchy(t)),
        ("ato-sql", lambda t: plugin_manager.tracker_for_url("postgresql+psycopg://h/db")),
        ("ato-hyperopt", lambda t: plugin_manager.search_algorithm("tpe")),
        ("ato-hyperopt", lambda t: plugin_manager.search_algorithm("bohb")),
        ("ato-hyperopt", lambda t: plugin_manager.search_algorithm("asha")),
    ])
    def test_feature_names_its_distribution(self, site, tmp_path, dist, action):
        for name in ("c.yaml", "c.py"):
            (tmp_path / name).write_text("a: 1\n")
        site.hide(dist)
        with pytest.raises(PluginNotInstalledError, match=f"needs the {dist} distribution: "
                                                          f"pip install {dist}$"):
            action(tmp_path)

    @pytest.mark.parametrize("command, dist", [("runs", "ato-sql"), ("ui", "ato-ui")])
    def test_ato_subcommand_names_its_distribution(self, site, command, dist):
        site.hide("ato-sql", "ato-ui")
        code, out, err = site.ato(command, "list")
        assert (code, out) == (2, "")
        assert err == (f"ato: error: 'ato {command}' needs the {dist} distribution: "
                       f"pip install {dist}\n")
        code, out, _ = site.ato("--help")
        assert f"  {command:<10}pip install {dist}" in out

    @pytest.mark.parametrize("disabled, expect", [
        ("sql", ["  runs      ato-sql (disabled by ATO_DISABLE_PLUGINS; unset "
                 "ATO_DISABLE_PLUGINS to enable it)"]),
        ("formats,sql-registry", [
            "  models    ato-sql (disabled by ATO_DISABLE_PLUGINS; set "
            "ATO_DISABLE_PLUGINS=formats to enable it)",
            "  store     ato-sql (disabled by ATO_DISABLE_PLUGINS; set "
            "ATO_DISABLE_PLUGINS=formats to enable it)"]),
    ])
    def test_disabled_is_not_called_not_installed(self, site, disabled, expect):
        """An installed but disabled distribution is never listed as 'not installed':
        not in `ato --help`, not when its command or feature is used."""
        site.hide("ato-ui")
        site.setenv("ATO_DISABLE_PLUGINS", disabled)
        code, out, _ = site.ato("--help")
        assert code == 0
        installed_part, _, missing_part = out.partition("not installed:")
        assert "commands of installed distributions whose plugin is disabled:" in installed_part
        for line in expect:
            assert line in installed_part
        assert "ato-sql" not in missing_part and "  ui        pip install ato-ui" in missing_part
        command = expect[0].split()[0]
        code, _, err = site.ato(command, "list")
        assert code == 2 and "which is installed but its plugin" in err
        assert "pip install" not in err and "to enable it" in err

    def test_disabled_tracker_says_how_to_enable(self, site):
        site.setenv("ATO_DISABLE_PLUGINS", "mmlab,sql")
        with pytest.raises(PluginNotInstalledError, match=r"installed but its plugin 'sql' is "
                           r"disabled by ATO_DISABLE_PLUGINS; set ATO_DISABLE_PLUGINS=mmlab "
                           r"to enable it$"):
            plugin_manager.tracker_for_url("postgresql://h/db")

    def test_installed_without_entry_point_is_not_called_missing(self, site, monkeypatch):
        """A distribution whose metadata is there but whose plugin is not registered."""
        site.hide("ato-hyperopt")
        monkeypatch.setattr(metadata, "version", lambda name: "3.0")
        with pytest.raises(PluginError, match=r"needs the ato-hyperopt distribution, which is "
                                              r"installed but registers no 'ato' entry point"):
            plugin_manager.search_algorithm("asha")

    def test_unknown_command_is_still_argparse(self, site):
        code, _, err = site.ato("frobnicate")
        assert code == 2 and "invalid choice: 'frobnicate'" in err

    def test_close_names_are_suggested(self):
        with pytest.raises(UnknownPluginError, match=r"no installed plugin provides 'hyperbnd'; "
                                                     r"did you mean 'hyperband'\?"):
            plugin_manager.search_algorithm("hyperbnd")

    def test_broken_first_party_plugin_is_not_called_missing(self, site, tmp_path):
        """An installed but broken ato-formats is reported as broken, not as absent."""
        site.hide("ato-formats")
        site.install("ato-formats", {"formats": "fake_formats"},
                     {"fake_formats": "import yaml_is_missing\n"}, version="9.9")
        with pytest.raises(PluginError, match=r"needs the ato-formats distribution, which is "
                           r"installed but broken: plugin 'formats' \(ato-formats 9.9, entry "
                           r"point formats = fake_formats\): import failed: ModuleNotFoundError"):
            ADict(a=1).dump(tmp_path / "x.yaml")

    def test_table_matches_what_the_distributions_provide(self):
        """DISTRIBUTIONS says exactly what each installed Ato distribution registers."""
        provided: dict = {}
        for record in plugin_manager.plugin_records():
            if record.distribution not in plugin_manager.DISTRIBUTIONS:
                continue
            for kind in plugin_manager.SEAMS:
                seam = plugin_manager._seam(kind)
                keys = {k for k, cls in seam.by_key.items() if seam.owner[cls] == record.name}
                if keys:
                    provided.setdefault(record.distribution, {}).setdefault(kind, set()).update(keys)
        for dist, seams in provided.items():
            table = {kind: set(keys) for kind, keys in plugin_manager.DISTRIBUTIONS[dist].items()}
            assert seams == table, f"DISTRIBUTIONS[{dist!r}] is out of date"


class TestDiscovery:
    def test_import_scope_loads_no_plugins(self):
        """Plugins are discovered on first use, never at `import ato.scope`."""
        code = ("import sys, ato.scope, ato.adict; "
                "print('pluggy' in sys.modules, 'ato.plugins.manager' in sys.modules)")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.stdout.strip() == "False False"

    def test_register_checked_leaves_the_manager_clean(self, pm):
        """A rejected plugin is unregistered, so check_pending() passes afterwards."""
        class Typo:
            @hookimpl
            def ato_register_format(self):
                return UpperFormat

        assert plugin_manager.register_checked(pm, Typo(), "typo").startswith("@hookimpl")
        pm.check_pending()
        assert pm.get_plugin("typo") is None
        with pytest.raises(pluggy.PluginValidationError):
            pm.register(Typo(), name="again")
            pm.check_pending()


class TestAtoCommand:
    def test_ato_plugins_lists_providers(self):
        """`ato plugins`, as a real process, names each plugin and what it provides."""
        proc = subprocess.run([sys.executable, "-m", "ato.cli", "plugins"], capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        version = metadata.version("ato-core")
        assert proc.stdout.startswith(f"core  [ato-core {version}]  loaded\n"
                                      "    formats: json (.json), jsonl (.jsonl)\n"
                                      "    commands: plugins\n")
        assert "    trackers: sql (sqlite, postgresql" in proc.stdout

    def test_an_unknown_option_is_named_by_its_command(self):
        """`ato plugins --bogus` errs with the command's usage and name (it printed the
        top-level `usage: ato [-h] COMMAND ...`, as if the command were unknown)."""
        proc = subprocess.run([sys.executable, "-m", "ato.cli", "plugins", "--bogus"],
                              capture_output=True, text=True)
        assert proc.returncode == 2
        assert proc.stderr.startswith("usage: ato plugins ")
        assert proc.stderr.rstrip().endswith("ato plugins: error: unrecognized arguments: --bogus")

    def test_check_passes_for_the_shipped_plugins(self, site):
        """`ato plugins --check` exits 0 when nothing is broken (conflicts are allowed)."""
        assert site.ato("plugins", "--check")[0] == 0

    def test_ato_plugins_json(self, site):
        code, out, _ = site.ato("plugins", "--json")
        data = json.loads(out)
        core = data["plugins"][0]
        assert core["name"] == "core" and core["state"] == "loaded"
        assert core["entry_point"] == "ato.plugins.builtin"
        assert set(core) == {"name", "distribution", "version", "entry_point", "state", "reason",
                             "provides", "errors", "conflicts"}


class TestExamplePlugin:
    """examples/ato-example-plugin, discovered through a real entry point."""

    @pytest.fixture
    def example(self, site, monkeypatch):
        from tests.conftest import EXAMPLES

        monkeypatch.syspath_prepend(str(EXAMPLES / "ato-example-plugin" / "src"))
        site.install("ato-example-plugin", {"example": "ato_example_plugin.plugin"}, {},
                     version="0.1.0")
        yield site
        for name in [m for m in sys.modules if m.startswith("ato_example_plugin")]:
            del sys.modules[name]

    def test_it_is_a_valid_plugin(self, example):
        from ato_example_plugin import plugin

        assert check_plugin(plugin) == []
        row = example.plugins_row("example")
        assert (row["distribution"], row["version"], row["state"]) == (
            "ato-example-plugin", "0.1.0", "loaded")
        assert row["provides"]["formats"] == ["properties (.properties)"]
        assert row["provides"]["search algorithms"] == ["coordinate"]

    def test_without_ato_hyperopt_searches_still_say_what_to_install(self, example, monkeypatch,
                                                                     tmp_path):
        """Its search hook returns nothing when ato-hyperopt is absent; its format works
        and the built-in algorithms name the distribution to install."""
        example.hide("ato-hyperopt")
        for name in [m for m in sys.modules if m.startswith("ato.hyperopt")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, "ato.hyperopt", None)  # import ato.hyperopt fails
        row = example.plugins_row("example")
        assert row["state"] == "loaded" and row["errors"] == []
        assert "search algorithms" not in row["provides"]
        ADict(a=1).dump(tmp_path / "c.properties")
        assert ADict.from_file(tmp_path / "c.properties") == {"a": 1}
        with pytest.raises(PluginNotInstalledError, match="pip install ato-hyperopt"):
            plugin_manager.search_algorithm("hyperband")
        with pytest.raises(UnknownPluginError, match="no installed plugin provides 'coordinate'"):
            plugin_manager.search_algorithm("coordinate")


class TestMoreFaults:
    def test_two_entry_points_naming_one_module(self, site, tmp_path):
        """The same module under two entry-point names: the second is broken."""
        site.install("twice", {"one": "twice_plugin", "two": "twice_plugin"},
                     {"twice_plugin": GOOD_FORMAT.format(cls="T", name="twice",
                                                         suffixes=(".twice",))})
        site.builtins_still_work(tmp_path)
        assert site.plugins_row("one")["state"] == "loaded"
        row = site.plugins_row("two")
        assert row["state"] == "broken" and "already registered" in row["reason"]

    def test_plugin_that_exits_at_import(self, site, tmp_path):
        """Even sys.exit() at import time only breaks that plugin."""
        site.install("quitter", {"quitter": "quitter_plugin"},
                     {"quitter_plugin": "import sys\nsys.exit('no GPU found')\n"})
        site.builtins_still_work(tmp_path)
        assert site.plugins_row("quitter")["reason"] == "import failed: SystemExit: no GPU found"

    def test_run_returning_something_else(self, site):
        site.install("odd", {"odd": "odd_plugin"}, {"odd_plugin": """
            from ato.plugins import hookimpl

            class Odd:
                PLUGIN_NAME = "odd"
                add_arguments = staticmethod(lambda parser: None)
                run = staticmethod(lambda args: "done")

            @hookimpl
            def ato_register_commands():
                return Odd
        """})
        code, _, err = site.ato("odd")
        assert code == 2
        assert err == ("ato odd: error: plugin 'odd' (odd 1.0, entry point odd = odd_plugin): "
                       "Odd.run returned 'done', not an exit status (an int)\n")

    def test_lookups_from_many_threads_load_once(self, site):
        """The first lookups racing in threads build one manager and one registry."""
        import threading

        plugin_manager.reset()
        seen, barrier = [], threading.Barrier(8)

        def look():
            barrier.wait()
            seen.append((id(plugin_manager.plugin_manager()), id(plugin_manager.registry("format"))))

        threads = [threading.Thread(target=look) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(seen)) == 1

    def test_registered_context_manager(self, tmp_path):
        """`registered` adds a plugin for a block, refuses a faulty one, and cleans up."""
        from ato.plugins.manager import registered

        with registered(UpperPlugin(), "upper-ctx"):
            ADict(name="x").dump(tmp_path / "c.upper")
            assert "upper-ctx" in [r.name for r in plugin_manager.plugin_records()]
        assert (tmp_path / "c.upper").read_text() == "name=X\n"
        assert "upper-ctx" not in [r.name for r in plugin_manager.plugin_records()]
        with pytest.raises(UnknownPluginError):
            ADict(name="x").dump(tmp_path / "d.upper")

        class Typo:
            @hookimpl
            def ato_register_format(self):
                return UpperFormat

        with pytest.raises(PluginError, match=r"plugin 'typo': @hookimpl ato_register_format\(\)"):
            with registered(Typo(), "typo"):
                pass
        assert plugin_manager.plugin_manager().get_plugin("typo") is None


def test_a_view_loading_a_missing_file_is_one_line(tmp_path):
    """In a script, a view that loads a missing config exits 2 with one line, no traceback."""
    from tests.conftest import run_script

    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        from ato.adict import ADict
        from ato.scope import Scope

        scope = Scope()

        @scope.observe(default=True)
        def from_file(config):
            config.update(ADict.from_file("configs/base.yaml"))

        @scope
        def main(config):
            print(config)

        main()
    """))
    proc = run_script(script, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (f"train.py: error: configs/base.yaml: config file does not exist "
                           f"(looked up in {tmp_path})\n")


class TestURLWithoutScheme:
    """A tracker URL must have a scheme; a plain path is named as such, with the fix."""

    @pytest.mark.parametrize("url, fix", [
        ("experiments.db", "sqlite:///experiments.db"),
        ("runs/exp.sqlite", "sqlite:///runs/exp.sqlite"),
        ("/abs/path/e.db", "sqlite:////abs/path/e.db"),
        ("C:\\runs\\e.db", "sqlite:///C:\\runs\\e.db"),
    ])
    def test_tracker_path_is_not_a_url(self, url, fix):
        with pytest.raises(plugin_manager.NotAURLError) as info:
            plugin_manager.tracker_for_url(url)
        assert str(info.value) == (f"tracker URL {url!r} is not a URL (it has no scheme such "
                                   f"as 'sqlite:' or 'postgresql:'); for a SQLite file write "
                                   f"{fix!r}")
        assert isinstance(info.value, ValueError)

    def test_cli_names_the_fix(self, tmp_path):
        proc = subprocess.run([sys.executable, "-m", "ato.cli", "runs", "list", "--db",
                               "experiments.db"], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 2
        assert "is not a URL" in proc.stderr and "'sqlite:///experiments.db'" in proc.stderr
        assert not (tmp_path / "experiments.db").exists()

    @pytest.mark.parametrize("url, scheme", [
        ("sqlite:///e.db", "sqlite"), ("postgresql+psycopg://h/db", "postgresql"),
        ("JSONL://dir", "jsonl"), ("runs.db", None), ("C:\\x.db", None), ("./a:b.db", None)])
    def test_url_scheme(self, url, scheme):
        assert plugin_manager.url_scheme(url) == scheme

    def test_store_plain_path_is_the_local_store(self, tmp_path):
        """Stores document plain paths as the local store (scheme file)."""
        assert plugin_manager.store_for_url(str(tmp_path)) is plugin_manager.store_for_url(
            f"file://{tmp_path}")
        with pytest.raises(UnknownPluginError, match="no installed plugin provides 's4'"):
            plugin_manager.store_for_url("s4://bucket")


def test_command_for_answers_as_the_full_command_registry(monkeypatch):
    """command_for (the narrow lookup `ato <name>` uses) gives the class commands() gives,
    for every command, with and without ATO_PREFER_PLUGINS, and None for an unknown name."""
    from ato.plugins import manager

    for prefer in (None, "ui"):
        if prefer:
            monkeypatch.setenv(manager.PREFER_ENV, prefer)
        manager.reset()
        narrow = {name: manager.command_for(name) for name in manager.PROVIDERS["command"]}
        assert manager.command_for("no-such-command") is None
        full = manager.commands()
        assert narrow == {name: full.get(name) for name in narrow}
    manager.reset()


class TestFaultsAreAttributedPrecisely:
    """Each fault is reported against the plugin (and distribution) that made it, with
    the plugin's own words, never against another plugin or the user's file."""

    BX = """
        from ato.errors import ConfigFileError
        from ato.plugins import hookimpl

        class BX:
            PLUGIN_NAME = "bx"
            suffixes = (".bx",)

            @staticmethod
            def loads(text, path, **kwargs):
                if text == "raise":
                    return {}["missing"]
                if text == "syntax":
                    raise ConfigFileError(path, "unexpected '='", 1, 3)
                return {"str": "hello", "list": [1, 2], "none": None, "ok": {"a": 1},
                        "rows": [{"a": 1}]}[text]

            @staticmethod
            def dumps(data, path, **kwargs):
                return ""

        @hookimpl
        def ato_register_formats():
            return BX
    """

    def test_a_format_whose_loads_misbehaves_is_a_plugin_error(self, site, tmp_path):
        """An exception other than ConfigFileError, or a result that is not a dict or a
        list of dicts, names the plugin, its distribution and the file."""
        site.install("bx-format", {"bxplug": "bx_plugin"}, {"bx_plugin": self.BX})
        who = "plugin 'bxplug' (bx-format 1.0, entry point bxplug = bx_plugin)"
        path = tmp_path / "t.bx"
        path.write_text("raise")
        with pytest.raises(PluginError) as info:
            ADict.from_file(path)
        assert str(info.value) == (f"reading {path}: {who}: BX.loads raised KeyError: "
                                   f"'missing' (a format raises ato.errors.ConfigFileError "
                                   f"for a malformed file)")
        for text, got, why in (("str", "'hello'", "the top level must be a mapping, not a str"),
                               ("list", "[1, 2]", "the top level must be a mapping (or a list "
                                                  "of mappings), but item 0 of its list is an "
                                                  "int"),
                               ("none", "None", "the top level must be a mapping, not a "
                                                "NoneType")):
            path.write_text(text)
            with pytest.raises(PluginError) as info:
                ADict.from_file(path)
            assert str(info.value).startswith(f"reading {path}: {who}: BX.loads returned "
                                              f"{got}, not a dict or a list of dicts ({why}")
        path.write_text("syntax")  # the documented way to blame the file
        with pytest.raises(ConfigFileError, match=r"t.bx:1:3: unexpected '='$"):
            ADict.from_file(path)
        path.write_text("ok")
        assert ADict.from_file(path) == {"a": 1}
        path.write_text("rows")
        assert ADict.from_file(path) == [{"a": 1}]

    @pytest.mark.parametrize("text, message", [
        ('"hello"', "the top level must be a mapping, not a str"),
        ("[1, 2]", "the top level must be a mapping (or a list of mappings), but item 0 of "
                   "its list is an int"),
        ("null", "the top level must be a mapping, not a NoneType"),
    ])
    def test_a_json_file_that_is_no_mapping_still_blames_the_file(self, tmp_path, text,
                                                                  message):
        """Core's JSON format checks what it parsed: the user's file is named, not a
        plugin."""
        path = tmp_path / "c.json"
        path.write_text(text)
        with pytest.raises(ConfigFileError) as info:
            ADict.from_file(path)
        assert str(info.value) == f"{path}: {message}"

    KV = """
        from ato.plugins import hookimpl

        class KV:
            PLUGIN_NAME = "kv"
            suffixes = (".kv", ".yaml")
            loads = staticmethod(lambda text, path, **kw: {{"by": {dist!r}}})
            dumps = staticmethod(lambda data, path, **kw: "")

        @hookimpl
        def ato_register_formats():
            return KV
    """

    @pytest.mark.parametrize("prefer", [False, True])
    def test_a_duplicate_entry_point_name_gets_nothing_of_its_namesake(self, site, tmp_path,
                                                                        prefer):
        """Two distributions declaring the entry point `kv`: the broken duplicate shows no
        formats, conflicts or errors of the loaded one, and the advice to prefer `kv` says
        which distribution's `kv` that is."""
        site.install("kv-one", {"kv": "kv_one"}, {"kv_one": self.KV.format(dist="kv-one")})
        site.install("kv-two", {"kv": "kv_two"}, {"kv_two": self.KV.format(dist="kv-two")})
        if prefer:
            site.setenv("ATO_PREFER_PLUGINS", "kv")
        code, out, _ = site.ato("plugins", "--json")
        rows = [r for r in json.loads(out)["plugins"] if r["name"] == "kv"]
        assert sorted(r["state"] for r in rows) == ["broken", "loaded"]
        loaded, broken = sorted(rows, key=lambda r: r["state"] == "broken")
        assert broken["reason"] == (f"the entry-point name 'kv' is already used by "
                                    f"{loaded['distribution']} 1.0; entry-point names must "
                                    f"be unique")
        assert (broken["provides"], broken["conflicts"], broken["errors"]) == ({}, [], [])
        assert loaded["provides"] == {"formats": ["kv (.kv)"] if not prefer
                                      else ["kv (.kv, .yaml)"]}
        (tmp_path / "c.kv").write_text("")
        assert ADict.from_file(tmp_path / "c.kv") == {"by": loaded["distribution"]}
        if not prefer:
            assert loaded["conflicts"] == [
                f"format 'kv' claims '.yaml', already served by plugin 'formats' "
                f"(ato-formats {metadata.version('ato-formats')}, entry point formats = "
                f"ato.formats.plugin), which takes precedence; set ATO_PREFER_PLUGINS=kv to "
                f"use it instead (the entry point 'kv' of {loaded['distribution']} 1.0; the "
                f"one of {broken['distribution']} 1.0 is a broken duplicate)"]

    def test_one_plugin_registering_two_formats_for_one_suffix_is_its_bug(self):
        """Not a conflict with itself (no advice to prefer it over itself): an error
        saying the plugin registers two formats for the suffix."""
        class A:
            PLUGIN_NAME = "a"
            suffixes = (".dup", ".a")
            loads = staticmethod(lambda text, path, **kw: {})
            dumps = staticmethod(lambda data, path, **kw: "")

        class B(A):
            PLUGIN_NAME = "b"
            suffixes = (".dup",)

        class SelfDup:
            @hookimpl
            def ato_register_formats(self):
                return [A, B]

        problems = check_plugin(SelfDup(), "self-dup")
        assert problems == [
            f"format 'b' ({__name__}.{B.__qualname__}) claims '.dup', which format 'a' "
            f"({__name__}.{A.__qualname__}) of the same plugin already claims: the plugin "
            f"registers two formats for it, a bug in the plugin; the first is used"]
        assert "ATO_PREFER_PLUGINS" not in problems[0]

    def test_a_config_source_must_serve_an_adict_method(self):
        """A source's PLUGIN_NAME is the ADict method it serves: anything else is refused
        with the valid names."""
        def plugin(name):
            class Source:
                PLUGIN_NAME = name
                load = staticmethod(lambda *a, **k: ADict())

            class P:
                @hookimpl
                def ato_register_config_sources(self):
                    return Source
            return P()

        problems = check_plugin(plugin("load_foo"))
        assert len(problems) == 1 and problems[0].endswith(
            "('load_foo'): PLUGIN_NAME is the ADict method a config source serves, one of "
            "load_mm_config, compose_hierarchy; not 'load_foo'")
        assert check_plugin(plugin("compose_hierarchy")) == []

    def test_a_refused_format_without_plugin_name_is_named_for_its_suffix(self, site,
                                                                          tmp_path):
        """A class refused for lacking PLUGIN_NAME still claims its suffixes: a lookup of
        one names the class and the fault, as for a class lacking a method."""
        site.install("nn-format", {"nn": "nn_plugin"}, {"nn_plugin": """
            from ato.plugins import hookimpl

            class NN:
                suffixes = (".nn",)
                loads = staticmethod(lambda text, path, **kw: {})
                dumps = staticmethod(lambda data, path, **kw: "")

            @hookimpl
            def ato_register_formats():
                return NN
        """})
        (tmp_path / "x.nn").write_text("")
        with pytest.raises(PluginError) as info:
            ADict.from_file(tmp_path / "x.nn")
        assert str(info.value) == (
            f"reading or writing '.nn' files ({tmp_path / 'x.nn'}): plugin 'nn' (nn-format "
            f"1.0, entry point nn = nn_plugin): format class nn_plugin.NN has no PLUGIN_NAME "
            f"(a non-empty string); got None")

    def test_a_loaded_plugin_whose_hook_failed_is_not_called_broken(self, site, tmp_path):
        """An unknown suffix lists a loaded plugin whose formats hook raised with its
        reason, apart from the broken plugins (nothing of them usable)."""
        site.install("half-ok", {"badraise": "badraise_plugin"}, {"badraise_plugin": """
            from ato.plugins import hookimpl

            class Hello:
                PLUGIN_NAME = "hello"
                help = "say hello"
                add_arguments = staticmethod(lambda parser: None)
                run = staticmethod(lambda args: 0)

            @hookimpl
            def ato_register_formats():
                raise RuntimeError("formats are off today")

            @hookimpl
            def ato_register_commands():
                return Hello
        """})
        site.install("importfail", {"importfail": "importfail_plugin"},
                     {"importfail_plugin": "import not_there_at_all\n"})
        (tmp_path / "x.rz").write_text("")
        with pytest.raises(UnknownPluginError) as info:
            ADict.from_file(tmp_path / "x.rz")
        assert str(info.value).endswith(
            "; 1 broken plugin(s) might provide it: 'importfail' (importfail 1.0) (details: "
            "ato plugins); 1 loaded plugin(s) whose ato_register_formats() failed might "
            "provide it: 'badraise' (half-ok 1.0): ato_register_formats() raised "
            "RuntimeError: formats are off today")
        assert site.plugins_row("badraise")["state"] == "loaded"
