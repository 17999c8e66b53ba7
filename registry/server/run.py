"""Running the app under uvicorn, with JSON access logs and a graceful shutdown that lets
requests in flight (pushes) finish. HTTP is parsed by httptools on a uvloop event loop
when they are installed (the ``server`` extra brings them): about a third less CPU per
small request than h11 on asyncio; without them uvicorn's pure-Python pair serves alike."""

from __future__ import annotations

import importlib.util
import logging
import warnings

from registry.api import Registry
from registry.errors import YankedVersionWarning
from registry.release import __version__
from registry.server.app import create_app
from registry.server.header_timeout import protocol_class
from registry.server.logs import configure_logging
from registry.server.settings import ServerSettings
from registry.server.shutdown import serve_until_stopped


def protocols() -> tuple[str, str]:
    """uvicorn's HTTP implementation and event loop for this server: the fast pair when
    installed, else h11 and asyncio."""
    fast = all(importlib.util.find_spec(name) for name in ("httptools", "uvloop"))
    return ("httptools", "uvloop") if fast else ("h11", "asyncio")


def announce(registry: Registry, settings: ServerSettings, http: str) -> None:
    """The start-up line, as JSON through the server's log like every other line: where
    it listens and what it serves. The catalog only by kind: its URL may hold a password."""
    blobs = registry.store.blobs.url
    scheme = blobs.split("://", 1)[0] if "://" in blobs else "local"
    listen = f"http://{settings.host}:{settings.port}"
    fields = {
        "listen": listen,
        "home": str(registry.home.root),
        "catalog": registry.catalog.engine.dialect.name,
        "blobs": scheme,
        "blob_url": blobs,  # a blob store's URL never holds credentials
        "anonymous_read": settings.anonymous_read,
        "max_upload_bytes": settings.max_upload_bytes,
        "http": http,
        "version": __version__,
    }
    logging.getLogger("registry.server").info(f"serving on {listen}", extra={"fields": fields})


def serve(registry: Registry, settings: ServerSettings) -> int:
    """Serve until stopped; the exit status (0 after a clean stop)."""
    import uvicorn

    from registry.store.direct_uploads import url_lifetime

    url_lifetime()  # a bad ADAPTERS_UPLOAD_URL_SECONDS stops the start, not a client's push

    # A yanked version that a client pinned is reported in the result, not on our stderr.
    warnings.simplefilter("ignore", YankedVersionWarning)
    configure_logging()
    http, loop = protocols()
    announce(registry, settings, http)
    config = uvicorn.Config(
        create_app(registry, settings),
        http=protocol_class(http, settings.idle_seconds),
        loop=loop,
        host=settings.host,
        port=settings.port,
        access_log=False,  # ours is structured and names the token, not its secret
        timeout_graceful_shutdown=int(settings.graceful_seconds),
        log_level="warning",
        log_config=None,  # uvicorn logs through ours, as JSON lines
    )
    return serve_until_stopped(config)
