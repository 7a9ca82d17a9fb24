"""A TCP proxy in front of a tsr server that cuts every event stream once it has begun: what a
client sees when a flaky network drops `GET /api/events`."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

from tsr.client.base import Endpoint

#: the event that opens every stream; the proxy cuts the connection right after it
SUBSCRIBED = b"event: bus"


class StreamCuttingProxy:
    """Forwards connections on 127.0.0.1 to a tsr server (TCP or Unix socket); a connection
    that asks for `/api/events` is closed once the stream's first event has passed."""

    def __init__(self, upstream: Endpoint) -> None:
        self.upstream = upstream
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []

    def __enter__(self) -> StreamCuttingProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.close()

    def _connect_upstream(self) -> socket.socket:
        if self.upstream.uds:
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(self.upstream.uds)
            return sock
        host, port = self.upstream.base_url.removeprefix("http://").rsplit(":", 1)
        return socket.create_connection((host, int(port)))

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = self._connect_upstream()
            with self._lock:
                self._open += [client, server]
            streaming = threading.Event()
            threading.Thread(target=self._up, args=(client, server, streaming), daemon=True).start()
            threading.Thread(
                target=self._down, args=(server, client, streaming), daemon=True
            ).start()

    def _up(self, client: socket.socket, server: socket.socket, streaming: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if b"GET /api/events" in data:
                    streaming.set()
                server.sendall(data)
        _close(client, server)

    def _down(
        self, server: socket.socket, client: socket.socket, streaming: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                client.sendall(data)
                if streaming.is_set() and SUBSCRIBED in data:
                    with self._lock:
                        self.cuts += 1
                    break
        _close(client, server)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
