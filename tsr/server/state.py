"""What the app holds while it runs: config, event bus, shared HTTP client and domain services."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from tsr.config import Config
from tsr.errors import ServerError
from tsr.schemas.server import BackendSummary, ServerMode
from tsr.server.events import EventBus

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")

#: seconds between SSE keep-alive comments on an idle event stream
SSE_KEEPALIVE = 15.0


class ServiceUnavailable(ServerError):
    """The server runs without the service a request needs (HTTP 503)."""


@dataclass
class AppState:
    """The services container on `app.state.tsr`, built by `create_app` and filled by lifespan.

    Domain services (gallery store, backend manager, job queue, ...) live in a registry keyed
    by their class: a service's start-up code calls `state.provide(store)`, endpoints get it
    through a `deps.py` alias built with `deps.service(GalleryStore)`. A service that was not
    started answers 503 naming it, so a server without it still serves everything else.
    """

    config: Config
    mode: ServerMode
    #: the bearer token clients must send (None: no auth; loopback or the private socket)
    token: str | None
    events: EventBus = field(default_factory=EventBus)
    server_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    pid: int = field(default_factory=os.getpid)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: API areas offered, from the routers' CAPABILITIES (shown by `GET /api/info`)
    capabilities: set[str] = field(default_factory=set)
    sse_keepalive: float = SSE_KEEPALIVE
    #: the shared client for outgoing calls (sd-server, CivitAI); open while the app runs
    http: httpx.AsyncClient | None = None
    #: set by the backend manager when it starts; `GET /api/info` falls back to the config
    backend_summaries: Callable[[], list[BackendSummary]] | None = None
    #: why the lifespan failed to start, for whoever started the server
    startup_error: BaseException | None = None
    _services: dict[type, object] = field(default_factory=dict)

    def provide(self, service: object, kind: type | None = None) -> None:
        """Register a running service under its class (or `kind`, e.g. a base class)."""
        self._services[kind or type(service)] = service

    def withdraw(self, kind: type) -> None:
        """Unregister a service (at shut-down); requests needing it then answer 503."""
        self._services.pop(kind, None)

    def find(self, kind: type[T]) -> T | None:
        """The running service of class `kind`, or None."""
        service = self._services.get(kind)
        return service if isinstance(service, kind) else None

    def service(self, kind: type[T]) -> T:
        """The running service of class `kind`; a ServiceUnavailable (503) when there is none."""
        service = self.find(kind)
        if service is None:
            raise ServiceUnavailable(f"this tsr server is running without its {_label(kind)}")
        return service

    def shared_http(self) -> httpx.AsyncClient:
        """The shared outgoing HTTP client (only while the app runs)."""
        if self.http is None:
            raise ServiceUnavailable("this tsr server is not running (no HTTP client yet)")
        return self.http


def _label(kind: type) -> str:
    # GalleryStore -> "gallery store"
    name = kind.__name__
    words = "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()
    return words or name
