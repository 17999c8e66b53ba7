"""A small Hugging Face Hub emulator: the part of the Hub HTTP API that ``huggingface_hub``
(2.x) uses for ``create_repo``, ``create_commit``, tags, branches, ``model_info``,
``list_repo_tree``/``refs``/``commits``, ``hf_hub_download`` and ``snapshot_download``.

It runs on 127.0.0.1 in a thread (``http.server.ThreadingHTTPServer``) and keeps every
repository in memory as a git-like history:

- a ``Commit`` is a content-addressed snapshot (path -> ``StoredFile``) with its parents;
- branches and tags are names for commit ids;
- regular files are stored inline, LFS files by sha256 in one object store that the LFS
  batch + PUT protocol fills. Git blob ids follow git (``sha1("blob <size>\\0" + bytes)``; of
  the LFS pointer for LFS files), so client-side checks against tree oids are meaningful.

There is no Xet: its token endpoints answer 404, so clients must upload over LFS.

``Faults`` injects failures: tamper with stored bytes (metadata unchanged), drop the
connection in the middle of a download, run a hook just before a commit is applied (to
land a concurrent push), or answer matching requests with an error status.

``HubEmulator`` is a context manager; ``url`` is its endpoint, ``store`` its repositories,
``faults`` its knobs, ``requests`` the log of what clients asked (never tokens).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import itertools
import json
import re
import secrets
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

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


# -------------------------------------------------------------------------------------------
# Git-like storage


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


# -------------------------------------------------------------------------------------------
# Failure injection


@dataclass
class Drop:
    path: str
    after_bytes: int
    times: int | None  # None: every time


@dataclass
class InjectedError:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int | None


@dataclass
class Faults:
    drops: list[Drop] = field(default_factory=list)
    errors: list[InjectedError] = field(default_factory=list)
    # Called with (repo_id, branch) when a commit request arrives, before it is checked.
    before_commit: Callable[[str, str], None] | None = None

    def drop_download(self, path: str, *, after_bytes: int = 64, times: int | None = 1) -> None:
        """Close the connection after ``after_bytes`` of the body of GET resolve/.../path."""
        self.drops.append(Drop(path, after_bytes, times))

    def fail(self, method: str, pattern: str, status: int, *, times: int | None = 1) -> None:
        """Answer requests whose path matches ``pattern`` (a regex) with ``status``."""
        self.errors.append(InjectedError(method.upper(), re.compile(pattern), status, times))

    def take_drop(self, path: str) -> Drop | None:
        for drop in self.drops:
            if drop.path == path and (drop.times is None or drop.times > 0):
                if drop.times is not None:
                    drop.times -= 1
                return drop
        return None

    def take_error(self, method: str, path: str) -> InjectedError | None:
        for error in self.errors:
            if error.method == method and error.pattern.search(path):
                if error.times is not None:
                    if error.times <= 0:
                        continue
                    error.times -= 1
                return error
        return None


# -------------------------------------------------------------------------------------------
# HTTP


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    authenticated: bool


_REPO = r"(?P<repo>[^/]+/[^/]+)"
_API = r"^/api/models/" + _REPO


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle's algorithm and
    # delayed ACKs add ~40 ms to every response.
    disable_nagle_algorithm = True
    server: _Server

    # Routes: (method, regex on the raw path, handler name). Path segments arrive quoted.
    ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
        (method, re.compile(pattern), name)
        for method, pattern, name in (
            ("GET", r"^/api/whoami-v2$", "whoami"),
            ("POST", r"^/api/repos/create$", "create_repo"),
            ("POST", r"^/api/validate-yaml$", "validate_yaml"),
            ("GET", _API + r"$", "model_info"),
            ("GET", _API + r"/revision/(?P<rev>[^/]+)$", "model_info"),
            ("GET", _API + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$", "tree"),
            ("GET", _API + r"/refs$", "refs"),
            ("GET", _API + r"/commits/(?P<rev>[^/]+)$", "commits"),
            ("POST", _API + r"/preupload/(?P<rev>[^/]+)$", "preupload"),
            ("POST", _API + r"/commit/(?P<rev>[^/]+)$", "commit"),
            ("POST", _API + r"/tag/(?P<rev>[^/]+)$", "create_tag"),
            ("DELETE", _API + r"/tag/(?P<tag>[^/]+)$", "delete_tag"),
            ("POST", _API + r"/branch/(?P<branch>[^/]+)$", "create_branch"),
            ("POST", r"^/" + _REPO + r"\.git/info/lfs/objects/batch$", "lfs_batch"),
            ("PUT", r"^/_lfs/(?P<ticket>[0-9a-f]+)$", "lfs_put"),
            ("HEAD", r"^/" + _REPO + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", "resolve"),
            ("GET", r"^/" + _REPO + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", "resolve"),
        )
    )

    # -- plumbing -------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    @property
    def emulator(self) -> HubEmulator:
        return self.server.emulator

    @property
    def store(self) -> HubStore:
        return self.server.emulator.store

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        self._body: bytes | None = None
        auth = self.headers.get("authorization", "")
        self.emulator.requests.append(Request(method, split.path, auth.startswith("Bearer ")))
        try:
            self.user = self._user(auth)
            injected = self.emulator.faults.take_error(method, split.path)
            if injected is not None:
                raise ApiError(injected.status, "injected failure")
            for route_method, pattern, name in self.ROUTES:
                match = pattern.match(split.path) if route_method == method else None
                if match:
                    params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                    getattr(self, "_" + name)(**params)
                    return
            raise ApiError(404, "Not Found")
        except ApiError as error:
            self._read_body()  # a keep-alive connection must not leave a body unread
            self._send_error(error)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _user(self, auth: str) -> str | None:
        if not auth:
            return None
        token = auth.removeprefix("Bearer ").strip()
        user = self.store.tokens.get(token)
        if user is None:
            raise ApiError(401, "Invalid credentials in Authorization header")
        return user

    def _require_write(self, namespace: str) -> str:
        if self.user is None:
            raise ApiError(401, "You must be authenticated to access this resource")
        if not self.store.can_write(self.user, namespace):
            raise ApiError(403, f"You don't have the rights to write to {namespace}")
        return self.user

    def _read_body(self) -> bytes:
        if self._body is not None:
            return self._body
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            self._body = b"".join(parts)
        else:
            length = int(self.headers.get("content-length") or 0)
            self._body = self.rfile.read(length) if length else b""
        return self._body

    def _json_body(self) -> Any:
        try:
            return json.loads(self._read_body() or b"{}")
        except json.JSONDecodeError:
            raise ApiError(400, "invalid JSON body") from None

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(
        self, value: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(value).encode(), headers=headers)

    def _send_error(self, error: ApiError) -> None:
        headers = {"X-Error-Message": error.message}
        if error.code:
            headers["X-Error-Code"] = error.code
        if error.commit:
            headers["X-Repo-Commit"] = error.commit
        self._send_json({"error": error.message}, error.status, headers)

    def _repo(self, repo: str) -> Repo:
        return self.store.repo(repo, self.user)

    # -- account and repositories ----------------------------------------------------------

    def _whoami(self) -> None:
        if self.user is None:
            raise ApiError(401, "Invalid credentials in Authorization header")
        orgs = sorted(self.store.orgs.get(self.user, ()))
        self._send_json(
            {
                "type": "user",
                "name": self.user,
                "fullname": self.user.title(),
                "orgs": [{"name": org} for org in orgs],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "t", "role": "write"},
                },
            }
        )

    def _create_repo(self) -> None:
        body = self._json_body()
        if body.get("type", "model") != "model":
            raise ApiError(400, "this emulator serves model repositories only")
        namespace = body.get("organization") or self.user or ""
        author = self._require_write(namespace)
        repo_id = f"{namespace}/{body['name']}"
        private = body.get("visibility") == "private" or bool(body.get("private"))
        url = f"{self.emulator.url}/{repo_id}"
        try:
            self.store.create_repo(repo_id, private=private, author=author)
        except ApiError as error:
            self._send_json({"error": error.message, "url": url}, 409)
            return
        self._send_json({"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self) -> None:
        content = self._json_body().get("content", "")
        match = re.match(r"^---\n(.*?)\n---", content, re.S)
        errors = []
        if match:
            try:
                data = yaml.safe_load(match.group(1))
                if data is not None and not isinstance(data, dict):
                    errors.append({"message": "metadata must be a mapping"})
            except yaml.YAMLError as exc:
                errors.append({"message": f"invalid YAML: {exc}"})
        self._send_json({"errors": errors, "warnings": []}, 400 if errors else 200)

    def _model_info(self, repo: str, rev: str = "main") -> None:
        found = self._repo(repo)
        commit = self.store.resolve(found, rev)
        blobs = self.query.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for path, stored in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(blobId=stored.blob_oid, size=stored.size)
                if stored.lfs_sha256 is not None:
                    sibling["lfs"] = self._lfs_info(stored, key="sha256")
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": hashlib.md5(repo.encode()).hexdigest()[:24],
            "id": repo,
            "modelId": repo,
            "author": found.owner,
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": found.created_at,
            "private": found.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        card = self._card_data(commit)
        if card is not None:
            info["cardData"] = card
            if isinstance(card.get("library_name"), str):
                info["library_name"] = card["library_name"]
        self._send_json(info)

    def _card_data(self, commit: Commit) -> dict[str, Any] | None:
        readme = commit.files.get("README.md")
        if readme is None:
            return None
        text = self.store.read(readme).decode("utf-8", "replace")
        match = re.match(r"^---\n(.*?)\n---", text, re.S)
        if not match:
            return None
        try:
            data = yaml.safe_load(match.group(1))
        except yaml.YAMLError:
            return None
        return data if isinstance(data, dict) else None

    def _lfs_info(self, stored: StoredFile, key: str) -> dict[str, Any]:
        assert stored.lfs_sha256 is not None
        pointer = lfs_pointer(stored.lfs_sha256, stored.size)
        return {key: stored.lfs_sha256, "size": stored.size, "pointerSize": len(pointer)}

    def _tree(self, repo: str, rev: str, path: str = "") -> None:
        commit = self.store.resolve(self._repo(repo), rev)
        recursive = self.query.get("recursive", "").lower() in ("1", "true")
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        if prefix and not any(name.startswith(prefix) for name in commit.files):
            raise ApiError(404, f"{path} does not exist", "EntryNotFound", commit.oid)
        entries: dict[str, dict[str, Any]] = {}
        for name, stored in sorted(commit.files.items()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :].split("/")
            for depth in range(1, len(rest)):
                folder = prefix + "/".join(rest[:depth])
                if recursive or depth == 1:
                    entries.setdefault(
                        folder,
                        {
                            "type": "directory",
                            "oid": hashlib.sha1(folder.encode()).hexdigest(),
                            "size": 0,
                            "path": folder,
                        },
                    )
            if len(rest) == 1 or recursive:
                entry: dict[str, Any] = {
                    "type": "file",
                    "oid": stored.blob_oid,
                    "size": stored.size,
                    "path": name,
                }
                if stored.lfs_sha256 is not None:
                    entry["lfs"] = self._lfs_info(stored, key="oid")
                entries[name] = entry
        self._send_json([entries[k] for k in sorted(entries)])

    def _refs(self, repo: str) -> None:
        found = self._repo(repo)

        def refs(names: dict[str, str], kind: str) -> list[dict[str, str]]:
            return [
                {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}
                for name, oid in sorted(names.items())
            ]

        body: dict[str, Any] = {
            "branches": refs(found.branches, "heads"),
            "converts": [],
            "tags": refs(found.tags, "tags"),
        }
        if self.query.get("include_prs"):
            body["pullRequests"] = []
        self._send_json(body)

    def _commits(self, repo: str, rev: str) -> None:
        found = self._repo(repo)
        commit: Commit | None = self.store.resolve(found, rev)
        history = []
        while commit is not None:
            history.append(
                {
                    "id": commit.oid,
                    "title": commit.title,
                    "message": commit.message,
                    "date": commit.date,
                    "authors": [{"user": commit.author}],
                }
            )
            commit = found.commits[commit.parents[0]] if commit.parents else None
        self._send_json(history)

    # -- uploads ----------------------------------------------------------------------------

    def _preupload(self, repo: str, rev: str) -> None:
        found = self._repo(repo)
        self._require_write(found.owner)
        head = self.store.resolve(found, rev)
        files = []
        for item in self._json_body().get("files", []):
            path = item["path"]
            sample = base64.b64decode(item.get("sample", ""))
            described: dict[str, Any] = {
                "path": path,
                "uploadMode": upload_mode(path, int(item["size"]), sample),
                "shouldIgnore": False,
            }
            existing = head.files.get(path)
            if existing is not None:
                described["oid"] = existing.lfs_sha256 or existing.blob_oid
            files.append(described)
        self._send_json({"files": files, "commitOid": head.oid})

    def _lfs_batch(self, repo: str) -> None:
        found = self._repo(repo)
        self._require_write(found.owner)
        body = self._json_body()
        if body.get("operation") != "upload":
            raise ApiError(400, "only uploads are supported")
        objects = []
        for item in body.get("objects", []):
            oid, size = item["oid"], int(item["size"])
            described: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            stored = self.store.lfs.get(oid)
            if stored is None or len(stored) != size:
                ticket = secrets.token_hex(16)
                self.emulator.tickets[ticket] = (oid, size)
                described["actions"] = {
                    "upload": {"href": f"{self.emulator.url}/_lfs/{ticket}", "header": {}}
                }
            objects.append(described)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            content_type="application/vnd.git-lfs+json",
        )

    def _lfs_put(self, ticket: str) -> None:
        expected = self.emulator.tickets.pop(ticket, None)
        if expected is None:
            raise ApiError(403, "unknown or used upload ticket")
        data = self._read_body()
        oid, size = expected
        if len(data) != size or hashlib.sha256(data).hexdigest() != oid:
            raise ApiError(400, "uploaded bytes do not match the announced oid and size")
        with self.store.lock:
            self.store.lfs[oid] = data
        self._send(200)

    def _commit(self, repo: str, rev: str) -> None:
        found = self._repo(repo)
        author = self._require_write(found.owner)
        if self.query.get("create_pr"):
            raise ApiError(400, "pull requests are not supported by this emulator")
        lines = [json.loads(line) for line in self._read_body().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise ApiError(400, "the first NDJSON line must be the header")
        header = lines[0]["value"]
        if self.emulator.faults.before_commit is not None:
            self.emulator.faults.before_commit(repo, rev)
        commit = self.store.commit(
            found,
            rev,
            [(line["key"], line["value"]) for line in lines[1:]],
            title=header.get("summary", ""),
            message=header.get("description", ""),
            parent=header.get("parentCommit"),
            author=author,
        )
        self._send_json(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self.emulator.url}/{repo}/commit/{commit.oid}",
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    def _create_tag(self, repo: str, rev: str) -> None:
        found = self._repo(repo)
        self._require_write(found.owner)
        self.store.create_tag(found, self._json_body()["tag"], rev)
        self._send_json({})

    def _delete_tag(self, repo: str, tag: str) -> None:
        found = self._repo(repo)
        self._require_write(found.owner)
        self.store.delete_tag(found, tag)
        self._send_json({})

    def _create_branch(self, repo: str, branch: str) -> None:
        found = self._repo(repo)
        self._require_write(found.owner)
        self.store.create_branch(found, branch, self._json_body().get("startingPoint"))
        self._send_json({})

    # -- downloads -------------------------------------------------------------------------

    def _resolve(self, repo: str, rev: str, path: str) -> None:
        found = self._repo(repo)
        commit = self.store.resolve(found, rev)
        stored = commit.files.get(path)
        if stored is None:
            raise ApiError(404, f"{path} does not exist", "EntryNotFound", commit.oid)
        data = self.store.read(stored)
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{stored.etag}"',
            "Accept-Ranges": "bytes",
        }
        if stored.lfs_sha256 is not None:
            headers["X-Linked-Etag"] = f'"{stored.lfs_sha256}"'
            headers["X-Linked-Size"] = str(stored.size)
        start = self._range_start(len(data))
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        drop = self.emulator.faults.take_drop(path) if self.command == "GET" else None
        if drop is None:
            self._send(206 if start else 200, body, "application/octet-stream", headers)
            return
        # Promise the whole body, send part of it, and vanish.
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body[: min(drop.after_bytes, max(len(body) - 1, 0))])
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _range_start(self, size: int) -> int:
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("range", ""))
        if not match:
            return 0
        start = int(match.group(1))
        if start >= size:
            raise ApiError(416, "Requested range not satisfiable")
        return start


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: HubEmulator


class HubEmulator:
    """The emulator on 127.0.0.1 at a free port; use as a context manager."""

    def __init__(self) -> None:
        self.store = HubStore()
        self.faults = Faults()
        self.requests: list[Request] = []
        self.tickets: dict[str, tuple[str, int]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> HubEmulator:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.emulator = self
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},  # a quick shutdown between tests
            name="hub-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HubEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- conveniences for tests ----------------------------------------------------------

    def repo(self, repo_id: str) -> Repo:
        return self.store.repos[repo_id]

    def head(self, repo_id: str, branch: str = "main") -> Commit:
        repo = self.repo(repo_id)
        return repo.commits[repo.branches[branch]]

    def file_bytes(self, repo_id: str, path: str, revision: str = "main") -> bytes:
        repo = self.repo(repo_id)
        return self.store.read(self.store.resolve(repo, revision).files[path])

    def commit_count(self, repo_id: str) -> int:
        return len(self.repo(repo_id).commits)

    def downloads(self) -> list[str]:
        """Paths fetched with GET .../resolve/REV/PATH, in order."""
        found = []
        for request in self.requests:
            match = re.match(r"^/[^/]+/[^/]+/resolve/[^/]+/(.+)$", request.path)
            if request.method == "GET" and match:
                found.append(unquote(match.group(1)))
        return found

    def put_files(
        self,
        repo_id: str,
        files: Mapping[str, bytes],
        *,
        branch: str = "main",
        title: str = "upload",
    ) -> Commit:
        """Commit files directly (for a repo made by another tool, or a concurrent push)."""
        repo = self.store.repos.get(repo_id) or self.store.create_repo(repo_id)
        operations: list[tuple[str, dict[str, Any]]] = []
        for path, data in files.items():
            if upload_mode(path, len(data), data[:512]) == "lfs":
                sha = hashlib.sha256(data).hexdigest()
                with self.store.lock:
                    self.store.lfs[sha] = data
                operations.append(("lfsFile", {"path": path, "oid": sha}))
            else:
                content = base64.b64encode(data).decode()
                operations.append(("file", {"path": path, "content": content}))
        return self.store.commit(
            repo, branch, operations, title=title, message="", parent=None, author=repo.owner
        )


# -------------------------------------------------------------------------------------------
# Test wiring


@contextlib.contextmanager
def serving(monkeypatch: Any, tmp_path: Any) -> Iterator[HubEmulator]:
    """Run an emulator and point the environment (and huggingface_hub's import-time
    constants) at it: endpoint, token, online, no Xet, a token file inside ``tmp_path``."""
    from huggingface_hub import constants
    from huggingface_hub.utils import close_session

    with HubEmulator() as emulator:
        monkeypatch.setenv("HF_ENDPOINT", emulator.url)
        monkeypatch.setenv("HF_TOKEN", DEFAULT_TOKEN)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.delenv("HF_HUB_CACHE", raising=False)
        monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-token"))
        try:
            yield emulator
        finally:
            close_session()  # no keep-alive connection outlives this emulator
