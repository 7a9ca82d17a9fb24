"""Annotated dependency aliases for endpoints: state, config, event bus, shared client, services.

A domain service gets its alias from `service()`, e.g. in this file:

    GalleryDep = Annotated[GalleryStore, Depends(service(GalleryStore))]

and an endpoint then takes `gallery: GalleryDep`. A request for a service the server did not
start answers 503 naming it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import httpx
from fastapi import Depends, Request

from tsr.config import Config
from tsr.server.events import EventBus
from tsr.server.state import AppState

T = TypeVar("T")


# the dependencies are `async def` so that FastAPI calls them on the loop, not in a thread
async def get_state(request: Request) -> AppState:
    """The app's state (`app.state.tsr`)."""
    state = request.app.state.tsr
    assert isinstance(state, AppState)
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_config(state: StateDep) -> Config:
    """The config the server runs with."""
    return state.config


async def get_events(state: StateDep) -> EventBus:
    """The event bus (publish from anywhere; SSE subscribes)."""
    return state.events


async def get_http(state: StateDep) -> httpx.AsyncClient:
    """The shared outgoing httpx client."""
    return state.shared_http()


ConfigDep = Annotated[Config, Depends(get_config)]
EventsDep = Annotated[EventBus, Depends(get_events)]
HttpDep = Annotated[httpx.AsyncClient, Depends(get_http)]


def service(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency returning the running service of class `kind` (503 when not started)."""

    async def dependency(request: Request) -> T:
        return (await get_state(request)).service(kind)

    dependency.__name__ = f"service_{kind.__name__}"
    return dependency
