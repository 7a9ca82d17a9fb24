"""A router of test endpoints added to a real app the way domain routers are added later."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from tsr.errors import (
    AuthRejected,
    BadRequest,
    ConfigError,
    Conflict,
    JobFailed,
    NotFound,
    RemoteUnreachable,
    RootViolation,
    ServerError,
    TsrError,
)
from tsr.server.deps import ConfigDep, service

#: what `GET /api/test/raise/{name}` raises, and the status it must answer
RAISED: dict[str, tuple[TsrError, int]] = {
    "missing": (NotFound("no image with id 7"), 404),
    "bad": (BadRequest("width must be a multiple of 64"), 400),
    "upstream-auth": (AuthRejected("CivitAI rejected the API key"), 401),
    "busy": (Conflict("backend gpu0 is switching models"), 409),
    "outside": (RootViolation("/etc/passwd is outside the model roots"), 403),
    "sd-down": (RemoteUnreachable("cannot reach sd-server at http://127.0.0.1:1234"), 502),
    "sd-broken": (ServerError("sd-server answered HTTP 500"), 502),
    "job": (JobFailed("generation failed: out of memory"), 500),
    "config": (ConfigError("backend gpu0 has no binary"), 500),
}


class Thumbnailer:
    """A stand-in domain service, started and stopped by the app's lifespan."""

    def __init__(self) -> None:
        self.running = True


class Unstarted:
    """A service the app never starts."""


class Size(BaseModel):
    """A request body with limits, to see validation errors named."""

    width: int = Field(le=4096)
    height: int


def extra_router() -> APIRouter:
    """Endpoints that raise each error kind, use services, validate a body, serve a file."""
    router = APIRouter(prefix="/api/test", tags=["test"])

    @router.get("/raise/{name}")
    async def raise_named(name: str) -> dict[str, str]:
        raise RAISED[name][0]

    @router.get("/crash")
    def crash() -> dict[str, str]:
        raise KeyError("internal detail /secret/path")

    @router.get("/thumbnailer")
    async def uses_thumbnailer(
        thumbnailer: Annotated[Thumbnailer, Depends(service(Thumbnailer))],
    ) -> dict[str, bool]:
        return {"running": thumbnailer.running}

    @router.get("/unstarted")
    async def uses_unstarted(
        unstarted: Annotated[Unstarted, Depends(service(Unstarted))],
    ) -> dict[str, str]:
        return {}

    @router.post("/size")
    async def size(body: Size) -> Size:
        return body

    @router.get("/files/{name}")
    def file(name: str, config: ConfigDep) -> FileResponse:
        path = config.home / "files" / name
        if "/" in name or not path.is_file():
            raise NotFound(f"there is no file {name} in the data dir")
        return FileResponse(path, media_type="image/png")

    return router
