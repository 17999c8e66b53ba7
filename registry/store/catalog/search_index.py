"""The free-text search index over versions: name, description, tags' keys and values.

Search is a case-insensitive substring match (``LIKE '%text%'``), which no ordinary
index serves. Schema 5 adds one that does, per backend:

- SQLite: an FTS5 table with the trigram tokenizer, ``version_search`` (one row per
  version, rowid = version id, its tag keys and values one per line, all lowered), kept in step by
  triggers on ``adapter_versions`` and ``tags``. A phrase query of three or more
  characters finds every row holding it as a substring.
- PostgreSQL: ``pg_trgm`` GIN indexes on the same columns, which serve ``ILIKE``.

Both give the same answers as the plain scan (tests/test_search_index.py compares them).
On SQLite a text shorter than a trigram scans the index's compact copy of the text; on
PostgreSQL, and on an SQLite built without FTS5, it scans the tables.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

# schema_info key recording which index the catalog has ("fts5-trigram", "pg_trgm");
# absent when the database could not build one (search then scans).
INDEX_KEY = "search_index"
FTS_TABLE = "version_search"
CONTENT_TABLE = f"{FTS_TABLE}_content"  # FTS5's copy of the indexed text
# A version's tag keys and values are stored one per line: a search text holding a line
# break could match across two of them, so such a text takes the scan instead.
TAG_SEPARATOR = "\n"
MIN_INDEXED = 3  # characters: shorter texts hold no trigram

# Stored lowered by SQLite's lower() (ASCII only) and matched case-sensitively, so the
# index folds case exactly as the scan's lower(...) LIKE does.
_TAGS_OF = (
    "(SELECT lower(group_concat(key || char(10) || value, char(10))) "
    "FROM tags WHERE version_id = {id})"
)

_SQLITE = [
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(name, description, tags, "
    "tokenize = 'trigram case_sensitive 1')",
    f"INSERT INTO {FTS_TABLE} (rowid, name, description, tags) "
    "SELECT id, lower(name), lower(coalesce(description, '')), "
    f"coalesce({_TAGS_OF.format(id='id')}, '') "
    "FROM adapter_versions",
    "CREATE TRIGGER adapter_versions_search_insert AFTER INSERT ON adapter_versions BEGIN "
    f"INSERT INTO {FTS_TABLE} (rowid, name, description, tags) VALUES (new.id, lower(new.name), "
    f"lower(coalesce(new.description, '')), coalesce({_TAGS_OF.format(id='new.id')}, '')); END",
    "CREATE TRIGGER adapter_versions_search_update AFTER UPDATE OF name, description "
    f"ON adapter_versions BEGIN UPDATE {FTS_TABLE} SET name = lower(new.name), "
    "description = lower(coalesce(new.description, '')) WHERE rowid = new.id; END",
    "CREATE TRIGGER adapter_versions_search_delete AFTER DELETE ON adapter_versions BEGIN "
    f"DELETE FROM {FTS_TABLE} WHERE rowid = old.id; END",
]
for _event, _ids in (("insert", ("new",)), ("update", ("old", "new")), ("delete", ("old",))):
    _body = " ".join(
        f"UPDATE {FTS_TABLE} SET tags = "
        f"coalesce({_TAGS_OF.format(id=f'{row}.version_id')}, '') "
        f"WHERE rowid = {row}.version_id;"
        for row in _ids
    )
    _SQLITE.append(
        f"CREATE TRIGGER tags_search_{_event} AFTER {_event.upper()} ON tags BEGIN {_body} END"
    )

_POSTGRES_INDEXES = [
    ("ix_adapter_versions_name_trgm", "adapter_versions", "name"),
    ("ix_adapter_versions_description_trgm", "adapter_versions", "description"),
    ("ix_tags_key_trgm", "tags", "key"),
    ("ix_tags_value_trgm", "tags", "value"),
]


def sqlite_has_fts5_trigram() -> bool:
    """Whether this Python's SQLite can build the index (FTS5 with trigram: 3.34+)."""
    try:
        connection = sqlite3.connect(":memory:")
        try:
            connection.execute("CREATE VIRTUAL TABLE t USING fts5(a, tokenize = 'trigram')")
        finally:
            connection.close()
    except sqlite3.Error:
        return False
    return True


def create(connection: Connection) -> None:
    """Build the index on the caller's transaction, filled from the rows already there,
    and record which kind it is; without FTS5 or ``pg_trgm`` record nothing (search scans)."""
    dialect = connection.dialect.name
    kind: str | None = None
    if dialect == "sqlite" and sqlite_has_fts5_trigram():
        for statement in _SQLITE:
            connection.exec_driver_sql(statement)
        kind = "fts5-trigram"
    elif dialect == "postgresql" and _pg_trgm(connection):
        for name, table, column in _POSTGRES_INDEXES:
            connection.exec_driver_sql(
                f"CREATE INDEX {name} ON {table} USING gin ({column} gin_trgm_ops)"
            )
        kind = "pg_trgm"
    if kind is not None:
        connection.execute(
            text("INSERT INTO schema_info (key, value) VALUES (:k, :v)"),
            {"k": INDEX_KEY, "v": kind},
        )


def _pg_trgm(connection: Connection) -> bool:
    """Make ``pg_trgm`` available (trusted since PostgreSQL 13: a database owner may);
    a server without it, or a role that may not, leaves search to scan."""
    available = connection.exec_driver_sql(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"
    ).first()
    if available is None:
        return False
    try:
        with connection.begin_nested():
            connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError:
        return False
    return True


def kind(connection: Connection) -> str | None:
    """The index this catalog has, if any."""
    row = connection.execute(
        text("SELECT value FROM schema_info WHERE key = :k"), {"k": INDEX_KEY}
    ).first()
    return None if row is None else str(row[0])


def fold(search: str) -> str:
    """``search`` lowered as the index stores text: ASCII letters only (SQLite's lower())."""
    return "".join(c.lower() if c.isascii() else c for c in search)


def short_scan(search: str) -> str | None:
    """For a text too short for a trigram: ``search`` folded, to look for in the index's
    own copy of the text (FTS5's ``_content`` table: id, c0 name, c1 description, c2
    tags), one compact row per version; None when it holds the tag separator."""
    if TAG_SEPARATOR in search or "\x00" in search:
        return None
    return fold(search)


def fts_phrase(search: str) -> str | None:
    """``search`` as an FTS5 phrase query, or None when the trigram index cannot answer
    it exactly (too short, or holding the tag separator)."""
    if len(search) < MIN_INDEXED or TAG_SEPARATOR in search or "\x00" in search:
        return None
    return '"' + fold(search).replace('"', '""') + '"'
