"""A TCP forwarder on 127.0.0.1 that a test can shut and open again: the server behind
it (PostgreSQL, say) becomes unreachable to whoever connects through it, as when its host
goes away, without stopping the server that other tests share."""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpGate:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open = True
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._flowing = threading.Event()  # cleared: connections stay up, no byte passes
        self._flowing.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self) -> None:
        """Hold every byte in either direction, as a server that hangs would."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def shut(self) -> None:
        """Cut every connection; new ones are closed at once."""
        with self._lock:
            self._open = False
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def open(self) -> None:
        with self._lock:
            self._open = True

    def close(self) -> None:
        self.shut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if not self._open:
                    client.close()
                    continue
                try:
                    server = socket.create_connection(self.upstream)
                except OSError:
                    client.close()
                    continue
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(a, b, self._flowing), daemon=True).start()


def _pipe(source: socket.socket, target: socket.socket, flowing: threading.Event) -> None:
    try:
        while data := source.recv(65536):
            flowing.wait()
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
