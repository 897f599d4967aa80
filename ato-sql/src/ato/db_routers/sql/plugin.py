"""Entry point of ato-sql: the SQL tracker backend and the ``ato runs`` command."""

from ato.plugins import hookimpl


class SQLTracker:
    """Any SQLAlchemy URL: ``sqlite:///experiments.db``, ``postgresql://user@host/db``…"""

    PLUGIN_NAME = "sql"
    schemes = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")

    @classmethod
    def logger(cls, config, **options):
        from ato.db_routers.sql.manager import SQLLogger

        return SQLLogger(config, **options)

    @classmethod
    def finder(cls, config, **options):
        from ato.db_routers.sql.manager import SQLFinder

        return SQLFinder(config, **options)

    @classmethod
    def coordinator(cls, config, **options):
        """The study coordinator (:class:`ato.tracking.StudyCoordinator`) on this URL."""
        from ato.db_routers.sql.studies import SQLCoordinator

        return SQLCoordinator(config, **options)


@hookimpl
def ato_register_trackers():
    return SQLTracker


@hookimpl
def ato_register_commands():
    from ato.db_routers.sql.commands import RunsCommand

    return RunsCommand
