"""A deadline for a request's headers, which uvicorn does not keep.

uvicorn closes a connection idle between requests (its keep-alive timeout), but once a
byte of the next request has arrived, or from the moment a connection opens, it waits
for the rest of the headers as long as the client likes. Clients that open connections
and send a header byte now and then would hold the server's file descriptors until it
could accept no one. So each connection gets ``seconds`` from its opening, or from the
first byte after a response, to finish a request's headers; past that it is answered
408 and closed. The body has limits of its own (``server/body``).

The deadline wraps uvicorn's own protocol classes (httptools or h11), reading the one
attribute both keep for the request in progress, ``cycle``; a test holds the behaviour.
"""

from __future__ import annotations

import asyncio
from typing import Any

_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def with_header_deadline(base: type[Any], seconds: float) -> type[Any]:
    """uvicorn's HTTP protocol ``base`` with ``seconds`` to finish a request's headers."""

    class HeaderDeadline(base):  # type: ignore[misc]
        _deadline: asyncio.TimerHandle | None = None
        _waiting_since: object = None  # the request in progress when the wait began

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._await_headers()

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and self._between_requests():
                self._await_headers()
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            super().connection_lost(exc)

        def _between_requests(self) -> bool:
            cycle = self.cycle
            return cycle is None or bool(cycle.response_complete)

        def _await_headers(self) -> None:
            self._waiting_since = self.cycle
            self._deadline = self.loop.call_later(seconds, self._expired)

        def _expired(self) -> None:
            self._deadline = None
            if self.cycle is not self._waiting_since:
                # A request began meanwhile; a wait for the next one may have begun too.
                if self._between_requests():
                    self._await_headers()
                return
            if self._between_requests() and not self.transport.is_closing():
                self.transport.write(_TIMEOUT)
                self.transport.close()

    HeaderDeadline.__name__ = HeaderDeadline.__qualname__ = f"HeaderDeadline{base.__name__}"
    return HeaderDeadline


def protocol_class(http: str, seconds: float) -> type[Any]:
    """The protocol class for uvicorn's ``http`` implementation ("httptools" or "h11")."""
    if http == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return with_header_deadline(HttpToolsProtocol, seconds)
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return with_header_deadline(H11Protocol, seconds)
