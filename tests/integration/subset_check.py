"""Run in a fresh venv holding one subset of the distributions (nox -s subsets): the
public imports of that subset work, the shared namespace levels have no __init__.py, and
each absent feature raises an error naming the distribution to install."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import tempfile

SUBSETS = {
    "core": {"ato-core"},
    "core+formats": {"ato-core", "ato-formats"},
    "core+sql": {"ato-core", "ato-sql"},
    "core+hyperopt": {"ato-core", "ato-hyperopt"},
    "core+mmlab": {"ato-core", "ato-formats", "ato-mmlab"},
    "core+ui": {"ato-core", "ato-ui"},
}
IMPORTS = {
    "ato-core": ["ato.adict", "ato.scope", "ato.grammar", "ato.plugins", "ato.plugins.hookspecs",
                 "ato.plugins.manager", "ato.xyz", "ato.cli"],
    "ato-formats": ["ato.formats", "ato.formats.plugin"],
    "ato-sql": ["ato.db_routers.sql.manager", "ato.db_routers.sql.schema"],
    "ato-hyperopt": ["ato.hyperopt.base", "ato.hyperopt.hyperband", "ato.hyperopt.algorithms"],
    "ato-mmlab": ["ato.mmlab.openmmlab", "ato.mmlab.hydra"],
    "ato-ui": ["ato.ui.app", "ato.ui.command", "ato.ui.data"],
}


def expect_missing(dist: str, action) -> None:
    try:
        action()
    except LookupError as e:
        assert f"pip install {dist}" in str(e), f"error does not name {dist}: {e}"
        print(f"  absent {dist}: {e}")
        return
    raise AssertionError(f"{dist} is absent but the feature worked")


def main(subset: str) -> None:
    installed = SUBSETS[subset]
    import ato

    for path in ato.__path__:
        assert not os.path.exists(os.path.join(path, "__init__.py")), f"{path} has an __init__.py"
        routers = os.path.join(path, "db_routers", "__init__.py")
        assert not os.path.exists(routers), routers
    for dist in installed:
        for module in IMPORTS[dist]:
            importlib.import_module(module)
    for module in pkgutil.walk_packages(ato.__path__, "ato."):
        if module.name.endswith("__main__"):
            continue
        importlib.import_module(module.name)
    from ato.adict import ADict

    tmp = tempfile.mkdtemp()
    yaml_path = os.path.join(tmp, "c.yaml")
    with open(yaml_path, "w") as f:
        f.write("a: 1\n")
    if "ato-formats" in installed:
        assert ADict.from_file(yaml_path) == {"a": 1}
    else:
        expect_missing("ato-formats", lambda: ADict.from_file(yaml_path))
    if "ato-mmlab" not in installed:
        expect_missing("ato-mmlab", lambda: ADict.compose_hierarchy(tmp))
    config = ADict(experiment={"project_name": "p", "sql": {"db_path": f"sqlite:///{tmp}/x.db"}})
    if "ato-sql" in installed:
        from ato.db_routers.sql.manager import SQLLogger

        SQLLogger(config).run()
    else:
        from ato.plugins.manager import tracker_for_url

        expect_missing("ato-sql", lambda: tracker_for_url("sqlite:///x.db"))
    if "ato-hyperopt" in installed:
        import ato.hyperopt.hyperband  # noqa: F401

        assert "torch" not in sys.modules
    else:
        from ato.plugins.manager import search_algorithm

        for name in ("hyperband", "tpe", "bohb", "asha"):
            expect_missing("ato-hyperopt", lambda name=name: search_algorithm(name))
    check_commands(installed, tmp)
    from ato.plugins.manager import failures

    assert failures() == [], failures()
    print(f"subset {subset}: OK ({', '.join(sorted(installed))})")


def check_commands(installed: set, tmp: str) -> None:
    """`ato` itself: --help and `ato plugins` work, a subcommand of an absent distribution
    names it (exit 2, one line), and a missing config file is one line too."""
    import subprocess

    def ato(*args):
        return subprocess.run([sys.executable, "-m", "ato.cli", *args], capture_output=True,
                              text=True, cwd=tmp)

    for args in (["--help"], ["plugins"]):
        proc = ato(*args)
        assert proc.returncode == 0, (args, proc.stderr)
    absent = {"runs": "ato-sql", "ui": "ato-ui"}
    for command, dist in absent.items():
        if dist in installed:
            continue
        proc = ato(command, "list")
        assert proc.returncode == 2 and proc.stderr == (
            f"ato: error: 'ato {command}' needs the {dist} distribution: pip install {dist}\n"
        ), proc.stderr
        print(f"  absent {dist}: {proc.stderr.strip()}")
    if "ato-ui" in installed:
        assert ato("ui", "--help").returncode == 0
        if "ato-sql" not in installed:  # the dashboard reads a tracker: say which to install
            db = os.path.join(tmp, "runs.db")
            open(db, "wb").close()
            proc = ato("ui", f"sqlite:///{db}", "--port", "0")
            assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
            assert proc.stderr.startswith("ato ui: error: ") and proc.stderr.endswith(
                "needs the ato-sql distribution: pip install ato-sql\n"), proc.stderr
            print(f"  absent ato-sql: {proc.stderr.strip()}")
    from ato.adict import ADict
    from ato.errors import ConfigFileNotFoundError

    try:
        ADict.from_file(os.path.join(tmp, "missing.json"))
    except ConfigFileNotFoundError as e:
        assert "missing.json" in str(e)
    else:
        raise AssertionError("a missing file loaded")


if __name__ == "__main__":
    main(sys.argv[1])
