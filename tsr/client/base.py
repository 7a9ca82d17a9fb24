"""What the sync and async clients share: where a server is, timeouts, errors, SSE decoding."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from tsr import __version__
from tsr.errors import (
    AuthRejected,
    BadRequest,
    ConfigError,
    Conflict,
    JobFailed,
    ModelFileError,
    NotFound,
    RateLimited,
    RemoteUnreachable,
    RootViolation,
    ServerError,
    TsrError,
)
from tsr.schemas.server import Event

T = TypeVar("T")

#: health and info: a live server answers at once
QUICK_TIMEOUT = httpx.Timeout(5.0, connect=3.0)
#: most API calls
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
#: the event stream: the server sends a keep-alive every 15 s, so 45 s of silence means trouble
EVENTS_TIMEOUT = httpx.Timeout(connect=5.0, read=45.0, write=10.0, pool=5.0)
#: file downloads: no limit on the whole, a limit on each wait for the next chunk
DOWNLOAD_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=10.0, pool=10.0)

#: error kinds a tsr server names in `{"error": ...}`, re-raised as the same class here
_NAMED_ERRORS: tuple[type[TsrError], ...] = (
    AuthRejected,
    BadRequest,
    ConfigError,
    Conflict,
    JobFailed,
    ModelFileError,
    NotFound,
    RateLimited,
    RemoteUnreachable,
    RootViolation,
    ServerError,
)
SERVER_ERRORS: dict[str, type[TsrError]] = {kind.__name__: kind for kind in _NAMED_ERRORS}
SERVER_ERRORS["ServiceUnavailable"] = ServerError


@dataclass(frozen=True)
class Endpoint:
    """Where a tsr server is and how to talk to it, with the hints its errors give."""

    #: the name users know it by: `local`, a configured remote, or the URL itself
    remote: str
    #: `http://host:port` (a path prefix is kept), or `http://local` over a Unix socket
    base_url: str
    token: str | None = field(default=None, repr=False)
    #: a Unix socket to connect through instead of TCP
    uds: str | None = None
    #: blocks until the server accepts requests (the embedded one starts in the background)
    wait_ready: Callable[[], None] | None = field(default=None, compare=False)
    #: e.g. "embedded in this process" or "tsr serve (pid 123)"
    description: str = ""
    #: appended to "cannot reach ..." messages
    unreachable_hint: str = "is `tsr serve` running there?"
    #: appended to "token rejected by ..." messages
    token_hint: str = ""

    @property
    def address(self) -> str:
        """The URL, or `unix socket PATH`."""
        return f"unix socket {self.uds}" if self.uds else self.base_url

    @property
    def label(self) -> str:
        """`gpu at http://gpu:8765`, or just the URL when the remote has no other name."""
        return self.address if self.remote == self.base_url else f"{self.remote} at {self.address}"

    def headers(self) -> dict[str, str]:
        """Request headers: the bearer token (never a URL parameter) and our User-Agent."""
        headers = {"User-Agent": f"tsr/{__version__}", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


def needs_tls(endpoint: Endpoint) -> bool:
    """True for https:// servers; plain http (and Unix sockets) skip loading CA certificates."""
    return endpoint.base_url.startswith("https://") and endpoint.uds is None


def url_endpoint(url: str, token: str | None = None, remote: str | None = None) -> Endpoint:
    """An Endpoint for a server at `url` (a configured remote when `remote` names it)."""
    base = url.rstrip("/")
    name = remote or base
    if remote:
        hint = f"set it with `tsr remote add {name} {base} --token ...`"
    else:
        hint = "pass the server's token to the client"
    return Endpoint(remote=name, base_url=base, token=token, token_hint=hint)


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "no such file" in lowered:
        return "no server socket there"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "unknown host name"
    if "temporary failure in name resolution" in lowered:
        return "the host name does not resolve"
    return text


