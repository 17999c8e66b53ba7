"""File hashes, the training-data directory digest and digest parsing."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from registry.errors import InvalidNameError, RegistryError
from registry.store.hashing import (
    CHUNK_SIZE,
    DataDigest,
    data_digest,
    given_digest,
    parse_digest,
    sha256_bytes,
    sha256_file,
)

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def merkle(files: dict[str, bytes]) -> str:
    """The documented directory digest, computed from relative paths and contents."""
    outer = hashlib.sha256()
    for rel in sorted(files, key=lambda p: p.encode("utf-8")):
        inner = hashlib.sha256(files[rel]).hexdigest()
        outer.update(rel.encode("utf-8") + b"\0" + inner.encode("ascii") + b"\n")
    return outer.hexdigest()


# -- single files -----------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, 2, 63, 64, 65, 4096, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE + 7],
)
def test_sha256_file_matches_hashlib(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    path = write(tmp_path / "f.bin", data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_sha256_file_of_empty_file(tmp_path: Path) -> None:
    assert sha256_file(write(tmp_path / "empty", b"")) == EMPTY_SHA256


@pytest.mark.parametrize(
    ("size", "calls"),
    [(0, []), (5, [5]), (CHUNK_SIZE, [CHUNK_SIZE]), (CHUNK_SIZE + 3, [CHUNK_SIZE, 3])],
)
def test_sha256_file_reports_progress(tmp_path: Path, size: int, calls: list[int]) -> None:
    path = write(tmp_path / "f.bin", b"x" * size)
    seen: list[int] = []
    sha256_file(path, progress=seen.append)
    assert seen == calls


def test_sha256_file_missing_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sha256_file(tmp_path / "nope")


def test_sha256_bytes() -> None:
    assert sha256_bytes(b"") == EMPTY_SHA256
    assert sha256_bytes(b"abc") == hashlib.sha256(b"abc").hexdigest()


# -- training data: a single file -------------------------------------------------


def test_data_digest_of_a_file(tmp_path: Path) -> None:
    path = write(tmp_path / "train.jsonl", b'{"text": "hi"}\n')
    digest = data_digest(path)
    assert digest == DataDigest(
        sha256=hashlib.sha256(b'{"text": "hi"}\n').hexdigest(),
        kind="file",
        source=str(path),
        files=1,
        size=15,
    )
    assert digest.ref == "sha256:" + digest.sha256


def test_data_digest_of_an_empty_file(tmp_path: Path) -> None:
    digest = data_digest(write(tmp_path / "empty", b""))
    assert (digest.sha256, digest.kind, digest.files, digest.size) == (EMPTY_SHA256, "file", 1, 0)


# -- training data: directories ---------------------------------------------------

TREE = {
    "a.txt": b"alpha",
    "b/c.txt": b"charlie",
    "b/d/e.bin": bytes(range(256)),
    ".hidden": b"secret",
    "B.txt": b"upper",
    "a-b.txt": b"dash",
    "a/z.txt": b"slash sorts after dash",
    "ü.txt": b"umlaut",
    "empty": b"",
}


def make_tree(root: Path, files: dict[str, bytes], order: list[str] | None = None) -> Path:
    for rel in order or list(files):
        write(root / rel, files[rel])
    return root


def test_directory_digest_is_the_documented_merkle_construction(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "data", TREE)
    digest = data_digest(root)
    assert digest.sha256 == merkle(TREE)
    assert digest.kind == "directory"
    assert digest.source == str(root)
    assert digest.files == len(TREE)
    assert digest.size == sum(len(v) for v in TREE.values())
    assert digest.ref == f"sha256:{merkle(TREE)}"


def test_directory_digest_literal_value(tmp_path: Path) -> None:
    # Pinned so that a change of the construction cannot go unnoticed.
    root = make_tree(tmp_path / "data", {"x": b"1", "y/z": b"2"})
    line_x = b"x\0" + hashlib.sha256(b"1").hexdigest().encode() + b"\n"
    line_yz = b"y/z\0" + hashlib.sha256(b"2").hexdigest().encode() + b"\n"
    assert data_digest(root).sha256 == hashlib.sha256(line_x + line_yz).hexdigest()


def test_directory_sort_is_by_utf8_bytes(tmp_path: Path) -> None:
    # By bytes: "B" (0x42) < "a-b" < "a/z" < "a0" ("-" 0x2d, "/" 0x2f, "0" 0x30) < "é" (0xc3).
    files = {"é": b"1", "a/z": b"2", "a-b": b"3", "B": b"4", "a0": b"5"}
    root = make_tree(tmp_path / "data", files)
    ordered = ["B", "a-b", "a/z", "a0", "é"]
    outer = hashlib.sha256()
    for rel in ordered:
        outer.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).hexdigest().encode() + b"\n")
    assert data_digest(root).sha256 == outer.hexdigest()


def test_directory_digest_independent_of_creation_order(tmp_path: Path) -> None:
    order = list(TREE)
    first = data_digest(make_tree(tmp_path / "one", TREE, order)).sha256
    random.Random(7).shuffle(order)
    second = data_digest(make_tree(tmp_path / "two", TREE, order)).sha256
    assert first == second == merkle(TREE)


def test_directory_digest_independent_of_location_and_mtime(tmp_path: Path) -> None:
    one = make_tree(tmp_path / "x" / "one", TREE)
    two = make_tree(tmp_path / "two", TREE)
    os.utime(two / "a.txt", (1, 1))
    assert data_digest(one).sha256 == data_digest(two).sha256


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda files: files.update({"a.txt": b"alphA"}), id="content"),
        pytest.param(lambda files: files.update({"empty": b"\0"}), id="empty-to-one-byte"),
        pytest.param(lambda files: files.update({"a2.txt": files.pop("a.txt")}), id="rename"),
        pytest.param(lambda files: files.update({"x/a.txt": files.pop("a.txt")}), id="move"),
        pytest.param(lambda files: files.pop(".hidden"), id="remove-hidden"),
        pytest.param(lambda files: files.update({"new": b""}), id="add-empty-file"),
        pytest.param(
            lambda files: files.update({"a.txt": files["B.txt"], "B.txt": files["a.txt"]}),
            id="swap-contents",
        ),
    ],
)
def test_directory_digest_changes(tmp_path: Path, change: object) -> None:
    before = data_digest(make_tree(tmp_path / "before", TREE)).sha256
    changed = dict(TREE)
    change(changed)  # type: ignore[operator]
    after = data_digest(make_tree(tmp_path / "after", changed)).sha256
    assert after != before
    assert after == merkle(changed)


def test_empty_subdirectories_do_not_count(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "data", {"a": b"1"})
    (root / "empty-dir" / "deeper").mkdir(parents=True)
    assert data_digest(root).sha256 == merkle({"a": b"1"})
    assert data_digest(root).files == 1


def test_symlinked_file_is_followed(tmp_path: Path) -> None:
    outside = write(tmp_path / "elsewhere" / "real.txt", b"linked content")
    root = make_tree(tmp_path / "data", {"a": b"1"})
    (root / "sub").mkdir()
    (root / "sub" / "link.txt").symlink_to(outside)
    digest = data_digest(root)
    assert digest.sha256 == merkle({"a": b"1", "sub/link.txt": b"linked content"})
    assert digest.files == 2
    assert digest.size == 1 + len(b"linked content")


def test_symlink_equals_copy(tmp_path: Path) -> None:
    target = write(tmp_path / "target.bin", b"payload")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "f").symlink_to(target)
    copied = make_tree(tmp_path / "copied", {"f": b"payload"})
    assert data_digest(linked).sha256 == data_digest(copied).sha256


def test_symlinked_directory_and_broken_link_are_skipped(tmp_path: Path) -> None:
    other = make_tree(tmp_path / "other", {"inside": b"x"})
    root = make_tree(tmp_path / "data", {"a": b"1"})
    (root / "dirlink").symlink_to(other, target_is_directory=True)
    (root / "broken").symlink_to(tmp_path / "missing")
    assert data_digest(root).sha256 == merkle({"a": b"1"})


def test_data_digest_of_symlink_to_directory(tmp_path: Path) -> None:
    real = make_tree(tmp_path / "real", {"a": b"1", "b/c": b"2"})
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    digest = data_digest(link)
    assert digest.sha256 == merkle({"a": b"1", "b/c": b"2"})
    assert digest.kind == "directory"


def test_non_utf8_file_name_enters_as_its_raw_bytes(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "data", {"a": b"1"})
    try:
        with open(os.fsencode(root) + b"/\xff.txt", "wb") as handle:
            handle.write(b"x")
    except OSError:
        pytest.skip("this filesystem refuses file names that are not UTF-8")
    entries = sorted(
        [(b"a", hashlib.sha256(b"1").hexdigest()), (b"\xff.txt", hashlib.sha256(b"x").hexdigest())]
    )
    expected = hashlib.sha256(b"".join(p + b"\0" + h.encode() + b"\n" for p, h in entries))
    assert data_digest(root).sha256 == expected.hexdigest()


def test_empty_directory_raises(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(RegistryError, match="holds no files"):
        data_digest(root)


def test_directory_with_only_empty_subdirs_raises(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "a" / "b").mkdir(parents=True)
    with pytest.raises(RegistryError, match="holds no files"):
        data_digest(root)


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="does not exist") as info:
        data_digest(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(info.value)


# -- parsing digests --------------------------------------------------------------

HEX64 = hashlib.sha256(b"x").hexdigest()


@pytest.mark.parametrize(
    "text",
    [
        f"sha256:{HEX64}",
        HEX64,
        f"  sha256:{HEX64}\n",
        f"SHA256:{HEX64.upper()}",
        HEX64.upper(),
    ],
)
def test_parse_digest_accepts(text: str) -> None:
    assert parse_digest(text) == HEX64


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256:",
        HEX64[:-1],
        HEX64 + "0",
        f"sha256:{HEX64[:63]}",
        f"sha256:{HEX64}0",
        f"md5:{HEX64}",
        f"sha512:{HEX64}",
        f"sha256:sha256:{HEX64}",
        f"sha256: {HEX64}",
        "g" * 64,
        f"sha256:{HEX64[:32]} {HEX64[32:63]}",
        f"{HEX64}\n0",
    ],
)
def test_parse_digest_rejects(text: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid sha256 digest"):
        parse_digest(text)


def test_given_digest() -> None:
    digest = given_digest(f"SHA256:{HEX64.upper()}")
    assert digest == DataDigest(HEX64, "given", f"sha256:{HEX64}", 0, 0)
    assert digest.ref == f"sha256:{HEX64}"
    with pytest.raises(InvalidNameError):
        given_digest("sha256:1234")
