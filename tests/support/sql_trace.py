"""The SQL statements a catalog runs, as the database receives them.

On SQLite the catalog hands its plain statements to pysqlite directly (not through
SQLAlchemy's cursor events), so they are traced by SQLite itself, with the values bound
written in; other databases are traced through SQLAlchemy's ``before_cursor_execute``,
with ``%(name)s`` or ``?`` placeholders left in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

_IN_LIST = re.compile(r"\bIN \(([^()]*)\)")


@contextmanager
def traced(engine: Engine) -> Iterator[list[str]]:
    """Every statement run on ``engine`` inside the block, in order."""
    statements: list[str] = []
    if engine.dialect.name == "sqlite":

        def trace(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.set_trace_callback(statements.append)

        # Connections opened for the block, then dropped (the callback stays on them).
        engine.dispose()
        event.listen(engine, "connect", trace)
        try:
            yield statements
        finally:
            event.remove(engine, "connect", trace)
            engine.dispose()
        return

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def values_named(statement: str) -> int:
    """How many values a statement names: bound parameters, or members of its IN lists
    (where ids are written as literals)."""
    bound = statement.count("?") + statement.count("%(")
    listed = sum(len(members.split(",")) for members in _IN_LIST.findall(statement))
    return bound + listed
