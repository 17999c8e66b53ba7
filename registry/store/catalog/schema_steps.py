"""Schema migrations: the frozen steps that upgrade a catalog from one schema to the next.

Every step is written out here as DDL and backfills, never derived from the live table
definitions in ``tables.py``: what a migration does must not change when the tables do.
``schema.py`` runs the steps of every version between the catalog's and the current one
on one connection inside one transaction (PostgreSQL DDL is transactional, and so is
SQLite's on the connection that began the transaction), so a step that fails leaves
the catalog exactly as it was.

Schema 1 is the catalog of the first release: versions, files, training data, evals,
aliases, tags, audit events and base models. Schema 2 adds the tables of lifecycle
(alias history, blob leases), lineage, the Hub, base relations and signatures; the
``version_key`` and ``base_fingerprint`` columns (backfilled from each version's
string and manifest); the indexes listing and resolution read; append-only triggers on
the history tables; and, on PostgreSQL, time-zone-aware timestamps. Schema 3 adds
``adapter_versions.description``, the text `adapters describe` sets. Schema 4 adds the
server's ``api_tokens``; schema 5 the free-text search index (``search_index.py``)
and an index on status.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from registry.store.catalog import search_index
from registry.store.catalog.version_order import version_key


@dataclass(frozen=True)
class Step:
    """One migration step: what it does (shown by ``adapters migrate --dry-run``) and how."""

    description: str
    run: Callable[[Connection], None]


def _sql(description: str, statements: Sequence[str]) -> Step:
    def run(connection: Connection) -> None:
        for statement in statements:
            connection.exec_driver_sql(statement)

    return Step(description, run)


# -- schema 1 -> 2 ----------------------------------------------------------------------------

_PK = {"sqlite": "INTEGER NOT NULL", "postgresql": "SERIAL NOT NULL"}
_TIME = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP WITH TIME ZONE"}
_FLOAT = {"sqlite": "FLOAT", "postgresql": "DOUBLE PRECISION"}

# Columns are (name, type template, nullable); {pk}, {time} and {float} vary by dialect.
_NEW_TABLES: dict[str, tuple[list[tuple[str, str, bool]], list[str]]] = {
    "base_relations": (
        [
            ("from_id", "INTEGER", False),
            ("to_id", "INTEGER", False),
            ("relation", "VARCHAR(32)", False),
            ("created_at", "{time}", False),
            ("created_by", "VARCHAR(256)", False),
        ],
        [
            "PRIMARY KEY (from_id, to_id)",
            "FOREIGN KEY(from_id) REFERENCES base_models (id)",
            "FOREIGN KEY(to_id) REFERENCES base_models (id)",
        ],
    ),
    "alias_history": (
        [
            ("id", "{pk}", False),
            ("name", "VARCHAR(96)", False),
            ("alias", "VARCHAR(64)", False),
            ("action", "VARCHAR(16)", False),
            ("version", "VARCHAR(64)", True),
            ("digest", "VARCHAR(71)", True),
            ("previous", "VARCHAR(64)", True),
            ("at", "{time}", False),
            ("actor", "VARCHAR(256)", False),
            ("note", "TEXT", False),
        ],
        ["PRIMARY KEY (id)"],
    ),
    "lineage_edges": (
        [
            ("id", "{pk}", False),
            ("child_id", "INTEGER", False),
            ("position", "INTEGER", False),
            ("operation", "VARCHAR(64)", False),
            ("parent_name", "VARCHAR(96)", False),
            ("parent_version", "VARCHAR(64)", False),
            ("parent_digest", "VARCHAR(71)", False),
            ("weight", "{float}", True),
        ],
        ["PRIMARY KEY (id)", "FOREIGN KEY(child_id) REFERENCES adapter_versions (id)"],
    ),
    "blob_leases": (
        [
            ("id", "{pk}", False),
            ("lease", "VARCHAR(64)", False),
            ("sha256", "VARCHAR(64)", False),
            ("created_at", "{time}", False),
        ],
        ["PRIMARY KEY (id)"],
    ),
    "hub_links": (
        [
            ("id", "{pk}", False),
            ("name", "VARCHAR(96)", False),
            ("version", "VARCHAR(64)", False),
            ("digest", "VARCHAR(71)", False),
            ("direction", "VARCHAR(8)", False),
            ("endpoint", "VARCHAR(512)", False),
            ("repo_type", "VARCHAR(16)", False),
            ("repo_id", "VARCHAR(256)", False),
            ("revision", "VARCHAR(256)", False),
            ('"commit"', "VARCHAR(64)", False),
            ("tag", "VARCHAR(256)", True),
            ("at", "{time}", False),
            ("actor", "VARCHAR(256)", False),
        ],
        ["PRIMARY KEY (id)"],
    ),
    "signatures": (
        [
            ("id", "{pk}", False),
            ("version_id", "INTEGER", False),
            ("key_id", "VARCHAR(64)", False),
            ("public_key", "VARCHAR(64)", False),
            ("signer", "VARCHAR(64)", False),
            ("signature", "VARCHAR(128)", False),
            ("statement", "TEXT", False),
            ("created_at", "{time}", False),
            ("created_by", "VARCHAR(256)", False),
        ],
        [
            "PRIMARY KEY (id)",
            "CONSTRAINT uq_signatures_version_key UNIQUE (version_id, key_id)",
            "FOREIGN KEY(version_id) REFERENCES adapter_versions (id) ON DELETE CASCADE",
        ],
    ),
}

# (index name, table, columns); created after the columns and tables they cover.
_NEW_INDEXES = [
    ("ix_adapter_versions_name_version_key", "adapter_versions", "name, version_key"),
    ("ix_adapter_versions_base_fingerprint", "adapter_versions", "base_fingerprint"),
    ("ix_evals_version_metric_id", "evals", "version_id, metric, id, value"),
    ("ix_evals_version_metric_dataset_id", "evals", "version_id, metric, dataset, id, value"),
    ("ix_aliases_alias", "aliases", "alias"),
    ("ix_tags_key", "tags", '"key"'),
    ("ix_alias_history_name_alias_id", "alias_history", "name, alias, id"),
    ("ix_lineage_edges_child_id", "lineage_edges", "child_id"),
    ("ix_lineage_edges_parent_digest", "lineage_edges", "parent_digest"),
    ("ix_blob_leases_lease", "blob_leases", "lease"),
    ("ix_blob_leases_sha256", "blob_leases", "sha256"),
    ("ix_blob_leases_created_at", "blob_leases", "created_at"),
    ("ix_hub_links_name_version", "hub_links", "name, version"),
    ("ix_signatures_version_id", "signatures", "version_id"),
    ("ix_signatures_key_id", "signatures", "key_id"),
]

# Schema-1 timestamp columns. Catalogs made with older SQLModel releases have them
# without a time zone on PostgreSQL; they held UTC.
_TIMESTAMPS = [
    ("base_models", "created_at"),
    ("adapter_versions", "created_at"),
    ("evals", "recorded_at"),
    ("aliases", "updated_at"),
    ("audit_events", "at"),
]

_APPEND_ONLY = ("audit_events", "alias_history")
_MIGRATION_ACTOR = "adapters migrate"


def _create_tables(dialect: str) -> Step:
    kinds = {"pk": _PK[dialect], "time": _TIME[dialect], "float": _FLOAT[dialect]}
    statements = []
    for table, (columns, constraints) in _NEW_TABLES.items():
        lines = [
            f"{name} {kind.format(**kinds)}{'' if nullable or 'NOT NULL' in kind else ' NOT NULL'}"
            for name, kind, nullable in columns
        ]
        statements.append(f"CREATE TABLE {table} ({', '.join(lines + constraints)})")
    return _sql(f"create tables {', '.join(_NEW_TABLES)}", statements)


def _add_columns(dialect: str) -> Step:
    if dialect == "postgresql":
        # NOT NULL is set once every row has its key (see _backfill_versions).
        statements = [
            'ALTER TABLE adapter_versions ADD COLUMN version_key TEXT COLLATE "C"',
            "ALTER TABLE adapter_versions ADD COLUMN base_fingerprint VARCHAR(80)",
        ]
    else:
        # SQLite adds a NOT NULL column only with a default; the backfill replaces it.
        statements = [
            "ALTER TABLE adapter_versions ADD COLUMN version_key TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE adapter_versions ADD COLUMN base_fingerprint VARCHAR(80)",
        ]
    return _sql(
        "add adapter_versions.version_key and adapter_versions.base_fingerprint", statements
    )


def _backfill_versions(dialect: str) -> Step:
    def run(connection: Connection) -> None:
        rows = connection.exec_driver_sql(
            "SELECT id, version, manifest FROM adapter_versions"
        ).all()
        updates = []
        for row_id, version, manifest in rows:
            base = json.loads(manifest).get("base_model") or {}
            updates.append(
                {"id": row_id, "key": version_key(version), "fp": base.get("fingerprint")}
            )
        if updates:
            connection.execute(
                text(
                    "UPDATE adapter_versions SET version_key = :key, base_fingerprint = :fp "
                    "WHERE id = :id"
                ),
                updates,
            )
        if dialect == "postgresql":
            connection.exec_driver_sql(
                "ALTER TABLE adapter_versions ALTER COLUMN version_key SET NOT NULL"
            )

    return Step(
        "backfill version_key (PEP 440 order) and base_fingerprint (from each manifest)", run
    )


def _backfill_lineage(_dialect: str) -> Step:
    def run(connection: Connection) -> None:
        edges: list[dict[str, Any]] = []
        for row_id, manifest in connection.exec_driver_sql(
            "SELECT id, manifest FROM adapter_versions ORDER BY id"
        ):
            lineage = json.loads(manifest).get("lineage")
            if not lineage:
                continue
            for position, parent in enumerate(lineage.get("parents") or []):
                edges.append(
                    {
                        "child": row_id,
                        "position": position,
                        "operation": lineage.get("operation", ""),
                        "name": parent["name"],
                        "version": parent["version"],
                        "digest": parent["digest"],
                        "weight": parent.get("weight"),
                    }
                )
        if edges:
            connection.execute(
                text(
                    "INSERT INTO lineage_edges (child_id, position, operation, parent_name, "
                    "parent_version, parent_digest, weight) VALUES (:child, :position, "
                    ":operation, :name, :version, :digest, :weight)"
                ),
                edges,
            )

    return Step("backfill lineage_edges from the lineage in each manifest", run)


def _seed_alias_history(_dialect: str) -> Step:
    # Schema 1 kept no alias history: start it with where each alias points now, so
    # that the history always ends at the alias table's state.
    def run(connection: Connection) -> None:
        connection.execute(
            text(
                "INSERT INTO alias_history (name, alias, action, version, digest, previous, "
                "at, actor, note) "
                "SELECT a.name, a.alias, 'set', v.version, v.digest, NULL, a.updated_at, "
                ":actor, :note FROM aliases a JOIN adapter_versions v ON v.id = a.version_id "
                "ORDER BY a.name, a.alias"
            ),
            {
                "actor": _MIGRATION_ACTOR,
                "note": "where the alias pointed at the upgrade to schema 2 (no earlier history)",
            },
        )

    return Step("start alias_history with the current target of every alias", run)


def _timestamps_with_zone(dialect: str) -> Step:
    def run(connection: Connection) -> None:
        if dialect != "postgresql":
            return  # SQLite stores the same text either way
        for table, column in _TIMESTAMPS:
            kind = connection.execute(
                text(
                    "SELECT data_type FROM information_schema.columns WHERE "
                    "table_schema = current_schema() AND table_name = :t AND column_name = :c"
                ),
                {"t": table, "c": column},
            ).scalar_one()
            if kind == "timestamp without time zone":
                connection.exec_driver_sql(
                    f"ALTER TABLE {table} ALTER COLUMN {column} TYPE TIMESTAMP WITH TIME ZONE "
                    f"USING {column} AT TIME ZONE 'UTC'"
                )

    return Step("store timestamps with their time zone (PostgreSQL; they held UTC)", run)


def _create_indexes(_dialect: str) -> Step:
    return _sql(
        f"create {len(_NEW_INDEXES)} indexes (listing, resolution, history, leases)",
        [f"CREATE INDEX {name} ON {table} ({columns})" for name, table, columns in _NEW_INDEXES],
    )


def _append_only(dialect: str) -> Step:
    statements: list[str] = []
    if dialect == "postgresql":
        statements.append(
            "CREATE OR REPLACE FUNCTION adapters_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only'; END $$"
        )
        for table in _APPEND_ONLY:
            statements += [
                f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION adapters_append_only()",
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION adapters_append_only()",
            ]
    else:
        for table in _APPEND_ONLY:
            statements += [
                f"CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                for verb in ("update", "delete")
            ]
    return _sql("make audit_events and alias_history append-only (triggers)", statements)


# In order; the history seed runs before the triggers that would forbid nothing it does,
# and the indexes come last so the backfills do not maintain them row by row.
_STEPS_1_TO_2: list[Callable[[str], Step]] = [
    _timestamps_with_zone,
    _create_tables,
    _add_columns,
    _backfill_versions,
    _backfill_lineage,
    _seed_alias_history,
    _create_indexes,
    _append_only,
]

def _add_description(_dialect: str) -> Step:
    return _sql(
        "add adapter_versions.description (set by `adapters describe`)",
        ["ALTER TABLE adapter_versions ADD COLUMN description TEXT"],
    )


_STEPS_2_TO_3: list[Callable[[str], Step]] = [_add_description]

# -- access tokens of the server -----------------------------------------------------------


def _create_api_tokens(dialect: str) -> Step:
    time = _TIME[dialect]
    return _sql(
        "create table api_tokens (server access tokens, stored hashed)",
        [
            f"CREATE TABLE api_tokens (id {_PK[dialect]}, name VARCHAR(64) NOT NULL, "
            "role VARCHAR(16) NOT NULL, namespace VARCHAR(96), "
            f"secret_sha256 VARCHAR(64) NOT NULL, created_at {time} NOT NULL, "
            f"created_by VARCHAR(256) NOT NULL, expires_at {time}, revoked_at {time}, "
            "PRIMARY KEY (id), CONSTRAINT uq_api_tokens_name UNIQUE (name), "
            "CONSTRAINT uq_api_tokens_secret_sha256 UNIQUE (secret_sha256))",
        ],
    )


# Kept as a list of its own so that it can be renumbered without edits when another
# upgrade lands before it.
_STEPS_TOKENS: list[Callable[[str], Step]] = [_create_api_tokens]

# -- the free-text search index ---------------------------------------------------------------


def _search_index(dialect: str) -> Step:
    what = {"sqlite": "an FTS5 trigram table kept by triggers", "postgresql": "pg_trgm indexes"}
    return Step(
        f"index names, descriptions and tags for search ({what[dialect]})", search_index.create
    )


def _status_index(_dialect: str) -> Step:
    return _sql(
        "index adapter_versions by status (the yanked filter)",
        [
            "CREATE INDEX ix_adapter_versions_status_name "
            "ON adapter_versions (status, name, version_key)"
        ],
    )


_STEPS_SEARCH: list[Callable[[str], Step]] = [_search_index, _status_index]

# STEPS[n]: the steps that take a catalog from schema n to n + 1, per dialect.
STEPS: dict[int, list[Callable[[str], Step]]] = {
    1: _STEPS_1_TO_2,
    2: _STEPS_2_TO_3,
    3: _STEPS_TOKENS,
    4: _STEPS_SEARCH,
}


def plan(found: int, target: int, dialect: str) -> list[tuple[int, Step]]:
    """The steps from schema ``found`` to ``target``, each with the version it starts from."""
    if dialect not in _PK:
        raise NotImplementedError(f"no migrations for the {dialect} dialect")
    return [(v, make(dialect)) for v in range(found, target) for make in STEPS[v]]


def upgrade_one(connection: Connection, found: int) -> None:
    """Run the steps from schema ``found`` to ``found + 1`` on the caller's transaction."""
    for make in STEPS[found]:
        make(connection.dialect.name).run(connection)
