"""The CivitAI models held in the local cache: a filtered page of them, and one in full."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Annotated, Any

import peewee
from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from tsr.db.database import db
from tsr.db.files import tuple_rows
from tsr.db.models import (
    CachedFile,
    CachedFileHash,
    CachedModel,
    CachedModelTag,
    CachedTrainedWord,
    CachedVersion,
    FileLink,
)
from tsr.errors import NotFound
from tsr.schemas.db_api import (
    CachedFileOut,
    CachedModelDetail,
    CachedModelOut,
    CachedModelPage,
    CachedVersionOut,
    ModelSort,
)

router = APIRouter(tags=["db"])

_ORDER: dict[str, list[Any]] = {
    "name": [CachedModel.name.collate("NOCASE"), CachedModel.id],
    "id": [CachedModel.id],
    "updated": [CachedModel.updated_at.desc(), CachedModel.id],
}


def _linked_model_ids() -> peewee.ModelSelect[CachedVersion]:
    return (
        CachedVersion.select(CachedVersion.model)
        .join(FileLink, on=FileLink.version == CachedVersion.id)
        .distinct()
    )


def _counts(query: peewee.ModelSelect[Any]) -> dict[int, int]:
    return dict(tuple_rows(query))


def _summaries(rows: list[CachedModel]) -> list[CachedModelOut]:
    ids = [row.id for row in rows]
    if not ids:
        return []
    tags: dict[int, list[str]] = defaultdict(list)
    tag_rows = CachedModelTag.select(CachedModelTag.model, CachedModelTag.tag)
    for model_id, tag in tuple_rows(tag_rows.where(CachedModelTag.model.in_(ids))):
        tags[model_id].append(tag)
    versions = _counts(
        CachedVersion.select(CachedVersion.model, peewee.fn.COUNT(CachedVersion.id))
        .where(CachedVersion.model.in_(ids))
        .group_by(CachedVersion.model)
    )
    linked = _counts(
        CachedVersion.select(CachedVersion.model, peewee.fn.COUNT(FileLink.id))
        .join(FileLink, on=FileLink.version == CachedVersion.id)
        .where(CachedVersion.model.in_(ids))
        .group_by(CachedVersion.model)
    )
    return [
        CachedModelOut(
            id=row.id,
            name=row.name,
            type=row.type,
            nsfw=row.nsfw,
            poi=row.poi,
            creator=row.creator,
            tags=tags[row.id],
            version_count=versions.get(row.id, 0),
            linked_files=linked.get(row.id, 0),
            fetched_at=_time(row.fetched_at),
            updated_at=_time(row.updated_at) or datetime.fromtimestamp(0, UTC),
        )
        for row in rows
    ]


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


@router.get("/models", response_model=CachedModelPage)
def list_models(
    q: Annotated[str | None, Query(max_length=200, description="Words in the name.")] = None,
    type: Annotated[str | None, Query(description="CivitAI's type: LORA, Checkpoint...")] = None,
    linked: Annotated[
        bool | None, Query(description="Only models local files are (true) or are not linked to.")
    ] = None,
    sort: ModelSort = "name",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CachedModelPage:
    """A page of the CivitAI models in the local cache (from links and `tsr db cache`)."""
    with db.connection_context():
        query = CachedModel.select()
        if q:
            query = query.where(CachedModel.name.contains(q.strip()))
        if type:
            query = query.where(peewee.fn.LOWER(CachedModel.type) == type.strip().lower())
        if linked is not None:
            ids = _linked_model_ids()
            query = query.where(CachedModel.id.in_(ids) if linked else CachedModel.id.not_in(ids))
        total = query.count()
        rows = list(query.order_by(*_ORDER[sort]).offset(offset).limit(limit))
        items = _summaries(rows)
    next_offset = offset + len(items) if offset + len(items) < total else None
    return CachedModelPage(
        items=items, total=total, offset=offset, limit=limit, next_offset=next_offset
    )


def _versions(model_id: int) -> list[CachedVersionOut]:
    versions = list(
        CachedVersion.select()
        .where(CachedVersion.model == model_id)
        .order_by(CachedVersion.id.desc())
    )
    ids = [version.id for version in versions]
    if not ids:
        return []
    words: dict[int, list[str]] = defaultdict(list)
    word_rows = CachedTrainedWord.select(CachedTrainedWord.version, CachedTrainedWord.word)
    for version_id, word in tuple_rows(
        word_rows.where(CachedTrainedWord.version.in_(ids)).order_by(CachedTrainedWord.position)
    ):
        words[version_id].append(word)
    files = list(
        tuple_rows(
            CachedFile.select(
                CachedFile.id, CachedFile.version, CachedFile.name, CachedFile.size_kb,
                CachedFile.type, CachedFile.primary, CachedFile.format,
            )
            .where(CachedFile.version.in_(ids))
            .order_by(CachedFile.id)
        )
    )  # fmt: skip
    hashes: dict[int, dict[str, str]] = defaultdict(dict)
    hash_rows = CachedFileHash.select(
        CachedFileHash.file, CachedFileHash.algorithm, CachedFileHash.value
    ).where(CachedFileHash.file.in_([row[0] for row in files]))
    for file_id, algorithm, value in tuple_rows(hash_rows):
        hashes[file_id][algorithm] = value
    by_version: dict[int, list[CachedFileOut]] = defaultdict(list)
    for file_id, version_id, name, size_kb, kind, primary, form in files:
        by_version[version_id].append(
            CachedFileOut(
                id=file_id,
                name=name,
                size_kb=size_kb,
                type=kind,
                primary=bool(primary),
                format=form,
                sha256=hashes[file_id].get("SHA256"),
                autov2=hashes[file_id].get("AutoV2"),
            )
        )
    local: dict[int, list[int]] = defaultdict(list)
    link_rows = FileLink.select(FileLink.version, FileLink.file).where(FileLink.version.in_(ids))
    for version_id, file_id in tuple_rows(link_rows.order_by(FileLink.file)):
        local[version_id].append(file_id)
    return [
        CachedVersionOut(
            id=version.id,
            name=version.name,
            base_model=version.base_model,
            base_model_type=version.base_model_type,
            air=version.air,
            published_at=version.published_at,
            trained_words=words[version.id],
            files=by_version[version.id],
            local_files=local[version.id],
        )
        for version in versions
    ]


@router.get("/models/{model_id}", response_model=CachedModelDetail)
def get_model(model_id: Annotated[int, PathParam(ge=1)]) -> CachedModelDetail:
    """One cached CivitAI model with every cached version, its files and trained words."""
    with db.connection_context():
        row = CachedModel.get_or_none(CachedModel.id == model_id)
        if row is None:
            raise NotFound(
                f"CivitAI model {model_id} is not in the local cache; "
                f"fetch it with `tsr db cache {model_id}`"
            )
        summary = _summaries([row])[0]
        versions = _versions(model_id)
    return CachedModelDetail(**summary.model_dump(), description=row.description, versions=versions)
