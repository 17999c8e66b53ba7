"""SQLModel tables of the catalog (schema version in ``schema.py``).

Versions are immutable rows; evals, tags, aliases and status are the mutable
annotations around them. Every change is also an ``audit_events`` row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DDL, Column, Index, Text, UniqueConstraint, event
from sqlmodel import Field, SQLModel

from registry.store.catalog.version_order import version_key


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


class BaseRelationRow(SQLModel, table=True):
    """A recorded relation between two base models, e.g. a 4-bit copy ``quantized-from`` its
    16-bit original, or two uploads that are ``equivalent``."""

    __tablename__ = "base_relations"

    from_id: int = Field(foreign_key="base_models.id", primary_key=True)
    to_id: int = Field(foreign_key="base_models.id", primary_key=True)
    relation: str = Field(max_length=32)
    created_at: datetime
    created_by: str = Field(max_length=256)


class AdapterVersionRow(SQLModel, table=True):
    __tablename__ = "adapter_versions"
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_adapter_versions_name_version"),
        UniqueConstraint("name", "digest", name="uq_adapter_versions_name_digest"),
        Index("ix_adapter_versions_name_version_key", "name", "version_key"),
        # The status filter (yanked versions), in listing order.
        Index("ix_adapter_versions_status_name", "status", "name", "version_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=96)
    version: str = Field(max_length=64)
    digest: str = Field(index=True, max_length=71)
    # PEP 440 order as a string (catalog/version_order.py) so resolution can read a
    # name's versions highest first; byte order on every backend ("C" on PostgreSQL).
    version_key: str | None = Field(
        default=None,
        sa_column=Column(
            Text().with_variant(Text(collation="C"), "postgresql"),
            nullable=False,
            default=lambda context: version_key(context.get_current_parameters()["version"]),
        ),
    )
    method: str = Field(index=True, max_length=32)
    source_format: str = Field(max_length=32)
    base_model_id: int | None = Field(default=None, foreign_key="base_models.id", index=True)
    base_name: str | None = Field(default=None, index=True, max_length=256)
    base_revision: str | None = Field(default=None, max_length=256)
    # The manifest's base_model.fingerprint, copied out so `list --base sha256:...` is indexed.
    base_fingerprint: str | None = Field(default=None, index=True, max_length=80)
    manifest: str = Field(sa_column=Column(Text, nullable=False))
    size_bytes: int
    status: str = Field(default="active", max_length=16)
    status_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime
    created_by: str = Field(max_length=256)
    # Free text people set after the push (`adapters describe`); schema 3.
    description: str | None = Field(default=None, sa_column=Column(Text))


@event.listens_for(AdapterVersionRow, "before_insert")
def _fill_version_key(_mapper: Any, _connection: Any, row: AdapterVersionRow) -> None:
    # Every writer gets the key, however it builds the row.
    row.version_key = version_key(row.version)


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
    # "Latest eval of a metric (on a dataset)" is one seek to the highest id in these;
    # carrying the value makes them covering, so `list --where` and `--sort METRIC`
    # never touch the table.
    __table_args__ = (
        Index("ix_evals_version_metric_id", "version_id", "metric", "id", "value"),
        Index(
            "ix_evals_version_metric_dataset_id", "version_id", "metric", "dataset", "id", "value"
        ),
    )

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
    __table_args__ = (Index("ix_aliases_alias", "alias"),)

    name: str = Field(primary_key=True, max_length=96)
    alias: str = Field(primary_key=True, max_length=64)
    version_id: int = Field(foreign_key="adapter_versions.id", index=True)
    updated_at: datetime


class TagRow(SQLModel, table=True):
    __tablename__ = "tags"
    __table_args__ = (Index("ix_tags_key", "key"),)

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


class AliasHistoryRow(SQLModel, table=True):
    """Every alias move, append-only. Versions are named by string, not by foreign key,
    so the history outlives `rm` of the versions it mentions."""

    __tablename__ = "alias_history"
    __table_args__ = (Index("ix_alias_history_name_alias_id", "name", "alias", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=96)
    alias: str = Field(max_length=64)
    action: str = Field(max_length=16)  # "set" | "push" | "rm" | "rm-version"
    version: str | None = Field(default=None, max_length=64)  # None once removed
    digest: str | None = Field(default=None, max_length=71)
    previous: str | None = Field(default=None, max_length=64)
    at: datetime
    actor: str = Field(max_length=256)
    note: str = Field(default="", sa_column=Column(Text, nullable=False))


class LineageEdgeRow(SQLModel, table=True):
    """One parent of a derived version, copied out of its manifest so that descendants
    (who was made from this digest?) are an index lookup."""

    __tablename__ = "lineage_edges"

    id: int | None = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="adapter_versions.id", index=True)
    position: int
    operation: str = Field(max_length=64)
    parent_name: str = Field(max_length=96)
    parent_version: str = Field(max_length=64)
    parent_digest: str = Field(index=True, max_length=71)
    weight: float | None = None


class BlobLeaseRow(SQLModel, table=True):
    """A blob an unfinished push has written or deduplicated against; gc keeps it.

    Taken (and committed) before the push looks for the final blob, released in the
    transaction that records the version; see ``registry/store/gc.py``.
    """

    __tablename__ = "blob_leases"

    id: int | None = Field(default=None, primary_key=True)
    lease: str = Field(index=True, max_length=64)
    sha256: str = Field(index=True, max_length=64)
    created_at: datetime = Field(index=True)


class HubLinkRow(SQLModel, table=True):
    """One sync of a version with a Hugging Face Hub repo: a push (the commit and tag it
    made or found) or a pull (the commit it imported). The version is named by string, not
    by foreign key, so the record outlives `rm` of the version, like the alias history."""

    __tablename__ = "hub_links"
    __table_args__ = (Index("ix_hub_links_name_version", "name", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=96)
    version: str = Field(max_length=64)
    digest: str = Field(max_length=71)
    direction: str = Field(max_length=8)  # "push" | "pull"
    endpoint: str = Field(max_length=512)  # scheme://host[:port][/path], never credentials
    repo_type: str = Field(default="model", max_length=16)
    repo_id: str = Field(max_length=256)
    revision: str = Field(max_length=256)  # the branch pushed to, or the revision pulled
    commit: str = Field(max_length=64)
    tag: str | None = Field(default=None, max_length=256)
    at: datetime
    actor: str = Field(max_length=256)


class SignatureRow(SQLModel, table=True):
    """An ed25519 signature of a version's statement (name, version, digest); see
    ``registry/security/signing.py``. It goes with its version when that is removed."""

    __tablename__ = "signatures"
    __table_args__ = (UniqueConstraint("version_id", "key_id", name="uq_signatures_version_key"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="adapter_versions.id", index=True, ondelete="CASCADE")
    key_id: str = Field(index=True, max_length=64)  # sha256 hex of the raw public key
    public_key: str = Field(max_length=64)  # base64 of the 32 raw bytes, to check untrusted ones
    signer: str = Field(max_length=64)  # the key's name where it was made; a claim, not proof
    signature: str = Field(max_length=128)  # base64 of the 64-byte signature
    statement: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime
    created_by: str = Field(max_length=256)


# History tables are append-only in the database itself, not only by convention.
_APPEND_ONLY = ("audit_events", "alias_history")


def _ddl(sql: str, dialect: str) -> Any:
    return DDL(sql).execute_if(dialect=dialect)  # type: ignore[no-untyped-call]


def _append_only_ddl(table: str) -> list[Any]:
    sqlite = [
        _ddl(
            f"CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END",
            "sqlite",
        )
        for verb in ("update", "delete")
    ]
    postgresql = [
        _ddl(
            "CREATE OR REPLACE FUNCTION adapters_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            # No '%' placeholder: DDL strings pass through Python %-formatting.
            "RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only'; END $$",
            "postgresql",
        ),
        _ddl(
            f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION adapters_append_only()",
            "postgresql",
        ),
        _ddl(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION adapters_append_only()",
            "postgresql",
        ),
    ]
    return sqlite + postgresql


for _table in _APPEND_ONLY:
    for _statement in _append_only_ddl(_table):
        event.listen(SQLModel.metadata.tables[_table], "after_create", _statement)


class ApiTokenRow(SQLModel, table=True):
    """A server access token: only the sha256 of its secret is kept (``security/tokens.py``)."""

    __tablename__ = "api_tokens"
    # Named, so that a created catalog and an upgraded one have the same constraints.
    __table_args__ = (
        UniqueConstraint("name", name="uq_api_tokens_name"),
        UniqueConstraint("secret_sha256", name="uq_api_tokens_secret_sha256"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    role: str = Field(max_length=16)
    namespace: str | None = Field(default=None, max_length=96)
    secret_sha256: str = Field(max_length=64)
    created_at: datetime
    created_by: str = Field(max_length=256)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
