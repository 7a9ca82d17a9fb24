"""One file over HTTP into a `.part` file: Range resume, restarts, retries, SHA-256 on the fly.

The `.part` file's length is the truth about how far a download got: a resumed transfer asks
for `Range: bytes=<length>-`. A 206 answer is appended; a 200 answer (the server ignored the
Range) or a 206 for another offset restarts from zero, never appends. Cut connections and 5xx
answers are retried with bounded back-off, counted only while no byte arrives.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tsr.civitai import parse_retry_after
from tsr.downloads.partfile import (
    DiskFull,
    RunningHash,
    TransferStopped,
    disk_full_error,
    open_part,
    part_size,
)
from tsr.downloads.wire import content_range, disposition_name, raw_socket, transport_reason
from tsr.errors import (
    AuthRejected,
    BadRequest,
    NotFound,
    RemoteUnreachable,
    ServerError,
    TsrError,
)

__all__ = ["DiskFull", "Transfer", "TransferResult", "TransferStatus", "TransferStopped"]

#: bytes read from the socket per call on the fast path
_RAW_BUFFER = 1 << 20
#: bytes written between two nudges to the kernel to start writing them to disk
_FLUSH_EVERY = 16 << 20
#: failed attempts in a row (no byte received between them) before giving up
DEFAULT_MAX_FAILURES = 6
#: the longest pause between attempts, in seconds
MAX_RETRY_WAIT = 30.0
#: connect fast, but let a slow mirror pause for a while between chunks
DOWNLOAD_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=30.0, pool=10.0)


@dataclass
class TransferStatus:
    """How far a transfer got: bytes in the .part file, the total when known, the file name."""

    done: int
    total: int | None
    #: the name the server gave in Content-Disposition (as sent, not yet made safe)
    file_name: str | None = None


@dataclass
class TransferResult:
    """A finished transfer: the .part file's SHA-256, its size, and where it came from."""

    sha256: str
    size: int
    file_name: str | None
    #: the URL the bytes came from, after redirects
    final_url: str


class _Restart(Exception):
    """The server answered for another offset: start again from byte zero."""


