"""The generation endpoints (`/api/generate`, `/api/jobs`) for the sync and async clients:
`client.generation`, with helpers that submit jobs and follow them to the end.

Following never holds one long request open for the job: it reads the event stream (topic
`job`), subscribed before the jobs are submitted so no change is missed, and polls
`GET /api/jobs/{id}` instead when the stream drops.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from tsr.errors import NotFound, RemoteUnreachable, ServerError
from tsr.schemas.generation_api import JobImage
from tsr.schemas.jobs import FINISHED_STATES, GenerateRequest, JobOut, JobState
from tsr.schemas.server import Event

if TYPE_CHECKING:
    from tsr.client.aio import AsyncClient
    from tsr.client.sync import Client

#: called with a job each time what is known of it changes (and once when following starts)
JobUpdate = Callable[[JobOut], object]
#: seconds between polls once the event stream has dropped
POLL_INTERVAL = 0.5
#: the stream failures after which polling takes over (others, e.g. a rejected token, raise)
STREAM_FAILURES = (RemoteUnreachable, ServerError)
_JOB_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
Request = GenerateRequest | Mapping[str, Any]


def job_path(job_id: str) -> str:
    """The route of a job; only a plain id ever goes into the URL path."""
    if not _JOB_ID.match(str(job_id)):
        raise NotFound(f"there is no job {job_id!r}; job ids are letters and digits")
    return f"/api/jobs/{job_id}"


def request_body(request: Request) -> Any:
    """A request as the body of `POST /api/generate` (a model sends only the fields set)."""
    return request if isinstance(request, GenerateRequest) else dict(request)


def list_params(state: JobState | None, backend: str | None, limit: int) -> dict[str, Any]:
    """Query parameters of `GET /api/jobs`."""
    params: dict[str, Any] = {"limit": limit}
    if state:
        params["state"] = state
    if backend:
        params["backend"] = backend
    return params


class JobFollower:
    """What is known of the jobs being followed, from events and polls arriving in any order."""

    def __init__(self, jobs: Sequence[JobOut], on_update: JobUpdate | None = None) -> None:
        self._jobs = {job.id: job for job in jobs}
        self._on_update = on_update
        for job in jobs:
            self._announce(job)

    @property
    def finished(self) -> bool:
        """True once every job has finished (done, failed or cancelled)."""
        return all(job.state in FINISHED_STATES for job in self._jobs.values())

    def pending(self) -> list[str]:
        """The ids of the jobs not finished yet."""
        return [job.id for job in self._jobs.values() if job.state not in FINISHED_STATES]

    def results(self) -> list[JobOut]:
        """The jobs as last known, in the order they were given."""
        return list(self._jobs.values())

    def update(self, job: JobOut) -> None:
        """Take a newer view of a job (a finished job never changes again)."""
        current = self._jobs.get(job.id)
        if current is None or current.state in FINISHED_STATES or current == job:
            return
        self._jobs[job.id] = job
        self._announce(job)

    def take(self, event: Event) -> bool:
        """Take one event; True when events were dropped and the jobs must be asked for."""
        if event.topic == "bus":
            return event.kind == "dropped"
        if event.topic == "job" and event.data.get("id") in self._jobs:
            self.update(JobOut.model_validate(event.data))
        return False

    def _announce(self, job: JobOut) -> None:
        if self._on_update is not None:
            self._on_update(job)


class GenerateApi:
    """Generations and jobs on a tsr server, through a sync `Client` (`client.generation`)."""

    def __init__(self, client: Client, *, poll_interval: float = POLL_INTERVAL) -> None:
        self._client = client
        self.poll_interval = poll_interval

    def submit(self, request: Request) -> JobOut:
        """`POST /api/generate`: queue a generation; a bad field raises BadRequest naming it."""
        return self._client.post("/api/generate", JobOut, json=request_body(request))

    def jobs(
        self, *, state: JobState | None = None, backend: str | None = None, limit: int = 100
    ) -> list[JobOut]:
        """`GET /api/jobs`: the most recent jobs, oldest first."""
        params = list_params(state, backend, limit)
        return self._client.get("/api/jobs", list[JobOut], params=params)

    def job(self, job_id: str) -> JobOut:
        """`GET /api/jobs/{id}`: one job."""
        return self._client.get(job_path(job_id), JobOut)

    def images(self, job_id: str) -> list[JobImage]:
        """`GET /api/jobs/{id}/images`: the images a job saved (server paths, real seeds)."""
        return self._client.get(f"{job_path(job_id)}/images", list[JobImage])

    def cancel(self, job_id: str) -> JobOut:
        """`POST /api/jobs/{id}/cancel`: cancel a queued job (Conflict once it generates)."""
        return self._client.post(f"{job_path(job_id)}/cancel", JobOut)

    def generate_and_wait(self, request: Request, on_update: JobUpdate | None = None) -> JobOut:
        """Queue a generation and follow it until it has finished; the finished job."""
        return self.submit_and_follow(lambda: [self.submit(request)], on_update)[0]

    def generate_all_and_wait(
        self, requests: Sequence[Request], on_update: JobUpdate | None = None
    ) -> list[JobOut]:
        """Queue several generations and follow them all until each has finished."""
        return self.submit_and_follow(lambda: [self.submit(r) for r in requests], on_update)

    def follow(
        self, jobs: Sequence[JobOut | str], on_update: JobUpdate | None = None
    ) -> list[JobOut]:
        """Follow jobs already queued until each has finished."""
        ids = [job if isinstance(job, str) else job.id for job in jobs]
        return self.submit_and_follow(lambda: [self.job(job_id) for job_id in ids], on_update)

    def submit_and_follow(
        self, submit: Callable[[], list[JobOut]], on_update: JobUpdate | None = None
    ) -> list[JobOut]:
        """Subscribe to job events, call `submit` (which queues or fetches jobs), and follow
        those jobs until each has finished: through the stream, polling if it drops."""
        stream = self._open_stream()
        try:
            follower = JobFollower(submit(), on_update)
            if stream is not None and not follower.finished:
                self._read(stream, follower)
        finally:
            if stream is not None:
                stream.close()
        while not follower.finished:
            time.sleep(self.poll_interval)
            self._refresh(follower)
        return follower.results()

    def _open_stream(self) -> Generator[Event, None, None] | None:
        stream = self._client.events(["job"])
        try:
            next(stream)  # `subscribed`: from here on nothing published is missed
        except (*STREAM_FAILURES, StopIteration):
            stream.close()
            return None
        return stream

    def _read(self, stream: Generator[Event, None, None], follower: JobFollower) -> None:
        try:
            for event in stream:
                if follower.take(event):
                    self._refresh(follower)
                if follower.finished:
                    return
        except STREAM_FAILURES:
            return  # the stream dropped: polling takes over

    def _refresh(self, follower: JobFollower) -> None:
        for job_id in follower.pending():
            follower.update(self.job(job_id))


class AsyncGenerateApi:
    """Generations and jobs on a tsr server, through an `AsyncClient` (`client.generation`)."""

    def __init__(self, client: AsyncClient, *, poll_interval: float = POLL_INTERVAL) -> None:
        self._client = client
        self.poll_interval = poll_interval

    async def submit(self, request: Request) -> JobOut:
        """`POST /api/generate`: queue a generation; a bad field raises BadRequest naming it."""
        return await self._client.post("/api/generate", JobOut, json=request_body(request))

    async def jobs(
        self, *, state: JobState | None = None, backend: str | None = None, limit: int = 100
    ) -> list[JobOut]:
        """`GET /api/jobs`: the most recent jobs, oldest first."""
        params = list_params(state, backend, limit)
        return await self._client.get("/api/jobs", list[JobOut], params=params)

    async def job(self, job_id: str) -> JobOut:
        """`GET /api/jobs/{id}`: one job."""
        return await self._client.get(job_path(job_id), JobOut)

    async def images(self, job_id: str) -> list[JobImage]:
        """`GET /api/jobs/{id}/images`: the images a job saved (server paths, real seeds)."""
        return await self._client.get(f"{job_path(job_id)}/images", list[JobImage])

    async def cancel(self, job_id: str) -> JobOut:
        """`POST /api/jobs/{id}/cancel`: cancel a queued job (Conflict once it generates)."""
        return await self._client.post(f"{job_path(job_id)}/cancel", JobOut)

    async def generate_and_wait(
        self, request: Request, on_update: JobUpdate | None = None
    ) -> JobOut:
        """Queue a generation and follow it until it has finished; the finished job."""

        async def submit() -> list[JobOut]:
            return [await self.submit(request)]

        return (await self.submit_and_follow(submit, on_update))[0]

    async def generate_all_and_wait(
        self, requests: Sequence[Request], on_update: JobUpdate | None = None
    ) -> list[JobOut]:
        """Queue several generations and follow them all until each has finished."""

        async def submit() -> list[JobOut]:
            return [await self.submit(request) for request in requests]

        return await self.submit_and_follow(submit, on_update)

    async def follow(
        self, jobs: Sequence[JobOut | str], on_update: JobUpdate | None = None
    ) -> list[JobOut]:
        """Follow jobs already queued until each has finished."""
        ids = [job if isinstance(job, str) else job.id for job in jobs]

        async def fetch() -> list[JobOut]:
            return [await self.job(job_id) for job_id in ids]

        return await self.submit_and_follow(fetch, on_update)

    async def submit_and_follow(
        self, submit: Callable[[], Awaitable[list[JobOut]]], on_update: JobUpdate | None = None
    ) -> list[JobOut]:
        """Subscribe to job events, await `submit` (which queues or fetches jobs), and follow
        those jobs until each has finished: through the stream, polling if it drops."""
        stream = await self._open_stream()
        try:
            follower = JobFollower(await submit(), on_update)
            if stream is not None and not follower.finished:
                await self._read(stream, follower)
        finally:
            if stream is not None:
                await stream.aclose()
        while not follower.finished:
            await asyncio.sleep(self.poll_interval)
            await self._refresh(follower)
        return follower.results()

    async def _open_stream(self) -> AsyncGenerator[Event, None] | None:
        stream = cast(AsyncGenerator[Event, None], self._client.events(["job"]))
        try:
            await anext(stream)  # `subscribed`: from here on nothing published is missed
        except (*STREAM_FAILURES, StopAsyncIteration):
            await stream.aclose()
            return None
        return stream

    async def _read(self, stream: AsyncGenerator[Event, None], follower: JobFollower) -> None:
        try:
            async for event in stream:
                if follower.take(event):
                    await self._refresh(follower)
                if follower.finished:
                    return
        except STREAM_FAILURES:
            return  # the stream dropped: polling takes over

    async def _refresh(self, follower: JobFollower) -> None:
        for job_id in follower.pending():
            follower.update(await self.job(job_id))
