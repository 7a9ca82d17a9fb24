"""The UI's one door to its data: a `Session` on one tsr server (see client_session.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from tsr.errors import BadRequest
from tsr.schemas.downloads import DownloadOut, DownloadRequest
from tsr.schemas.generation_api import CheckpointOut, LoraOut
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

if TYPE_CHECKING:
    # CivitAI's wire models live beside its client (with httpx): typing only, so the first
    # frame does not wait for them
    from tsr.civitai import ModelSearchPage


class Session(Protocol):
    """Everything the panes ask of a server; each method is one API call."""

    remote: str

    async def close(self) -> None:
        """Let go of the connection."""

    async def info(self) -> Info:
        """`GET /api/info`: version, backends and what they hold, capabilities."""

    def events(self, topics: list[str]) -> AsyncIterator[Event]:
        """`GET /api/events?topics=...`: the server's event stream, until it closes."""

    # -- models -------------------------------------------------------------------------------

    async def list_models(self, kind: str) -> list[CheckpointOut]:
        """`GET /api/models?kind=...`: files of one kind on disk, with where each is loaded."""

    async def list_loras(self, family: str | None) -> list[LoraOut]:
        """`GET /api/models/loras?family=...&all=true`: every LoRA, marked (in)compatible."""

    # -- the models database ------------------------------------------------------------------

    async def file_detail(self, file_id: int) -> FileDetail:
        """`GET /api/db/files/{id}`: one file with its metadata, triggers and override."""

    async def set_family(self, file_id: int, family: str | None) -> ModelFile:
        """`PATCH /api/db/files/{id}`: override a file's family (None: detection decides)."""

    async def triggers(self, file_id: int) -> FileTriggers:
        """`GET /api/db/triggers?file=...`: a file's trigger words and their sources."""

    async def add_triggers(self, file_id: int, words: list[str]) -> FileTriggers:
        """`POST /api/db/triggers`: add the user's own trigger words to a file."""

    async def start_scan(self) -> TaskOut:
        """`POST /api/db/scan`: rescan every model root in the background."""

    async def start_link(self) -> TaskOut:
        """`POST /api/db/link`: link unlinked files to CivitAI by hash (misses asked again)."""

    async def start_cache(self, model_id: int) -> TaskOut:
        """`POST /api/db/cache`: fetch (refresh) a linked CivitAI model and its versions."""

    async def task(self, task_id: int) -> TaskOut:
        """`GET /api/db/tasks/{id}`: a scan or link task's progress and result."""

    # -- generation ---------------------------------------------------------------------------

    async def switch_model(self, file_id: int) -> JobOut:
        """`POST /api/models/switch`: queue a switch job to load a checkpoint."""

    async def samplers(self) -> list[str]:
        """`GET /api/samplers`: the samplers the server accepts (WebUI labels where known)."""

    async def schedulers(self) -> list[str]:
        """`GET /api/schedulers`: the schedulers the server accepts (WebUI labels where known)."""

    async def generate(self, request: GenerateRequest) -> JobOut:
        """`POST /api/generate`: queue a generation."""

    async def job(self, job_id: str) -> JobOut:
        """`GET /api/jobs/{id}`."""

    async def cancel_job(self, job_id: str) -> JobOut:
        """`POST /api/jobs/{id}/cancel`."""

    # -- gallery ------------------------------------------------------------------------------

    async def list_images(self, filters: ImageFilters, cursor: str | None, limit: int) -> ImagePage:
        """`GET /api/images`: a page of images, newest first."""

    async def image_stats(self) -> ImageStats:
        """`GET /api/images/stats`."""

    async def image(self, image_id: int) -> ImageOut:
        """`GET /api/images/{id}/meta`."""

    async def thumbnail(self, image_id: int) -> bytes:
        """`GET /api/images/{id}/thumb`: the thumbnail's bytes (WebP)."""

    async def image_file(self, image_id: int) -> bytes:
        """`GET /api/images/{id}`: the PNG's bytes."""

    async def update_image(self, image_id: int, update: ImageUpdate) -> ImageOut:
        """`PATCH /api/images/{id}`: favourite, rating, tags, notes."""

    async def keep(self, ids: list[int]) -> ActionResult:
        """`POST /api/images/keep`."""

    async def trash(self, ids: list[int]) -> ActionResult:
        """`POST /api/images/trash`."""

    async def restore(self, ids: list[int]) -> ActionResult:
        """`POST /api/images/restore`."""

    async def undo(self) -> UndoResult:
        """`POST /api/images/undo`: revert the last keep, trash, restore or edit."""

    async def purge(self, ids: list[int]) -> PurgeResult:
        """`POST /api/images/purge`: delete trashed images for good (all when `ids` is empty)."""

    # -- downloads and CivitAI ----------------------------------------------------------------

    async def download(self, request: DownloadRequest) -> DownloadOut:
        """`POST /api/download`: queue a download (CivitAI version, model, URL or hash)."""

    async def download_status(self, download_id: int) -> DownloadOut:
        """`GET /api/download/{id}`."""

    async def search_civitai(
        self, query: str | None, types: list[str], base_models: list[str], cursor: str | None
    ) -> ModelSearchPage:
        """`GET /api/civitai/search`: a page of CivitAI models."""


#: opens a session on the named remote (the TUI's only way to reach a server)
Connector = Callable[[str], Awaitable[Session]]


def _is_number(text: str) -> bool:
    # str.isdigit() alone takes "³" too, which int() refuses
    return text.isascii() and text.isdigit()


def download_request(text: str) -> DownloadRequest:
    """What the user typed as a download: `130072` (a version), `model:4201`, a URL, a hash."""
    text = text.strip()
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")):
        return DownloadRequest(url=text)
    if lowered.startswith("model:") and _is_number(lowered[6:].strip()):
        return DownloadRequest(model_id=int(lowered[6:]))
    if _is_number(text):
        return DownloadRequest(version_id=int(text))
    if len(text) >= 8 and all(c in "0123456789abcdefABCDEF" for c in text):
        return DownloadRequest(hash=text)
    raise BadRequest(
        f"{text!r} is not a download: give a version id (130072), model:ID, "
        "a civitai.com URL or a file hash"
    )
