"""The tracker schema (SQLAlchemy 2.x typed ORM).

The first five tables are exactly those of the original Ato, so databases it wrote are read
and written as they are; ``heartbeat_at``, ``error``, ``metric_summaries`` (with the triggers that maintain it),
``ato_schema`` and the ``(run_id, key, step)`` index are added by the migrations in
:mod:`ato.db_routers.sql.engine`.

All datetimes are naive UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, nullable=False, unique=True, index=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)

    runs: Mapped[list[Experiment]] = relationship(back_populates="project")


class Experiment(Base):
    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False, index=True)
    config: Mapped[dict] = mapped_column(JSON, nullable=False)
    structural_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    tags: Mapped[list | None] = mapped_column(JSON, default=list)
    status: Mapped[str | None] = mapped_column(String, default="running", index=True)
    start_time: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    end_time: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)

    project: Mapped[Project] = relationship(back_populates="runs")
    metrics: Mapped[list[Metric]] = relationship(back_populates="run")
    artifacts: Mapped[list[Artifact]] = relationship(back_populates="run")
    fingerprints: Mapped[list[Fingerprint]] = relationship(back_populates="run")


class Metric(Base):
    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_key_step", "run_id", "key", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"), nullable=False, index=True)
    key: Mapped[str] = mapped_column(String, nullable=False, index=True)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    step: Mapped[int] = mapped_column(BigInteger, nullable=False)  # 64-bit: schema 9
    timestamp: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)

    run: Mapped[Experiment] = relationship(back_populates="metrics")


class Artifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"), nullable=False, index=True)
    path: Mapped[str] = mapped_column(String, nullable=False)
    data_type: Mapped[str | None] = mapped_column(String)
    data_info: Mapped[dict | None] = mapped_column(JSON)

    run: Mapped[Experiment] = relationship(back_populates="artifacts")


class Fingerprint(Base):
    __tablename__ = "fingerprints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"), nullable=False, index=True)
    trace_id: Mapped[str] = mapped_column(String, nullable=False, index=True)
    trace_type: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    fingerprint: Mapped[str] = mapped_column(String(128), nullable=False, index=True)

    run: Mapped[Experiment] = relationship(back_populates="fingerprints")


class MetricSummary(Base):
    """Per run and key: the latest value (greatest ``(step, id)``), the extremes (NaN
    excluded; NULL while every value is NaN) and the row count, so that "latest/best of
    metric K for every run" is an index lookup.

    The database maintains it: triggers on ``metrics`` (created by the migration, see
    :mod:`ato.db_routers.sql.engine`) update it for every insert, update and delete,
    whoever writes the rows."""

    __tablename__ = "metric_summaries"
    __table_args__ = (Index("ix_metric_summaries_key_run", "key", "run_id"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String, primary_key=True)
    last_value: Mapped[float] = mapped_column(Float, nullable=False)
    last_step: Mapped[int] = mapped_column(BigInteger, nullable=False)  # schema 9
    last_id: Mapped[int] = mapped_column(Integer, nullable=False)
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer, nullable=False)


class SchemaVersion(Base):
    """One row: the schema version this database has been migrated to."""

    __tablename__ = "ato_schema"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    migrated_at: Mapped[datetime | None] = mapped_column(DateTime, server_default=func.now())


__all__ = ["Base", "Project", "Experiment", "Metric", "Artifact", "Fingerprint",
           "MetricSummary", "SchemaVersion", "utcnow"]
