"""SQLModel tables of the catalog (schema version in ``schema.py``).

Versions are immutable rows; evals, tags, aliases and status are the mutable
annotations around them. Every change is also an ``audit_events`` row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class SchemaInfo(SQLModel, table=True):
    __tablename__ = "schema_info"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=256)


class BaseModelRow(SQLModel, table=True):
    __tablename__ = "base_models"
    __table_args__ = (UniqueConstraint("name", "revision", name="uq_base_models_name_revision"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=256)
    # "" rather than NULL when unknown, so the unique constraint holds on every backend.
    revision: str = Field(default="", max_length=256)
    version: str | None = Field(default=None, max_length=64)
    quantization: str = Field(default="none", max_length=32)
    fingerprint: str | None = Field(default=None, index=True, max_length=80)
    structure_digest: str | None = Field(default=None, max_length=80)
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    created_at: datetime


class AdapterVersionRow(SQLModel, table=True):
    __tablename__ = "adapter_versions"
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_adapter_versions_name_version"),
        UniqueConstraint("name", "digest", name="uq_adapter_versions_name_digest"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=96)
    version: str = Field(max_length=64)
    digest: str = Field(index=True, max_length=71)
    method: str = Field(index=True, max_length=32)
    source_format: str = Field(max_length=32)
    base_model_id: int | None = Field(default=None, foreign_key="base_models.id", index=True)
    base_name: str | None = Field(default=None, index=True, max_length=256)
    base_revision: str | None = Field(default=None, max_length=256)
    manifest: str = Field(sa_column=Column(Text, nullable=False))
    size_bytes: int
    status: str = Field(default="active", max_length=16)
    status_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime
    created_by: str = Field(max_length=256)


class VersionFileRow(SQLModel, table=True):
    __tablename__ = "version_files"

    version_id: int = Field(foreign_key="adapter_versions.id", primary_key=True)
    path: str = Field(primary_key=True, max_length=512)
    sha256: str = Field(index=True, max_length=64)
    size: int
    role: str = Field(max_length=16)


class TrainingDataRow(SQLModel, table=True):
    __tablename__ = "training_data"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="adapter_versions.id", index=True)
    sha256: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=16)
    source: str = Field(sa_column=Column(Text, nullable=False))
    files: int = 0
    size: int = 0


class EvalRow(SQLModel, table=True):
    __tablename__ = "evals"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="adapter_versions.id", index=True)
    metric: str = Field(index=True, max_length=128)
    value: float
    dataset: str = Field(default="", max_length=256)
    split: str = Field(default="", max_length=64)
    notes: str = Field(default="", sa_column=Column(Text, nullable=False))
    recorded_at: datetime
    actor: str = Field(max_length=256)


class AliasRow(SQLModel, table=True):
    __tablename__ = "aliases"

    name: str = Field(primary_key=True, max_length=96)
    alias: str = Field(primary_key=True, max_length=64)
    version_id: int = Field(foreign_key="adapter_versions.id", index=True)
    updated_at: datetime


class TagRow(SQLModel, table=True):
    __tablename__ = "tags"

    version_id: int = Field(foreign_key="adapter_versions.id", primary_key=True)
    key: str = Field(primary_key=True, max_length=128)
    value: str = Field(sa_column=Column(Text, nullable=False))


class AuditEventRow(SQLModel, table=True):
    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    actor: str = Field(max_length=256)
    action: str = Field(index=True, max_length=32)
    name: str | None = Field(default=None, index=True, max_length=96)
    version: str | None = Field(default=None, max_length=64)
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))
