"""`Session` through tsr.client: one method per endpoint, answers parsed as wire models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tsr.config import Config
from tsr.schemas.db_api import FileChange, TriggerChange
from tsr.schemas.downloads import DownloadOut, DownloadRequest
from tsr.schemas.generation_api import (
    CheckpointOut,
    CheckpointPage,
    LoraOut,
    LoraPage,
    SamplingChoice,
)
from tsr.schemas.images import (
    ActionResult,
    ImageFilters,
    ImageOut,
    ImagePage,
    ImageStats,
    ImageUpdate,
    PurgeResult,
    UndoResult,
)
from tsr.schemas.jobs import GenerateRequest, JobOut
from tsr.schemas.models import FileDetail, FileTriggers, ModelFile
from tsr.schemas.server import Event, Info
from tsr.schemas.tasks import TaskOut
from tsr.tui.data import Connector, Session

if TYPE_CHECKING:
    # tsr.client brings httpx: imported when the first session opens, after the first frame
    from tsr.civitai import ModelSearchPage
    from tsr.client import AsyncClient

#: files per page when listing models (the server's largest page)
PAGE = 1000


def _filter_params(filters: ImageFilters) -> dict[str, Any]:
    """Image filters as query parameters (unset ones left out)."""
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in filters.model_dump(exclude_none=True).items()
    }


class ClientSession:
    """A `Session` on an `AsyncClient` (see `Session` for what each method asks)."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.remote = client.remote

    async def close(self) -> None:
        """Close the client's connections (an embedded server keeps running)."""
        await self.client.aclose()

    async def info(self) -> Info:
        """`GET /api/info`."""
        return await self.client.info()

    def events(self, topics: list[str]) -> AsyncIterator[Event]:
        """`GET /api/events`."""
        return self.client.events(topics)

    async def _bytes(self, path: str, params: dict[str, Any] | None = None) -> bytes:
        # the client's helpers parse JSON; images are bytes, so this reads the response itself
        response = await self.client._send("GET", path, params=params)
        return response.content

    # -- models -------------------------------------------------------------------------------

    async def list_models(self, kind: str) -> list[CheckpointOut]:
        """`GET /api/models?kind=...`, every page."""
        models: list[CheckpointOut] = []
        offset: int | None = 0
        while offset is not None:
            params = {"kind": kind, "limit": PAGE, "offset": offset}
            page = await self.client.get("/api/models", CheckpointPage, params=params)
            models += page.items
            offset = page.next_offset
        return models

    async def list_loras(self, family: str | None) -> list[LoraOut]:
        """`GET /api/models/loras?all=true`, every page."""
        loras: list[LoraOut] = []
        offset: int | None = 0
        while offset is not None:
            params: dict[str, Any] = {"all": True, "limit": PAGE, "offset": offset}
            if family:
                params["family"] = family
            page = await self.client.get("/api/models/loras", LoraPage, params=params)
            loras += page.items
            offset = page.next_offset
        return loras

    # -- the models database ------------------------------------------------------------------

    async def file_detail(self, file_id: int) -> FileDetail:
        """`GET /api/db/files/{id}`."""
        return await self.client.get(f"/api/db/files/{file_id}", FileDetail)

    async def set_family(self, file_id: int, family: str | None) -> ModelFile:
        """`PATCH /api/db/files/{id}`."""
        change = FileChange(family=family)
        return await self.client.patch(f"/api/db/files/{file_id}", ModelFile, json=change)

    async def triggers(self, file_id: int) -> FileTriggers:
        """`GET /api/db/triggers?file=...`."""
        return await self.client.get("/api/db/triggers", FileTriggers, params={"file": file_id})

    async def add_triggers(self, file_id: int, words: list[str]) -> FileTriggers:
        """`POST /api/db/triggers`."""
        change = TriggerChange(file=file_id, words=words)
        return await self.client.post("/api/db/triggers", FileTriggers, json=change)

    async def start_scan(self) -> TaskOut:
        """`POST /api/db/scan`."""
        return await self.client.post("/api/db/scan", TaskOut)

    async def start_link(self) -> TaskOut:
        """`POST /api/db/link`."""
        return await self.client.post("/api/db/link", TaskOut, json={"retry_misses": True})

    async def start_cache(self, model_id: int) -> TaskOut:
        """`POST /api/db/cache`."""
        return await self.client.post("/api/db/cache", TaskOut, json={"model_id": model_id})

    async def task(self, task_id: int) -> TaskOut:
        """`GET /api/db/tasks/{id}`."""
        return await self.client.get(f"/api/db/tasks/{task_id}", TaskOut)

    # -- generation ---------------------------------------------------------------------------

    async def switch_model(self, file_id: int) -> JobOut:
        """`POST /api/models/switch`."""
        return await self.client.post("/api/models/switch", JobOut, json={"model": file_id})

    async def samplers(self) -> list[str]:
        """`GET /api/samplers`: labels where there are, sd.cpp names else."""
        choices = await self.client.get("/api/samplers", list[SamplingChoice])
        return [choice.label or choice.name for choice in choices]

    async def schedulers(self) -> list[str]:
        """`GET /api/schedulers`: labels where there are, sd.cpp names else."""
        choices = await self.client.get("/api/schedulers", list[SamplingChoice])
        return [choice.label or choice.name for choice in choices]

    async def generate(self, request: GenerateRequest) -> JobOut:
        """`POST /api/generate`."""
        return await self.client.post("/api/generate", JobOut, json=request)

    async def job(self, job_id: str) -> JobOut:
        """`GET /api/jobs/{id}`."""
        return await self.client.get(f"/api/jobs/{job_id}", JobOut)

    async def cancel_job(self, job_id: str) -> JobOut:
        """`POST /api/jobs/{id}/cancel`."""
        return await self.client.post(f"/api/jobs/{job_id}/cancel", JobOut)

    # -- gallery ------------------------------------------------------------------------------

    async def list_images(self, filters: ImageFilters, cursor: str | None, limit: int) -> ImagePage:
        """`GET /api/images`."""
        params = _filter_params(filters) | {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return await self.client.get("/api/images", ImagePage, params=params)

    async def image_stats(self) -> ImageStats:
        """`GET /api/images/stats`."""
        return await self.client.get("/api/images/stats", ImageStats)

    async def image(self, image_id: int) -> ImageOut:
        """`GET /api/images/{id}/meta`."""
        return await self.client.get(f"/api/images/{image_id}/meta", ImageOut)

    async def thumbnail(self, image_id: int) -> bytes:
        """`GET /api/images/{id}/thumb`."""
        return await self._bytes(f"/api/images/{image_id}/thumb")

    async def image_file(self, image_id: int) -> bytes:
        """`GET /api/images/{id}`."""
        return await self._bytes(f"/api/images/{image_id}")

    async def update_image(self, image_id: int, update: ImageUpdate) -> ImageOut:
        """`PATCH /api/images/{id}`."""
        return await self.client.patch(f"/api/images/{image_id}", ImageOut, json=update)

    async def keep(self, ids: list[int]) -> ActionResult:
        """`POST /api/images/keep`."""
        return await self.client.post("/api/images/keep", ActionResult, json={"ids": ids})

    async def trash(self, ids: list[int]) -> ActionResult:
        """`POST /api/images/trash`."""
        return await self.client.post("/api/images/trash", ActionResult, json={"ids": ids})

    async def restore(self, ids: list[int]) -> ActionResult:
        """`POST /api/images/restore`."""
        return await self.client.post("/api/images/restore", ActionResult, json={"ids": ids})

    async def undo(self) -> UndoResult:
        """`POST /api/images/undo`."""
        return await self.client.post("/api/images/undo", UndoResult)

    async def purge(self, ids: list[int]) -> PurgeResult:
        """`POST /api/images/purge`."""
        body: dict[str, Any] = {"ids": ids} if ids else {"all_trash": True}
        return await self.client.post("/api/images/purge", PurgeResult, json=body)

    # -- downloads and CivitAI ----------------------------------------------------------------

    async def download(self, request: DownloadRequest) -> DownloadOut:
        """`POST /api/download`."""
        return await self.client.post("/api/download", DownloadOut, json=request)

    async def download_status(self, download_id: int) -> DownloadOut:
        """`GET /api/download/{id}`."""
        return await self.client.get(f"/api/download/{download_id}", DownloadOut)

    async def search_civitai(
        self, query: str | None, types: list[str], base_models: list[str], cursor: str | None
    ) -> ModelSearchPage:
        """`GET /api/civitai/search`."""
        from tsr.civitai import ModelSearchPage

        params: dict[str, Any] = {"types": types, "base_models": base_models, "limit": 30}
        if query:
            params["query"] = query
        if cursor:
            params["cursor"] = cursor
        return await self.client.get("/api/civitai/search", ModelSearchPage, params=params)


def client_connector(config: Config) -> Connector:
    """Sessions through tsr.client (`local` starts the embedded server on first use)."""

    async def connect(remote: str) -> Session:
        from tsr.client import connect_async

        return ClientSession(connect_async(remote, config))

    return connect
