"""``RemoteRegistry``: the ``Registry`` surface over a registry server's HTTP API.

``Registry.open("http://host:8321", token=...)`` (or ``ADAPTERS_URL`` and
``ADAPTERS_TOKEN``) returns one. Reading and annotating run in the server, where its
gates, policies and roles are checked; every result is the library's own typed value.
Files come down into a local content-addressed cache (a registry home of its own) and are
kept only when their sha256 matches the manifest; ``export`` and ``load`` then run here on
those verified blobs, as heavy tensor work always runs on the client.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from registry import errors
from registry.api import Registry
from registry.check import Check
from registry.errors import ArgumentError, ServerError, YankedVersionWarning
from registry.lifecycle.results import (
    AliasChange,
    AuditEvent,
    Comparison,
    EvalRecord,
    GateReport,
    LineageReport,
    Removal,
    StatusChange,
)
from registry.progress import Progress
from registry.remote import wire
from registry.remote.admin import RemoteAdmin
from registry.remote.codec import decode
from registry.remote.operators import pushed_base_name
from registry.remote.paging import PAGE_SIZE, Cursors
from registry.remote.upload import CHUNK, Upload
from registry.store.blobs import BlobStore
from registry.store.catalog.catalog import Catalog
from registry.store.export import export_version
from registry.store.file_stamp import FileStamp
from registry.store.home import RegistryHome, init_home, is_home
from registry.store.list_query import ListQuery
from registry.store.push import NOT_LOOKED_UP, default_name
from registry.store.refs import Ref
from registry.store.results import (
    AdapterVersion,
    BaseModelRecord,
    ExportResult,
    GcResult,
    PushResult,
    VerifyReport,
)
from registry.store.store import Store

if TYPE_CHECKING:
    import httpx2

    from registry.security.signing import Signature
    from registry.store.blob_store import BlobBackend

TOKEN_ENV = "ADAPTERS_TOKEN"
CACHE_ENV = "ADAPTERS_CACHE_DIR"
T = TypeVar("T")
_CODES = {code: kind for kind, code, _status in wire.ERROR_CODES}


def _local_only(what: str) -> NoReturn:
    raise ArgumentError(
        f"{what} is not available through a registry server yet; run it against a local "
        "registry (--registry PATH), or on the server's machine"
    )


class RemoteRegistry(RemoteAdmin):
    """A registry server, used through the same methods as a local ``Registry``."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        cache_dir: str | Path | None = None,
        timeout: float = 60.0,
        page_size: int = PAGE_SIZE,
    ) -> None:
        """``page_size``: items asked for in each request of a paged list (at most the
        server's maximum, 1,000 by default); lists follow the server's cursors."""
        import httpx2

        self.page_size = page_size
        self.url = _server_url(url)
        secret = token if token is not None else os.environ.get(TOKEN_ENV, "")
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self._anonymous = not secret
        try:
            self._http = httpx2.Client(base_url=self.url, headers=headers, timeout=timeout)
        except httpx2.InvalidURL as exc:
            raise ArgumentError(f"{_bad_url(url)} ({exc})") from None
        self._cache_root = Path(cache_dir) if cache_dir is not None else _default_cache(self.url)
        self._cache: Store | None = None
        # Cached blobs hashed intact by this client, by path and stamp: a file rewritten or
        # replaced since has another stamp and is hashed again.
        self._cache_intact: set[tuple[str, FileStamp]] = set()

    @classmethod
    def connect(cls, url: str, *, token: str | None = None) -> Registry:
        return cls(url, token=token)

    # -- what only a local registry has -------------------------------------------------

    @property
    def store(self) -> Store:
        _local_only("the local store")

    @store.setter
    def store(self, _value: Store) -> None:
        _local_only("the local store")

    @property
    def home(self) -> RegistryHome:
        _local_only("the registry home")

    @property
    def catalog(self) -> Catalog:
        _local_only("the catalog")

    @property
    def blobs(self) -> BlobStore:
        _local_only("the blob store")

    def list_pages(
        self, query: ListQuery | None = None, /, **fields: Any
    ) -> Iterator[builtins.list[AdapterVersion]]:
        # The server pages /versions itself; its whole answer is one page here.
        yield self.list(query, **fields)

    @property
    def hub(self) -> Any:
        _local_only("Hub sync")

    def close(self) -> None:
        self._http.close()
        if self._cache is not None:
            self._cache.close()

    # -- HTTP ---------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        import httpx2

        try:
            response = self._http.request(method, wire.API + path, **kwargs)
        except httpx2.HTTPError as exc:
            raise ServerError(
                f"cannot reach the registry server at {self.url}: {exc}"
                f"{_tls_hint(exc) or _reach_hint(exc)}"
            ) from None
        if response.status_code == 401 and self._anonymous:
            raise errors.AccessError(
                f"the registry server at {self.url} needs a token: set {TOKEN_ENV}, or pass "
                "token=... to Registry.open"
            )
        if response.status_code >= 400:
            _raise(response)
        kind = response.headers.get("content-type", "")
        if not kind.startswith("application/json"):
            # A login page of a proxy, or a URL that is not a registry server: every answer
            # of the API is JSON, so anything else would fail deep in a caller.
            raise ServerError(
                f"{self.url} answered {path} with {kind.split(';')[0] or 'no content type'}, "
                "not the registry's JSON; is the URL a registry server?"
            )
        return response

    def _get(self, path: str, kind: type[T], **params: Any) -> T:
        clean = {k: v for k, v in params.items() if v is not None and v != []}
        return decode(kind, self._send("GET", path, params=clean).json())

    def _post(self, path: str, kind: type[T], body: Any) -> T:
        return decode(kind, self._send("POST", path, json=wire.body_json(body)).json())

    # -- storing ------------------------------------------------------------------------

    def push(
        self,
        directory: str | Path,
        *,
        name: str | None = None,
        version: str | None = None,
        base: str | None = None,
        data: Sequence[str | Path] = (),
        data_hashes: Sequence[str] = (),
        evals: Mapping[str, float] | None = None,
        eval_dataset: str = "",
        eval_split: str = "",
        tags: Mapping[str, str] | None = None,
        alias: str | None = None,
        convert_pickle: bool = False,
        base_path: str | Path | None = None,
        base_quantization: str | None = None,
        requires: Mapping[str, str] | None = None,
        base_module: Any = None,
        progress: Progress | None = None,
        exhaustive_base: bool = False,
        locate_base: bool = True,
    ) -> PushResult:
        """Upload the directory's files (each checked by its sha256 in the server), then
        store them as a version with every check of a local push run in the server. The
        base is looked for on this machine, as a local push looks for it (the server never
        looks on its own disk), and fingerprinted here."""
        record, not_found_here = None, None
        if exhaustive_base and base_path is None and base_module is None:
            record, base = self._found_base(Path(directory), base)  # as a local push finds it
        elif base_path is not None or base_module is not None:
            # Fingerprinted here; the server checks the record and names it the client's.
            record = self._client_base(base_path=base_path, base_module=base_module,
                                       exhaustive=exhaustive_base)  # fmt: skip
            base = base or pushed_base_name(Path(directory), base_path)
        elif locate_base:
            record, not_found_here = self._base_found_here(Path(directory), base)
        from registry.formats.listing import list_directory
        from registry.store.hashing import data_digest

        root = Path(directory)
        list_directory(root)  # not a directory, empty, a link outside: refused as locally
        upload = Upload.of(root, convert_pickle=convert_pickle)  # converted here, if asked
        if not upload.bundled:
            upload.send_each(self._send)
        hashes = list(data_hashes) + [data_digest(Path(p)).sha256 for p in data]
        body = wire.PushBody(
            files=upload.files,
            name=name or default_name(root),
            version=version,
            base=base,
            data_hashes=hashes,
            evals=dict(evals or {}),
            eval_dataset=eval_dataset,
            eval_split=eval_split,
            tags=dict(tags or {}),
            alias=alias,
            base_quantization=base_quantization,
            requires=dict(requires or {}),
            base_record=record,
        )
        try:
            if upload.bundled:
                result = decode(PushResult, upload.send_bundle(self._send, body))
            else:
                try:
                    result = self._post("/push", PushResult, body)
                except errors.IntegrityError:
                    # A staged file damaged on the server was removed there: sent again, once.
                    upload.send_each(self._send)
                    result = self._post("/push", PushResult, body)
        except errors.ValidationError as exc:  # about the directory, named as locally
            if exc.subject != body.name:
                raise
            raise errors.ValidationError(str(directory), exc.problems) from None
        return _looked_here(upload.noted(result), not_found_here)

    # -- finding ------------------------------------------------------------------------

    def get(self, ref: str | Ref) -> AdapterVersion:
        version = self._get("/resolve", AdapterVersion, ref=str(ref))
        if version.yanked:
            warnings.warn(
                f"{version.ref} is yanked ({version.status_reason}); it resolved only because "
                "it was pinned exactly",
                YankedVersionWarning,
                stacklevel=2,
            )
        return version

    def list(self, query: ListQuery | None = None, /, **fields: Any) -> list[AdapterVersion]:
        chosen = ListQuery.of(query, fields)
        compiled = chosen.compile()  # every problem reported here, before a request
        params: dict[str, Any] = {
            "name": compiled.name_glob,
            "base": compiled.base,
            "method": compiled.method,
            "alias": compiled.alias,
            "status": compiled.status,
            "data": compiled.data_sha256,
            "sort": compiled.sort,
            "reverse": "true" if compiled.reverse else None,
            "limit": compiled.limit,
            "where": [str(c) for c in chosen.where],
            "tag": [k if v is None else f"{k}={v}" for k, v in compiled.tags],
            "page_size": self.page_size,
        }
        found: list[AdapterVersion] = []
        cursors, tokens = Cursors("/versions"), Cursors("/versions")
        while True:
            page = self._get("/versions", _Page, **params)
            found += page.items
            if page.next_cursor is not None:  # stable while others push
                params["cursor"] = cursors.follow(page.next_cursor, len(page.items))
            elif page.next_page_token is not None:  # a server without cursors
                params["page_token"] = tokens.follow(page.next_page_token, len(page.items))
            else:
                return found

    # -- checking and getting back ------------------------------------------------------

    def verify(
        self,
        ref: str | Ref,
        *,
        base: str | None = None,
        allow_unverified_base: bool = False,
        exhaustive: bool = False,
    ) -> VerifyReport:
        report = self._post("/verify", VerifyReport, wire.RefBody(str(ref)))
        if base is None:
            return report
        # The base is on this machine (or recorded in the server): checked here, as load does.
        compat = self.check_compat(report.ref, base, allow_unverified_base=allow_unverified_base,
                                   exhaustive=exhaustive)  # fmt: skip
        checks = tuple(Check(f"base {c.name}", c.status, c.detail) for c in compat.checks)
        return VerifyReport(report.ref, report.digest, report.checks + checks)

    def sign(self, ref: str | Ref, key: str) -> Signature:
        from registry.security.signing import Signature

        return self._post("/sign", Signature, wire.SignBody(str(ref), key))

    def export(
        self,
        ref: str | Ref,
        directory: str | Path,
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> ExportResult:
        version = self.get(ref)
        cache = self._fetch(version)
        return export_version(
            version, cache.blobs, Path(directory), overwrite=overwrite, progress=progress
        )

    def _fetch(self, version: AdapterVersion) -> Store:
        """Bring the version's files into the local cache, each kept only when its bytes
        hash to the manifest's sha256."""
        cache = self._cache_store()
        for entry in version.files:
            if self._cached_intact(cache.blobs, entry.sha256, entry.size):
                continue
            staging = cache.tmp_dir
            staging.mkdir(parents=True, exist_ok=True)
            hasher = hashlib.sha256()
            with tempfile.NamedTemporaryFile(dir=staging, delete=False) as out:
                try:
                    self._download(version.ref, entry.sha256, out, hasher)
                except BaseException:
                    os.unlink(out.name)
                    raise
            try:
                if hasher.hexdigest() != entry.sha256:
                    raise errors.IntegrityError(
                        f"{version.ref}: the server sent {entry.path} with another sha256; "
                        "nothing was kept, try again or run `adapters verify` on the server"
                    )
                cache.blobs.put_file(Path(out.name), expected=entry.sha256)
                self._cached_intact(cache.blobs, entry.sha256, entry.size, hashed=True)
            finally:
                os.unlink(out.name)
        return cache

    def _cached_intact(
        self, blobs: BlobBackend, sha256: str, size: int, *, hashed: bool = False
    ) -> bool:
        """Whether the cache holds this blob intact. The cache is a directory anyone with
        the user's rights may write: a file damaged or swapped since it was kept is removed
        (and so downloaded again), never used."""
        path = blobs.path(sha256)
        try:
            stat = path.stat()
        except OSError:
            return False
        key = (str(path), FileStamp.of(stat))
        if key in self._cache_intact:
            return True
        if not hashed and blobs.check_local(sha256, size) is not None:
            blobs.delete(sha256)
            return False
        self._cache_intact.add(key)
        return True

    def _download(self, ref: str, sha256: str, out: Any, hasher: Any) -> None:
        import httpx2

        path = f"{wire.API}/blobs/{sha256}"
        try:
            with self._http.stream("GET", path, params={"ref": ref}) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise(response)
                for chunk in response.iter_bytes(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
        except httpx2.HTTPError as exc:
            raise ServerError(f"download from {self.url} failed: {exc}; try again") from None

    def _cache_store(self) -> Store:
        if self._cache is None:
            root = self._cache_root
            home = RegistryHome(root, "argument") if is_home(root) else init_home(root)
            self._cache = Store.open(home, create=True)
        return self._cache

    # -- base models ----------------------------------------------------------------------

    def bases(self) -> builtins.list[BaseModelRecord]:
        return self._every("/bases", BaseModelRecord)

    # -- lifecycle ----------------------------------------------------------------------

    def record_eval(
        self,
        ref: str | Ref,
        scores: Mapping[str, float],
        *,
        dataset: str = "",
        split: str = "",
        notes: str = "",
    ) -> EvalRecord:
        body = wire.EvalBody(str(ref), dict(scores), dataset, split, notes)
        return self._post("/evals", EvalRecord, body)

    def set_alias(
        self, ref: str | Ref, alias: str, *, requires: Sequence[str] = (), note: str = ""
    ) -> AliasChange:
        body = wire.AliasBody(str(ref), alias, list(requires), note)
        return self._post("/aliases", AliasChange, body)

    def check_alias(
        self, ref: str | Ref, alias: str, *, requires: Sequence[str] = ()
    ) -> GateReport:
        body = wire.AliasBody(str(ref), alias, list(requires))
        return self._post("/aliases/check", GateReport, body)

    def remove_alias(self, name: str, alias: str, *, note: str = "") -> AliasChange:
        return self._post("/aliases/remove", AliasChange, wire.AliasRemoveBody(name, alias, note))

    def alias_history(self, name: str, alias: str | None = None) -> builtins.list[AliasChange]:
        return self._every("/aliases/history", AliasChange, name=name, alias=alias)

    def yank(self, ref: str | Ref, reason: str) -> StatusChange:
        return self._post("/yank", StatusChange, wire.YankBody(str(ref), reason))

    def unyank(self, ref: str | Ref) -> StatusChange:
        return self._post("/unyank", StatusChange, wire.RefBody(str(ref)))

    def remove(self, ref: str | Ref, *, force: bool = False, reason: str = "") -> Removal:
        return self._post("/remove", Removal, wire.RemoveBody(str(ref), force, reason))

    def gc(self, *, dry_run: bool = False, trust_catalog: bool = False) -> GcResult:
        if trust_catalog:
            _local_only("gc over a catalog that does not match its blob store")
        return self._post("/gc", GcResult, wire.GcBody(dry_run))

    def log(
        self,
        ref: str | Ref | None = None,
        *,
        actions: Sequence[str] = (),
        actor: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[AuditEvent]:
        if limit is not None and limit < 1:
            raise ArgumentError(f"--limit must be at least 1, not {limit}")
        # The server pages from the newest event back; the library's order is oldest first.
        newest_first = self._every("/log", AuditEvent, ref=None if ref is None else str(ref),
                                   action=list(actions), actor=actor, limit=limit)  # fmt: skip
        return newest_first[::-1]

    def record_event(self, action: str, *_args: Any, **_kw: Any) -> None:
        _local_only("recording an outside event")

    def lineage(self, ref: str | Ref, *, depth: int = 64) -> LineageReport:
        return self._get("/lineage", LineageReport, ref=str(ref), depth=depth)

    def compare(self, a: str | Ref, b: str | Ref) -> Comparison:
        return self._get("/compare", Comparison, a=str(a), b=str(b))


@dataclass(frozen=True)
class _Page:
    """One page of ``GET /versions``."""

    items: builtins.list[AdapterVersion]
    next_page_token: str | None
    next_cursor: str | None = None


def _looked_here(result: PushResult, not_found_here: str | None) -> PushResult:
    """A push's note on an unverified base saying where this machine looked for it (the
    server's would say only that it does not look on its own disk)."""
    if not_found_here is None or result.base_unverified is None:
        return result
    return replace(
        result, base_unverified=result.base_unverified.replace(NOT_LOOKED_UP, not_found_here)
    )


def _raise(response: httpx2.Response) -> NoReturn:
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        raise ServerError(
            f"the server answered {response.status_code} without a registry error; "
            "is the URL a registry server?"
        ) from None
    if code == "gate_unmet":
        raise errors.GateError(message, [str(u) for u in error.get("unmet", [])])
    if code == "validation_error":
        raise errors.ValidationError(str(error.get("subject", "")), error.get("problems", []))
    if response.status_code in (401, 403):
        raise errors.AccessError(message)
    kind = _CODES.get(code, ServerError)
    if kind is errors.BaseModelMismatchError:
        raise errors.BaseModelMismatchError(message, None)
    raise kind(message)


def _server_url(url: str) -> str:
    """``url`` without a trailing ``/`` or ``/api/v1`` (the API's own path, which a user
    may well copy), refused unless it is http(s) with a host."""
    from urllib.parse import urlsplit

    base = url.strip().rstrip("/")
    if base.endswith(wire.API):
        base = base[: -len(wire.API)].rstrip("/")
    try:
        parts = urlsplit(base)
    except ValueError:
        raise ArgumentError(_bad_url(url)) from None
    if "@" in parts.netloc:
        # httpx would send them as Basic credentials in place of the token, and the URL is
        # shown in messages and names the cache directory: never repeat them.
        raise ArgumentError(
            "a registry server URL carries no user name or password: give the token in "
            f"{TOKEN_ENV} (or token=...) and the URL as {parts.scheme}://HOST:PORT"
        )
    try:
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise ArgumentError(_bad_url(url)) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ArgumentError(_bad_url(url))
    return base


def _bad_url(url: str) -> str:
    return f"{url[:200]!r} is not a registry server URL; give e.g. http://host:8321"


def _default_cache(url: str) -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    import platformdirs

    host = re.sub(r"[^A-Za-z0-9._-]+", "_", url.partition("://")[2].rstrip("/"))
    return Path(platformdirs.user_cache_dir("adapters")) / "remote" / host


def _reach_hint(exc: Exception) -> str:
    import httpx2

    if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout):
        return "; check the URL and that the server is running, then try again"
    return "; try again"


def _tls_hint(exc: Exception) -> str:
    """What to do when the server's certificate is not trusted (a private CA, say)."""
    if "CERTIFICATE_VERIFY_FAILED" not in str(exc):
        return ""
    return "; if its certificate is one you trust, name it (or its CA) in SSL_CERT_FILE"
