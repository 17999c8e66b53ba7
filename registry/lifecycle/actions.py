"""The lifecycle of stored versions: evals, aliases behind promotion gates, yank,
removal and the audit log. Versions never change; these are annotations on them,
and every change is an audit event committed with it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from registry.check import Check
from registry.errors import ArgumentError, InvalidNameError, NotFoundError
from registry.lifecycle import transactions as q
from registry.lifecycle.policy import GateInputs, Requirement, enforce, evaluate, load_policy
from registry.lifecycle.results import (
    AliasChange,
    AuditEvent,
    EvalRecord,
    GateReport,
    Removal,
    StatusChange,
)
from registry.store.actor import current_actor
from registry.store.catalog.catalog import Catalog
from registry.store.catalog.engine import read_session
from registry.store.catalog.history import utcnow
from registry.store.catalog.lineage_edges import find_version_id
from registry.store.conditions import (
    validate_dataset,
    validate_metric,
    validate_notes,
    validate_score,
    validate_split,
)
from registry.store.manifest import Manifest
from registry.store.push import PushGate
from registry.store.refs import Ref, parse_ref, validate_alias, validate_name
from registry.store.results import AdapterVersion, EvalScore
from registry.store.scores import NewScore
from registry.store.verify import verify_version

if TYPE_CHECKING:
    from registry.store.store import Store

REASON_MAX = 1000


def _ref(ref: str | Ref) -> Ref:
    return parse_ref(ref) if isinstance(ref, str) else ref


def _exact(ref: str | Ref, verb: str) -> Ref:
    parsed = _ref(ref)
    if parsed.kind not in ("version", "digest"):
        raise InvalidNameError(
            f"{verb} needs an exact version: {parsed.name}@VERSION or "
            f"{parsed.name}@sha256:DIGEST, not {str(parsed)!r}"
        )
    return parsed


def _row_id(catalog: Catalog, version: AdapterVersion) -> int:
    with read_session(catalog.engine) as session:
        found = find_version_id(session, version.name, version.digest)
    if found is None:
        raise NotFoundError(f"{version.ref} was removed meanwhile")
    return found


def _text(value: str, what: str, limit: int = REASON_MAX) -> str:
    value = value.strip()
    if len(value) > limit:
        raise ArgumentError(f"the {what} is {len(value)} characters long; at most {limit}")
    if any(not c.isprintable() for c in value):
        raise ArgumentError(f"the {what} may not contain control characters")
    return value


# -- evals ---------------------------------------------------------------------------


def record_eval(
    catalog: Catalog,
    ref: str | Ref,
    scores: Mapping[str, float],
    *,
    dataset: str = "",
    split: str = "",
    notes: str = "",
) -> EvalRecord:
    """Append eval records (never overwriting earlier ones) in one transaction."""
    if not scores:
        raise ArgumentError("no eval scores given; pass METRIC=VALUE")
    checked = [
        NewScore(
            validate_metric(metric),
            validate_score(metric, value),
            validate_dataset(dataset),
            validate_split(split),
            validate_notes(notes),
        )
        for metric, value in scores.items()
    ]
    version = catalog.resolve(_ref(ref))
    added = q.append_evals(catalog.engine, _row_id(catalog, version), checked, current_actor())
    return EvalRecord(ref=version.ref, digest=version.digest, scores=tuple(added))


# -- aliases and gates ---------------------------------------------------------------


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
    version = store.catalog.resolve(_ref(ref))
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
    note = _text(note, "note")
    version = store.catalog.resolve(_ref(ref))
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
    outcome = q.set_alias(catalog.engine, _row_id(catalog, version), alias, actor, note, gate)
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
    name, alias, note = validate_name(name), validate_alias(alias), _text(note, "note")
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


# -- yank and removal ----------------------------------------------------------------


def _set_status(
    catalog: Catalog, ref: str | Ref, status: str, reason: str | None, verb: str
) -> StatusChange:
    version = catalog.resolve(_exact(ref, verb))
    before = q.set_status(
        catalog.engine, _row_id(catalog, version), status, reason, current_actor()
    )
    return StatusChange(
        ref=version.ref,
        digest=version.digest,
        status=status,
        reason=reason,
        previous_status=before.previous_status,
        previous_reason=before.previous_reason,
        aliases=before.aliases,
    )


def yank(catalog: Catalog, ref: str | Ref, reason: str) -> StatusChange:
    """Mark a version yanked (PEP 592): specifiers and bare names skip it; exact pins
    still resolve, with a ``YankedVersionWarning``. Yanking again updates the reason."""
    reason = _text(reason, "reason")
    if not reason:
        raise ArgumentError("a yank needs a reason, e.g. --reason 'trained on leaked data'")
    return _set_status(catalog, ref, "yanked", reason, "yank")


def unyank(catalog: Catalog, ref: str | Ref) -> StatusChange:
    return _set_status(catalog, ref, "active", None, "unyank")


def remove(catalog: Catalog, ref: str | Ref, *, force: bool = False, reason: str = "") -> Removal:
    """Delete a version's catalog rows (its blobs stay until ``gc``).

    Refused while an alias points at it, unless ``force`` removes those aliases too.
    """
    reason = _text(reason, "reason")
    version = catalog.resolve(_exact(ref, "rm"))
    aliases, freed = q.delete_version(
        catalog.engine, _row_id(catalog, version), force=force, reason=reason, actor=current_actor()
    )
    return Removal(
        ref=version.ref, digest=version.digest, aliases_removed=aliases, unreferenced_bytes=freed
    )


# -- the audit log -------------------------------------------------------------------


def audit_log(
    catalog: Catalog,
    ref: str | Ref | None = None,
    *,
    actions: Sequence[str] = (),
    actor: str | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Events oldest first. ``ref`` as a bare name selects the name's events; any other
    reference selects one version's (an exact version works after it was removed)."""
    if limit is not None and limit < 1:
        raise ArgumentError(f"--limit must be at least 1, not {limit}")
    name = version = None
    if ref is not None:
        parsed = _ref(ref)
        name = parsed.name
        if parsed.kind == "version":
            version = parsed.value
        elif parsed.kind != "latest":
            version = catalog.resolve(parsed).version
    rows = q.events(
        catalog.engine, name=name, version=version, actions=actions, actor=actor, limit=limit
    )
    return [
        AuditEvent(
            id=r.id or 0,
            at=r.at,
            actor=r.actor,
            action=r.action,
            name=r.name,
            version=r.version,
            details=json.loads(r.details),
        )
        for r in rows
    ]


# -- hooks used by the facade --------------------------------------------------------


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