def error_for_exception(
    endpoint: Endpoint, exc: httpx.HTTPError, timeout: httpx.Timeout
) -> TsrError:
    """The tsr error for a transport failure (refused, timed out, connection dropped)."""
    where = endpoint.label
    if isinstance(exc, httpx.ConnectTimeout):
        return RemoteUnreachable(
            f"cannot reach {where}: no answer within {timeout.connect:g} s; "
            f"{endpoint.unreachable_hint}"
        )
    if isinstance(exc, httpx.TimeoutException):
        return RemoteUnreachable(f"{where} did not answer within {timeout.read:g} s; try again")
    if isinstance(exc, httpx.ConnectError):
        return RemoteUnreachable(
            f"cannot reach {where}: {_reason(exc)}; {endpoint.unreachable_hint}"
        )
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return RemoteUnreachable(f"{where} closed the connection ({_reason(exc)}); try again")
    return RemoteUnreachable(f"cannot talk to {where}: {_reason(exc)}")


def _detail(response: httpx.Response) -> tuple[Any, str | None]:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    return body.get("detail"), error if isinstance(error, str) else None


def _validation_sentence(detail: list[Any]) -> str:
    problems = []
    for item in detail:
        if not isinstance(item, dict):
            continue
        loc = [str(part) for part in item.get("loc", [])]
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
            loc = loc[1:]
        problems.append(f"{'.'.join(loc) or 'the request'}: {item.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"


def error_for_response(endpoint: Endpoint, response: httpx.Response) -> TsrError:
    """The tsr error for an HTTP error answer (the body must have been read)."""
    status = response.status_code
    detail, error_name = _detail(response)
    sentence = detail if isinstance(detail, str) and detail else None
    remote = endpoint.remote
    if error_name in SERVER_ERRORS and sentence:
        # a tsr server said exactly what went wrong and what kind of error it is
        return SERVER_ERRORS[error_name](sentence)
    if status in (401, 403):
        sent = "" if endpoint.token else " (no token is set for it)"
        return AuthRejected(f"token rejected by {remote}{sent}: {endpoint.token_hint}")
    if status == 404:
        if sentence and sentence != "Not Found":
            return NotFound(sentence)
        path = response.request.url.path
        return NotFound(f"{remote} has no {path}; is it running an older tsr?")
    if status in (400, 422):
        if isinstance(detail, list):
            return BadRequest(f"{remote} rejected the request: {_validation_sentence(detail)}")
        return BadRequest(sentence or f"{remote} rejected the request (HTTP {status})")
    if status == 409:
        return Conflict(sentence or f"{remote}: the request conflicts with its current state")
    if status == 429:
        return RateLimited(sentence or f"{remote} is rate limiting us; wait a moment")
    if sentence:
        return ServerError(sentence)
    return ServerError(f"{remote} answered HTTP {status} {response.reason_phrase}".rstrip())


@functools.lru_cache(maxsize=256)
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def parse_response(endpoint: Endpoint, response: httpx.Response, model: type[T]) -> T:
    """The JSON body as `model` (a pydantic model, `list[Model]`, `dict`, ...)."""
    try:
        adapter: TypeAdapter[T] = _adapter(cast(Any, model))
        return adapter.validate_json(response.content)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": str(exc)}
        raise ServerError(
            f"{endpoint.remote} sent an answer to {response.request.url.path} that this tsr "
            f"cannot read ({first['msg']}); are both sides the same tsr version?"
        ) from None


def request_json(body: Any) -> Any:
    """A request body as JSON data: models give only the fields that were set."""
    if isinstance(body, BaseModel):
        return body.model_dump(mode="json", exclude_unset=True)
    return body


def topic_params(topics: list[str] | tuple[str, ...] | None) -> dict[str, list[str]]:
    """Query parameters selecting event topics (repeated `topics=`)."""
    return {"topics": list(topics)} if topics else {}


class SseDecoder:
    """Turns the lines of a `text/event-stream` into Events (comments and keep-alives skipped)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        """Take one line (without its newline); an Event when a blank line completes one."""
        if line == "":
            if not self._data:
                return None
            data, self._data = "\n".join(self._data), []
            try:
                return Event.model_validate_json(data)
            except ValidationError:
                raise ServerError(
                    f"{self.endpoint.remote} sent an event this tsr cannot read; "
                    "are both sides the same tsr version?"
                ) from None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value.removeprefix(" "))
        # `event:` repeats the topic inside the data and `id:` its id; nothing else is used
        return None
