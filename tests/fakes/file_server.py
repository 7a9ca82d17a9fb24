"""A loopback HTTP file server with fault switches, for download tests and the benchmark.

It serves like CivitAI's signed storage does (shared/docs/civitai-api.md): `Content-Length`,
`Content-Disposition: attachment; filename="..."`, `Accept-Ranges: bytes`, 206 answers to
`Range: bytes=N-`, and 416 past the end. The switches make it misbehave the ways real servers
do: cut the connection after N bytes, ignore Range (200 with the whole file), send wrong bytes,
answer 401/403, or trickle slowly. Files on disk are sent with sendfile, so it is fast enough
to measure a client against curl.
"""

from __future__ import annotations

import hashlib
import random
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest

#: bytes written per send while trickling or cutting
_PIECE = 64 * 1024


@dataclass
class ServedRequest:
    """One request as the file server received it."""

    path: str
    headers: dict[str, str]
    #: the status it was answered with
    status: int = 0
    #: body bytes actually sent before the answer ended (or the connection was cut)
    sent: int = 0

    @property
    def range(self) -> str | None:
        """The Range header, if the request carried one."""
        return self.headers.get("Range")


@dataclass
class ServedFile:
    """One file the server offers: bytes in memory or a file on disk."""

    name: str
    content: bytes | None = None
    path: Path | None = None

    @property
    def size(self) -> int:
        """Its length in bytes."""
        if self.content is not None:
            return len(self.content)
        assert self.path is not None
        return self.path.stat().st_size

    def read(self, start: int, end: int) -> bytes:
        """Bytes `start` to `end` (inclusive)."""
        if self.content is not None:
            return self.content[start : end + 1]
        assert self.path is not None
        with self.path.open("rb") as handle:
            handle.seek(start)
            return handle.read(end + 1 - start)


@dataclass
class FileServer:
    """Files served over HTTP on 127.0.0.1, with switches for the ways downloads fail."""

    host: str = "127.0.0.1"
    port: int = 0
    files: dict[str, ServedFile] = field(default_factory=dict)
    requests: list[ServedRequest] = field(default_factory=list)
    #: for successive requests: cut the connection after this many body bytes (one per request)
    cuts: list[int] = field(default_factory=list)
    #: answer Range requests with 200 and the whole file
    ignore_range: bool = False
    #: send these bytes instead of the file's (same length): a corrupted mirror
    wrong_bytes: bool = False
    #: answer every file request with this status (401, 403, 404, 500, ...)
    status: int | None = None
    #: the one Bearer token accepted; others (or none) get 401
    token: str | None = None
    #: seconds to sleep after each 64 KiB piece (a slow link)
    delay: float = 0.0
    #: leave out Content-Length (the body ends when the connection closes)
    no_length: bool = False
    #: leave out Content-Disposition (the name must come from elsewhere)
    no_disposition: bool = False
    #: a raw Content-Disposition header to send instead of the usual one
    disposition: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def root(self) -> str:
        """Scheme, host and port."""
        return f"http://{self.host}:{self.port}"

    def add(self, name: str, content: bytes) -> str:
        """Serve `content` as `name`; its URL."""
        self.files[name] = ServedFile(name, content=content)
        return self.url(name)

    def add_path(self, path: Path, name: str | None = None) -> str:
        """Serve the file at `path` (read at request time); its URL."""
        name = name or path.name
        self.files[name] = ServedFile(name, path=path)
        return self.url(name)

    def url(self, name: str) -> str:
        """Where `name` is served."""
        return f"{self.root}/files/{quote(name)}"

    def cut_after(self, *offsets: int) -> None:
        """Cut the next requests' connections after these many body bytes, one per request."""
        with self._lock:
            self.cuts.extend(offsets)

    def _next_cut(self) -> int | None:
        with self._lock:
            return self.cuts.pop(0) if self.cuts else None

    def ranges(self) -> list[str | None]:
        """The Range header of every file request, in order."""
        return [r.range for r in self.requests]

    # -- serving -----------------------------------------------------------------------------

    def start(self) -> FileServer:
        """Serve on a free loopback port from a daemon thread."""
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._server = _QuietServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up mid-answer are part of the tests: no tracebacks on stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore a request that failed (the client went away)."""


class _Handler(BaseHTTPRequestHandler):
    server_state: FileServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read `requests` instead."""

    def do_GET(self) -> None:
        state = self.server_state
        record = ServedRequest(urlsplit(self.path).path, dict(self.headers))
        state.requests.append(record)
        match = re.fullmatch(r"/files/(.+)", record.path)
        served = state.files.get(unquote(match.group(1))) if match else None
        if served is None:
            self._answer(record, 404, b"no such file")
            return
        if state.token is not None and self.headers.get("Authorization") != (
            f"Bearer {state.token}"
        ):
            self._answer(record, 401, b"Unauthorized")
            return
        if state.status is not None:
            self._answer(record, state.status, b"fake failure")
            return
        self._serve(record, served)

    def _answer(self, record: ServedRequest, status: int, body: bytes) -> None:
        record.status = status
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _serve(self, record: ServedRequest, served: ServedFile) -> None:
        state = self.server_state
        size = served.size
        start, end, status = 0, size - 1, 200
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if wanted and not state.ignore_range:
            start = int(wanted.group(1))
            if start >= size:
                record.status = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            end = min(int(wanted.group(2)) if wanted.group(2) else size - 1, size - 1)
            status = 206
        record.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        if state.disposition is not None:
            self.send_header("Content-Disposition", state.disposition)
        elif not state.no_disposition:
            self.send_header("Content-Disposition", f'attachment; filename="{served.name}"')
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        if state.no_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(end + 1 - start))
        self.end_headers()
        self.wfile.flush()
        cut = state._next_cut()
        plain = not (cut is not None or state.wrong_bytes or state.delay)
        if plain and served.path is not None:
            record.sent = self._sendfile(served.path, start, end + 1 - start)
            return
        limit = end + 1 if cut is None else min(end + 1, start + cut)
        position = start
        while position < limit:
            piece = served.read(position, min(limit, position + _PIECE) - 1)
            if state.wrong_bytes:
                piece = bytes(b ^ 0x5A for b in piece)
            try:
                self.wfile.write(piece)
            except OSError:
                return  # the client went away
            position += len(piece)
            record.sent = position - start
            if state.delay:
                time.sleep(state.delay)
        if cut is not None and position < end + 1:
            # an abrupt end mid-body, as a dropped connection or a proxy timeout looks
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def _sendfile(self, path: Path, offset: int, count: int) -> int:
        with path.open("rb") as handle:
            try:
                return self.connection.sendfile(handle, offset, count)
            except OSError:
                return 0


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    """A running file server with no files yet."""
    with FileServer() as server:
        yield server


def random_bytes(size: int, seed: int = 0) -> bytes:
    """`size` reproducible bytes that do not compress (a model file's look)."""
    return random.Random(seed).randbytes(size)


def sha256_of(content: bytes) -> str:
    """The lower-case hex SHA-256 of `content`."""
    return hashlib.sha256(content).hexdigest()


__all__ = ["FileServer", "ServedRequest", "file_server", "random_bytes", "sha256_of"]
