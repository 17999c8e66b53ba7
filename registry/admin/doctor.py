"""``adapters doctor``: check a registry and say, for each problem, the command that fixes it.

Checks, in order (a failed step stops the ones that depend on it):

- the environment: a transformers that refuses the installed peft;
- the home: marker, layout, ``objects/`` and ``tmp/`` present and writable;
- the catalog database: reachable (its URL shown with the password masked) and at
  this release's schema version;
- the rows: rows of files, evals, tags, training data, aliases, lineage and
  signatures whose version is gone, versions without files, expired blob leases;
- the blobs: every referenced blob present with its recorded size, and hashing to its
  name (a bounded random sample of them; ``deep``: all), stored blobs nothing
  references (or, when the catalog does not look like the blob store's own, that
  evidence: never a deleting command), temp files left in staging.

Unreferenced blobs are listed first and the catalog read second, as ``gc`` does, so
a push in progress (whose blobs are leased) is never reported.
"""

from __future__ import annotations

import json
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from registry.errors import RegistryError
from registry.runtime.peft_pairing import pairing_problem
from registry.store import catalog_match
from registry.store.blob_config import open_blob_store, overridden_blob_url
from registry.store.blob_probe import probe_blob_store, probe_cache
from registry.store.blob_store import BlobBackend
from registry.store.catalog.engine import make_engine, read_session, redacted_url, sqlite_file
from registry.store.catalog.history import utcnow
from registry.store.catalog.schema import SCHEMA_VERSION, read_version
from registry.store.home import HOME_LAYOUT_VERSION, MARKER_FILE, RegistryHome
from registry.store.leases import LEASE_EXPIRY, protected_digests
from registry.store.verified_files import STAGED_UPLOADS

Severity = Literal["error", "warning", "info"]
_SHOWN = 5  # versions named per finding
SAMPLE_BLOBS = 64  # plain doctor hashes at most this many referenced blobs...
SAMPLE_BYTES = 256 * 2**20  # ...and about this many bytes (at least one blob)


@dataclass(frozen=True)
class Finding:
    check: str  # home | environment | database | schema | rows | blobs | staging | leases
    severity: Severity  # error: data at risk; warning: needs attention; info: no action
    what: str
    fix: str  # the command (or action) that resolves it; "" for info


@dataclass(frozen=True)
class DoctorReport:
    home: str
    database: str  # password masked
    schema_version: int | None
    deep: bool
    checked: tuple[str, ...]  # the checks that ran
    counts: dict[str, int] = field(default_factory=dict)  # versions, blobs, ...
    findings: tuple[Finding, ...] = ()
    blob_store: str = ""  # where the blobs live (a path or an object store URL)

    @property
    def clean(self) -> bool:
        """No errors and no warnings (info findings need no action)."""
        return not any(f.severity != "info" for f in self.findings)


def diagnose(
    home: RegistryHome, url: str, *, deep: bool = False, write_check: bool = False
) -> DoctorReport:
    findings: list[Finding] = _check_home(home) + _check_environment()
    checked = ["home", "environment", "database"]
    counts: dict[str, int] = {}
    store_url = ""

    def report(version: int | None) -> DoctorReport:
        return DoctorReport(
            str(home.root), redacted_url(url), version, deep, tuple(checked), counts,
            tuple(findings), store_url,
        )  # fmt: skip

    missing = sqlite_file(url)
    if missing is not None and not missing.exists():
        # Connecting would create an empty file: report the loss instead.
        findings.append(_missing_catalog(home, f"the catalog file {missing} is missing"))
        return report(None)
    try:
        engine = make_engine(url)
    except RegistryError as exc:
        findings.append(_database_finding(str(exc)))
        return report(None)
    try:
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
                version = read_version(connection)
        except Exception as exc:  # any driver failure is the finding
            reason = str(getattr(exc, "orig", None) or exc)  # the driver's words, no SQL
            findings.append(_database_finding(" ".join(reason.split())[:300]))
            return report(None)
        checked.append("schema")
        schema = _check_schema(version, home)
        if schema is not None:
            findings.append(schema)
            return report(version)
        checked.append("store" + (" (write check)" if write_check else ""))
        try:
            overridden = overridden_blob_url(home)
            if overridden is not None:  # which one wins is not obvious: say it
                findings.append(Finding("store", "info", overridden, ""))
            blobs = open_blob_store(home)
            store_url = blobs.url
            problems = probe_blob_store(blobs, write=write_check)
        except RegistryError as exc:
            problems = [str(exc)]
        if problems:
            findings.extend(Finding("store", "error", p, "fix the blob store") for p in problems)
            return report(version)
        cache_problem = probe_cache(blobs)
        if cache_problem is not None:  # reads of blobs not cached yet will fail
            findings.append(Finding("store", "warning", cache_problem, "fix the cache directory"))
        checked += ["rows", "leases", "blobs", "staging"]
        stored = dict(blobs.iter_sizes())  # listed before the catalog is read (see docstring)
        with read_session(engine) as session:
            connection = session.connection()
            findings += _check_rows(connection, counts)
            findings += _check_leases(connection, counts)
            referenced = _referenced(connection)
            evidence = catalog_match.check(session, blobs, set(stored))
            keep = protected_digests(session, utcnow() - LEASE_EXPIRY)
        counts["blobs_stored"] = len(stored)
        counts["blobs_referenced"] = len(referenced)
        findings += _check_blobs(blobs, stored, referenced, deep, counts)
        mismatch = evidence
        if mismatch is not None:
            findings.append(
                Finding(
                    "blobs",
                    "error",
                    f"the catalog does not look like this blob store's: {mismatch}",
                    "restore the catalog from a backup, or point ADAPTERS_DATABASE_URL at the "
                    "right one; do not run `adapters gc` (it would delete those blobs)",
                )
            )
        else:
            findings += _unreferenced(stored, keep | _staged_uploads(home.tmp_dir))
        findings += _check_staging(blobs, home.tmp_dir)
        if mismatch is not None:
            # gc would act on the wrong catalog: no finding may recommend it.
            findings = [_without_gc(f) for f in findings]
    finally:
        engine.dispose()
    return report(version)


