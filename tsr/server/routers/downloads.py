"""Download routes: queue a CivitAI or URL download, list and follow downloads, cancel one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from tsr.downloads import CivitaiCatalog, DownloadManager
from tsr.schemas.downloads import DownloadOut, DownloadRequest, DownloadState
from tsr.server.deps import service
from tsr.server.state import AppState

router = APIRouter(prefix="/api/download", tags=["downloads"])
CAPABILITIES = ("downloads",)

DownloadsDep = Annotated[DownloadManager, Depends(service(DownloadManager))]
DownloadId = Annotated[int, Path(ge=1, description="The download's id.")]


@asynccontextmanager
async def download_service(state: AppState) -> AsyncIterator[None]:
    """CivitAI access and the download queue; queued and interrupted downloads resume."""
    catalog = CivitaiCatalog(state.config)
    manager = DownloadManager(state.config, catalog, state.events)
    # it touches the database: off the event loop
    await asyncio.to_thread(manager.start)
    state.provide(catalog)
    state.provide(manager)
    try:
        yield
    finally:
        state.withdraw(DownloadManager)
        state.withdraw(CivitaiCatalog)
        await asyncio.to_thread(manager.stop)
        catalog.close()


# plain `def` endpoints: they look things up on CivitAI and write the database (threads)
@router.post("", response_model=DownloadOut, status_code=202)
def start_download(request: DownloadRequest, downloads: DownloadsDep) -> DownloadOut:
    """Queue a download: a CivitAI version, model (newest version), URL, or file hash.

    CivitAI downloads go to the root for their model type; a plain URL needs `kind`. The same
    file already queued or running is answered as it is; a failed one is queued again and
    resumes from its partial file. Follow it with `GET /api/download/{id}` or `download` events.
    """
    return downloads.submit(request)


@router.get("", response_model=list[DownloadOut])
def list_downloads(
    downloads: DownloadsDep,
    state: Annotated[list[DownloadState] | None, Query(description="Only these states.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DownloadOut]:
    """The newest downloads first, with live progress for running ones."""
    return downloads.list(state, limit)


@router.get("/{download_id}", response_model=DownloadOut)
def get_download(download_id: DownloadId, downloads: DownloadsDep) -> DownloadOut:
    """One download: state, bytes done and total, rate and ETA while it runs, its file."""
    return downloads.get(download_id)


@router.post("/{download_id}/cancel", response_model=DownloadOut)
def cancel_download(download_id: DownloadId, downloads: DownloadsDep) -> DownloadOut:
    """Cancel a queued, running or failed download and delete its partial file."""
    return downloads.cancel(download_id)
