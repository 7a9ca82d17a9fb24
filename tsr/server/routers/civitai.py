"""CivitAI through the server: search and model details; the API key never leaves the server."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from tsr.civitai import CivitaiModel, CivitaiVersion, ModelSearchPage
from tsr.downloads import CivitaiCatalog
from tsr.server.deps import service

router = APIRouter(prefix="/api/civitai", tags=["civitai"])
CAPABILITIES = ("civitai",)

CatalogDep = Annotated[CivitaiCatalog, Depends(service(CivitaiCatalog))]


def _split(values: list[str] | None) -> list[str]:
    # `types=LORA&types=Checkpoint` and `types=LORA,Checkpoint` mean the same
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


# plain `def` endpoints: the CivitAI client is synchronous, so they run in threads
@router.get("/search", response_model=ModelSearchPage)
def search(
    catalog: CatalogDep,
    query: Annotated[str | None, Query(description="Words in the model's name.")] = None,
    types: Annotated[
        list[str] | None, Query(description="Model types: Checkpoint, LORA, VAE, ...")
    ] = None,
    base_models: Annotated[
        list[str] | None, Query(description="Base models: SD 1.5, SDXL 1.0, Pony, ...")
    ] = None,
    sort: Annotated[str | None, Query(description="CivitAI's sort, e.g. Most Downloaded.")] = None,
    nsfw: Annotated[bool | None, Query(description="Include (true) or leave out NSFW.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the last page.")] = None,
) -> ModelSearchPage:
    """One page of CivitAI's model search (answers are cached for a few minutes)."""
    return catalog.search(
        query,
        types=_split(types),
        base_models=_split(base_models),
        sort=sort,
        nsfw=nsfw,
        limit=limit,
        cursor=cursor,
    )


@router.get("/models/{model_id}", response_model=CivitaiModel)
def model(model_id: Annotated[int, Path(ge=1)], catalog: CatalogDep) -> CivitaiModel:
    """A CivitAI model with all its versions, files and hashes."""
    return catalog.model(model_id)


@router.get("/versions/{version_id}", response_model=CivitaiVersion)
def version(version_id: Annotated[int, Path(ge=1)], catalog: CatalogDep) -> CivitaiVersion:
    """A CivitAI model version with its files, hashes and trigger words."""
    return catalog.version(version_id)
