"""CivitAI through a tsr server (`/api/civitai`) for the sync and async clients: `client.civitai`.

The server holds the CivitAI key and caches answers; clients never see the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tsr.civitai import CivitaiModel, CivitaiVersion, ModelSearchPage
from tsr.client.downloads import CIVITAI_TIMEOUT

if TYPE_CHECKING:
    from tsr.client.aio import AsyncClient
    from tsr.client.sync import Client


def search_params(
    query: str | None,
    types: Sequence[str],
    base_models: Sequence[str],
    sort: str | None,
    nsfw: bool | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """Query parameters of `GET /api/civitai/search` (unset ones left out)."""
    params: dict[str, Any] = {
        "query": query or None,
        "types": list(types),
        "base_models": list(base_models),
        "sort": sort,
        "nsfw": None if nsfw is None else str(nsfw).lower(),
        "limit": limit,
        "cursor": cursor,
    }
    return {key: value for key, value in params.items() if value not in (None, [])}


class CivitaiApi:
    """CivitAI search and details through a tsr server, sync (`client.civitai`)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def search(
        self,
        query: str | None = None,
        *,
        types: Sequence[str] = (),
        base_models: Sequence[str] = (),
        sort: str | None = None,
        nsfw: bool | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> ModelSearchPage:
        """`GET /api/civitai/search`: one page of models (types, base models: any spelling)."""
        params = search_params(query, types, base_models, sort, nsfw, limit, cursor)
        return self._client.get(
            "/api/civitai/search", ModelSearchPage, params=params, timeouts=CIVITAI_TIMEOUT
        )

    def model(self, model_id: int) -> CivitaiModel:
        """`GET /api/civitai/models/{id}`: a model with its versions, files and hashes."""
        path = f"/api/civitai/models/{int(model_id)}"
        return self._client.get(path, CivitaiModel, timeouts=CIVITAI_TIMEOUT)

    def version(self, version_id: int) -> CivitaiVersion:
        """`GET /api/civitai/versions/{id}`: a version with its files, hashes and triggers."""
        path = f"/api/civitai/versions/{int(version_id)}"
        return self._client.get(path, CivitaiVersion, timeouts=CIVITAI_TIMEOUT)


class AsyncCivitaiApi:
    """CivitAI search and details through a tsr server, async (`client.civitai`)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def search(
        self,
        query: str | None = None,
        *,
        types: Sequence[str] = (),
        base_models: Sequence[str] = (),
        sort: str | None = None,
        nsfw: bool | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> ModelSearchPage:
        """`GET /api/civitai/search`: one page of models (types, base models: any spelling)."""
        params = search_params(query, types, base_models, sort, nsfw, limit, cursor)
        return await self._client.get(
            "/api/civitai/search", ModelSearchPage, params=params, timeouts=CIVITAI_TIMEOUT
        )

    async def model(self, model_id: int) -> CivitaiModel:
        """`GET /api/civitai/models/{id}`: a model with its versions, files and hashes."""
        path = f"/api/civitai/models/{int(model_id)}"
        return await self._client.get(path, CivitaiModel, timeouts=CIVITAI_TIMEOUT)

    async def version(self, version_id: int) -> CivitaiVersion:
        """`GET /api/civitai/versions/{id}`: a version with its files, hashes and triggers."""
        path = f"/api/civitai/versions/{int(version_id)}"
        return await self._client.get(path, CivitaiVersion, timeouts=CIVITAI_TIMEOUT)
