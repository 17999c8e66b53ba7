"""What every endpoint works with: the open registry, the settings, and the table entry
that routes it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from registry.api import Registry
from registry.remote.codec import encode
from registry.server.arrivals import RecentUploads
from registry.server.auth import Authenticator, Caller
from registry.server.entries import VersionEntries
from registry.server.memo import Memo
from registry.server.settings import ServerSettings
from registry.store.actor import acting_as
from registry.store.catalog.generation import CatalogGeneration

T = TypeVar("T")

# The scope key of the catalog generation read before the request's token was checked.
GENERATION = "adapters.generation"


@dataclass(frozen=True)
class Listing:
    """A list of versions as sent: each item's JSON and their positions (``paging``)."""

    items: list[bytes]
    keys: list[tuple[Any, ...]]
    descending: bool


@dataclass
class Context:
    registry: Registry
    settings: ServerSettings
    generation: CatalogGeneration = field(init=False)
    auth: Authenticator = field(init=False)
    # Resolved references as sent (ETag, body), kept while the catalog is unchanged.
    resolved: Memo[tuple[str, bytes]] = field(init=False, default_factory=Memo)
    # Whole listings (encoded), by filters and namespace, for paging through them.
    listings: Memo[Listing] = field(init=False, default_factory=lambda: Memo(16))
    # Each version as sent in a list, kept by the catalog rows it is made of (across writes).
    entries: VersionEntries = field(init=False, default_factory=VersionEntries)
    # Uploads hashed moments ago, which a push need not read again (arrivals.py).
    arrivals: RecentUploads = field(init=False, default_factory=RecentUploads)

    def __post_init__(self) -> None:
        catalog = self.registry.catalog
        self.generation = catalog.generation
        self.auth = Authenticator(catalog.engine, self.settings.anonymous_read, self.generation)

    async def call(self, caller: Caller, work: Callable[[], T]) -> T:
        """Run blocking library work in a worker thread, recorded as done by ``caller``."""

        def run() -> T:
            with acting_as(caller.name):
                return work()

        return await anyio.to_thread.run_sync(run)


Handler = Callable[[Context, Request, Caller], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    role: str
    summary: str
    handler: Handler
    global_only: bool = False  # refused to namespaced tokens (acts on the whole registry)


def ok(value: Any, status: int = 200, etag: str | None = None) -> JSONResponse:
    headers = {"ETag": etag} if etag else None
    return JSONResponse(encode(value), status, headers=headers)
