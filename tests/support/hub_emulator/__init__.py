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

The storage lives in ``store``, failure injection in ``faults``, the HTTP routes in ``handler``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from support.hub_emulator.faults import Faults
from support.hub_emulator.handler import Handler, Request, Server
from support.hub_emulator.store import (
    DEFAULT_TOKEN,
    DEFAULT_USER,
    Commit,
    HubStore,
    Repo,
    StoredFile,
    git_blob_oid,
    lfs_pointer,
    upload_mode,
)

__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_USER",
    "Commit",
    "Faults",
    "HubEmulator",
    "HubStore",
    "Repo",
    "Request",
    "StoredFile",
    "git_blob_oid",
    "lfs_pointer",
    "serving",
]


class HubEmulator:
    """The emulator on 127.0.0.1 at a free port; use as a context manager."""

    def __init__(self) -> None:
        self.store = HubStore()
        self.faults = Faults()
        self.requests: list[Request] = []
        self.tickets: dict[str, tuple[str, int]] = {}
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> HubEmulator:
        server = Server(("127.0.0.1", 0), Handler)
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
