"""The emulator's HTTP side: the routes of the Hub API that ``huggingface_hub`` uses, and
the server that carries the emulator to its handlers."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from support.hub_emulator.faults import Hostile
from support.hub_emulator.store import (
    ApiError,
    Commit,
    HubStore,
    Repo,
    StoredFile,
    lfs_pointer,
    upload_mode,
)

if TYPE_CHECKING:
    from support.hub_emulator import HubEmulator


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    authenticated: bool


_REPO = r"(?P<repo>[^/]+/[^/]+)"
_API = r"^/api/models/" + _REPO


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle's algorithm and
    # delayed ACKs add ~40 ms to every response.
    disable_nagle_algorithm = True
    server: Server

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
                message = "injected failure"
                if injected.echo_headers:
                    echoed = "; ".join(f"{k}: {v}" for k, v in self.headers.items())
                    message += f" (request headers: {echoed})"
                raise ApiError(injected.status, message)
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
        hostile = self.emulator.faults.take_hostile(path) if self.command == "GET" else None
        if hostile is not None:
            self._hostile_body(hostile, body, headers)
            return
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

    def _hostile_body(self, hostile: Hostile, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if hostile.mode == "trickle":
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")  # the body ends when the connection does
        for key, value in headers.items():
            if key != "Accept-Ranges":
                self.send_header(key, value)
        self.end_headers()
        self.close_connection = True
        # Bounded here too, so a client that never stops reading cannot keep a test running.
        deadline = time.monotonic() + 120
        try:
            if hostile.mode == "trickle":
                for index in range(len(body)):
                    self.wfile.write(body[index : index + 1])
                    self.wfile.flush()
                    if time.monotonic() > deadline:
                        break
                    time.sleep(hostile.interval)
            else:
                chunk = (body or b"x") * max(1, 65536 // max(len(body), 1))
                while time.monotonic() < deadline:
                    self.wfile.write(chunk)
        except OSError:
            pass  # the client hung up: what a bounded download does

    def _range_start(self, size: int) -> int:
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("range", ""))
        if not match:
            return 0
        start = int(match.group(1))
        if start >= size:
            raise ApiError(416, "Requested range not satisfiable")
        return start


class Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: HubEmulator