def _without_gc(finding: Finding) -> Finding:
    if "adapters gc" not in finding.fix:
        return finding
    fix = "first restore the right catalog (see the blobs error); only then `adapters gc`"
    return Finding(finding.check, finding.severity, finding.what, fix)


# -- environment --------------------------------------------------------------------------------


def _check_environment() -> list[Finding]:
    problem = pairing_problem()
    if problem is None:
        return []
    what, _, fix = problem.partition(": install ")
    return [Finding("environment", "warning", what, "install " + fix)]


# -- home ---------------------------------------------------------------------------------------


def _check_home(home: RegistryHome) -> list[Finding]:
    root = home.root
    found: list[Finding] = []
    marker = root / MARKER_FILE
    try:
        layout = json.loads(marker.read_text(encoding="utf-8")).get("layout")
    except (OSError, ValueError, AttributeError):
        layout = None
    if layout != HOME_LAYOUT_VERSION:
        found.append(
            Finding(
                "home",
                "error",
                f"{marker} is missing or unreadable, or names layout {layout!r} "
                f"(this release writes {HOME_LAYOUT_VERSION})",
                f"adapters init {root}",
            )
        )
    for directory in (home.objects_dir, home.tmp_dir):
        if not directory.is_dir():
            found.append(
                Finding("home", "error", f"{directory} is missing", f"adapters init {root}")
            )
        elif not os.access(directory, os.W_OK | os.X_OK):
            found.append(
                Finding(
                    "home",
                    "error",
                    f"{directory} is not writable by this user (pushes and gc will fail)",
                    f"chmod -R g+rwX {directory}  (and add this user to its group; "
                    "see docs/team.md#permissions)",
                )
            )
    return found


# -- database and schema ------------------------------------------------------------------------


def _database_finding(reason: str) -> Finding:
    return Finding(
        "database",
        "error",
        f"the catalog database cannot be used: {reason}",
        "check ADAPTERS_DATABASE_URL and that the server is up, then `adapters doctor`",
    )


def _missing_catalog(home: RegistryHome, what: str) -> Finding:
    blobs = sum(1 for _ in open_blob_store(home).iter_digests())
    held = f"; the blob store holds {blobs} blobs" if blobs else ""
    return Finding(
        "database",
        "error",
        what + held,
        "restore the catalog from a backup (do not run `adapters gc`: it would delete blobs "
        f"the lost catalog referenced); if this home never had one, `adapters init {home.root}`"
        + (" --new-catalog" if blobs else ""),
    )


def _check_schema(version: int | None, home: RegistryHome) -> Finding | None:
    if version is None:
        finding = _missing_catalog(home, "the database holds no catalog")
        return Finding("schema", finding.severity, finding.what, finding.fix)
    if version < SCHEMA_VERSION:
        return Finding(
            "schema",
            "error",
            f"the catalog has schema version {version}; this release needs {SCHEMA_VERSION}",
            "back up the catalog, then `adapters migrate` (docs/team.md#upgrades)",
        )
    if version > SCHEMA_VERSION:
        return Finding(
            "schema",
            "error",
            f"the catalog has schema version {version}, newer than this release "
            f"understands ({SCHEMA_VERSION})",
            "pip install --upgrade adapter-registry",
        )
    return None


