"""An app factory for running under uvicorn directly (for its TLS options, workers...):
``uvicorn --factory registry.server.asgi:app``. The registry is the one found from the
environment (``ADAPTERS_HOME``, ``ADAPTERS_DATABASE_URL``)."""

from __future__ import annotations

import os
import warnings

from starlette.applications import Starlette

from registry.api import Registry
from registry.errors import YankedVersionWarning
from registry.server.app import create_app
from registry.server.logs import configure_logging
from registry.server.settings import ServerSettings

ANONYMOUS_ENV = "ADAPTERS_SERVER_ANONYMOUS_READ"


def app() -> Starlette:
    warnings.simplefilter("ignore", YankedVersionWarning)
    configure_logging(uvicorn_too=False)  # uvicorn's own are as its command line says
    settings = ServerSettings(anonymous_read=os.environ.get(ANONYMOUS_ENV) == "1")
    return create_app(Registry.open(), settings)
