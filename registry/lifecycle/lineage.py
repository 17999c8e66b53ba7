"""Lineage queries: where a derived version came from, and what was derived from it.

Ancestors follow the ``lineage`` of each manifest (parents by name, version and
digest); a parent that is no longer in the catalog is still shown, marked absent,
because the child's manifest keeps naming it. Descendants come from the
``lineage_edges`` index of every manifest that names this version as a parent.
"""

from __future__ import annotations

from registry.errors import ArgumentError, NotFoundError
from registry.lifecycle.results import LineageNode, LineageReport
from registry.store.catalog.catalog import Catalog
from registry.store.catalog.engine import read_session
from registry.store.catalog.lineage_edges import children_of, find_version_id
from registry.store.results import AdapterVersion

MAX_DEPTH = 64


def lineage(catalog: Catalog, version: AdapterVersion, *, depth: int = MAX_DEPTH) -> LineageReport:
    if depth < 1:
        raise ArgumentError(f"depth must be at least 1, not {depth}")
    origin = {(version.name, version.digest)}
    return LineageReport(
        ref=version.ref,
        digest=version.digest,
        operation=version.manifest.lineage.operation if version.manifest.lineage else None,
        ancestors=_ancestors(catalog, version, depth, origin),
        descendants=_descendants(catalog, version, depth, origin),
    )


def _load(catalog: Catalog, name: str, digest: str) -> AdapterVersion | None:
    with read_session(catalog.engine) as session:
        found = find_version_id(session, name, digest)
    if found is None:
        return None
    loaded = catalog.get_many([found])
    return loaded[0] if loaded else None


def _ancestors(
    catalog: Catalog, child: AdapterVersion, depth: int, path: set[tuple[str, str]]
) -> tuple[LineageNode, ...]:
    recipe = child.manifest.lineage
    if recipe is None or depth == 0:
        return ()
    nodes = []
    for parent in recipe.parents:
        key = (parent.name, parent.digest)
        stored = _load(catalog, parent.name, parent.digest)
        links: tuple[LineageNode, ...] = ()
        # A digest cannot contain its own descendant, but a hand-made manifest could claim
        # one; the path guard keeps such a cycle from recursing forever.
        if stored is not None and key not in path:
            links = _ancestors(catalog, stored, depth - 1, path | {key})
        nodes.append(
            LineageNode(
                name=parent.name,
                version=stored.version if stored else parent.version,
                digest=parent.digest,
                present=stored is not None,
                status=stored.status if stored else None,
                operation=recipe.operation,
                weight=parent.weight,
                links=links,
            )
        )
    return tuple(nodes)


def _descendants(
    catalog: Catalog, parent: AdapterVersion, depth: int, path: set[tuple[str, str]]
) -> tuple[LineageNode, ...]:
    if depth == 0:
        return ()
    with read_session(catalog.engine) as session:
        edges = children_of(session, parent.name, parent.digest)
    nodes = []
    seen: set[int] = set()
    for edge in edges:
        if edge.version_id in seen:
            continue  # a child naming the same parent twice is one descendant
        seen.add(edge.version_id)
        try:
            child = catalog.get_by_id(edge.version_id)
        except NotFoundError:
            continue  # removed since the edges were read
        key = (child.name, child.digest)
        links = () if key in path else _descendants(catalog, child, depth - 1, path | {key})
        nodes.append(
            LineageNode(
                name=child.name,
                version=child.version,
                digest=child.digest,
                present=True,
                status=child.status,
                operation=edge.operation,
                weight=edge.weight,
                links=links,
            )
        )
    return tuple(nodes)
