"""Exception handlers: a TsrError becomes an HTTP status and `{"detail": sentence}`, no trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tsr.errors import (
    AuthRejected,
    BadRequest,
    Conflict,
    JobFailed,
    NotFound,
    RateLimited,
    RemoteUnreachable,
    RootViolation,
    ServerError,
    TsrError,
)
from tsr.server.state import ServiceUnavailable

log = logging.getLogger(__name__)

#: first match wins, so subclasses come before their bases
STATUS_FOR_ERROR: tuple[tuple[type[TsrError], int], ...] = (
    (NotFound, 404),
    (BadRequest, 400),
    (AuthRejected, 401),
    (Conflict, 409),
    (RootViolation, 403),
    (RateLimited, 429),
    (RemoteUnreachable, 502),
    (ServiceUnavailable, 503),
    (ServerError, 502),
    (JobFailed, 500),
)


def status_for(error: TsrError) -> int:
    """The HTTP status a TsrError is answered with (500 for kinds not listed)."""
    for kind, status in STATUS_FOR_ERROR:
        if isinstance(error, kind):
            return status
    return 500


def error_body(error: TsrError) -> dict[str, str]:
    """`detail` is the sentence for the user; `error` names the kind so clients re-raise it."""
    return {"detail": str(error), "error": type(error).__name__}


async def _tsr_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TsrError)
    status = status_for(exc)
    if status >= 500:
        log.warning("%s %s failed: %s", request.method, request.url.path, exc)
    return JSONResponse(error_body(exc), status_code=status)


def unexpected_body(method: str, path: str, exc: BaseException) -> dict[str, str]:
    """What a client learns of a bug: where it failed and the exception's type, no trace."""
    return {
        "detail": f"the tsr server failed on {method} {path} ({type(exc).__name__}); see its log",
        "error": "internal",
    }


class CatchUnexpected:
    """ASGI middleware: an unexpected exception becomes a logged traceback and a plain 500.

    Starlette's own handler for `Exception` re-raises after answering, and uvicorn then drops
    the connection, so a client's next request on it fails; answering here keeps it usable.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise  # half a response is out: only dropping the connection is honest
            log.exception("%s %s failed", scope["method"], scope["path"])
            body = unexpected_body(scope["method"], scope["path"], exc)
            await JSONResponse(body, status_code=500)(scope, receive, send)


#: the largest integer SQLite stores; ids and numbers above it cannot name anything
SQLITE_MAX_INTEGER = 2**63 - 1


async def _too_large(request: Request, exc: Exception) -> JSONResponse:
    # the one place an out-of-range number from a client surfaces (sqlite3 raises it on binding),
    # so every id, cursor and limit is covered without a bound on each parameter
    detail = f"a number in the request is too large (at most {SQLITE_MAX_INTEGER})"
    return JSONResponse({"detail": detail, "error": "BadRequest"}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    """Answer TsrErrors with their status and sentence, and anything else with a plain 500."""
    app.add_exception_handler(TsrError, _tsr_error)
    app.add_exception_handler(OverflowError, _too_large)
    app.add_middleware(CatchUnexpected)
