"""The gallery endpoints (`/api/images`) for the sync and async clients: `client.images`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from tsr.client.base import DOWNLOAD_TIMEOUT
from tsr.errors import NotFound
from tsr.schemas.images import (
    ActionResult,
    ImageFilters,
    ImageOut,
    ImagePage,
    ImageStats,
    ImportReport,
    PurgeResult,
    UndoResult,
)

if TYPE_CHECKING:
    from tsr.client.aio import AsyncClient
    from tsr.client.sync import Client

#: an import reads a whole folder on the server: allow it minutes
IMPORT_TIMEOUT = httpx.Timeout(connect=5.0, read=900.0, write=30.0, pool=10.0)
#: the review states an edit may set
ReviewState = Literal["kept", "trashed"]


def list_params(filters: ImageFilters | None, cursor: str | None, limit: int) -> dict[str, Any]:
    """Query parameters of `GET /api/images` (unset filters left out)."""
    params: dict[str, Any] = {"limit": limit}
    for key, value in (filters or ImageFilters()).model_dump(exclude_none=True).items():
        if isinstance(value, datetime):
            params[key] = value.isoformat()
        elif isinstance(value, bool):
            params[key] = str(value).lower()
        else:
            params[key] = value
    if cursor:
        params["cursor"] = cursor
    return params


def update_body(
    state: ReviewState | None,
    favourite: bool | None,
    rating: int | None,
    tags: Sequence[str] | None,
    notes: str | None,
) -> dict[str, Any]:
    """The body of `PATCH /api/images/{id}`: only the fields given."""
    values = {
        "state": state,
        "favourite": favourite,
        "rating": rating,
        "tags": None if tags is None else list(tags),
        "notes": notes,
    }
    return {key: value for key, value in values.items() if value is not None}


def purge_body(
    ids: Sequence[int] | None, older_than_days: float | None, all_trash: bool
) -> dict[str, Any]:
    """The body of `POST /api/images/purge`."""
    body: dict[str, Any] = {"all_trash": all_trash}
    if ids is not None:
        body["ids"] = list(ids)
    if older_than_days is not None:
        body["older_than_days"] = older_than_days
    return body


def file_path(image_id: int) -> str:
    """The file route of an image; only a number ever goes into the URL path."""
    if isinstance(image_id, int) and not isinstance(image_id, bool):
        return f"/api/images/{image_id}"
    text = str(image_id)
    if not (text.isascii() and text.isdigit()):
        raise NotFound(f"there is no image with id {image_id!r}; ids are numbers")
    return f"/api/images/{text}"


def thumb_path(image_id: int) -> str:
    """The thumbnail route of an image."""
    return f"{file_path(image_id)}/thumb"


class ImagesApi:
    """The gallery of a tsr server, through a sync `Client` (`client.images`)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(
        self, filters: ImageFilters | None = None, *, cursor: str | None = None, limit: int = 100
    ) -> ImagePage:
        """`GET /api/images`: a page of images, newest first (`next_cursor` for the next)."""
        params = list_params(filters, cursor, limit)
        return self._client.get("/api/images", ImagePage, params=params)

    def stats(self) -> ImageStats:
        """`GET /api/images/stats`: counts per state, favourites, bytes."""
        return self._client.get("/api/images/stats", ImageStats)

    def get(self, image_id: int) -> ImageOut:
        """`GET /api/images/{id}/meta`: one image with its parsed parameters."""
        return self._client.get(f"{file_path(image_id)}/meta", ImageOut)

    def file(self, image_id: int) -> bytes:
        """`GET /api/images/{id}`: the PNG's bytes."""
        return self._client._send("GET", file_path(image_id), timeouts=DOWNLOAD_TIMEOUT).content

    def thumbnail(self, image_id: int, size: int | None = None) -> bytes:
        """`GET /api/images/{id}/thumb`: a WebP thumbnail's bytes (server default size)."""
        params = {"size": size} if size else None
        return self._client._send("GET", thumb_path(image_id), params=params).content

    def download(self, image_id: int, dest: Path) -> Path:
        """Save the PNG to the file `dest`, atomically."""
        return self._client.download(file_path(image_id), dest)

    def download_thumbnail(self, image_id: int, dest: Path, size: int | None = None) -> Path:
        """Save the WebP thumbnail to the file `dest`, atomically."""
        params = {"size": size} if size else None
        return self._client.download(thumb_path(image_id), dest, params=params)

    def update(
        self,
        image_id: int,
        *,
        state: ReviewState | None = None,
        favourite: bool | None = None,
        rating: int | None = None,
        tags: Sequence[str] | None = None,
        notes: str | None = None,
    ) -> ImageOut:
        """`PATCH /api/images/{id}`: keep or trash it, edit favourite, rating, tags, notes."""
        body = update_body(state, favourite, rating, tags, notes)
        return self._client.patch(file_path(image_id), ImageOut, json=body)

    def keep(self, ids: Sequence[int]) -> ActionResult:
        """`POST /api/images/keep`: mark images as kept."""
        return self._client.post("/api/images/keep", ActionResult, json={"ids": list(ids)})

    def trash(self, ids: Sequence[int]) -> ActionResult:
        """`POST /api/images/trash`: move images to the trash."""
        return self._client.post("/api/images/trash", ActionResult, json={"ids": list(ids)})

    def restore(self, ids: Sequence[int]) -> ActionResult:
        """`POST /api/images/restore`: take images out of the trash."""
        return self._client.post("/api/images/restore", ActionResult, json={"ids": list(ids)})

    def trash_one(self, image_id: int) -> ActionResult:
        """`DELETE /api/images/{id}`: move one image to the trash."""
        return self._client.delete(file_path(image_id), ActionResult)

    def restore_one(self, image_id: int) -> ActionResult:
        """`POST /api/images/{id}/restore`: take one image out of the trash."""
        return self._client.post(f"{file_path(image_id)}/restore", ActionResult)

    def undo(self) -> UndoResult:
        """`POST /api/images/undo`: revert the last keep, trash, restore or edit."""
        return self._client.post("/api/images/undo", UndoResult)

    def purge(
        self,
        ids: Sequence[int] | None = None,
        *,
        older_than_days: float | None = None,
        all_trash: bool = False,
    ) -> PurgeResult:
        """`POST /api/images/purge`: delete trashed images for good (name which)."""
        body = purge_body(ids, older_than_days, all_trash)
        return self._client.post("/api/images/purge", PurgeResult, json=body)

    def import_folder(self, folder: str, *, move: bool = False) -> ImportReport:
        """`POST /api/images/import`: import the PNGs of a folder on the server."""
        body = {"folder": folder, "move": move}
        return self._client.post(
            "/api/images/import", ImportReport, json=body, timeouts=IMPORT_TIMEOUT
        )


