"""Running the app under uvicorn, with JSON access logs and a graceful shutdown that lets
requests in flight (pushes) finish."""

from __future__ import annotations

import logging
import sys
import warnings

from registry.api import Registry
from registry.errors import YankedVersionWarning
from registry.server.app import ACCESS_LOG, create_app
from registry.server.settings import ServerSettings


def serve(registry: Registry, settings: ServerSettings) -> None:
    import uvicorn

    from registry.store.direct_uploads import url_lifetime

    url_lifetime()  # a bad ADAPTERS_UPLOAD_URL_SECONDS stops the start, not a client's push

    # A yanked version that a client pinned is reported in the result, not on our stderr.
    warnings.simplefilter("ignore", YankedVersionWarning)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    ACCESS_LOG.addHandler(handler)
    ACCESS_LOG.setLevel(logging.INFO)
    ACCESS_LOG.propagate = False
    uvicorn.run(
        create_app(registry, settings),
        host=settings.host,
        port=settings.port,
        access_log=False,  # ours is structured and names the token, not its secret
        timeout_graceful_shutdown=int(settings.graceful_seconds),
        log_level="warning",
    )
