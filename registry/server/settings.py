"""What a server is started with: where it listens and the limits it keeps."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8321
    # Anonymous callers may read (never write) only when this is set explicitly.
    anonymous_read: bool = False
    max_json_bytes: int = 1 << 20
    max_json_depth: int = 32
    max_upload_bytes: int = 8 << 30
    # A request body must keep arriving: at most this long between chunks, and the
    # whole of a JSON body within request_seconds. A request's headers must arrive in
    # whole within idle_seconds too (server/header_timeout).
    idle_seconds: float = 10.0
    request_seconds: float = 60.0
    page_size: int = 100
    max_page_size: int = 1000
    # uvicorn waits this long on shutdown for requests in flight (pushes) to finish.
    graceful_seconds: float = 120.0
    # Signs web UI session cookies; None: a key made per start (sessions end with it).
    ui_secret: bytes | None = None
