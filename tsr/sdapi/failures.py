"""How sd-server's failures become tsr errors: one plain sentence each, never a traceback."""

from __future__ import annotations

import contextlib
import socket

import httpx

from tsr.errors import (
    BadRequest,
    Conflict,
    JobFailed,
    NotFound,
    RateLimited,
    RemoteUnreachable,
    ServerError,
    TsrError,
)


class JobExpired(NotFound):
    """sd-server dropped a finished job's results (it keeps them 10 minutes): HTTP 410."""


class JobCancelled(JobFailed):
    """The job was cancelled on sd-server before it started."""


def transport_reason(error: httpx.HTTPError) -> str:
    """A few words on why a request failed, from the innermost cause httpx wraps."""
    if isinstance(error, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(error, httpx.RemoteProtocolError):
        return "the connection closed before an answer (did sd-server crash?)"
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "unknown host name"
        if isinstance(cause, ConnectionResetError | BrokenPipeError):
            return "the connection was reset (did sd-server crash?)"
        cause = cause.__cause__ or cause.__context__
    return str(error) or type(error).__name__


def unreachable(base_url: str, error: httpx.HTTPError) -> RemoteUnreachable:
    """The error for a request that got no HTTP answer at all."""
    return RemoteUnreachable(
        f"cannot reach sd-server at {base_url}: {transport_reason(error)}; is it running?"
    )


def error_for_status(
    base_url: str, response: httpx.Response, what: str, not_found: str | None = None
) -> TsrError:
    """The error for an HTTP error answer; `what` names the request ("GET /sdapi/v1/loras")."""
    message = response.reason_phrase or f"HTTP {response.status_code}"
    with contextlib.suppress(ValueError):
        data = response.json()
        if isinstance(data, dict) and data.get("error"):
            detail = data.get("message")
            message = f"{data['error']}: {detail}" if detail else str(data["error"])
    status = response.status_code
    if status == 400:
        return BadRequest(f"sd-server rejected the request: {message}")
    if status == 404:
        return NotFound(
            not_found or f"sd-server at {base_url} has no {what}; is it a recent build?"
        )
    if status == 409:
        return Conflict(f"sd-server refused: {message}")
    if status == 410:
        return JobExpired(f"sd-server no longer has {what} (finished jobs expire after 10 minutes)")
    if status == 429:
        return RateLimited(
            f"sd-server's job queue is full ({message}); wait for queued jobs to finish"
        )
    return ServerError(f"sd-server failed on {what} (HTTP {status}): {message}")
