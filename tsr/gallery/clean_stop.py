"""The gallery's folder stamps, recorded when a server stops cleanly and taken back at its start.

With the record, a start reconciles only the folders that changed while the server was down;
without it (a first start, a crash, a record that does not fit, stamps descending from a full
walk over a day old) the start reconciles everything.
The record is deleted as it is read, so a server that then crashes leaves none behind. It also
holds a fingerprint of the gallery's rows: a database changed or swapped while the server was
down does not fit the record.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from tsr.db.database import db
from tsr.gallery.files import fsync_dir, write_atomic
from tsr.gallery.reconcile import FolderStamps

if TYPE_CHECKING:
    from tsr.gallery.store import GalleryStore

log = logging.getLogger(__name__)

#: the record's file name in the data dir
RECORD_NAME = "gallery-state.json"
RECORD_VERSION = 1
#: seconds after which a start walks everything anyway: what folder stamps cannot see (a folder
#: restored with its old mtime by `cp -a` or `rsync -a`, a file rewritten in place) waits at
#: most this long
FULL_WALK_EVERY = 24 * 60 * 60.0


class _Record(BaseModel):
    """The file's content."""

    version: int
    root: str
    trash: str
    rows: list[Any]
    gallery: dict[str, tuple[int, int]]
    trash_folders: dict[str, tuple[int, int]]
    full_walk_at: float


def rows_fingerprint() -> list[Any]:
    """A cheap summary of the gallery's rows that changes when rows are added, removed, moved to
    or from the trash, or resized (call within a database connection)."""
    cursor = db.execute_sql(
        "SELECT count(*), coalesce(max(id), 0), total(id), total(file_size), "
        "coalesce(sum(state = 'trashed'), 0) FROM gallery_image"
    )
    return list(cursor.fetchone())


def record_clean_stop(path: Path, store: GalleryStore, stamps: FolderStamps) -> None:
    """Write the record for the next start (after the last change to the gallery)."""
    with db.connection_context():
        rows = rows_fingerprint()
    record = _Record(
        version=RECORD_VERSION,
        root=str(store.root),
        trash=str(store.trash_dir),
        rows=rows,
        gallery=stamps.gallery,
        trash_folders=stamps.trash,
        full_walk_at=stamps.full_walk_at,
    )
    try:
        write_atomic(path, record.model_dump_json().encode())
    except OSError as exc:
        # the next start reconciles everything: slower, never wrong
        log.warning("gallery state not recorded in %s: %s", path, exc.strerror or exc)


def take_clean_stop(
    path: Path, store: GalleryStore, max_age: float = FULL_WALK_EVERY
) -> FolderStamps | None:
    """The stamps recorded at the last clean stop, if they fit this gallery and its rows and
    descend from a full walk at most `max_age` seconds old; the record is deleted either way."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("gallery state in %s not read: %s", path, exc.strerror or exc)
        data = b""
    if not _forget(path) or not data:
        return None  # a record left in place could outlive a crash of this run
    try:
        record = _Record.model_validate(json.loads(data))
    except (ValueError, ValidationError):
        log.warning("gallery state in %s is unreadable; reconciling the whole gallery", path)
        return None
    where = (record.root, record.trash)
    if record.version != RECORD_VERSION or where != (str(store.root), str(store.trash_dir)):
        return None
    if not 0 <= time.time() - record.full_walk_at <= max_age:
        log.info("the whole gallery was last checked over a day ago; checking everything")
        return None
    with db.connection_context():
        if rows_fingerprint() != record.rows:
            log.info("the gallery's rows changed while the server was down; reconciling all")
            return None
    return FolderStamps(record.gallery, record.trash_folders, record.full_walk_at)


def _forget(path: Path) -> bool:
    """Delete the record; False when it could not be."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("gallery state in %s not removed: %s", path, exc.strerror or exc)
        return False
    # the deletion must reach the disk before anything changes: a crash then finds no record
    fsync_dir(path.parent)
    return True
