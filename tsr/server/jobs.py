"""The job queue: one worker per backend runs generate and switch jobs in order.

Jobs live in memory only. A server restart forgets them: queued jobs are cancelled at shut-down
(their error says so) and nothing is resumed; images already saved stay in the gallery. The last
`history` finished jobs are kept for `get`/`list`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tsr.errors import Conflict, JobFailed, NotFound, TsrError
from tsr.gallery import GalleryStore
from tsr.schemas.jobs import (
    FINISHED_STATES,
    GenerateRequest,
    JobOut,
    JobState,
    ResolvedGeneration,
)
from tsr.sdapi import JobCancelled, NativeJob, SdServerClient
from tsr.server.backends import Backend, BackendManager, EventSink
from tsr.server.generation import (
    Checkpoint,
    ModelResolver,
    check_images,
    generation_params,
    parse_request,
    save_images,
)
from tsr.server.job import Job, new_job_id, utc_now
from tsr.server.placement import place_request
from tsr.server.state import AppState

log = logging.getLogger(__name__)

#: finished jobs kept in memory
DEFAULT_HISTORY = 500
#: seconds a generation may take before the job fails (sd-server has no interrupt)
DEFAULT_GENERATION_TIMEOUT = 1800.0
#: seconds between polls of sd-server's native job status
DEFAULT_POLL_INTERVAL = 0.05


class JobQueue:
    """Generation and switch jobs, queued per backend and run by one worker each.

    Call it from the app's event loop (endpoints are `async def`); jobs run in worker tasks,
    so they go on when the client that asked goes away.
    """

    def __init__(
        self,
        manager: BackendManager,
        gallery: GalleryStore,
        resolver: ModelResolver | None = None,
        events: EventSink | None = None,
        *,
        history: int = DEFAULT_HISTORY,
        generation_timeout: float = DEFAULT_GENERATION_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self.manager = manager
        self.gallery = gallery
        self.resolver = resolver or ModelResolver(manager.config)
        self.events = events
        self.history = history
        self.generation_timeout = generation_timeout
        self.poll_interval = poll_interval
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._pending: dict[str, deque[Job]] = {b.name: deque() for b in manager.backends}
        self._running: dict[str, Job | None] = {b.name: None for b in manager.backends}
        self._wake: dict[str, asyncio.Event] = {b.name: asyncio.Event() for b in manager.backends}
        self._workers: list[asyncio.Task[None]] = []

    # ---- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start one worker per backend."""
        if not self._workers:
            self._workers = [
                asyncio.create_task(self._work(name), name=f"jobs-{name}") for name in self._pending
            ]

    async def stop(self) -> None:
        """Stop the workers; queued jobs are cancelled, a running one fails as interrupted."""
        for name, pending in self._pending.items():
            while pending:
                self._finish(pending.popleft(), "cancelled", "the tsr server stopped")
            self._wake[name].set()
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []

    # ---- asking -------------------------------------------------------------------------------

    async def submit(self, request: GenerateRequest | dict[str, Any]) -> JobOut:
        """Queue a generation; bad requests raise at once (InvalidRequest names the field)."""
        parsed = parse_request(request)
        placement = await place_request(
            self.manager, self.resolver, parsed, self._planned_model, self._load
        )
        job = Job(
            id=new_job_id(),
            kind="generate",
            backend=placement.backend.name,
            model=placement.checkpoint.path,
            family=placement.checkpoint.family,
            request=parsed,
            resolved=placement.resolved,
            warnings=placement.warnings,
        )
        self._enqueue(job)
        return job.out()

    async def submit_switch(self, model: Path | str, backend: str | None = None) -> JobOut:
        """Queue a switch of `backend` (default: the first) to the checkpoint at `model`."""
        target = self.manager.get(backend)
        path = self.manager.check_model(Path(model))
        self.manager.check_switchable(target, path)
        checkpoint: Checkpoint = await asyncio.to_thread(self.resolver.checkpoint_at, path)
        job = Job(
            id=new_job_id(),
            kind="switch",
            backend=target.name,
            model=path,
            family=checkpoint.family,
        )
        self._enqueue(job)
        return job.out()

    def get(self, job_id: str) -> JobOut:
        """One job; NotFound when it is unknown (or long forgotten)."""
        return self._job(job_id).out()

    def list(self, state: str | None = None, backend: str | None = None) -> list[JobOut]:
        """Jobs, oldest first, optionally only those in one state or on one backend."""
        return [
            job.out()
            for job in self._jobs.values()
            if (state is None or job.state == state) and (backend is None or job.backend == backend)
        ]

    async def wait(self, job_id: str) -> JobOut:
        """Wait until the job has finished (done, failed or cancelled); return it."""
        job = self._job(job_id)
        await job.done.wait()
        return job.out()

    async def cancel(self, job_id: str) -> JobOut:
        """Cancel a queued job; a job already on sd-server is cancelled there if it allows."""
        job = self._job(job_id)
        if job.state in FINISHED_STATES:
            raise Conflict(f"job {job.id} has already finished ({job.state})")
        if job.state == "queued":
            pending = self._pending[job.backend]
            if job in pending:
                pending.remove(job)
                self._finish(job, "cancelled", None)
                self._renumber(job.backend)
                return job.out()
        if job.kind == "generate" and job.remote_id is None and job.state != "saving":
            # taken by the worker but not sent to sd-server yet: it will not be sent
            job.cancel_requested = True
            return job.out()
        if job.state == "running" and job.remote_id is not None:
            try:
                await self.manager.get(job.backend).client.cancel(job.remote_id)
            except Conflict:
                raise Conflict(
                    f"job {job.id} is generating on sd-server, which cannot interrupt a "
                    "generation; it will finish and its images will be saved"
                ) from None
            return job.out()
        raise Conflict(f"job {job.id} is {job.state} and can no longer be cancelled")

    # ---- running ------------------------------------------------------------------------------

    def _planned_model(self, backend: Backend) -> Path | None:
        # the model the backend will hold once the jobs queued on it have run
        for job in reversed([self._running[backend.name], *self._pending[backend.name]]):
            if job is not None and job.model is not None:
                return job.model
        return backend.model

    def _load(self, backend: Backend) -> int:
        busy = 1 if self._running[backend.name] is not None else 0
        return busy + len(self._pending[backend.name])

    def _enqueue(self, job: Job) -> None:
        self._jobs[job.id] = job
        self._pending[job.backend].append(job)
        self._forget_old()
        self._renumber(job.backend, announce=False)
        self._publish(job, "created")
        self._wake[job.backend].set()

    async def _work(self, name: str) -> None:
        pending, wake = self._pending[name], self._wake[name]
        while True:
            while not pending:
                wake.clear()
                await wake.wait()
            job = pending.popleft()
            self._running[name] = job
            self._renumber(name)
            try:
                await self._run(job)
            finally:
                self._running[name] = None

    async def _run(self, job: Job) -> None:
        job.started = utc_now()
        job.queue_position = 0  # next; sd-server may report its own queue once it has the job
        try:
            if job.kind == "switch":
                self._set_state(job, "switching")
                assert job.model is not None
                await self.manager.switch(job.backend, job.model, job.family)
            else:
                await self._generate(job)
        except asyncio.CancelledError:
            self._finish(job, "failed", "the tsr server stopped while the job ran")
            raise
        except JobCancelled:
            self._finish(job, "cancelled", None)
            return
        except TsrError as exc:
            self._finish(job, "failed", str(exc))
            return
        except Exception as exc:  # a bug must fail one job, not stop the backend's worker
            log.exception("job %s failed unexpectedly", job.id)
            self._finish(job, "failed", f"unexpected error: {exc}")
            return
        self._finish(job, "done", None)

    async def _generate(self, job: Job) -> None:
        assert job.resolved is not None
        backend = self.manager.get(job.backend)
        if job.model is not None and backend.model != job.model:
            self._set_state(job, "switching")
            await self.manager.switch(backend.name, job.model, job.family)
        else:
            await self.manager.ensure_ready(backend.name)
        if job.resolved.loras:
            await _check_loras(backend.client, backend.name, job.resolved)
        params = generation_params(job.resolved)
        if job.cancel_requested:
            raise JobCancelled(f"job {job.id} was cancelled before it reached sd-server")

        async def on_update(remote: NativeJob) -> None:
            if job.remote_id is None:
                # sd-server has accepted the job: from now on it runs there
                job.remote_id = remote.id
                self._set_state(job, "running")
                if job.cancel_requested:
                    with contextlib.suppress(Conflict):
                        await backend.client.cancel(remote.id)
            position = remote.queue_position if remote.status == "queued" else None
            if position != job.queue_position:
                job.queue_position = position
                self._publish(job, "progress")

        try:
            result = await asyncio.wait_for(
                backend.client.generate(
                    params, on_update=on_update, poll_interval=self.poll_interval
                ),
                self.generation_timeout,
            )
        except TimeoutError:
            raise JobFailed(
                f"sd-server on backend {backend.name} did not finish within "
                f"{self.generation_timeout:g} s"
            ) from None
        except TsrError as exc:
            self.manager.observed(backend.name, exc)
            raise
        finally:
            job.queue_position = None
        self.manager.observed(backend.name, None)
        pngs = check_images(result, job.resolved)
        job.seeds = result.seeds
        job.progress = 1.0
        self._set_state(job, "saving")
        saved = await asyncio.to_thread(
            save_images, self.gallery, pngs, job.seeds, job.resolved, job.id, backend.name
        )
        for index, image in enumerate(saved):
            job.image_ids.append(image.id)
            if self.events is not None:
                data = {"job": job.id, "index": index, "image": image.model_dump(mode="json")}
                self.events.publish("image", "created", data)

    # ---- bookkeeping --------------------------------------------------------------------------

    def _job(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"there is no job {job_id!r} (finished jobs are kept for a while only)")
        return job

    def _set_state(self, job: Job, state: JobState) -> None:
        job.state = state
        self._publish(job, state)

    def _finish(self, job: Job, state: JobState, error: str | None) -> None:
        job.state, job.error, job.finished = state, error, utc_now()
        job.queue_position = None
        if state == "done":
            job.progress = 1.0
        self._publish(job, state)
        job.done.set()

    def _renumber(self, name: str, announce: bool = True) -> None:
        ahead = 1 if self._running[name] is not None else 0
        for index, job in enumerate(self._pending[name]):
            if job.queue_position != ahead + index:
                job.queue_position = ahead + index
                if announce:
                    self._publish(job, "position")
        self.manager.queued[name] = len(self._pending[name])

    def _forget_old(self) -> None:
        finished = [job_id for job_id, job in self._jobs.items() if job.state in FINISHED_STATES]
        for job_id in finished[: max(0, len(finished) - self.history)]:
            del self._jobs[job_id]

    def _publish(self, job: Job, kind: str) -> None:
        if self.events is not None:
            self.events.publish("job", kind, job.out().model_dump(mode="json"))


