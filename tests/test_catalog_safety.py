"""No path to data loss through the catalog: a lost catalog is an error, never a new one;
gc refuses a catalog that is not the blob store's; push repairs blobs it deduplicates
against; every catalog or database URL failure is one line naming the file or URL."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from support.handmade import write_lora
from support.lifecycle import one_line_error, run

from registry import Registry
from registry.errors import CatalogMissingError


@pytest.fixture
def home(hermetic_env: Path, tmp_path: Path) -> Path:
    """A home (found through ADAPTERS_HOME) holding two versions."""
    for seed in (1, 2):
        assert (
            run("push", str(write_lora(tmp_path / f"src{seed}", seed)), "--name", "x").exit_code
            == 0
        )
    return hermetic_env


def blob_files(home: Path) -> list[Path]:
    return sorted(p for p in (home / "objects" / "sha256").glob("??/*") if p.is_file())


def age_blobs(home: Path, seconds: float = 3600) -> None:
    old = time.time() - seconds
    for blob in blob_files(home):
        os.utime(blob, (old, old))


COMMANDS = [("list",), ("show", "x@1"), ("verify", "x@1"), ("log",), ("gc",), ("gc", "--dry-run")]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_missing_catalog_is_an_error_not_a_new_one(home: Path, command: tuple[str, ...]) -> None:
    (home / "catalog.db").rename(home / "catalog.db.moved")
    blobs = blob_files(home)
    result = run(*command)
    assert result.exit_code == 1 and one_line_error(result), result.output
    assert f"the catalog {home / 'catalog.db'} is missing" in result.stderr
    assert "restore it from a backup" in result.stderr and "adapters doctor" in result.stderr
    assert not (home / "catalog.db").exists()
    assert blob_files(home) == blobs


def test_a_missing_catalog_is_an_error_for_push_and_the_api(home: Path, tmp_path: Path) -> None:
    (home / "catalog.db").unlink()
    result = run("push", str(write_lora(tmp_path / "new", 3)))
    assert result.exit_code == 1 and one_line_error(result) and "is missing" in result.stderr
    with pytest.raises(CatalogMissingError, match="is missing"):
        Registry.open()
    assert not (home / "catalog.db").exists()


def test_an_emptied_catalog_file_is_an_error(home: Path) -> None:
    (home / "catalog.db").write_bytes(b"")
    for suffix in ("-wal", "-shm"):
        (home / f"catalog.db{suffix}").unlink(missing_ok=True)
    result = run("list")
    assert result.exit_code == 1 and one_line_error(result)
    assert "holds no catalog" in result.stderr and "adapters doctor" in result.stderr


def test_doctor_on_a_lost_catalog_never_recommends_gc(home: Path) -> None:
    (home / "catalog.db").unlink()
    result = run("doctor")
    assert result.exit_code == 1
    assert f"the catalog file {home / 'catalog.db'} is missing" in result.stdout
    assert (
        "blob store holds" in result.stdout and "restore the catalog from a backup" in result.stdout
    )
    assert "fix: adapters gc" not in result.stdout
    assert not (home / "catalog.db").exists()


def test_init_over_blobs_needs_new_catalog_and_gc_then_refuses(home: Path) -> None:
    (home / "catalog.db").unlink()
    refused = run("init", str(home))
    assert refused.exit_code == 1 and one_line_error(refused)
    assert "--new-catalog" in refused.stderr and not (home / "catalog.db").exists()
    age_blobs(home)  # the lost catalog's blobs predate the new one
    assert run("init", str(home), "--new-catalog").exit_code == 0
    blobs = blob_files(home)
    for args in (("gc",), ("gc", "--dry-run")):
        gc = run(*args)
        assert gc.exit_code == 1 and one_line_error(gc), gc.output
        assert "gc refused" in gc.stderr and "adapters doctor" in gc.stderr
        assert "--trust-catalog" in gc.stderr
    assert blob_files(home) == blobs
    stale = home / "tmp" / "push-left-behind"
    stale.mkdir()
    os.utime(stale, (time.time() - 3 * 86400,) * 2)  # a staging entry gc would clear
    doctor = run("doctor")
    assert doctor.exit_code == 1 and "does not look like this blob store's" in doctor.stdout
    assert "fix: adapters gc" not in doctor.stdout and "only then `adapters gc`" in doctor.stdout
    forced = run("gc", "--trust-catalog")
    assert forced.exit_code == 0 and f"deleted {len(blobs)} blob" in forced.stdout


def test_gc_refuses_the_catalog_of_another_registry(home: Path, tmp_path: Path) -> None:
    with Registry.open(tmp_path / "other", create=True) as other:
        other.push(write_lora(tmp_path / "elsewhere", 9, r=8), name="y")
    shutil.copy(tmp_path / "other" / "catalog.db", home / "catalog.db")
    for suffix in ("-wal", "-shm"):
        (home / f"catalog.db{suffix}").unlink(missing_ok=True)
    blobs = blob_files(home)
    gc = run("gc")
    assert gc.exit_code == 1 and one_line_error(gc)
    assert "none of the" in gc.stderr and "adapters doctor" in gc.stderr
    assert blob_files(home) == blobs


def test_a_new_registry_whose_first_push_failed_can_be_collected(hermetic_env: Path) -> None:
    with Registry.open() as registry:
        orphan = registry.blobs.put_bytes(b"left by a push that never recorded")
        assert [b.sha256 for b in registry.gc().blobs] == [orphan.sha256]


@pytest.mark.parametrize("content", ["garbage", "truncated"])
def test_a_damaged_catalog_file_is_one_line_for_list_and_push(
    home: Path, tmp_path: Path, content: str
) -> None:
    db = home / "catalog.db"
    with Registry.open() as registry:  # checkpoint the WAL so the file holds the pages
        registry.catalog.engine.dispose()
    for suffix in ("-wal", "-shm"):
        (home / f"catalog.db{suffix}").unlink(missing_ok=True)
    data = db.read_bytes()
    db.write_bytes(b"not a database at all\n" * 50 if content == "garbage" else data[:5000])
    for args in (("list",), ("push", str(write_lora(tmp_path / "p", 5))), ("show", "x@1")):
        result = run(*args)
        assert result.exit_code == 1 and one_line_error(result), result.output
        assert (
            f"sqlite:///{db}" in result.stderr and "restore the file from a backup" in result.stderr
        )
    doctor = run("doctor")
    assert doctor.exit_code == 1 and "cannot be used" in doctor.stdout


BAD_URLS = {
    "bad-port": "postgresql+psycopg://admin:hunter2@127.0.0.1:99999/registry",
    "non-numeric-port": "postgresql+psycopg://admin:hunter2@127.0.0.1:port/registry",
    "unknown-pg-option": "postgresql+psycopg://admin:hunter2@127.0.0.1:5432/registry?bogus=1",
    "unknown-sqlite-option": "sqlite:///{home}/catalog.db?bogus=1",
}


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
@pytest.mark.parametrize(
    "command", [("list",), ("push", "SRC"), ("doctor",), ("gc",)], ids=" ".join
)
def test_a_bad_database_url_is_one_line_on_every_command(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv("ADAPTERS_DATABASE_URL", url.format(home=home))
    args = [str(write_lora(tmp_path / "src", 7)) if a == "SRC" else a for a in command]
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert "hunter2" not in result.output
    if command == ("doctor",):
        assert "ERROR     [database]" in result.stdout and "ADAPTERS_DATABASE_URL" in result.stdout
    else:
        assert one_line_error(result), result.output
        assert "ADAPTERS_DATABASE_URL" in result.stderr or "server is up" in result.stderr


# -- blobs edited in place ----------------------------------------------------------------------


def _edit_in_place(path: Path) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("role", ["weights", "config"])
def test_pushing_the_source_again_repairs_a_blob_edited_in_place(
    sqlite_registry: Registry, tmp_path: Path, role: str
) -> None:
    source = write_lora(tmp_path / "src", 1)
    first = sqlite_registry.push(source, name="x")
    entry = next(f for f in first.version.manifest.files if f.role == role)
    blob = sqlite_registry.blobs.path(entry.sha256)
    _edit_in_place(blob)
    assert not sqlite_registry.verify("x@1").ok
    again = run("push", str(source), "--name", "x")
    assert again.exit_code == 0
    assert "repaired 1 stored blob(s)" in again.stderr
    assert sqlite_registry.verify("x@1").ok
    assert sqlite_registry.blobs.check(entry.sha256) is None
    assert blob.stat().st_mode & 0o777 == 0o444
    # Under another name (a new version deduplicating against the repaired blob): intact.
    other = sqlite_registry.push(source, name="y")
    assert other.blobs_repaired == 0 and sqlite_registry.verify("y@1").ok
