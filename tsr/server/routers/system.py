"""System routes: health (no token), server info, and the server-sent event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from tsr import __version__
from tsr.schemas.server import TOPICS, BackendSummary, Health, Info, Topic
from tsr.server.deps import StateDep
from tsr.server.events import EventBusClosed
from tsr.server.state import AppState

router = APIRouter(prefix="/api", tags=["system"])
CAPABILITIES = ("events",)


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The server is up. Needs no token, so monitors and load balancers can call it."""
    return Health(version=__version__)


def backend_summaries(state: AppState) -> list[BackendSummary]:
    """The backends as the backend manager sees them, or as the config declares them."""
    if state.backend_summaries is not None:
        return state.backend_summaries()
    return [
        BackendSummary(
            name=backend.name,
            kind=backend.kind,
            url=backend.url,
            model=str(backend.model) if backend.model else None,
        )
        for backend in state.config.effective_backends()
    ]


@router.get("/info", response_model=Info)
async def info(state: StateDep) -> Info:
    """Version, data dir, backends, loaded models and capabilities of this server."""
    backends = backend_summaries(state)
    return Info(
        version=__version__,
        server_id=state.server_id,
        pid=state.pid,
        mode=state.mode,
        started=state.started,
        data_dir=str(state.config.home),
        auth=state.token is not None,
        backends=backends,
        loaded_models=[b.model for b in backends if b.state == "ready" and b.model],
        capabilities=sorted(state.capabilities),
    )


@router.get("/events", response_class=EventSourceResponse)
async def events(
    state: StateDep,
    topics: Annotated[
        list[Topic] | None,
        Query(description=f"Only these topics (repeat the parameter); any of {', '.join(TOPICS)}"),
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: job progress, new images, scans, downloads, backends, links.

    The stream opens with a `bus` event of kind `subscribed`; a `bus` event of kind `dropped`
    (`{"count": n}`) says this reader fell behind and lost the n oldest events. Idle streams
    get a keep-alive comment every few seconds.
    """
    subscription = state.events.subscribe(topics)
    try:
        hello = state.events.notice("subscribed", {"topics": sorted(subscription.topics or TOPICS)})
        yield ServerSentEvent(data=hello, event=hello.topic, id=str(hello.id))
        while True:
            try:
                event = await subscription.get(max_wait=state.sse_keepalive)
            except EventBusClosed:
                return  # the server is shutting down: end the stream cleanly
            if event is None:
                yield ServerSentEvent(comment="keep-alive")
                continue
            yield ServerSentEvent(data=event, event=event.topic, id=str(event.id))
    finally:
        subscription.close()
