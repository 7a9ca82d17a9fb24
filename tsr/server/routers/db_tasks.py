"""Long models-database work as background tasks: scan, link, cache, refresh; follow, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi import Path as PathParam

from tsr.civitai import CivitaiClient
from tsr.config import CivitaiConfig
from tsr.db.database import db
from tsr.db.link import cache_model, link_files, refresh_linked
from tsr.db.scan import scan_roots
from tsr.db.walk import plan_roots
from tsr.schemas.models import LinkProgress, ScanProgress
from tsr.schemas.tasks import (
    CacheRequest,
    LinkRequest,
    ScanRequest,
    TaskKind,
    TaskOut,
    TaskState,
)
from tsr.server.deps import StateDep, service
from tsr.server.routers.db_paths import checked_path
from tsr.server.state import AppState
from tsr.server.tasks import TaskCancelled, TaskControl, TaskOutcome, TaskRunner

router = APIRouter(tags=["db"])

TasksDep = Annotated[TaskRunner, Depends(service(TaskRunner))]
TaskId = Annotated[int, PathParam(ge=1, description="The task's id.")]


@asynccontextmanager
async def db_task_service(state: AppState) -> AsyncIterator[None]:
    """The runner of scan, link and cache tasks; at shut-down running ones are stopped."""
    runner = TaskRunner(state.events)
    state.provide(runner)
    try:
        yield
    finally:
        state.withdraw(TaskRunner)
        await asyncio.to_thread(runner.stop)


def _civitai_settings(state: AppState) -> CivitaiConfig:
    """The [civitai] settings in force: the download service re-reads an edited config file."""
    from tsr.downloads import CivitaiCatalog

    catalog = state.find(CivitaiCatalog)
    return catalog.settings() if catalog is not None else state.config.civitai


# ---- what each task does (in its worker thread) ---------------------------------------------


def _scan_work(
    roots: list[Path] | None, model_roots: dict[str, list[Path]], workers: int | None
) -> Callable[[TaskControl], TaskOutcome]:
    def work(control: TaskControl) -> TaskOutcome:
        def progress(step: ScanProgress) -> None:
            if step.phase == "done":
                # the last report says nothing of bytes: keep the hashing figures
                control.report(phase="done", done=step.files_done, total=step.files_total)
                return
            control.report(
                phase=step.phase,
                done=step.files_done,
                total=None if step.phase == "walk" else step.files_total,
                bytes_done=step.bytes_done,
                bytes_total=step.bytes_total or None,
                current=step.current,
            )

        with db.connection_context():
            result = scan_roots(
                roots,
                model_roots=model_roots,
                workers=workers,
                progress=progress,
                stop_event=control.stop,
            )
        if result.interrupted:
            raise TaskCancelled(result)
        return result

    return work


def _link_work(
    settings: CivitaiConfig, request: LinkRequest
) -> Callable[[TaskControl], TaskOutcome]:
    def work(control: TaskControl) -> TaskOutcome:
        def progress(step: LinkProgress) -> None:
            control.report(
                phase="lookup",
                done=step.files_done,
                total=step.files_total,
                linked=step.linked,
                requests=step.requests,
            )
            # between two lookups: what is linked so far is committed already
            control.check()

        with db.connection_context(), CivitaiClient.from_config(settings) as client:
            return link_files(
                client,
                retry_misses=request.retry_misses,
                progress=progress,
                fetch_models=request.models,
            )

    return work


def _cache_work(settings: CivitaiConfig, model_id: int) -> Callable[[TaskControl], TaskOutcome]:
    def work(control: TaskControl) -> TaskOutcome:
        control.report(phase="fetch", done=0, total=1, current=f"model {model_id}")
        with db.connection_context(), CivitaiClient.from_config(settings) as client:
            return cache_model(client, model_id)

    return work


def _refresh_work(settings: CivitaiConfig) -> Callable[[TaskControl], TaskOutcome]:
    def work(control: TaskControl) -> TaskOutcome:
        def progress(done: int, total: int) -> None:
            control.report(phase="fetch", done=done, total=total)
            control.check()

        with db.connection_context(), CivitaiClient.from_config(settings) as client:
            return refresh_linked(client, progress=progress)

    return work


# ---- endpoints ---------------------------------------------------------------------------------


@router.post("/scan", response_model=TaskOut, status_code=202)
def start_scan(
    state: StateDep,
    tasks: TasksDep,
    request: Annotated[ScanRequest | None, Body()] = None,
) -> TaskOut:
    """Scan model roots in the background: new and changed files are hashed, vanished ones
    flagged missing. `roots` must lie inside the configured model roots (else 403, and nothing
    is read). Follow the task on the `scan` event topic or `GET /api/db/tasks/{id}`; a second
    scan while one runs answers 409."""
    request = request or ScanRequest()
    config = state.config
    model_roots = config.model_roots()
    roots = None
    if request.roots:
        roots = [Path(checked_path(root, config)) for root in request.roots]
        # symlinks and nesting: the same check the scan itself makes, before the task starts
        plan_roots(roots, model_roots)
    params: dict[str, Any] = {"roots": [str(r) for r in roots] if roots else None}
    if request.workers:
        params["workers"] = request.workers
    return tasks.submit("scan", params, _scan_work(roots, model_roots, request.workers))


@router.post("/link", response_model=TaskOut, status_code=202)
def start_link(
    state: StateDep,
    tasks: TasksDep,
    request: Annotated[LinkRequest | None, Body()] = None,
) -> TaskOut:
    """Link unlinked files to CivitAI by SHA256 in the background (cache first, then 100
    hashes a call); CivitAI offline, 401 or 403 fail the task with one sentence and leave the
    scan data as it was. Follow it on the `link` event topic."""
    request = request or LinkRequest()
    params = request.model_dump()
    return tasks.submit("link", params, _link_work(_civitai_settings(state), request))


@router.post("/cache", response_model=TaskOut, status_code=202)
def start_cache(request: CacheRequest, state: StateDep, tasks: TasksDep) -> TaskOut:
    """Fetch a CivitAI model with all its versions into the cache (again: refresh it), and
    link local files it matches. Cache tasks queue behind each other."""
    work = _cache_work(_civitai_settings(state), request.model_id)
    return tasks.submit("cache", request.model_dump(), work, queue=True)


@router.post("/refresh", response_model=TaskOut, status_code=202)
def start_refresh(state: StateDep, tasks: TasksDep) -> TaskOut:
    """Re-fetch every CivitAI model a local file is linked to, in the background."""
    return tasks.submit("refresh", {}, _refresh_work(_civitai_settings(state)))


@router.get("/tasks", response_model=list[TaskOut])
def list_tasks(
    tasks: TasksDep,
    kind: Annotated[list[TaskKind] | None, Query(description="Only these kinds.")] = None,
    state: Annotated[list[TaskState] | None, Query(description="Only these states.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[TaskOut]:
    """The server's recent tasks, newest first (they last until the server stops)."""
    return tasks.list(kind, state, limit)


@router.get("/tasks/{task_id}", response_model=TaskOut)
def get_task(task_id: TaskId, tasks: TasksDep) -> TaskOut:
    """One task: state, progress (files, bytes, rate, ETA), result or error."""
    return tasks.get(task_id)


@router.post("/tasks/{task_id}/cancel", response_model=TaskOut)
def cancel_task(task_id: TaskId, tasks: TasksDep) -> TaskOut:
    """Stop a task: a queued one at once, a scan after the files it is hashing (what it hashed
    is kept), a link between two lookups. A finished task is answered as it is."""
    return tasks.cancel(task_id)
