"""Reading HTTP answers for downloads: Content-Range, the raw socket fast path, error reasons."""

from __future__ import annotations

import re
import socket
import ssl

import httpx

from tsr.downloads.names import filename_from_disposition


def content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total) of a `Content-Range: bytes a-b/N` (or `bytes */N`) header."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", header or "")
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def raw_socket(answer: httpx.Response) -> socket.socket | None:
    """The connection's socket when the body can be read from it as is, else None.

    Only a plain HTTP/1.x body with a known length qualifies: no chunked framing, no content
    encoding, and a socket that carries the body itself (http over TCP, or https over its own
    TLS socket; never TLS inside a proxy's TLS, where the socket holds the outer layer).
    """
    headers = answer.headers
    if answer.http_version not in ("HTTP/1.1", "HTTP/1.0") or "transfer-encoding" in headers:
        return None
    if headers.get("content-encoding", "identity").lower() != "identity":
        return None
    stream = answer.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    scheme = answer.url.scheme
    if scheme == "https" and isinstance(sock, ssl.SSLSocket):
        return sock
    if scheme == "http" and type(sock) is socket.socket:
        return sock
    return None


def disposition_name(answer: httpx.Response) -> str | None:
    """The file name the answer's Content-Disposition gives, as sent."""
    return filename_from_disposition(answer.headers.get("Content-Disposition"))


def transport_reason(exc: httpx.TransportError) -> str:
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return "no data for a minute"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection was cut"
    return text
