"""A push of content already stored: its annotations (evals, tags, alias) go onto the
stored version, through the same gates as ``adapters eval``, ``alias`` and the tags of a
first push, each change an audit event.

The alias gates are checked first, against the stored evals plus the pushed ones: when
one is not met nothing is applied, as a first push with ``--alias`` records nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import select

from registry.errors import GateError
from registry.lifecycle import aliases
from registry.lifecycle import transactions as q
from registry.lifecycle.policy import GateInputs, evaluate
from registry.lifecycle.selection import row_id
from registry.store.actor import current_actor
from registry.store.catalog.engine import write_session
from registry.store.catalog.history import add_event, utcnow
from registry.store.catalog.tables import TagRow
from registry.store.results import AdapterVersion, EvalScore
from registry.store.scores import NewScore
from registry.store.verify import verify_version

if TYPE_CHECKING:
    from registry.store.store import Store


@dataclass(frozen=True)
class Applied:
    """What a repeated push changed on the stored version."""

    alias: str | None = None  # the alias now pointing at it (None: none asked)
    alias_moved: bool = False  # False: it already pointed there
    evals: int = 0
    tags: tuple[str, ...] = ()  # keys that now hold the pushed values


def apply_annotations(
    store: Store,
    version: AdapterVersion,
    *,
    alias: str | None,
    evals: Sequence[NewScore],
    tags: Mapping[str, str],
) -> Applied:
    """Apply a repeated push's annotations to ``version``; raise ``GateError`` (nothing
    applied) when an alias gate is not met."""
    if alias is not None:
        _check_gates(store, version, alias, evals)
    catalog = store.catalog
    actor = current_actor()
    groups: dict[tuple[str, str], list[NewScore]] = {}
    for score in evals:
        groups.setdefault((score.dataset, score.split), []).append(score)
    for group in groups.values():
        q.append_evals(catalog.engine, row_id(catalog, version), group, actor)
    if tags:
        _set_tags(store, version, tags, actor)
    moved = False
    if alias is not None:
        change = aliases.set_alias(store, version.ref, alias, note="push of identical content")
        moved = change.changed
    return Applied(alias, moved, len(evals), tuple(sorted(tags)))


def _check_gates(
    store: Store, version: AdapterVersion, alias: str, evals: Sequence[NewScore]
) -> None:
    needed = aliases.requirements_for(store.root, version.name, alias, ())
    if not needed:
        return
    now, actor = utcnow(), current_actor()
    pending = [EvalScore(e.metric, e.value, e.dataset, e.split, e.notes, now, actor) for e in evals]
    inputs = GateInputs(
        [*version.evals, *pending],
        version.base_model.fingerprint,
        verify=lambda: verify_version(version, store.blobs),
    )
    report = evaluate(needed, inputs, ref=version.ref, alias=alias)
    if not report.ok:
        unmet = [f"{c.name} not met ({c.detail})" for c in report.unmet]
        raise GateError(
            f"identical content is already stored as {version.ref}; it cannot become "
            f"{version.name}@{alias}: " + "; ".join(unmet) + "; nothing was applied",
            [c.name for c in report.unmet],
        )


def _set_tags(store: Store, version: AdapterVersion, tags: Mapping[str, str], actor: str) -> None:
    """Set tag keys (a pushed value replaces the stored one); one audit event if any changed."""
    vid = row_id(store.catalog, version)
    changed: dict[str, str] = {}
    with write_session(store.catalog.engine) as session:
        current = {
            t.key: t
            for t in session.exec(select(TagRow).where(TagRow.version_id == vid))
        }
        for key, value in sorted(tags.items()):
            row = current.get(key)
            if row is None:
                session.add(TagRow(version_id=vid, key=key, value=value))
            elif row.value != value:
                row.value = value
                session.add(row)
            else:
                continue
            changed[key] = value
        if changed:
            add_event(session, actor, "tag", version.name, version.version, {"set": changed})
