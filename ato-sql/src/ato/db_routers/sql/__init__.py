"""The SQL experiment tracker: SQLite by default, PostgreSQL (or any SQLAlchemy URL) for
teams.  Public API in :mod:`ato.db_routers.sql.manager`."""
