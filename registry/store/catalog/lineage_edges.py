"""Lineage edges: the parents named in each derived version's manifest, indexed by the
parent's digest so that "what was made from this version?" is one lookup."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from registry.store.catalog.tables import AdapterVersionRow, LineageEdgeRow
from registry.store.manifest import Manifest


def record_lineage(session: Session, child_id: int, manifest: Manifest) -> None:
    if manifest.lineage is None:
        return
    for position, parent in enumerate(manifest.lineage.parents):
        session.add(
            LineageEdgeRow(
                child_id=child_id,
                position=position,
                operation=manifest.lineage.operation,
                parent_name=parent.name,
                parent_version=parent.version,
                parent_digest=parent.digest,
                weight=parent.weight,
            )
        )


@dataclass(frozen=True)
class Child:
    version_id: int
    operation: str
    weight: float | None


def children_of(session: Session, name: str, digest: str) -> list[Child]:
    """Versions whose manifest names (``name``, ``digest``) as a parent, oldest first."""
    rows = session.exec(
        select(LineageEdgeRow)
        .where(col(LineageEdgeRow.parent_digest) == digest, LineageEdgeRow.parent_name == name)
        .order_by(col(LineageEdgeRow.child_id), col(LineageEdgeRow.position))
    )
    return [Child(r.child_id, r.operation, r.weight) for r in rows]


def find_version_id(session: Session, name: str, digest: str) -> int | None:
    return session.exec(
        select(AdapterVersionRow.id).where(
            AdapterVersionRow.name == name, AdapterVersionRow.digest == digest
        )
    ).first()
