"""How a remote push sends a directory's files: all in one request when they are small
(``POST /push/bundle``), otherwise each on its own, straight to the server's object store
through a pre-signed URL where the server offers one, or streamed through the server."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import errors
from registry.errors import ServerError
from registry.remote import wire

if TYPE_CHECKING:
    from registry.store.results import PushResult

CHUNK = 1 << 20
# Pushes up to this size go in one request (POST /push/bundle); larger ones file by file.
BUNDLE_BYTES = 16 << 20
DIRECT_MAX = 5 * 1024**3  # one PUT to S3 holds at most 5 GiB; larger files go via the server

Send = Callable[..., Any]  # RemoteRegistry._send: (method, path, **httpx arguments) -> response


@dataclass
class Upload:
    """A directory's regular files, hashed, ready to send."""

    paths: dict[str, Path] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    sizes: dict[str, int] = field(default_factory=dict)
    # What a local push reports in ``skipped`` that the server cannot see: the conversion.
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, root: Path, *, convert_pickle: bool = False) -> Upload:
        paths = {path.relative_to(root).as_posix(): path for path in regular_files(root)}
        if not convert_pickle:
            return cls(paths, *_hashed(paths))
        work = Path(tempfile.mkdtemp(prefix="adapters-convert-"))
        converted = convert_weights(root, work)
        notes: tuple[str, ...] = ()
        if converted is not None:
            pickled, safe, target, notes = converted
            del paths[pickled]
            paths[safe] = target
        upload = cls(paths, *_hashed(paths), notes)
        # The converted file lives as long as the upload that sends it (or until exit).
        weakref.finalize(upload, shutil.rmtree, work, True)
        return upload

    def noted(self, result: PushResult) -> PushResult:
        """The server's result with the notes only this side knows, as a local push has."""
        if not self.notes:
            return result
        return replace(result, skipped=tuple(sorted({*result.skipped, *self.notes})))

    @property
    def bundled(self) -> bool:
        return sum(self.sizes.values()) <= BUNDLE_BYTES

    def send_each(self, send: Send) -> None:
        """Each file on its own, so that a failed one is sent again alone."""
        tickets = _Tickets(send, sorted(set(self.files.values())))
        for relative, path in self.paths.items():
            digest, size = self.files[relative], self.sizes[relative]
            if size <= DIRECT_MAX and _send_direct(send, path, digest, tickets):
                continue
            with path.open("rb") as handle:
                send("PUT", f"/uploads/{digest}", content=stream(handle),
                     headers={"Content-Length": str(size)})  # fmt: skip
            tickets.done(digest)

    def send_bundle(self, send: Send, body: wire.PushBody) -> Any:
        """One request: the push body, then the files; returns the reply's JSON."""
        header = json.dumps({"push": wire.body_json(body), "sizes": self.sizes}).encode()
        files = (self.paths[relative].read_bytes() for relative in body.files)
        content = b"".join([header, *files])
        response = send("POST", "/push/bundle", content=content,
                        params={"header_bytes": len(header)})  # fmt: skip
        return response.json()


class _Tickets:
    """Pre-signed URLs straight to the server's object store, asked for again for the files
    left when they near the end of the lifetime the server gave them. None of them when
    its blobs cannot take them (local blobs, or a server from before direct uploads)."""

    def __init__(self, send: Send, digests: list[str]) -> None:
        self._send = send
        self._left = dict.fromkeys(digests)
        self._urls: dict[str, dict[str, str]] = {}
        self._renew_at = float("inf")
        self._direct = bool(digests) and self._ask(digests)

    def _ask(self, digests: list[str]) -> bool:
        try:
            offer = self._send("POST", "/uploads/presign", json={"files": digests}).json()
        except (errors.NotFoundError, ServerError):
            return False
        if not offer.get("direct"):
            return False
        self._urls.update(offer.get("uploads") or {})
        lifetime = offer.get("expires_in")
        if isinstance(lifetime, (int, float)):  # older servers say nothing: renewed on a 403
            # Asked again with a fifth of the lifetime left: a file started then still
            # has its URL valid when its PUT begins (stores check the signature up front).
            self._renew_at = time.monotonic() + 0.8 * float(lifetime)
        return True

    def get(self, digest: str, *, fresh: bool = False) -> dict[str, str] | None:
        if not self._direct:
            return None
        if fresh or time.monotonic() >= self._renew_at:
            self._ask([digest] if fresh else list(self._left))
        return self._urls.get(digest)

    def done(self, digest: str) -> None:
        self._left.pop(digest, None)


def _send_direct(send: Send, path: Path, digest: str, tickets: _Tickets) -> bool:
    """Upload ``path`` straight to the object store; False when no URL is offered for it."""
    ticket = tickets.get(digest)
    if ticket is None:
        return False
    if not _upload_direct(send, path, digest, ticket):
        # Refused as expired or forbidden (a slow push, a skewed clock): once more anew.
        ticket = tickets.get(digest, fresh=True)
        if ticket is None or not _upload_direct(send, path, digest, ticket):
            raise ServerError(
                f"the object store refused the upload of {path.name} with a fresh URL too; "
                "check the server's object store credentials and clock, then push again"
            )
    tickets.done(digest)
    return True


def _upload_direct(send: Send, path: Path, digest: str, ticket: dict[str, str]) -> bool:
    """PUT the file to its pre-signed URL and claim it; False when the store answers 403."""
    import httpx2

    # A fresh client: the registry token must never travel to the object store.
    length = {"Content-Length": str(path.stat().st_size)}
    with path.open("rb") as handle:
        try:
            reply = httpx2.put(ticket["url"], content=stream(handle), headers=length,
                               timeout=600)  # fmt: skip
        except httpx2.HTTPError as exc:
            raise ServerError(f"cannot reach the object store for an upload: {exc}") from None
    if reply.status_code == 403:
        return False
    if reply.status_code >= 400:
        raise ServerError(
            f"the object store refused the upload of {path.name} ({reply.status_code}); push again"
        )
    send("POST", f"/uploads/{digest}/staged", json={"key": ticket["key"]})
    return True


def convert_weights(root: Path, work: Path) -> tuple[str, str, Path, tuple[str, ...]] | None:
    """Pickle weights converted to safetensors in ``work`` by the code and checks a local
    push uses (``torch.load(weights_only=True)``, refusing anything but named tensors): the
    pickle's and the converted file's names, where the converted file is, and the notes a
    local push makes on it. None when the adapter already has safetensors weights."""
    from registry.formats.reader import WEIGHTS_NAMES, read_adapter_dir

    source = read_adapter_dir(root, convert_pickle=True, work_dir=work)
    weights = next(f for f in source.files if f.path == source.weights_path)
    if not weights.source.is_relative_to(work):
        return None
    pickled = WEIGHTS_NAMES[source.source_format][1]
    notes = tuple(note for note in source.skipped if note.startswith(f"{pickled}: "))
    return pickled, weights.path, weights.source, notes


def _hashed(paths: dict[str, Path]) -> tuple[dict[str, str], dict[str, int]]:
    files = {relative: sha256_of(path) for relative, path in paths.items()}
    return files, {relative: path.stat().st_size for relative, path in paths.items()}


def regular_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            raise errors.UnsafeFormatError(f"{path} is a symlink; push a directory of files")
        if path.is_file():
            yield path


def stream(handle: Any) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


def sha256_of(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in stream(handle):
            hasher.update(chunk)
    return hasher.hexdigest()
