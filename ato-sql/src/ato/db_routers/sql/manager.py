"""The seed's import path for the tracker: ``from ato.db_routers.sql.manager import
SQLLogger, SQLFinder``.  Importing it does not import SQLAlchemy (that happens when the
first logger or finder is created)."""

from ato.db_routers.sql.finder import Run, SQLFinder
from ato.db_routers.sql.logger import SQLLogger

__all__ = ["SQLLogger", "SQLFinder", "Run"]
