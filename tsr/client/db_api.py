"""The models-database part of the tsr API, as `Client.db` (sync) and `AsyncClient.db`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from tsr.client.base import SERVER_ERRORS
from tsr.errors import JobFailed, TsrError
from tsr.schemas.db_api import CachedModelDetail, CachedModelPage, FileChange, TriggerChange
from tsr.schemas.models import (
    DbStats,
    DuplicateGroup,
    FileDetail,
    FilePage,
    FileTriggers,
    ModelFile,
    SearchHit,
)
from tsr.schemas.tasks import CacheRequest, LinkRequest, ScanRequest, TaskOut

if TYPE_CHECKING:
    from tsr.client.aio import AsyncClient
    from tsr.client.sync import Client

#: calls that start a task answer at once; a scan's start checks its roots first
START_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
#: the longest wait between two looks at a running task
POLL_SECONDS = 0.25
#: the biggest page `GET /api/db/files` hands out
FILES_PAGE_LIMIT = 1000

ProgressCallback = Callable[[TaskOut], None]


def files_params(
    kind: str | None,
    family: str | None,
    linked: bool | None,
    missing: bool | None,
    hidden: bool,
    sort: str,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Query parameters of `GET /api/db/files` (unset filters left out)."""
    params: dict[str, Any] = {
        "kind": kind,
        "family": family,
        "linked": None if linked is None else str(linked).lower(),
        "missing": None if missing is None else str(missing).lower(),
        "hidden": "true" if hidden else None,
        "sort": sort,
        "limit": limit,
        "offset": offset,
    }
    return {key: value for key, value in params.items() if value is not None}


def file_change(
    family: str | None = None,
    *,
    clear_family: bool = False,
    hidden: bool | None = None,
    notes: str | None = None,
) -> dict[str, Any]:
    """The body of `PATCH /api/db/files/{id}`: only what changes (`notes=""` clears them)."""
    body: dict[str, Any] = {}
    if clear_family:
        body["family"] = None
    elif family is not None:
        body["family"] = family
    if hidden is not None:
        body["hidden"] = hidden
    if notes is not None:
        body["notes"] = notes
    return FileChange.model_validate(body).model_dump(mode="json", exclude_unset=True)


def task_error(task: TaskOut) -> TsrError:
    """The error a failed (or cancelled) task ended with, as the same kind of tsr error."""
    if task.state == "cancelled":
        return JobFailed(f"{task.kind} task #{task.id} was cancelled")
    kind = SERVER_ERRORS.get(task.error_kind or "", JobFailed)
    return kind(task.error or f"{task.kind} task #{task.id} failed")


def _next_wait(waited: float) -> float:
    # quick tasks end within a few looks; long ones are looked at four times a second
    return min(POLL_SECONDS, 0.02 + waited / 4)


