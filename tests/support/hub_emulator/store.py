"""The emulator's storage: repositories as git-like histories, and one LFS object store.

A ``Commit`` is a content-addressed snapshot (path -> ``StoredFile``) with its parents;
branches and tags are names for commit ids. Regular files are stored inline, LFS files by
sha256 in the object store. Git blob ids follow git (``sha1("blob <size>\\0" + bytes)``; of
the LFS pointer for LFS files), so client-side checks against tree oids are meaningful.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

DEFAULT_USER = "alice"
DEFAULT_TOKEN = "hf_emulator_alice_token"
LFS_SUFFIXES = frozenset(
    {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".npz", ".pkl"}
)
LFS_MIN_SIZE = 10 * 1024 * 1024
GITATTRIBUTES = (
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    b"*.bin filter=lfs diff=lfs merge=lfs -text\n"
)


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


@dataclass(frozen=True)
class StoredFile:
    size: int
    blob_oid: str  # git blob id: of the content, or of the LFS pointer
    lfs_sha256: str | None = None  # set for LFS files; their bytes live in the object store
    content: bytes | None = None  # regular files only

    @property
    def etag(self) -> str:
        return self.lfs_sha256 or self.blob_oid


@dataclass
class Commit:
    oid: str
    parents: tuple[str, ...]
    files: dict[str, StoredFile]
    title: str
    message: str
    author: str
    date: str


@dataclass
class Repo:
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.repo_id.split("/")[0]


class ApiError(Exception):
    """An error response: HTTP status, optional X-Error-Code, message."""

    def __init__(
        self, status: int, message: str, code: str | None = None, commit: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.commit = commit  # sent as X-Repo-Commit (EntryNotFound on a known commit)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class HubStore:
    """Repositories, the LFS object store and the users, behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.tokens: dict[str, str] = {DEFAULT_TOKEN: DEFAULT_USER}
        self.orgs: dict[str, set[str]] = {}  # user -> organisations it may write to
        self._counter = itertools.count(1)

    # -- users ------------------------------------------------------------------------

    def add_token(self, token: str, user: str, orgs: tuple[str, ...] = ()) -> None:
        self.tokens[token] = user
        self.orgs[user] = set(orgs)

    def can_write(self, user: str | None, namespace: str) -> bool:
        return user is not None and (namespace == user or namespace in self.orgs.get(user, ()))

    # -- repositories -------------------------------------------------------------------

    def create_repo(
        self, repo_id: str, *, private: bool = False, author: str = DEFAULT_USER
    ) -> Repo:
        with self.lock:
            if repo_id in self.repos:
                raise ApiError(409, "You already created this model repo")
            repo = Repo(repo_id, private, _now())
            self.repos[repo_id] = repo
            # Like the Hub: a new repo starts with one commit holding .gitattributes.
            self._new_commit(
                repo,
                "main",
                parents=(),
                files={".gitattributes": _regular(GITATTRIBUTES)},
                title="initial commit",
                message="",
                author=author,
            )
            return repo

    def repo(self, repo_id: str, user: str | None) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not self.can_write(user, repo.owner)):
            raise ApiError(404, "Repository not found", "RepoNotFound")
        return repo

    def resolve(self, repo: Repo, revision: str) -> Commit:
        """A branch, a tag, or a commit id (full, or a unique prefix of 7+ hex digits)."""
        with self.lock:
            if revision in repo.branches:
                return repo.commits[repo.branches[revision]]
            if revision in repo.tags:
                return repo.commits[repo.tags[revision]]
            if re.fullmatch(r"[0-9a-f]{7,40}", revision):
                found = [c for oid, c in repo.commits.items() if oid.startswith(revision)]
                if len(found) == 1:
                    return found[0]
        raise ApiError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def commit(
        self,
        repo: Repo,
        branch: str,
        operations: list[tuple[str, dict[str, Any]]],
        *,
        title: str,
        message: str,
        parent: str | None,
        author: str,
    ) -> Commit:
        with self.lock:
            if branch not in repo.branches:
                raise ApiError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            head = repo.commits[repo.branches[branch]]
            if parent is not None and not head.oid.startswith(parent):
                raise ApiError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(head.files)
            for key, value in operations:
                self._apply(files, key, value, head.oid)
            return self._new_commit(
                repo, branch, (head.oid,), files, title=title, message=message, author=author
            )

    def _apply(
        self, files: dict[str, StoredFile], key: str, value: dict[str, Any], head: str
    ) -> None:
        path = value["path"]
        if key == "file":
            try:
                content = base64.b64decode(value["content"], validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(400, f"{path}: content is not base64") from None
            files[path] = _regular(content)
        elif key == "lfsFile":
            oid = value["oid"]
            data = self.lfs.get(oid)
            if data is None:
                raise ApiError(400, f"{path}: LFS object {oid} was not uploaded")
            files[path] = StoredFile(
                len(data), git_blob_oid(lfs_pointer(oid, len(data))), lfs_sha256=oid
            )
        elif key == "deletedFile":
            if path not in files:
                raise ApiError(
                    404, f"{path}: A file with this name doesn't exist", "EntryNotFound", head
                )
            del files[path]
        elif key == "deletedFolder":
            prefix = path.rstrip("/") + "/"
            for name in [n for n in files if n.startswith(prefix)]:
                del files[name]
        else:
            raise ApiError(400, f"unknown commit operation {key!r}")

    def _new_commit(
        self,
        repo: Repo,
        branch: str,
        parents: tuple[str, ...],
        files: dict[str, StoredFile],
        *,
        title: str,
        message: str,
        author: str,
    ) -> Commit:
        # Content-addressed like git: tree, parents, metadata and a serial (git's timestamp).
        tree = {path: stored.blob_oid for path, stored in sorted(files.items())}
        payload = json.dumps(
            [tree, parents, title, message, author, next(self._counter)], sort_keys=True
        )
        oid = hashlib.sha1(payload.encode()).hexdigest()
        commit = Commit(oid, parents, files, title, message, author, _now())
        repo.commits[oid] = commit
        repo.branches[branch] = oid
        return commit

    def create_branch(self, repo: Repo, branch: str, starting_point: str | None) -> None:
        with self.lock:
            if branch in repo.branches:
                raise ApiError(409, f"Branch {branch} already exists")
            repo.branches[branch] = self.resolve(repo, starting_point or "main").oid

    def create_tag(self, repo: Repo, tag: str, revision: str) -> None:
        with self.lock:
            if tag in repo.tags:
                raise ApiError(409, f"Tag {tag} already exists")
            repo.tags[tag] = self.resolve(repo, revision).oid

    def delete_tag(self, repo: Repo, tag: str) -> None:
        with self.lock:
            if tag not in repo.tags:
                raise ApiError(404, f"Tag {tag} not found", "RevisionNotFound")
            del repo.tags[tag]

    # -- file bytes ---------------------------------------------------------------------

    def read(self, stored: StoredFile) -> bytes:
        if stored.lfs_sha256 is None:
            assert stored.content is not None
            return stored.content
        return self.lfs[stored.lfs_sha256]

    def tamper(self, repo_id: str, path: str, revision: str = "main") -> None:
        """Flip one byte of a stored file while every oid, size and ETag stays as it was."""
        with self.lock:
            repo = self.repos[repo_id]
            stored = self.resolve(repo, revision).files[path]
            data = bytearray(self.read(stored))
            data[len(data) // 2] ^= 0xFF
            if stored.lfs_sha256 is not None:
                self.lfs[stored.lfs_sha256] = bytes(data)
                return
            for commit in repo.commits.values():
                if commit.files.get(path) == stored:
                    commit.files[path] = replace(stored, content=bytes(data))


def _regular(content: bytes) -> StoredFile:
    return StoredFile(len(content), git_blob_oid(content), content=content)


def upload_mode(path: str, size: int, sample: bytes) -> str:
    """The Hub's rule, simplified: binary suffixes, large files and binary samples go to LFS."""
    suffix = "." + path.rsplit(".", 1)[-1] if "." in path else ""
    if suffix.lower() in LFS_SUFFIXES or size >= LFS_MIN_SIZE or b"\0" in sample:
        return "lfs"
    return "regular"
