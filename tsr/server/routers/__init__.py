"""The API's routers: each module has `router` (an APIRouter with prefix and tags) and
`CAPABILITIES` (the API areas it adds to `GET /api/info`); `create_app` includes every entry of
ROUTERS, behind the token check."""

from __future__ import annotations

from fastapi import APIRouter

from tsr.server.routers import a1111, civitai, db, downloads, generate, images, models, system

#: (router, capabilities) pairs, included in this order
ROUTERS: tuple[tuple[APIRouter, tuple[str, ...]], ...] = (
    (system.router, system.CAPABILITIES),
    (downloads.router, downloads.CAPABILITIES),
    (civitai.router, civitai.CAPABILITIES),
    (images.router, images.CAPABILITIES),
    (db.router, db.CAPABILITIES),
    (models.router, models.CAPABILITIES),
    (generate.router, generate.CAPABILITIES),
    (a1111.router, a1111.CAPABILITIES),
)
