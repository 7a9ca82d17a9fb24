"""One job while the server runs: what it asks for, where it runs, how far it got."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tsr.schemas.jobs import GenerateRequest, JobKind, JobOut, JobState, ResolvedGeneration


def new_job_id() -> str:
    """A short random job id."""
    return uuid.uuid4().hex[:12]


def utc_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


@dataclass(eq=False)
class Job:
    """One job while the server runs: what it asks for, where it runs, how far it got."""

    id: str
    kind: JobKind
    backend: str
    model: Path | None = None
    family: str | None = None
    request: GenerateRequest | None = None
    resolved: ResolvedGeneration | None = None
    state: JobState = "queued"
    queue_position: int | None = None
    progress: float | None = 0.0
    created: datetime = field(default_factory=utc_now)
    started: datetime | None = None
    finished: datetime | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    #: sd-server's native job id while it runs there (for cancel)
    remote_id: str | None = None
    #: cancelled while the worker held it, before sd-server had it
    cancel_requested: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def out(self) -> JobOut:
        """The job as clients see it."""
        return JobOut(
            id=self.id,
            kind=self.kind,
            state=self.state,
            backend=self.backend,
            queue_position=self.queue_position,
            progress=self.progress,
            created=self.created,
            started=self.started,
            finished=self.finished,
            error=self.error,
            warnings=list(self.warnings),
            model=str(self.model) if self.model else None,
            image_ids=list(self.image_ids),
            seeds=list(self.seeds),
            request=self.request,
            resolved=self.resolved,
        )