class Transfer:
    """Fetches `url` into `part`, resuming what the .part already holds.

    Args:
        url: where the file is (redirects are followed).
        part: the .part file, on the filesystem of the destination root.
        http: the client to use (its headers, e.g. Authorization, are sent).
        stop: set from any thread to stop at the next chunk (TransferStopped).
        progress: called from this thread after each chunk and each new answer.
        auth_error: makes the error for a 401/403 answer (the status is passed).
        max_failures: attempts in a row without a byte before giving up.
        sleep: how to wait between attempts (default: wait on `stop`, so a stop cuts it short).
    """

    def __init__(
        self,
        url: str,
        part: Path,
        http: httpx.Client,
        *,
        stop: threading.Event | None = None,
        progress: Callable[[TransferStatus], None] | None = None,
        auth_error: Callable[[int], TsrError] | None = None,
        max_failures: int = DEFAULT_MAX_FAILURES,
        retry_base: float = 0.5,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.url = url
        self.part = part
        self.http = http
        self.stop = stop or threading.Event()
        self.progress = progress
        self.auth_error = auth_error
        self.max_failures = max_failures
        self.retry_base = retry_base
        self.sleep = sleep or self.stop.wait
        self.host = urlsplit(url).netloc
        self.status = TransferStatus(done=part_size(part), total=None)
        #: requests sent so far (tests and logs read it)
        self.attempts = 0
        self._hash = RunningHash()
        self._final_url = url
        #: the .part is known to be on its way to the disk up to here
        self._flushed = 0
        #: bytes the current attempt brought (an attempt with none counts as a failure)
        self._received = 0

    def run(self) -> TransferResult:
        """Fetch until the file is complete; raise a TsrError (or TransferStopped) otherwise."""
        self.part.parent.mkdir(parents=True, exist_ok=True)
        failures = 0
        while True:
            if self.stop.is_set():
                raise TransferStopped
            self._received = 0
            try:
                if self._attempt():
                    break
                failure: TsrError | None = None
            except _Restart:
                failure = None
                self._truncate()
            except httpx.TransportError as exc:
                failure = RemoteUnreachable(
                    f"the download from {self.host} failed: {transport_reason(exc)}"
                )
            except _Retryable as exc:
                failure = exc.error
                if exc.wait is not None:
                    self._pause(exc.wait)
                    failures += 1
                    if failures >= self.max_failures:
                        raise exc.error from None
                    continue
            failures = 0 if self._received else failures + 1
            if failures >= self.max_failures:
                raise failure or ServerError(
                    f"the download from {self.host} keeps stopping short; try again later"
                )
            if failures:
                self._pause(min(self.retry_base * 2 ** (failures - 1), MAX_RETRY_WAIT))
        size = part_size(self.part)
        self._hash.catch_up(self.part, size, self.stop)
        return TransferResult(
            sha256=self._hash.digest.hexdigest(),
            size=size,
            file_name=self.status.file_name,
            final_url=self._final_url,
        )

    def _pause(self, seconds: float) -> None:
        if self.stop.wait(0) or seconds <= 0:
            return
        self.sleep(seconds)

    def _truncate(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.truncate(self.part, 0)
        self._hash.reset()
        self.status.done = 0

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.status)

    def _attempt(self) -> bool:
        """One request; True when the file is complete."""
        offset = part_size(self.part)
        self._hash.catch_up(self.part, offset, self.stop)
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        self.attempts += 1
        with self.http.stream("GET", self.url, headers=headers, timeout=DOWNLOAD_TIMEOUT) as answer:
            self._final_url = str(answer.url)
            total = self._check(answer, offset)
            if total == offset and offset and answer.status_code == 416:
                return True  # the .part already holds the whole file
            if answer.status_code == 200 and offset:
                # the server ignored Range: its body starts at byte zero, so the .part does too
                self._truncate()
                offset = 0
            self.status.total = total
            self.status.done = offset
            self.status.file_name = self.status.file_name or disposition_name(answer)
            self._report()
            if total is not None:
                self._check_space(total - offset)
            self._receive(answer, offset)
        size = part_size(self.part)
        if total is None:
            return True  # no length given: the body ended when the server closed it
        return size >= total

    def _check(self, answer: httpx.Response, offset: int) -> int | None:
        """The file's total size from the answer; raise for answers that carry no file."""
        status = answer.status_code
        if status == 206:
            start, total = content_range(answer.headers.get("Content-Range"))
            if start != offset:
                raise _Restart
            return total
        if status == 416:
            _, total = content_range(answer.headers.get("Content-Range"))
            if total is None or total != offset:
                raise _Restart
            return total
        if status == 200:
            length = answer.headers.get("Content-Length")
            return int(length) if length and length.isascii() and length.isdigit() else None
        answer.read()
        if status in (401, 403):
            if self.auth_error is not None:
                raise self.auth_error(status)
            raise _auth_needed(self.host, status)
        if status in (404, 410):
            raise NotFound(f"the download from {self.host} answered {status}: the file is gone")
        if status == 429 or status >= 500:
            wait = parse_retry_after(answer.headers.get("Retry-After"))
            error = ServerError(f"the download from {self.host} keeps failing (HTTP {status})")
            raise _Retryable(error, None if wait is None else min(wait, MAX_RETRY_WAIT))
        raise BadRequest(f"the download from {self.host} was refused (HTTP {status})")

    def _check_space(self, needed: int) -> None:
        try:
            free = shutil.disk_usage(self.part.parent).free
        except OSError:
            return
        if free < needed:
            raise disk_full_error(self.part.parent, needed - free)

    def _receive(self, answer: httpx.Response, offset: int) -> None:
        fd = open_part(self.part)
        try:
            os.lseek(fd, offset, os.SEEK_SET)
            self._flushed = offset
            chunks = answer.iter_raw()
            sock = raw_socket(answer)
            total = self.status.total
            length = answer.headers.get("content-length", "")
            # the body must run to the end of the file (a 206 could send a shorter range)
            whole = (
                total is not None
                and length.isascii()
                and length.isdigit()
                and int(length) == total - offset
            )
            if sock is None or total is None or not whole:
                for chunk in chunks:
                    self._store(fd, chunk)
            else:
                # what the HTTP parser already holds comes first; the rest is read straight
                # from the socket into one buffer (a third of the CPU per byte on a fast link)
                self._store(fd, next(chunks, b"") if total > offset else b"")
                self._receive_raw(fd, sock, total)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _store(self, fd: int, chunk: bytes | memoryview) -> None:
        """Append one chunk to the .part file and the running hash; report progress."""
        if self.stop.is_set():
            raise TransferStopped
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise disk_full_error(self.part.parent) from None
            raise
        self._hash.update(chunk)
        self.status.done += len(chunk)
        self._received += len(chunk)
        if self.status.done - self._flushed >= _FLUSH_EVERY:
            self._start_writeback(fd)
        self._report()

    def _start_writeback(self, fd: int) -> None:
        """Start writing the newest bytes to disk now, so the final fsync has little left.

        On Linux, POSIX_FADV_DONTNEED on dirty pages starts their writeback without waiting
        (PostgreSQL's fallback for sync_file_range); pages not yet written stay cached.
        """
        start, self._flushed = self._flushed, self.status.done
        if hasattr(os, "posix_fadvise") and start < self._flushed:
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, start, self._flushed - start, os.POSIX_FADV_DONTNEED)

    def _receive_raw(self, fd: int, sock: socket.socket, total: int) -> None:
        buffer = memoryview(bytearray(_RAW_BUFFER))
        sock.settimeout(DOWNLOAD_TIMEOUT.read)
        while self.status.done < total:
            try:
                count = sock.recv_into(buffer, min(len(buffer), total - self.status.done))
            except TimeoutError as exc:
                raise httpx.ReadTimeout(str(exc) or "timed out") from None
            except OSError as exc:
                raise httpx.ReadError(str(exc)) from None
            if not count:
                raise httpx.RemoteProtocolError("the server closed the connection mid-body")
            self._store(fd, buffer[:count])


class _Retryable(Exception):
    """A failure worth another attempt (5xx, 429), with the wait the server asked for."""

    def __init__(self, error: TsrError, wait: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


def _auth_needed(host: str, status: int) -> TsrError:
    return AuthRejected(
        f"the download from {host} needs credentials tsr does not have (HTTP {status})"
    )
