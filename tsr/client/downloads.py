"""The download queue (`/api/download`) for the sync and async clients: `client.downloads`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from tsr.schemas.downloads import DownloadOut, DownloadRequest

if TYPE_CHECKING:
    from tsr.client.aio import AsyncClient
    from tsr.client.sync import Client

#: calls the server answers by asking CivitAI first (slow at times, retried on 429)
CIVITAI_TIMEOUT = httpx.Timeout(90.0, connect=5.0)


def list_params(states: Sequence[str], limit: int) -> dict[str, Any]:
    """Query parameters of `GET /api/download`."""
    return {"state": list(states), "limit": limit}


class DownloadsApi:
    """The download queue of a tsr server, through a sync `Client` (`client.downloads`)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def start(self, request: DownloadRequest | Mapping[str, Any]) -> DownloadOut:
        """`POST /api/download`: queue a CivitAI version, model, URL or hash download."""
        return self._client.post(
            "/api/download", DownloadOut, json=request, timeouts=CIVITAI_TIMEOUT
        )

    def list(self, states: Sequence[str] = (), limit: int = 100) -> list[DownloadOut]:
        """`GET /api/download`: the newest downloads first (optionally only some states)."""
        return self._client.get(
            "/api/download", list[DownloadOut], params=list_params(states, limit)
        )

    def get(self, download_id: int) -> DownloadOut:
        """`GET /api/download/{id}`: state, bytes done and total, rate and ETA."""
        return self._client.get(f"/api/download/{int(download_id)}", DownloadOut)

    def cancel(self, download_id: int) -> DownloadOut:
        """`POST /api/download/{id}/cancel`: stop it and delete its partial file."""
        return self._client.post(f"/api/download/{int(download_id)}/cancel", DownloadOut)


class AsyncDownloadsApi:
    """The download queue of a tsr server, through an `AsyncClient` (`client.downloads`)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def start(self, request: DownloadRequest | Mapping[str, Any]) -> DownloadOut:
        """`POST /api/download`: queue a CivitAI version, model, URL or hash download."""
        return await self._client.post(
            "/api/download", DownloadOut, json=request, timeouts=CIVITAI_TIMEOUT
        )

    async def list(self, states: Sequence[str] = (), limit: int = 100) -> list[DownloadOut]:
        """`GET /api/download`: the newest downloads first (optionally only some states)."""
        params = list_params(states, limit)
        return await self._client.get("/api/download", list[DownloadOut], params=params)

    async def get(self, download_id: int) -> DownloadOut:
        """`GET /api/download/{id}`: state, bytes done and total, rate and ETA."""
        return await self._client.get(f"/api/download/{int(download_id)}", DownloadOut)

    async def cancel(self, download_id: int) -> DownloadOut:
        """`POST /api/download/{id}/cancel`: stop it and delete its partial file."""
        return await self._client.post(f"/api/download/{int(download_id)}/cancel", DownloadOut)