async def _check_loras(client: SdServerClient, backend: str, resolved: ResolvedGeneration) -> None:
    # listing also refreshes the list sd-server validates `lora` paths against (its quirk)
    listed = {entry.path for entry in await client.loras()}
    for lora in resolved.loras:
        if lora.server_path not in listed:
            raise JobFailed(
                f"backend {backend} does not have LoRA {lora.server_path} under its "
                "--lora-model-dir; put the file there (or point the backend at the LoRA root)"
            )


@asynccontextmanager
async def generation_service(state: AppState) -> AsyncIterator[None]:
    """Lifespan starter: the backend manager and job queue, provided to endpoints while the app
    runs (`state.service(BackendManager)`, `state.service(JobQueue)`); needs the database open."""
    gallery = state.find(GalleryStore) or GalleryStore(state.config.gallery_dir())
    manager = BackendManager(state.config, events=state.events)
    queue = JobQueue(manager, gallery, events=state.events)
    manager.lookup = queue.resolver
    await manager.start()
    await queue.start()
    state.provide(manager)
    state.provide(queue)
    state.backend_summaries = manager.summaries
    try:
        yield
    finally:
        state.backend_summaries = None
        state.withdraw(JobQueue)
        state.withdraw(BackendManager)
        await queue.stop()
        await manager.stop()
