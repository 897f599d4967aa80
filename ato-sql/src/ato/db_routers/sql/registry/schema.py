"""The registry's tables, on the tracker's own SQLAlchemy ``Base``, and their idempotent
migration.

``registry_assets``   one row per registered model or dataset (project, kind, name)
``registry_versions`` numbered versions; ``digest`` is the content's SHA-256 (a file) or tree
                      digest (a directory); ``store_url`` is where its blobs live (``NULL``:
                      recorded in place, not copied); ``state`` is ``live``, ``pruned`` (let
                      go by ``keep=``, its blobs collectable) or ``collected`` (blobs freed)
``registry_files``    the files of a version: relative path, size, SHA-256
``registry_blobs``    every blob written to a store, once per (store, digest)
``registry_aliases``  alias -> version, per asset
``registry_alias_events`` every alias move: who, when, from which version to which
``registry_links``    run <-> version, ``role`` ``input`` (a dataset used) or ``output``
                      (a model produced): the lineage graph
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from ato.db_routers.sql.schema import Base, utcnow


class RegistryAsset(Base):
    __tablename__ = "registry_assets"
    __table_args__ = (UniqueConstraint("project_id", "kind", "name", name="uq_registry_asset"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)


class RegistryVersion(Base):
    __tablename__ = "registry_versions"
    __table_args__ = (UniqueConstraint("asset_id", "version", name="uq_registry_version"),
                      UniqueConstraint("asset_id", "digest", name="uq_registry_version_digest"),
                      Index("ix_registry_versions_run", "run_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("registry_assets.id"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    file_count: Mapped[int] = mapped_column(Integer, nullable=False)
    is_dir: Mapped[bool] = mapped_column(Boolean, nullable=False)
    source: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(Text)
    store_url: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"))
    step: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    meta: Mapped[dict | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="live")
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)


class RegistryFile(Base):
    __tablename__ = "registry_files"

    version_id: Mapped[int] = mapped_column(ForeignKey("registry_versions.id"), primary_key=True)
    path: Mapped[str] = mapped_column(Text, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False, index=True)


class RegistryBlob(Base):
    __tablename__ = "registry_blobs"

    store_url: Mapped[str] = mapped_column(String(1024), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)


class RegistryAlias(Base):
    __tablename__ = "registry_aliases"

    asset_id: Mapped[int] = mapped_column(ForeignKey("registry_assets.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(255), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("registry_versions.id"), nullable=False,
                                            index=True)


class RegistryAliasEvent(Base):
    __tablename__ = "registry_alias_events"
    __table_args__ = (Index("ix_registry_alias_events_asset", "asset_id", "alias", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("registry_assets.id"), nullable=False)
    alias: Mapped[str] = mapped_column(String(255), nullable=False)
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str | None] = mapped_column(String(255))
    run_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)


class RegistryLink(Base):
    __tablename__ = "registry_links"
    __table_args__ = (Index("ix_registry_links_version", "version_id", "role"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("registry_versions.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(8), primary_key=True)
    at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)


TABLES = [m.__table__ for m in (RegistryAsset, RegistryVersion, RegistryFile, RegistryBlob,
                                RegistryAlias, RegistryAliasEvent, RegistryLink)]


def ensure_registry_schema(engine: Engine) -> None:
    """The tracker schema, registry tables included (schema version 4 of
    :func:`ato.db_routers.sql.engine.ensure_schema`, which creates them once, under the
    migration's lock)."""
    from ato.db_routers.sql.engine import ensure_schema

    ensure_schema(engine)
