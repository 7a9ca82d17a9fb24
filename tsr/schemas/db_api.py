"""Wire models of the models-database API beyond `tsr.schemas.models`: edits and cached models."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: how `GET /api/db/models` orders cached CivitAI models
ModelSort = Literal["name", "id", "updated"]


def is_path_ref(ref: str) -> bool:
    """True for a file reference that names a path, not an id, a file name or a hash."""
    return "/" in ref or os.sep in ref or ref.startswith((".", "~"))


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileChange(_Wire):
    """`PATCH /api/db/files/{id}`: only the fields sent change.

    `family: null` (or `"auto"`) clears the override, so detection decides again; `notes: ""`
    or `null` clears the notes.
    """

    family: str | None = None
    hidden: bool | None = None
    notes: str | None = None


class TriggerChange(_Wire):
    """`POST /api/db/triggers` (add) and `POST /api/db/triggers/remove`: a file's words."""

    #: the file's database id (`GET /api/db/files/resolve` finds it from a name or path)
    file: int = Field(gt=0)
    words: list[str] = Field(min_length=1)


class CachedFileOut(_Wire):
    """A file of a cached CivitAI version."""

    id: int
    name: str
    size_kb: float | None = None
    type: str | None = None
    primary: bool = False
    format: str | None = None
    sha256: str | None = None
    autov2: str | None = None


class CachedVersionOut(_Wire):
    """A cached CivitAI version, with its trained words, files and the local files it is."""

    id: int
    name: str
    base_model: str | None = None
    base_model_type: str | None = None
    air: str | None = None
    published_at: str | None = None
    trained_words: list[str] = Field(default_factory=list)
    files: list[CachedFileOut] = Field(default_factory=list)
    #: database ids of local files linked to this version
    local_files: list[int] = Field(default_factory=list)


class CachedModelOut(_Wire):
    """A CivitAI model in the local cache."""

    id: int
    name: str
    type: str | None = None
    nsfw: bool = False
    poi: bool = False
    creator: str | None = None
    tags: list[str] = Field(default_factory=list)
    #: cached versions of it
    version_count: int = 0
    #: local files linked to one of its versions
    linked_files: int = 0
    #: when it was fetched in full (`tsr db cache`); None while only a version's summary is known
    fetched_at: datetime | None = None
    updated_at: datetime


class CachedModelDetail(CachedModelOut):
    """A cached CivitAI model with its description and every cached version."""

    description: str | None = None
    versions: list[CachedVersionOut] = Field(default_factory=list)


class CachedModelPage(_Wire):
    """A page of cached models and where the next page starts."""

    items: list[CachedModelOut]
    total: int
    offset: int
    limit: int
    next_offset: int | None = None
