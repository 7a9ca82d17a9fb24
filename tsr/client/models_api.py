"""The models endpoints (`/api/models`, `/api/samplers`, `/api/schedulers`, `/api/families`) for
the sync and async clients: `client.models`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tsr.families import Family
from tsr.schemas.generation_api import (
    ActiveBackend,
    CheckpointOut,
    CheckpointPage,
    LoraPage,
    SamplingChoice,
    SwitchRequest,
)
from tsr.schemas.jobs import JobOut

if TYPE_CHECKING:
    from tsr.client.aio import AsyncClient
    from tsr.client.generate_api import JobUpdate
    from tsr.client.sync import Client

#: checkpoints asked for per page when listing them all
PAGE = 500


def models_params(
    family: str | None, q: str | None, kind: str, hidden: bool, limit: int, offset: int
) -> dict[str, Any]:
    """Query parameters of `GET /api/models` (unset filters left out)."""
    params: dict[str, Any] = {"kind": kind, "limit": limit, "offset": offset}
    if family:
        params["family"] = family
    if q:
        params["q"] = q
    if hidden:
        params["hidden"] = True
    return params


def loras_params(
    family: str | None, show_all: bool, q: str | None, hidden: bool, limit: int, offset: int
) -> dict[str, Any]:
    """Query parameters of `GET /api/models/loras` (unset filters left out)."""
    params: dict[str, Any] = {"all": show_all, "limit": limit, "offset": offset}
    if family:
        params["family"] = family
    if q:
        params["q"] = q
    if hidden:
        params["hidden"] = True
    return params


def switch_body(model: int | str, backend: str | None) -> SwitchRequest:
    """The body of `POST /api/models/switch`."""
    return SwitchRequest(model=model, backend=backend)


class ModelsApi:
    """Checkpoints, LoRAs, backends' models and generation choices, through a sync `Client`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def all(
        self,
        *,
        family: str | None = None,
        q: str | None = None,
        kind: str = "checkpoint",
        hidden: bool = False,
    ) -> list[CheckpointOut]:
        """Every checkpoint matching the filters, page after page."""
        found: list[CheckpointOut] = []
        offset: int | None = 0
        while offset is not None:
            page = self.list(
                family=family, q=q, kind=kind, hidden=hidden, limit=PAGE, offset=offset
            )
            found.extend(page.items)
            offset = page.next_offset
        return found

    def active(self, *, refresh: bool = False) -> list[ActiveBackend]:
        """`GET /api/models/active`: every backend and the checkpoint it holds."""
        params = {"refresh": True} if refresh else None
        return self._client.get("/api/models/active", list[ActiveBackend], params=params)

    def switch(self, model: int | str, backend: str | None = None) -> JobOut:
        """`POST /api/models/switch`: queue a switch job (DB id, name, hash or path)."""
        body = switch_body(model, backend)
        return self._client.post("/api/models/switch", JobOut, json=body)

    def switch_and_wait(
        self, model: int | str, backend: str | None = None, on_update: JobUpdate | None = None
    ) -> JobOut:
        """Queue a switch and follow it until it has finished; the finished job."""
        jobs = self._client.generation.submit_and_follow(
            lambda: [self.switch(model, backend)], on_update
        )
        return jobs[0]

    def loras(
        self,
        *,
        family: str | None = None,
        show_all: bool = False,
        q: str | None = None,
        hidden: bool = False,
        limit: int = 200,
        offset: int = 0,
    ) -> LoraPage:
        """`GET /api/models/loras`: LoRAs for a family (default: the active checkpoint's)."""
        params = loras_params(family, show_all, q, hidden, limit, offset)
        return self._client.get("/api/models/loras", LoraPage, params=params)

    def samplers(self) -> list[SamplingChoice]:
        """`GET /api/samplers`: sd.cpp sampler names with their WebUI labels."""
        return self._client.get("/api/samplers", list[SamplingChoice])

    def schedulers(self) -> list[SamplingChoice]:
        """`GET /api/schedulers`: sd.cpp scheduler names with their WebUI labels."""
        return self._client.get("/api/schedulers", list[SamplingChoice])

    def families(self) -> list[Family]:
        """`GET /api/families`: every model family with its generation defaults."""
        return self._client.get("/api/families", list[Family])

    # `list` last: later annotations in the class body would otherwise see this method
    def list(
        self,
        *,
        family: str | None = None,
        q: str | None = None,
        kind: str = "checkpoint",
        hidden: bool = False,
        limit: int = 200,
        offset: int = 0,
    ) -> CheckpointPage:
        """`GET /api/models`: a page of checkpoints by name, with `loaded_on`."""
        params = models_params(family, q, kind, hidden, limit, offset)
        return self._client.get("/api/models", CheckpointPage, params=params)


