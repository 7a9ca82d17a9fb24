"""Wire models of the tsr server itself: health, info, and the events it streams."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

#: what a server publishes events about; clients filter the stream by these
Topic = Literal["job", "image", "scan", "download", "backend", "link"]
TOPICS: tuple[str, ...] = get_args(Topic)
#: `bus` events describe the stream itself (subscribed, dropped) and reach every subscriber
EventTopic = Literal["job", "image", "scan", "download", "backend", "link", "bus"]
#: how the answering server runs: `tsr serve`, embedded in a process, or a bare app (tests)
ServerMode = Literal["serve", "embedded", "app"]


class Health(BaseModel):
    """`GET /api/health`: the server is up (no token needed)."""

    status: Literal["ok"] = "ok"
    version: str


class BackendSummary(BaseModel):
    """One sd-server backend as `GET /api/info` shows it."""

    name: str
    kind: str
    url: str
    #: `unknown` when the server has no backend manager to ask
    state: str = "unknown"
    #: the checkpoint it holds (a path or file name), when known
    model: str | None = None


class Info(BaseModel):
    """`GET /api/info`: what this server is and what it can do."""

    version: str
    #: changes every time a server starts; tells two servers apart
    server_id: str
    pid: int
    mode: ServerMode
    started: datetime
    data_dir: str
    #: true when requests need `Authorization: Bearer <token>`
    auth: bool
    backends: list[BackendSummary] = Field(default_factory=list)
    #: checkpoints loaded in a ready backend
    loaded_models: list[str] = Field(default_factory=list)
    #: API areas this server offers (e.g. `events`, `models`, `gallery`, `generate`)
    capabilities: list[str] = Field(default_factory=list)


class Event(BaseModel):
    """One event on `GET /api/events` (the SSE `data:` line, as JSON)."""

    #: increases by one per published event; a `bus` event carries the latest id at its time
    id: int
    topic: EventTopic
    #: what happened within the topic, e.g. `progress`, `created`, `finished`, `dropped`
    kind: str
    data: dict[str, Any] = Field(default_factory=dict)
    time: datetime