class DbApi:
    """`/api/db`: model files, triggers, search, stats, and scan/link/cache tasks."""

    def __init__(self, client: Client) -> None:
        self._client = client

    # ---- files ------------------------------------------------------------------------------

    def files(
        self,
        *,
        kind: str | None = None,
        family: str | None = None,
        linked: bool | None = None,
        missing: bool | None = None,
        hidden: bool = False,
        sort: str = "name",
        limit: int = 200,
        offset: int = 0,
    ) -> FilePage:
        """`GET /api/db/files`: one page of files (at most 1000)."""
        params = files_params(kind, family, linked, missing, hidden, sort, limit, offset)
        return self._client.get("/api/db/files", FilePage, params=params)

    def all_files(self, *, limit: int | None = None, **filters: Any) -> FilePage:
        """Every file matching `filters` (or the first `limit`), fetched page by page."""
        start = offset = int(filters.pop("offset", 0))
        items: list[ModelFile] = []
        while True:
            want = FILES_PAGE_LIMIT if limit is None else min(FILES_PAGE_LIMIT, limit - len(items))
            page = self.files(limit=want, offset=offset, **filters)
            items += page.items
            if page.next_offset is None or (limit is not None and len(items) >= limit):
                break
            offset = page.next_offset
        return FilePage(
            items=items, total=page.total, offset=start, limit=limit, next_offset=page.next_offset
        )

    def file(self, file_id: int) -> FileDetail:
        """`GET /api/db/files/{id}`: one file with metadata, triggers and override."""
        return self._client.get(f"/api/db/files/{file_id}", FileDetail)

    def resolve(self, ref: str | int) -> ModelFile:
        """`GET /api/db/files/resolve`: the file an id, path, name or hash names."""
        return self._client.get("/api/db/files/resolve", ModelFile, params={"ref": str(ref)})

    def update_file(self, file_id: int, change: dict[str, Any] | FileChange) -> ModelFile:
        """`PATCH /api/db/files/{id}`: family override, hidden, notes (see `file_change`)."""
        return self._client.patch(f"/api/db/files/{file_id}", ModelFile, json=change)

    # ---- triggers, search, stats ------------------------------------------------------------

    def triggers(self, file_id: int, *, hidden: bool = False) -> FileTriggers:
        """`GET /api/db/triggers`: a file's merged trigger words with their sources."""
        params: dict[str, Any] = {"file": file_id, "hidden": str(hidden).lower()}
        return self._client.get("/api/db/triggers", FileTriggers, params=params)

    def add_triggers(self, file_id: int, words: Sequence[str]) -> FileTriggers:
        """`POST /api/db/triggers`: add the user's words to a file."""
        body = TriggerChange(file=file_id, words=list(words))
        return self._client.post("/api/db/triggers", FileTriggers, json=body)

    def remove_triggers(self, file_id: int, words: Sequence[str]) -> FileTriggers:
        """`POST /api/db/triggers/remove`: drop words from a file."""
        body = TriggerChange(file=file_id, words=list(words))
        return self._client.post("/api/db/triggers/remove", FileTriggers, json=body)

    def search(self, query: str, *, limit: int = 50, hidden: bool = False) -> list[SearchHit]:
        """`GET /api/db/search`: files matching every word, best first."""
        params: dict[str, Any] = {"q": query, "limit": limit, "hidden": str(hidden).lower()}
        return self._client.get("/api/db/search", list[SearchHit], params=params)

    def stats(self) -> DbStats:
        """`GET /api/db/stats`: counts over the database."""
        return self._client.get("/api/db/stats", DbStats)

    def duplicates(self) -> list[DuplicateGroup]:
        """`GET /api/db/duplicates`: contents present at several paths."""
        return self._client.get("/api/db/duplicates", list[DuplicateGroup])

    # ---- cached CivitAI models --------------------------------------------------------------

    def models(self, **params: Any) -> CachedModelPage:
        """`GET /api/db/models`: a page of cached models (q, type, linked, sort, limit, offset)."""
        query = {k: v for k, v in params.items() if v is not None}
        return self._client.get("/api/db/models", CachedModelPage, params=query)

    def model(self, model_id: int) -> CachedModelDetail:
        """`GET /api/db/models/{id}`: a cached model with its versions."""
        return self._client.get(f"/api/db/models/{model_id}", CachedModelDetail)

    # ---- tasks ------------------------------------------------------------------------------

    def scan(self, roots: Sequence[str] | None = None, *, workers: int | None = None) -> TaskOut:
        """`POST /api/db/scan`: start a scan (roots: absolute paths on the server)."""
        body = ScanRequest(roots=list(roots) if roots else None, workers=workers)
        return self._client.post("/api/db/scan", TaskOut, json=body, timeouts=START_TIMEOUT)

    def link(self, *, retry_misses: bool = False, models: bool = False) -> TaskOut:
        """`POST /api/db/link`: start linking unlinked files to CivitAI."""
        body = LinkRequest(retry_misses=retry_misses, models=models)
        return self._client.post("/api/db/link", TaskOut, json=body)

    def cache(self, model_id: int) -> TaskOut:
        """`POST /api/db/cache`: start fetching a CivitAI model into the cache."""
        return self._client.post("/api/db/cache", TaskOut, json=CacheRequest(model_id=model_id))

    def refresh(self) -> TaskOut:
        """`POST /api/db/refresh`: start re-fetching every linked model."""
        return self._client.post("/api/db/refresh", TaskOut)

    def tasks(
        self, *, kinds: Sequence[str] = (), states: Sequence[str] = (), limit: int = 50
    ) -> list[TaskOut]:
        """`GET /api/db/tasks`: recent tasks, newest first."""
        params: dict[str, Any] = {"kind": list(kinds), "state": list(states), "limit": limit}
        return self._client.get("/api/db/tasks", list[TaskOut], params=params)

    def task(self, task_id: int) -> TaskOut:
        """`GET /api/db/tasks/{id}`: one task's state, progress and result."""
        return self._client.get(f"/api/db/tasks/{task_id}", TaskOut)

    def cancel(self, task_id: int) -> TaskOut:
        """`POST /api/db/tasks/{id}/cancel`: stop a task."""
        return self._client.post(f"/api/db/tasks/{task_id}/cancel", TaskOut)

    def wait(
        self,
        task: TaskOut,
        *,
        progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> TaskOut:
        """Look at `task` until it finishes (each look is a short request); its last state.

        Raises:
            TimeoutError: `timeout` seconds passed first (the task goes on).
        """
        started = time.monotonic()
        while not task.finished_state:
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise TimeoutError(f"{task.kind} task #{task.id} is still {task.state}")
            time.sleep(_next_wait(waited))
            task = self.task(task.id)
            if progress is not None:
                progress(task)
        return task


class AsyncDbApi:
    """`/api/db` for asyncio code: the same methods as `DbApi`, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def files(
        self,
        *,
        kind: str | None = None,
        family: str | None = None,
        linked: bool | None = None,
        missing: bool | None = None,
        hidden: bool = False,
        sort: str = "name",
        limit: int = 200,
        offset: int = 0,
    ) -> FilePage:
        """`GET /api/db/files`: one page of files (at most 1000)."""
        params = files_params(kind, family, linked, missing, hidden, sort, limit, offset)
        return await self._client.get("/api/db/files", FilePage, params=params)

    async def file(self, file_id: int) -> FileDetail:
        """`GET /api/db/files/{id}`: one file with metadata, triggers and override."""
        return await self._client.get(f"/api/db/files/{file_id}", FileDetail)

    async def resolve(self, ref: str | int) -> ModelFile:
        """`GET /api/db/files/resolve`: the file an id, path, name or hash names."""
        params = {"ref": str(ref)}
        return await self._client.get("/api/db/files/resolve", ModelFile, params=params)

    async def update_file(self, file_id: int, change: dict[str, Any] | FileChange) -> ModelFile:
        """`PATCH /api/db/files/{id}`: family override, hidden, notes (see `file_change`)."""
        return await self._client.patch(f"/api/db/files/{file_id}", ModelFile, json=change)

    async def triggers(self, file_id: int, *, hidden: bool = False) -> FileTriggers:
        """`GET /api/db/triggers`: a file's merged trigger words with their sources."""
        params: dict[str, Any] = {"file": file_id, "hidden": str(hidden).lower()}
        return await self._client.get("/api/db/triggers", FileTriggers, params=params)

    async def add_triggers(self, file_id: int, words: Sequence[str]) -> FileTriggers:
        """`POST /api/db/triggers`: add the user's words to a file."""
        body = TriggerChange(file=file_id, words=list(words))
        return await self._client.post("/api/db/triggers", FileTriggers, json=body)

    async def remove_triggers(self, file_id: int, words: Sequence[str]) -> FileTriggers:
        """`POST /api/db/triggers/remove`: drop words from a file."""
        body = TriggerChange(file=file_id, words=list(words))
        return await self._client.post("/api/db/triggers/remove", FileTriggers, json=body)

    async def search(self, query: str, *, limit: int = 50, hidden: bool = False) -> list[SearchHit]:
        """`GET /api/db/search`: files matching every word, best first."""
        params: dict[str, Any] = {"q": query, "limit": limit, "hidden": str(hidden).lower()}
        return await self._client.get("/api/db/search", list[SearchHit], params=params)

    async def stats(self) -> DbStats:
        """`GET /api/db/stats`: counts over the database."""
        return await self._client.get("/api/db/stats", DbStats)

    async def duplicates(self) -> list[DuplicateGroup]:
        """`GET /api/db/duplicates`: contents present at several paths."""
        return await self._client.get("/api/db/duplicates", list[DuplicateGroup])

    async def models(self, **params: Any) -> CachedModelPage:
        """`GET /api/db/models`: a page of cached models (q, type, linked, sort, limit, offset)."""
        query = {k: v for k, v in params.items() if v is not None}
        return await self._client.get("/api/db/models", CachedModelPage, params=query)

    async def model(self, model_id: int) -> CachedModelDetail:
        """`GET /api/db/models/{id}`: a cached model with its versions."""
        return await self._client.get(f"/api/db/models/{model_id}", CachedModelDetail)

    async def scan(
        self, roots: Sequence[str] | None = None, *, workers: int | None = None
    ) -> TaskOut:
        """`POST /api/db/scan`: start a scan (roots: absolute paths on the server)."""
        body = ScanRequest(roots=list(roots) if roots else None, workers=workers)
        return await self._client.post("/api/db/scan", TaskOut, json=body, timeouts=START_TIMEOUT)

    async def link(self, *, retry_misses: bool = False, models: bool = False) -> TaskOut:
        """`POST /api/db/link`: start linking unlinked files to CivitAI."""
        body = LinkRequest(retry_misses=retry_misses, models=models)
        return await self._client.post("/api/db/link", TaskOut, json=body)

    async def cache(self, model_id: int) -> TaskOut:
        """`POST /api/db/cache`: start fetching a CivitAI model into the cache."""
        body = CacheRequest(model_id=model_id)
        return await self._client.post("/api/db/cache", TaskOut, json=body)

    async def refresh(self) -> TaskOut:
        """`POST /api/db/refresh`: start re-fetching every linked model."""
        return await self._client.post("/api/db/refresh", TaskOut)

    async def tasks(
        self, *, kinds: Sequence[str] = (), states: Sequence[str] = (), limit: int = 50
    ) -> list[TaskOut]:
        """`GET /api/db/tasks`: recent tasks, newest first."""
        params: dict[str, Any] = {"kind": list(kinds), "state": list(states), "limit": limit}
        return await self._client.get("/api/db/tasks", list[TaskOut], params=params)

    async def task(self, task_id: int) -> TaskOut:
        """`GET /api/db/tasks/{id}`: one task's state, progress and result."""
        return await self._client.get(f"/api/db/tasks/{task_id}", TaskOut)

    async def cancel(self, task_id: int) -> TaskOut:
        """`POST /api/db/tasks/{id}/cancel`: stop a task."""
        return await self._client.post(f"/api/db/tasks/{task_id}/cancel", TaskOut)

    async def wait(self, task: TaskOut, *, progress: ProgressCallback | None = None) -> TaskOut:
        """Look at `task` until it finishes; its last state (bound it with `asyncio.timeout`)."""
        started = time.monotonic()
        while not task.finished_state:
            await asyncio.sleep(_next_wait(time.monotonic() - started))
            task = await self.task(task.id)
            if progress is not None:
                progress(task)
        return task