class AsyncImagesApi:
    """The gallery of a tsr server, through an `AsyncClient` (`client.images`)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(
        self, filters: ImageFilters | None = None, *, cursor: str | None = None, limit: int = 100
    ) -> ImagePage:
        """`GET /api/images`: a page of images, newest first (`next_cursor` for the next)."""
        params = list_params(filters, cursor, limit)
        return await self._client.get("/api/images", ImagePage, params=params)

    async def stats(self) -> ImageStats:
        """`GET /api/images/stats`: counts per state, favourites, bytes."""
        return await self._client.get("/api/images/stats", ImageStats)

    async def get(self, image_id: int) -> ImageOut:
        """`GET /api/images/{id}/meta`: one image with its parsed parameters."""
        return await self._client.get(f"{file_path(image_id)}/meta", ImageOut)

    async def file(self, image_id: int) -> bytes:
        """`GET /api/images/{id}`: the PNG's bytes."""
        path = file_path(image_id)
        return (await self._client._send("GET", path, timeouts=DOWNLOAD_TIMEOUT)).content

    async def thumbnail(self, image_id: int, size: int | None = None) -> bytes:
        """`GET /api/images/{id}/thumb`: a WebP thumbnail's bytes (server default size)."""
        params = {"size": size} if size else None
        return (await self._client._send("GET", thumb_path(image_id), params=params)).content

    async def download(self, image_id: int, dest: Path) -> Path:
        """Save the PNG to the file `dest`, atomically."""
        return await self._client.download(file_path(image_id), dest)

    async def download_thumbnail(self, image_id: int, dest: Path, size: int | None = None) -> Path:
        """Save the WebP thumbnail to the file `dest`, atomically."""
        params = {"size": size} if size else None
        return await self._client.download(thumb_path(image_id), dest, params=params)

    async def update(
        self,
        image_id: int,
        *,
        state: ReviewState | None = None,
        favourite: bool | None = None,
        rating: int | None = None,
        tags: Sequence[str] | None = None,
        notes: str | None = None,
    ) -> ImageOut:
        """`PATCH /api/images/{id}`: keep or trash it, edit favourite, rating, tags, notes."""
        body = update_body(state, favourite, rating, tags, notes)
        return await self._client.patch(file_path(image_id), ImageOut, json=body)

    async def keep(self, ids: Sequence[int]) -> ActionResult:
        """`POST /api/images/keep`: mark images as kept."""
        return await self._client.post("/api/images/keep", ActionResult, json={"ids": list(ids)})

    async def trash(self, ids: Sequence[int]) -> ActionResult:
        """`POST /api/images/trash`: move images to the trash."""
        return await self._client.post("/api/images/trash", ActionResult, json={"ids": list(ids)})

    async def restore(self, ids: Sequence[int]) -> ActionResult:
        """`POST /api/images/restore`: take images out of the trash."""
        body: dict[str, Any] = {"ids": list(ids)}
        return await self._client.post("/api/images/restore", ActionResult, json=body)

    async def trash_one(self, image_id: int) -> ActionResult:
        """`DELETE /api/images/{id}`: move one image to the trash."""
        return await self._client.delete(file_path(image_id), ActionResult)

    async def restore_one(self, image_id: int) -> ActionResult:
        """`POST /api/images/{id}/restore`: take one image out of the trash."""
        return await self._client.post(f"{file_path(image_id)}/restore", ActionResult)

    async def undo(self) -> UndoResult:
        """`POST /api/images/undo`: revert the last keep, trash, restore or edit."""
        return await self._client.post("/api/images/undo", UndoResult)

    async def purge(
        self,
        ids: Sequence[int] | None = None,
        *,
        older_than_days: float | None = None,
        all_trash: bool = False,
    ) -> PurgeResult:
        """`POST /api/images/purge`: delete trashed images for good (name which)."""
        body = purge_body(ids, older_than_days, all_trash)
        return await self._client.post("/api/images/purge", PurgeResult, json=body)

    async def import_folder(self, folder: str, *, move: bool = False) -> ImportReport:
        """`POST /api/images/import`: import the PNGs of a folder on the server."""
        body = {"folder": folder, "move": move}
        return await self._client.post(
            "/api/images/import", ImportReport, json=body, timeouts=IMPORT_TIMEOUT
        )