class AsyncModelsApi:
    """Checkpoints, LoRAs, backends' models and generation choices, through an `AsyncClient`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def all(
        self,
        *,
        family: str | None = None,
        q: str | None = None,
        kind: str = "checkpoint",
        hidden: bool = False,
    ) -> list[CheckpointOut]:
        """Every checkpoint matching the filters, page after page."""
        found: list[CheckpointOut] = []
        offset: int | None = 0
        while offset is not None:
            page = await self.list(
                family=family, q=q, kind=kind, hidden=hidden, limit=PAGE, offset=offset
            )
            found.extend(page.items)
            offset = page.next_offset
        return found

    async def active(self, *, refresh: bool = False) -> list[ActiveBackend]:
        """`GET /api/models/active`: every backend and the checkpoint it holds."""
        params = {"refresh": True} if refresh else None
        return await self._client.get("/api/models/active", list[ActiveBackend], params=params)

    async def switch(self, model: int | str, backend: str | None = None) -> JobOut:
        """`POST /api/models/switch`: queue a switch job (DB id, name, hash or path)."""
        body = switch_body(model, backend)
        return await self._client.post("/api/models/switch", JobOut, json=body)

    async def switch_and_wait(
        self, model: int | str, backend: str | None = None, on_update: JobUpdate | None = None
    ) -> JobOut:
        """Queue a switch and follow it until it has finished; the finished job."""

        async def submit() -> list[JobOut]:
            return [await self.switch(model, backend)]

        jobs = await self._client.generation.submit_and_follow(submit, on_update)
        return jobs[0]

    async def loras(
        self,
        *,
        family: str | None = None,
        show_all: bool = False,
        q: str | None = None,
        hidden: bool = False,
        limit: int = 200,
        offset: int = 0,
    ) -> LoraPage:
        """`GET /api/models/loras`: LoRAs for a family (default: the active checkpoint's)."""
        params = loras_params(family, show_all, q, hidden, limit, offset)
        return await self._client.get("/api/models/loras", LoraPage, params=params)

    async def samplers(self) -> list[SamplingChoice]:
        """`GET /api/samplers`: sd.cpp sampler names with their WebUI labels."""
        return await self._client.get("/api/samplers", list[SamplingChoice])

    async def schedulers(self) -> list[SamplingChoice]:
        """`GET /api/schedulers`: sd.cpp scheduler names with their WebUI labels."""
        return await self._client.get("/api/schedulers", list[SamplingChoice])

    async def families(self) -> list[Family]:
        """`GET /api/families`: every model family with its generation defaults."""
        return await self._client.get("/api/families", list[Family])

    # `list` last: later annotations in the class body would otherwise see this method
    async def list(
        self,
        *,
        family: str | None = None,
        q: str | None = None,
        kind: str = "checkpoint",
        hidden: bool = False,
        limit: int = 200,
        offset: int = 0,
    ) -> CheckpointPage:
        """`GET /api/models`: a page of checkpoints by name, with `loaded_on`."""
        params = models_params(family, q, kind, hidden, limit, offset)
        return await self._client.get("/api/models", CheckpointPage, params=params)