# -- rows ---------------------------------------------------------------------------------------

# (table, column naming the version, what a row of it is)
_CHILDREN = [
    ("version_files", "version_id", "file rows"),
    ("training_data", "version_id", "training-data rows"),
    ("evals", "version_id", "eval rows"),
    ("tags", "version_id", "tag rows"),
    ("aliases", "version_id", "aliases"),
    ("lineage_edges", "child_id", "lineage edges"),
    ("signatures", "version_id", "signatures"),
]


def _check_rows(connection: Connection, counts: dict[str, int]) -> list[Finding]:
    found: list[Finding] = []
    counts["versions"] = int(
        connection.exec_driver_sql("SELECT count(*) FROM adapter_versions").scalar_one()
    )
    for table, column, label in _CHILDREN:
        dangling = int(
            connection.exec_driver_sql(
                f"SELECT count(*) FROM {table} t WHERE NOT EXISTS "
                f"(SELECT 1 FROM adapter_versions v WHERE v.id = t.{column})"
            ).scalar_one()
        )
        if dangling:
            found.append(
                Finding(
                    "rows",
                    "error",
                    f"{dangling} {label} in {table} belong to no version",
                    "adapters doctor --repair",
                )
            )
    empty = connection.exec_driver_sql(
        "SELECT v.name, v.version FROM adapter_versions v WHERE NOT EXISTS "
        "(SELECT 1 FROM version_files f WHERE f.version_id = v.id) ORDER BY v.name, v.id"
    ).all()
    for name, version in empty:
        found.append(
            Finding(
                "rows",
                "error",
                f"{name}@{version} records no files",
                f"adapters rm {name}@{version} --force, then push the adapter again",
            )
        )
    return found


def _check_leases(connection: Connection, counts: dict[str, int]) -> list[Finding]:
    cutoff = utcnow() - LEASE_EXPIRY
    rows = connection.execute(
        text(
            "SELECT sum(CASE WHEN created_at <= :cutoff THEN 1 ELSE 0 END), "
            "count(DISTINCT lease) FROM blob_leases"
        ),
        {"cutoff": cutoff},
    ).one()
    expired, pushes = int(rows[0] or 0), int(rows[1] or 0)
    counts["live_leases"] = pushes
    found: list[Finding] = []
    if expired:
        found.append(
            Finding(
                "leases",
                "warning",
                f"{expired} blob leases are older than {LEASE_EXPIRY} (pushes that died)",
                "adapters gc",
            )
        )
    elif pushes:
        found.append(
            Finding("leases", "info", f"{pushes} pushes are in progress (their blobs are kept)", "")
        )
    return found


def _referenced(connection: Connection) -> dict[str, tuple[int, list[str]]]:
    """Each referenced digest with its recorded size and the versions that use it."""
    found: dict[str, tuple[int, list[str]]] = {}
    for sha256, size, name, version in connection.exec_driver_sql(
        "SELECT f.sha256, f.size, v.name, v.version FROM version_files f "
        "JOIN adapter_versions v ON v.id = f.version_id ORDER BY v.name, v.id"
    ):
        entry = found.setdefault(sha256, (int(size), []))
        entry[1].append(f"{name}@{version}")
    return found


# -- blobs --------------------------------------------------------------------------------------


def _refs(versions: list[str]) -> str:
    shown = ", ".join(versions[:_SHOWN])
    return shown + (f" and {len(versions) - _SHOWN} more" if len(versions) > _SHOWN else "")


def _check_blobs(
    blobs: BlobBackend,
    stored: dict[str, int],
    referenced: dict[str, tuple[int, list[str]]],
    deep: bool,
    counts: dict[str, int],
) -> list[Finding]:
    found: list[Finding] = []
    to_hash: list[str] = []
    for sha256, (size, versions) in sorted(referenced.items()):
        first = versions[0]
        actual = stored.get(sha256)
        if actual is None:
            actual = blobs.size(sha256)
        if actual is None:
            found.append(
                Finding(
                    "blobs",
                    "error",
                    f"blob {sha256[:16]}... of {_refs(versions)} is missing from the store",
                    f"push the original adapter directory again (`adapters push DIR --name "
                    f"{first.split('@')[0]}` rewrites missing blobs), or restore "
                    f"{blobs.location(sha256)} from a backup; then `adapters verify {first}`",
                )
            )
            continue
        if actual != size:
            found.append(_corrupt(blobs, sha256, versions, f"has {actual} bytes, {size} recorded"))
        else:
            to_hash.append(sha256)
    if not deep:
        to_hash = _sample(to_hash, referenced)
    counts["blobs_hashed"] = len(to_hash)
    if to_hash:
        # hashlib releases the GIL on large buffers, so threads use every core.
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for sha256, problem in zip(to_hash, pool.map(blobs.check, to_hash), strict=True):
                if problem is not None:
                    found.append(_corrupt(blobs, sha256, referenced[sha256][1], problem))
    return found


