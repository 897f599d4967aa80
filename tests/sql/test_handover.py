"""``SQLLogger(config)`` / ``SQLFinder(config)`` hand a plugin scheme to the plugin's
objects — also when those objects are themselves SQL loggers and finders (a backend that
wraps SQLite under its own scheme): they are opened once, by the plugin, never again with
the plugin's URL."""

from __future__ import annotations

from ato.adict import ADict
from ato.db_routers.sql.manager import SQLFinder, SQLLogger
from ato.plugins import hookimpl
from ato.plugins.manager import registered
from ato.tracking import open_finder, open_logger


def _config(url, project="p"):
    return ADict(experiment=ADict(project_name=project, sql=ADict(db_path=url)))


class WrapTracker:
    """Serves ``wrap:///path`` by an SQLite database at that path."""

    PLUGIN_NAME = "wrap"
    schemes = ("wrap",)

    @staticmethod
    def _sqlite(config):
        url = str(config.experiment.sql.db_path).replace("wrap://", "sqlite://", 1)
        return _config(url, config.experiment.project_name)

    @classmethod
    def logger(cls, config, **options):
        return open_logger(cls._sqlite(config), **options)

    @classmethod
    def finder(cls, config, **options):
        return open_finder(cls._sqlite(config), **options)


class WrapPlugin:
    @hookimpl
    def ato_register_trackers(self):
        return [WrapTracker]


def test_sql_classes_hand_over_to_a_plugin_that_returns_sql_objects(tmp_path):
    url = f"wrap:///{tmp_path}/w.db"
    with registered(WrapPlugin(), "wrap"):
        logger = SQLLogger(_config(url))
        assert logger.url.startswith("sqlite:")
        with logger:
            logger.run(tags=["t"])
            logger.log_metric("acc", 0.5, 1)
        finder = SQLFinder(_config(url))
        runs = finder.find_runs("p")
        assert [r.tags for r in runs] == [["t"]]
        assert [p.value for p in finder.get_metric_history(runs[0].id, "acc")] == [0.5]
