"""The models database over HTTP: files, lookups, overrides, triggers, search, stats.

Nothing a client sends becomes a filesystem path unchecked: files are named by database id,
names and hashes resolve through the database, and paths must lie inside the model roots.
The long work (scan, link, cache) is in `db_tasks`, the cached CivitAI models in `db_models`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from tsr.db.database import db
from tsr.db.files import resolve_file, set_override
from tsr.db.queries import duplicates, file_detail, list_files, search, stats
from tsr.db.triggers import add_trigger, remove_trigger, triggers_for
from tsr.errors import BadRequest, Conflict
from tsr.schemas.db_api import FileChange, TriggerChange, is_path_ref
from tsr.schemas.models import (
    DbStats,
    DuplicateGroup,
    FileDetail,
    FileFilter,
    FilePage,
    FileSort,
    FileTriggers,
    ModelFile,
    SearchHit,
)
from tsr.server.deps import ConfigDep
from tsr.server.routers import db_models, db_tasks
from tsr.server.routers.db_paths import checked_path

router = APIRouter(prefix="/api/db", tags=["db"])
CAPABILITIES = ("db",)

FileId = Annotated[int, PathParam(ge=1, description="The file's database id.")]


@router.get("/files", response_model=FilePage)
def get_files(
    kind: Annotated[str | None, Query(description="checkpoint, lora, vae, embedding...")] = None,
    family: Annotated[str | None, Query(description="sd15, sdxl, pony, flux...")] = None,
    linked: Annotated[bool | None, Query(description="Only (un)linked files.")] = None,
    missing: Annotated[bool | None, Query(description="Only missing (present) files.")] = None,
    hidden: Annotated[bool, Query(description="Include the files the user hid.")] = False,
    sort: FileSort = "name",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, description="`next_offset` of the last page.")] = 0,
) -> FilePage:
    """A page of model files; `next_offset` says where the next page starts."""
    filters = FileFilter(
        kind=kind, family=family, linked=linked, missing=missing, include_hidden=hidden
    )
    with db.connection_context():
        return list_files(filters, sort=sort, limit=limit, offset=offset)


@router.get("/files/resolve", response_model=ModelFile)
def resolve(
    config: ConfigDep,
    ref: Annotated[
        str,
        Query(
            min_length=1,
            max_length=4096,
            description="An id, an absolute path inside the model roots, a file name (with or "
            "without its suffix), or a SHA256 (a prefix of 8+ hex digits, e.g. AutoV2).",
        ),
    ],
) -> ModelFile:
    """The one file `ref` names: 404 when none, 409 naming the candidates when several."""
    text = ref.strip()
    if is_path_ref(text):
        text = checked_path(text, config)
    with db.connection_context():
        try:
            return resolve_file(text)
        except BadRequest as exc:
            if not text:
                raise
            # the one other refusal: several files carry that name
            raise Conflict(str(exc)) from None


@router.get("/files/{file_id}", response_model=FileDetail)
def get_file_detail(file_id: FileId) -> FileDetail:
    """One file with its header metadata, merged trigger words and the user's override."""
    with db.connection_context():
        return file_detail(file_id)


@router.patch("/files/{file_id}", response_model=ModelFile)
def change_file(file_id: FileId, change: FileChange) -> ModelFile:
    """Set what the user decides about a file; only the fields sent change.

    `family` overrides detection (`null` or `"auto"`: detection decides again), `hidden`
    keeps it out of lists and search, `notes` are free text (`""` or `null` clears them).
    """
    sent = change.model_fields_set
    clear_family = "family" in sent and change.family in (None, "auto")
    notes = (change.notes or "") if "notes" in sent else None
    with db.connection_context():
        return set_override(
            file_id,
            family=None if clear_family else change.family,
            clear_family=clear_family,
            hidden=change.hidden,
            notes=notes,
        )


@router.get("/triggers", response_model=FileTriggers)
def get_triggers(
    file: Annotated[int, Query(ge=1, description="The file's database id.")],
    hidden: Annotated[bool, Query(description="Also the words the user removed.")] = False,
) -> FileTriggers:
    """A file's trigger words, one entry per word with all its sources (CivitAI first)."""
    with db.connection_context():
        return triggers_for(file, include_hidden=hidden)


@router.post("/triggers", response_model=FileTriggers)
def add_triggers(change: TriggerChange) -> FileTriggers:
    """Add the user's own words to a file (a word the user had removed comes back)."""
    with db.connection_context():
        return add_trigger(change.file, change.words)


@router.post("/triggers/remove", response_model=FileTriggers)
def remove_triggers(change: TriggerChange) -> FileTriggers:
    """Drop words from a file: the user's are deleted, others hidden (a refresh keeps them so)."""
    with db.connection_context():
        return remove_trigger(change.file, change.words)


@router.get("/search", response_model=list[SearchHit])
def search_files(
    q: Annotated[str, Query(min_length=1, max_length=500, description="Words; all must match.")],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    hidden: Annotated[bool, Query(description="Include the files the user hid.")] = False,
) -> list[SearchHit]:
    """Files whose name, CivitAI names, trigger words or tags match every word, best first."""
    with db.connection_context():
        return search(q, limit=limit, include_hidden=hidden)


@router.get("/stats", response_model=DbStats)
def get_stats() -> DbStats:
    """Counts: files, kinds, families, links, the CivitAI cache, duplicates, the last scan."""
    with db.connection_context():
        return stats()


@router.get("/duplicates", response_model=list[DuplicateGroup])
def get_duplicates() -> list[DuplicateGroup]:
    """Contents (SHA256) present at several paths, biggest first."""
    with db.connection_context():
        return duplicates()


# included after the routes above: `/files/resolve` must come before `/files/{file_id}`
router.include_router(db_models.router)
router.include_router(db_tasks.router)
