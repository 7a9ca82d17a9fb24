"""Wire models for the gallery: images, filters, pages, edits, undo, import, reconcile."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ImageState = Literal["inbox", "kept", "trashed"]
#: `active` = inbox and kept (everything outside the trash); `all` includes the trash
StateFilter = Literal["active", "inbox", "kept", "trashed", "all"]
ParametersSource = Literal["tsr", "a1111", "sdcpp", "unknown"]
MAX_PAGE = 500
MAX_TAGS = 64
_HEX = re.compile(r"^[0-9a-f]+$")


class LoraUse(BaseModel):
    """A LoRA an image was made with: file stem, weight, and SHA256 (or the prefix known)."""

    name: str
    weight: float | None = 1.0
    sha256: str | None = None

    @field_validator("sha256")
    @classmethod
    def _hex_hash(cls, value: str | None) -> str | None:
        return _check_hex(value)


def _check_hex(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    value = value.lower()
    if not _HEX.match(value):
        raise ValueError("a hash is hexadecimal digits")
    return value


class ImageParams(BaseModel):
    """What an image was made with, as the generation job hands it to the gallery."""

    model_config = ConfigDict(extra="forbid")

    #: checkpoint file stem, as the A1111 `Model:` field shows it
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    loras: list[LoraUse] = Field(default_factory=list)
    prompt: str = ""
    negative: str = ""
    #: None = read from the PNG itself (the gallery always records the real size)
    width: int | None = Field(None, ge=1)
    height: int | None = Field(None, ge=1)
    steps: int | None = None
    cfg: float | None = None
    #: WebUI labels ("DPM++ 2M", "Karras")
    sampler: str | None = None
    scheduler: str | None = None
    #: the real seed sd-server used
    seed: int | None = None
    clip_skip: int | None = None
    backend: str | None = None
    job: str | None = None
    batch_index: int | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("checkpoint_sha256")
    @classmethod
    def _hex_hash(cls, value: str | None) -> str | None:
        return _check_hex(value)


class ParsedParameters(BaseModel):
    """Fields read back from an A1111 or sd.cpp `parameters` text (hashes are prefixes)."""

    prompt: str = ""
    negative: str = ""
    steps: int | None = None
    sampler: str | None = None
    scheduler: str | None = None
    cfg: float | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    checkpoint: str | None = None
    #: AutoV2 (10 hex) as written in `Model hash`
    checkpoint_hash: str | None = None
    clip_skip: int | None = None
    loras: list[LoraUse] = Field(default_factory=list)
    version: str | None = None
    source: ParametersSource = "unknown"
    #: every other field, by its A1111 key (sd.cpp's `SDCPP` JSON parsed)
    extra: dict[str, Any] = Field(default_factory=dict)


class ImageOut(BaseModel):
    """One gallery image as the API returns it."""

    id: int
    #: path relative to the gallery root (outside the trash)
    file: str
    created: datetime
    width: int
    height: int
    file_size: int
    sha256: str
    state: ImageState
    trashed_at: datetime | None = None
    favourite: bool = False
    rating: int = 0
    tags: list[str] = Field(default_factory=list)
    notes: str = ""
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    checkpoint_hash: str | None = None
    loras: list[LoraUse] = Field(default_factory=list)
    prompt: str = ""
    negative: str = ""
    steps: int | None = None
    cfg: float | None = None
    sampler: str | None = None
    scheduler: str | None = None
    seed: int | None = None
    clip_skip: int | None = None
    backend: str | None = None
    job: str | None = None
    batch_index: int | None = None
    source: ParametersSource = "tsr"
    parameters: str = ""
    extra: dict[str, Any] = Field(default_factory=dict)


class ImageFilters(BaseModel):
    """Which images a page shows; every filter left out matches everything."""

    model_config = ConfigDict(extra="forbid")

    state: StateFilter = "active"
    favourite: bool | None = None
    #: a checkpoint stem, or a hash (10 to 64 hex digits: AutoV2 prefix or full SHA256)
    checkpoint: str | None = None
    #: a LoRA stem
    lora: str | None = None
    #: text the prompt contains (case-insensitive for ASCII letters)
    prompt: str | None = None
    #: made at or after this moment (a time without a zone is UTC)
    since: datetime | None = None
    #: made before this moment (a time without a zone is UTC)
    until: datetime | None = None
    min_rating: int | None = Field(None, ge=0, le=5)


class ImagePage(BaseModel):
    """One page of images, newest first; pass `next_cursor` back to get the next page."""

    items: list[ImageOut]
    next_cursor: str | None = None


class ImageStats(BaseModel):
    """Counts and sizes over the whole gallery."""

    inbox: int = 0
    kept: int = 0
    trashed: int = 0
    favourites: int = 0
    #: bytes of every image file, trash included
    total_bytes: int = 0
    trash_bytes: int = 0


class ImageUpdate(BaseModel):
    """An edit of an image's own fields; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    favourite: bool | None = None
    rating: int | None = Field(None, ge=0, le=5)
    tags: list[str] | None = Field(None, max_length=MAX_TAGS)
    notes: str | None = Field(None, max_length=10_000)

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, tags: list[str] | None) -> list[str] | None:
        if tags is None:
            return None
        cleaned: list[str] = []
        for tag in tags:
            text = " ".join(tag.split())
            if len(text) > 64:
                raise ValueError(f"the tag {text[:20]!r}... is longer than 64 characters")
            if text and text not in cleaned:
                cleaned.append(text)
        return cleaned


class ActionResult(BaseModel):
    """The images an action (keep, trash, restore) changed; others were already so."""

    action: str
    ids: list[int]


class UndoResult(BaseModel):
    """What an undo reverted (`action` None: nothing left to undo) and how many undos remain."""

    action: str | None
    ids: list[int] = Field(default_factory=list)
    remaining: int = 0


class PurgeResult(BaseModel):
    """Trashed images deleted for good, and the bytes that freed."""

    ids: list[int]
    bytes_freed: int = 0


class ImportProblem(BaseModel):
    """A file an import could not take, and why."""

    file: str
    reason: str


class ImportReport(BaseModel):
    """The outcome of importing a folder of PNGs."""

    imported: list[int] = Field(default_factory=list)
    #: files whose exact bytes the gallery already holds
    duplicates: list[str] = Field(default_factory=list)
    failed: list[ImportProblem] = Field(default_factory=list)
    #: files without a .png suffix, left alone
    ignored: int = 0


class ReconcileReport(BaseModel):
    """What reconciling the gallery folder with the database changed."""

    #: image files that had no row: rows made from their embedded parameters
    files_added: list[int] = Field(default_factory=list)
    #: rows whose file was gone: removed
    rows_removed: list[int] = Field(default_factory=list)
    #: rows whose state disagreed with where the file was (in or out of the trash): fixed
    states_fixed: list[int] = Field(default_factory=list)
    #: rows whose size or hash disagreed with the file: updated
    rows_updated: list[int] = Field(default_factory=list)
    #: leftovers of interrupted writes, deleted
    temp_files_removed: int = 0
    #: unreadable image files moved to the gallery's `.set-aside` folder
    set_aside: list[str] = Field(default_factory=list)
