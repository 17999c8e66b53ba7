"""Aliases: moved atomically behind promotion gates (policy.json and --require), removed,
and their history; and the gate a push with --alias passes before its version is recorded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from registry.check import Check
from registry.errors import NotFoundError
from registry.lifecycle import transactions as q
from registry.lifecycle.policy import GateInputs, Requirement, enforce, evaluate, load_policy
from registry.lifecycle.results import (
    AliasChange,
    GateReport,
)
from registry.store.actor import current_actor
from registry.store.catalog.catalog import Catalog
from registry.store.catalog.history import utcnow
from registry.store.manifest import Manifest
from registry.store.push import PushGate
from registry.store.refs import Ref, validate_alias, validate_name
from registry.store.results import AdapterVersion, EvalScore
from registry.store.scores import NewScore
from registry.store.verify import verify_version

if TYPE_CHECKING:
    from registry.store.store import Store
from registry.lifecycle.selection import as_ref, checked_text, row_id


def _gate_inputs(version: AdapterVersion, store: Store) -> GateInputs:
    from registry.security.signing import trusted_signers

    return GateInputs(
        evals=version.evals,
        base_fingerprint=version.base_model.fingerprint,
        verify=lambda: verify_version(version, store.blobs),
        signers=lambda: trusted_signers(store, version),
    )


def requirements_for(
    home_root: Path, name: str, alias: str, requires: Sequence[Requirement]
) -> list[Requirement]:
    return load_policy(home_root).requirements(name, alias) + list(requires)


def check_alias(
    store: Store,
    ref: str | Ref,
    alias: str,
    requires: Sequence[Requirement] = (),
) -> GateReport:
    """Evaluate the gates for pointing ``alias`` at ``ref`` without moving anything."""
    alias = validate_alias(alias)
    version = store.catalog.resolve(as_ref(ref))
    needed = requirements_for(store.root, version.name, alias, requires)
    inputs = _gate_inputs(version, store)
    return evaluate(needed, inputs, ref=version.ref, alias=alias)


def set_alias(
    store: Store,
    ref: str | Ref,
    alias: str,
    *,
    requires: Sequence[Requirement] = (),
    note: str = "",
) -> AliasChange:
    """Point ``alias`` at ``ref`` if every gate (policy and ``requires``) is met.

    ``verify`` runs before the transaction (it re-hashes blobs, which no writer can
    change); eval and fingerprint gates are re-read inside it, with the move.
    """
    alias = validate_alias(alias)
    note = checked_text(note, "note")
    version = store.catalog.resolve(as_ref(ref))
    needed = requirements_for(store.root, version.name, alias, requires)
    inputs = _gate_inputs(version, store)
    slow = [r for r in needed if r.kind in ("verify", "signature")]
    if slow:
        # Run once now, outside the write lock (both re-hash blobs, which no writer can
        # change); the gate below reuses the results.
        evaluate(slow, inputs, ref=version.ref, alias=alias)
    target = f"{version.name}@{alias}"

    def gate(evals: Sequence[EvalScore], fingerprint: str | None) -> tuple[Check, ...]:
        inputs.evals, inputs.base_fingerprint = evals, fingerprint
        report = evaluate(needed, inputs, ref=version.ref, alias=alias)
        enforce(report, target)
        return report.checks

    actor = current_actor()
    catalog = store.catalog
    outcome = q.set_alias(catalog.engine, row_id(catalog, version), alias, actor, note, gate)
    return AliasChange(
        name=outcome.name,
        alias=alias,
        action="set",
        version=outcome.version,
        digest=outcome.digest,
        previous=outcome.previous,
        at=utcnow(),
        actor=actor,
        note=note,
        changed=outcome.changed,
        gates=outcome.checks,
    )


def remove_alias(catalog: Catalog, name: str, alias: str, *, note: str = "") -> AliasChange:
    name, alias, note = validate_name(name), validate_alias(alias), checked_text(note, "note")
    actor = current_actor()
    previous = q.remove_alias(catalog.engine, name, alias, actor, note)
    return AliasChange(
        name=name,
        alias=alias,
        action="rm",
        version=None,
        digest=None,
        previous=previous,
        at=utcnow(),
        actor=actor,
        note=note,
    )


def alias_history(catalog: Catalog, name: str, alias: str | None = None) -> list[AliasChange]:
    name = validate_name(name)
    if alias is not None:
        validate_alias(alias)
    rows = q.alias_history(catalog.engine, name, alias)
    if not rows and not q.name_exists(catalog.engine, name):
        raise NotFoundError(f"no adapter named {name!r}")
    return [
        AliasChange(
            name=r.name,
            alias=r.alias,
            action=r.action,
            version=r.version,
            digest=r.digest,
            previous=r.previous,
            at=r.at,
            actor=r.actor,
            note=r.note,
        )
        for r in rows
    ]


def push_gate(home_root: Path, alias: str) -> PushGate:
    """The policy's gates for ``push --alias``, checked before the version is recorded.

    ``verify`` passes by construction there: the push has just hashed every file into
    the store and validated config and tensors.
    """

    def gate(
        name: str, manifest: Manifest, evals: Sequence[NewScore]
    ) -> None:
        needed = requirements_for(home_root, name, validate_alias(alias), ())
        if not needed:
            return
        now, actor = utcnow(), current_actor()
        scores = [
            EvalScore(e.metric, e.value, e.dataset, e.split, e.notes, now, actor) for e in evals
        ]
        inputs = GateInputs(scores, manifest.base_model.fingerprint, verify=None)
        report = evaluate(needed, inputs, ref=f"{name} (being pushed)", alias=alias)
        enforce(report, f"{name}@{alias}")

    return gate
