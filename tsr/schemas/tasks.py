"""Wire models of the server's background tasks over the models database: scan, link, cache."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tsr.schemas.models import CacheResult, LinkResult, ScanResult

#: what a task does; scan tasks report on the `scan` event topic, the others on `link`
TaskKind = Literal["scan", "link", "cache", "refresh"]
TaskState = Literal["queued", "running", "done", "failed", "cancelled"]
#: states a task never leaves
FINISHED_TASK_STATES: frozenset[str] = frozenset({"done", "failed", "cancelled"})
#: the event topic of each kind of task
TASK_TOPICS: dict[str, Literal["scan", "link"]] = {
    "scan": "scan",
    "link": "link",
    "cache": "link",
    "refresh": "link",
}


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScanRequest(_Request):
    """`POST /api/db/scan`: folders (or files) to scan, each inside a configured model root."""

    #: absolute paths on the server; none: every configured model root
    roots: list[str] | None = None
    #: files hashed at once (default: one per core, at most four)
    workers: int | None = Field(None, ge=1, le=32)


class LinkRequest(_Request):
    """`POST /api/db/link`: link unlinked files to CivitAI by SHA256."""

    #: ask again about hashes CivitAI did not know last time
    retry_misses: bool = False
    #: also cache each newly linked model in full (tags, other versions): one call per model
    models: bool = False


class CacheRequest(_Request):
    """`POST /api/db/cache`: fetch one CivitAI model with all its versions into the cache."""

    model_id: int = Field(gt=0)


class TaskProgress(BaseModel):
    """How far a task got: items (files or models), bytes for scans, rate and time left."""

    #: scan: `walk` (listing files), `hash`, `done`; link: `lookup`; cache/refresh: `fetch`
    phase: str | None = None
    #: what `done` and `total` count
    unit: Literal["files", "models"] = "files"
    done: int = 0
    #: None while unknown (a scan still listing files)
    total: int | None = None
    #: bytes hashed so far and in all (scans)
    bytes_done: int = 0
    bytes_total: int | None = None
    #: bytes per second for scans, items per second for the others, over the last seconds
    rate: float | None = None
    #: seconds left at that rate, when the total is known
    eta: float | None = None
    #: the file being hashed, or the model being fetched
    current: str | None = None
    #: files linked so far (link tasks)
    linked: int | None = None
    #: CivitAI requests sent so far (link tasks)
    requests: int | None = None


class TaskOut(BaseModel):
    """One background task as clients see it: what it does, how far it got, how it ended."""

    id: int
    kind: TaskKind
    state: TaskState
    #: the request it was started with
    params: dict[str, Any] = Field(default_factory=dict)
    progress: TaskProgress = Field(default_factory=TaskProgress)
    #: a cancel was asked for; a running scan stops after the files it is hashing
    cancel_requested: bool = False
    #: the result, by kind (a cancelled scan keeps what it did before it stopped)
    scan: ScanResult | None = None
    link: LinkResult | None = None
    cache: CacheResult | None = None
    refresh: list[CacheResult] | None = None
    #: the one sentence saying why it failed
    error: str | None = None
    #: the kind of tsr error it failed with (e.g. `AuthRejected`), so clients re-raise it
    error_kind: str | None = None
    created: datetime
    started: datetime | None = None
    finished: datetime | None = None

    @property
    def finished_state(self) -> bool:
        """True once it is done, failed or cancelled."""
        return self.state in FINISHED_TASK_STATES