def _sample(digests: list[str], referenced: dict[str, tuple[int, list[str]]]) -> list[str]:
    """A bounded random sample: an in-place edit is found over repeated runs without
    reading the whole store each time (``SAMPLE_BLOBS`` blobs, ``SAMPLE_BYTES`` bytes)."""
    chosen: list[str] = []
    total = 0
    for sha256 in random.sample(digests, len(digests)):
        size = referenced[sha256][0]
        if len(chosen) >= SAMPLE_BLOBS or (chosen and total + size > SAMPLE_BYTES):
            continue
        chosen.append(sha256)
        total += size
    return chosen


def _corrupt(blobs: BlobBackend, sha256: str, versions: list[str], problem: str) -> Finding:
    return Finding(
        "blobs",
        "error",
        f"blob {sha256[:16]}... of {_refs(versions)} is corrupt: {problem}",
        f"push the original adapter directory again (`adapters push DIR --name "
        f"{versions[0].split('@')[0]}` rewrites a corrupt blob from it), or restore "
        f"{blobs.location(sha256)} from a backup; then `adapters verify {versions[0]}`",
    )


def _removal(location: str) -> str:
    return f"delete the object {location}" if "://" in location else f"rm -f {location}"


def _unreferenced(stored: dict[str, int], keep: set[str]) -> list[Finding]:
    orphans = sorted(set(stored) - keep)
    if not orphans:
        return []
    size = sum(stored[d] for d in orphans)
    return [
        Finding(
            "blobs",
            "warning",
            f"{len(orphans)} stored blobs ({size} bytes) belong to no version and no push "
            "in progress (left by `adapters rm` or an interrupted push)",
            "adapters gc",
        )
    ]


def _staged_uploads(tmp_dir: Path) -> set[str]:
    # A server links each upload into the blob store as it arrives; one waiting for its
    # push is not left over (gc may still delete the blob: the push links it again).
    try:
        return {entry.name for entry in os.scandir(tmp_dir / STAGED_UPLOADS)}
    except OSError:
        return set()


def _check_staging(blobs: BlobBackend, tmp_dir: Path) -> list[Finding]:
    import time

    limit = time.time() - LEASE_EXPIRY.total_seconds()
    entries: list[Path] = list(blobs.staging_files())
    if tmp_dir.is_dir():
        entries += sorted(tmp_dir.iterdir())
    stale = fresh = 0
    for path in entries:
        try:
            old = path.stat().st_mtime < limit
        except FileNotFoundError:
            continue
        stale += old
        fresh += not old
    found: list[Finding] = []
    if stale:
        found.append(
            Finding(
                "staging",
                "warning",
                f"{stale} temp files or push directories older than {LEASE_EXPIRY} "
                "(left by interrupted pushes)",
                "adapters gc",
            )
        )
    if fresh:
        found.append(Finding("staging", "info", f"{fresh} temp files of writes in progress", ""))
    return found


# -- repair -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Repair:
    deleted: dict[str, int]  # table -> rows removed


def repair(engine_or_url: Engine | str, actor: str) -> Repair:
    """Delete rows that belong to no version, in one transaction with an audit event.

    Only rows no version can reach are touched; blobs and temp files are gc's.
    """
    from registry.store.catalog.engine import write_session
    from registry.store.catalog.history import add_event

    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    deleted: dict[str, int] = {}
    with write_session(engine) as session:
        connection = session.connection()
        for table, column, _label in _CHILDREN:
            result = connection.exec_driver_sql(
                f"DELETE FROM {table} WHERE NOT EXISTS "
                f"(SELECT 1 FROM adapter_versions v WHERE v.id = {table}.{column})"
            )
            count = int(getattr(result, "rowcount", 0) or 0)
            if count:
                deleted[table] = count
        if deleted:
            add_event(session, actor, "repair", None, None, {"deleted": deleted})
    return Repair(deleted)
