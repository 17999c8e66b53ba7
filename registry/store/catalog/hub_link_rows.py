"""``HubLink``, one row of ``hub_links`` (a version's push to or pull from a Hub repo,
written by ``registry.hub.links``), and reading them as plain SQL over an ``Execute``
callable, so that ``Catalog`` (SQLAlchemy) and the SQLite reader of ``adapters show``
(the standard library's ``sqlite3``) read them alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from registry.store.catalog.version_rows import Execute, utc_datetime
from registry.store.results import iso_utc

# "commit" is a reserved word in SQL.
_COLUMNS = (
    "name, version, digest, direction, endpoint, repo_type, repo_id, revision, \"commit\", tag, "
    "at, actor"
)


@dataclass(frozen=True)
class HubLink:
    name: str
    version: str
    digest: str
    direction: str  # "push" | "pull"
    endpoint: str
    repo_type: str
    repo_id: str
    revision: str
    commit: str
    tag: str | None
    at: datetime
    actor: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def url(self) -> str:
        return f"{self.endpoint}/{self.repo_id}/tree/{self.commit}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "endpoint": self.endpoint,
            "repo_type": self.repo_type,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "tag": self.tag,
            "digest": self.digest,
            "at": iso_utc(self.at),
            "actor": self.actor,
        }


def read_links(execute: Execute, name: str, version: str | None = None) -> list[HubLink]:
    """Every push and pull of ``name`` (of ``version`` only, when given), oldest first."""
    where, params = "name = :n", {"n": name}
    if version is not None:
        where += " AND version = :v"
        params["v"] = version
    rows = execute(f"SELECT {_COLUMNS} FROM hub_links WHERE {where} ORDER BY id", params)
    return [
        HubLink(
            name=row[0],
            version=row[1],
            digest=row[2],
            direction=row[3],
            endpoint=row[4],
            repo_type=row[5],
            repo_id=row[6],
            revision=row[7],
            commit=row[8],
            tag=row[9],
            at=utc_datetime(row[10]),
            actor=row[11],
        )
        for row in rows
    ]
