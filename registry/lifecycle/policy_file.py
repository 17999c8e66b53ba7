"""The stored promotion policy: ``policy.json`` in the registry home, read, checked and
replaced as a whole document (``adapters policy show|check|set``, ``GET``/``PUT /policy``).

A replacement is validated against schemas/policy.schema.json (and the checks a schema
cannot make) before anything is written; it is written to a temporary file in the home,
synced, and renamed over ``policy.json`` inside the transaction that records the
``policy-set`` audit event naming the actor, so the policy never changes unaudited and a
reader never sees half a file. The next gated alias move reads it (``aliases``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from registry.errors import RegistryError, ValidationError
from registry.lifecycle.policy import POLICY_FILE, policy_problems
from registry.store.catalog.catalog import Catalog
from registry.store.catalog.engine import write_session
from registry.store.catalog.history import add_event, utcnow

POLICY_ACTION = "policy-set"


@dataclass(frozen=True)
class PolicyDocument:
    """The policy as stored: its JSON (None: no policy file, so no gates) and the sha256
    of the file's bytes."""

    document: dict[str, Any] | None
    sha256: str | None


@dataclass(frozen=True)
class PolicyCheck:
    """Whether a policy document is valid, with every problem found."""

    valid: bool
    problems: tuple[str, ...]
    rules: int


@dataclass(frozen=True)
class PolicyChange:
    """A replaced policy: the new and the previous file's sha256, who and when."""

    sha256: str
    previous_sha256: str | None
    rules: int
    actor: str
    at: datetime


def read_policy(home_root: Path) -> PolicyDocument:
    """The stored policy document as it is, even when invalid (``check_policy`` says why)."""
    raw = _read(home_root / POLICY_FILE)
    if raw is None:
        return PolicyDocument(None, None)
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(str(home_root / POLICY_FILE), [f"not valid JSON: {exc}"]) from None
    if not isinstance(document, dict):
        raise ValidationError(str(home_root / POLICY_FILE), ["$: expected an object"])
    return PolicyDocument(document, hashlib.sha256(raw).hexdigest())


def check_policy(document: Any) -> PolicyCheck:
    problems = tuple(policy_problems(document))
    rules = document.get("rules") if isinstance(document, dict) else None
    return PolicyCheck(not problems, problems, len(rules) if isinstance(rules, list) else 0)


def set_policy(home_root: Path, catalog: Catalog, document: Any, actor: str) -> PolicyChange:
    """Replace ``policy.json`` with ``document`` once it is valid; audited."""
    checked = check_policy(document)
    if not checked.valid:
        raise ValidationError("the policy", list(checked.problems))
    path = home_root / POLICY_FILE
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
    digest = hashlib.sha256(data).hexdigest()
    try:
        fd, tmp = tempfile.mkstemp(prefix=".policy-", suffix=".tmp", dir=home_root)
    except OSError as exc:
        reason = exc.strerror or exc
        raise RegistryError(
            f"cannot write the policy file in {home_root}: {reason}; check the home's permissions"
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        with write_session(catalog.engine) as session:
            # Read once this writer holds the turn (SQLite's write lock, PostgreSQL's
            # advisory lock), so that the event names the file this one really replaced.
            _take_turn(session)
            previous = _read(path)
            before = None if previous is None else hashlib.sha256(previous).hexdigest()
            details = {"sha256": digest, "previous_sha256": before, "rules": checked.rules}
            add_event(session, actor, POLICY_ACTION, None, None, details)
            # Renamed before the commit: a failed rename rolls the event back.
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    _sync_dir(home_root)
    return PolicyChange(digest, before, checked.rules, actor, utcnow())


_POLICY_LOCK = 7_245_003  # the advisory lock policy writers take turns on (PostgreSQL)


def _take_turn(session: Session) -> None:
    """Wait until no other writer of the policy is between its read and its commit."""
    # The first statement begins the transaction: BEGIN IMMEDIATE on SQLite takes the
    # write lock; on PostgreSQL the advisory lock is held until commit.
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POLICY_LOCK})
    else:
        connection.exec_driver_sql("SELECT 1")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RegistryError(f"cannot read the policy file {path}: {exc.strerror or exc}") from None


def _sync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
