"""Hub links: which Hugging Face Hub repo, commit and tag a version was pushed to or pulled
from. Each link is written with its ``hub-push`` / ``hub-pull`` audit event in one
transaction. Nothing here imports huggingface_hub, so ``adapters show`` stays light."""

from __future__ import annotations

from typing import Any

from registry.store.catalog.catalog import Catalog
from registry.store.catalog.engine import write_session
from registry.store.catalog.history import add_event, utcnow

# HubLink and read_links live where reading needs no SQLAlchemy (``adapters show``).
from registry.store.catalog.hub_link_rows import HubLink, read_links
from registry.store.catalog.tables import HubLinkRow

DIRECTIONS = ("push", "pull")


def _link(row: HubLinkRow) -> HubLink:
    return HubLink(
        name=row.name,
        version=row.version,
        digest=row.digest,
        direction=row.direction,
        endpoint=row.endpoint,
        repo_type=row.repo_type,
        repo_id=row.repo_id,
        revision=row.revision,
        commit=row.commit,
        tag=row.tag,
        at=row.at,
        actor=row.actor,
    )


def record_link(
    catalog: Catalog,
    *,
    name: str,
    version: str,
    digest: str,
    direction: str,
    endpoint: str,
    repo_id: str,
    revision: str,
    commit: str,
    tag: str | None,
    actor: str,
    details: dict[str, Any] | None = None,
    repo_type: str = "model",
) -> HubLink:
    """Record a push or pull and its audit event (``hub-push`` / ``hub-pull``) together."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    row = HubLinkRow(
        name=name,
        version=version,
        digest=digest,
        direction=direction,
        endpoint=endpoint,
        repo_type=repo_type,
        repo_id=repo_id,
        revision=revision,
        commit=commit,
        tag=tag,
        at=utcnow(),
        actor=actor,
    )
    with write_session(catalog.engine) as session:
        session.add(row)
        add_event(
            session,
            actor,
            f"hub-{direction}",
            name,
            version,
            {
                "digest": digest,
                "endpoint": endpoint,
                "repo_id": repo_id,
                "revision": revision,
                "commit": commit,
                "tag": tag,
                **(details or {}),
            },
        )
        session.flush()
        link = _link(row)
    return link


def links_for_version(catalog: Catalog, name: str, version: str) -> list[HubLink]:
    """Every push and pull of ``name@version``, oldest first."""
    with catalog.plain_reader() as execute:
        return read_links(execute, name, version)


def links_for_name(catalog: Catalog, name: str) -> list[HubLink]:
    """Every push and pull of any version of ``name``, oldest first."""
    with catalog.plain_reader() as execute:
        return read_links(execute, name)
