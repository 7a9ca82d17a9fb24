"""GalleryStore: image files under the gallery folder, indexed in the database, changed atomically.

Crash safety (kill -9 at any instant), by the order of the steps:
- save: the PNG goes to a hidden temp file beside its final name, is fsynced, then hard-linked to
  the final name (never replacing a file) and the temp removed; only then is the row inserted. A
  crash leaves at worst a temp file (reconcile deletes it) or a complete file without a row
  (reconcile rebuilds the row from the exact parameters the PNG carries in its `tsr` chunk).
- keep/trash/restore/undo (review.py): rows change inside a transaction, files are renamed, then
  the transaction commits. A crash before the commit leaves files where the new state wants them
  and rows in the old state: reconcile takes the file's place (in or out of the trash) as truth.
- purge: rows deleted, files unlinked, then commit; a crash leaves rows without files, which
  reconcile removes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import peewee
from pydantic import ValidationError

from tsr import paths
from tsr.db.database import db
from tsr.db.images import GalleryImage, GalleryLora, GalleryPrompt
from tsr.errors import BadRequest, Conflict, NotFound, RootViolation
from tsr.gallery import journal, review
from tsr.gallery.files import fsync_dir, publish, write_temp
from tsr.gallery.ids import IdMaker, first_id_at, parse_image_id, relative_file
from tsr.gallery.parameters import build_parameters
from tsr.gallery.png import image_size, read_chunks, with_text
from tsr.gallery.query import page_query, parse_cursor
from tsr.gallery.records import (
    PARAMETERS_CHUNK,
    TSR_CHUNK,
    fetch_images,
    fields_from_params,
    lora_rows,
    new_row_fields,
)
from tsr.gallery.thumbnails import (
    DEFAULT_SIZE,
    check_size,
    ensure_thumbnail,
    thumbnail_path,
)
from tsr.schemas.images import (
    MAX_PAGE,
    ActionResult,
    ImageFilters,
    ImageOut,
    ImagePage,
    ImageParams,
    ImageStats,
    ImageUpdate,
    ImportReport,
    LoraUse,
    PurgeResult,
    ReconcileReport,
    UndoResult,
)

TRASH_DIR = ".trash"
THUMBS_DIR = ".thumbs"
_ID_ATTEMPTS = 64


class GalleryStore:
    """The image gallery: files under `root` (trash in `root/.trash`), rows in the database."""

    def __init__(self, root: Path, *, thumbs_dir: Path | None = None) -> None:
        self.root = root.expanduser().absolute()
        self.trash_dir = self.root / TRASH_DIR
        self.thumbs_dir = (thumbs_dir or self.root / THUMBS_DIR).expanduser().absolute()
        self._ids = IdMaker()

    # ---- files ------------------------------------------------------------------------------

    def location(self, image_id: int, state: str) -> Path:
        """Where the file of an image in `state` lives (derived from the id, never stored)."""
        base = self.trash_dir if state == "trashed" else self.root
        return base / relative_file(image_id)

    def path_of(self, image_id: int | str) -> Path:
        """The file of an image; NotFound for unknown ids, RootViolation if it leads outside."""
        row = self._row(parse_image_id(image_id), GalleryImage.id, GalleryImage.state)
        path = self.location(row.id, row.state)
        if not paths.is_within(path, self.root):
            raise RootViolation(f"the file of image {row.id} lies outside the gallery {self.root}")
        return path

    def add_file(
        self,
        data: bytes,
        fields: dict[str, Any],
        loras: list[LoraUse],
        *,
        moment: datetime | None = None,
        state: str = "inbox",
    ) -> int:
        """Write a checked PNG under a new id (made at `moment`, default now) and index it."""
        size = image_size(read_chunks(data, check_crc=False))
        digest = hashlib.sha256(data).hexdigest()
        image_id = self._ids.make() if moment is None else self._first_free_id(moment)
        for attempt in range(_ID_ATTEMPTS):
            if attempt:
                # a file without a row (not reconciled yet) holds that id: step past it
                image_id = self._ids.make() if moment is None else image_id + 1
            target = self.location(image_id, state)
            if (
                self.location(image_id, "inbox").exists()
                or self.location(image_id, "trashed").exists()
            ):
                continue
            temp = write_temp(target, data)
            if not publish(temp, target):
                continue
            fsync_dir(target.parent)
            row = {**fields, **new_row_fields(image_id, len(data), digest, size), "state": state}
            if state == "trashed":
                row.update(restore_state="inbox", trashed_at=review.now_utc())
            try:
                with db.connection_context():
                    self.insert_row(row, loras)
            except Exception as exc:
                # no row, no file: a failed save must not come back at the next reconcile
                target.unlink(missing_ok=True)
                if isinstance(exc, peewee.IntegrityError) and self._exists(image_id):
                    continue  # a row already holds this id (another process): take another
                raise
            return image_id
        raise Conflict("could not find a free image id; is another tsr writing this gallery?")

    def insert_row(self, row: dict[str, Any], loras: list[LoraUse]) -> None:
        """Insert an image row and its LoRAs in one transaction (the file is already in place)."""
        with db.atomic("IMMEDIATE"):
            GalleryImage.insert(row).execute()
            GalleryPrompt.insert(
                {GalleryPrompt.rowid: row["id"], GalleryPrompt.prompt: row.get("prompt", "")}
            ).execute()
            if loras:
                GalleryLora.insert_many(lora_rows(row["id"], loras)).execute()

    # ---- saving and reading -----------------------------------------------------------------

    def save(self, png: bytes, params: ImageParams) -> ImageOut:
        """Store a generated PNG with its parameters written into it; return the new image."""
        chunks = read_chunks(png)
        width, height = image_size(chunks)
        # record the real size: sd-server rounds odd sizes up but reports the asked one
        params = params.model_copy(update={"width": width, "height": height})
        texts = {
            PARAMETERS_CHUNK: build_parameters(params),
            TSR_CHUNK: params.model_dump_json(exclude_defaults=True),
        }
        data = with_text(chunks, texts)
        fields = {**fields_from_params(params), "parameters": texts[PARAMETERS_CHUNK]}
        image_id = self.add_file(data, fields, params.loras)
        return self.get(image_id)

    def get(self, image_id: int | str) -> ImageOut:
        """One image; NotFound when there is none with that id."""
        number = parse_image_id(image_id)
        with db.connection_context():
            found = fetch_images(GalleryImage.select().where(GalleryImage.id == number))
        if not found:
            raise NotFound(f"there is no image with id {number}")
        return found[0]

    def thumbnail(self, image_id: int | str, size: int = DEFAULT_SIZE) -> Path:
        """The WebP thumbnail of an image (longer side `size`), made and cached on first request."""
        size = check_size(size)
        number = parse_image_id(image_id)
        target = thumbnail_path(self.thumbs_dir, number, size)
        # a cached thumbnail means the image exists: purge and reconcile delete thumbnails
        # together with the rows, so the hot path needs no database query at all
        if target.exists():
            return target
        row = self._row(number, GalleryImage.id, GalleryImage.state)
        source = self.location(row.id, row.state)
        if not source.is_file():
            raise NotFound(f"the file of image {row.id} is missing; run a gallery reconcile")
        return ensure_thumbnail(source, target, size)

    def stats(self) -> ImageStats:
        """Counts per state, favourites, and bytes on disk."""
        stats = ImageStats()
        image = GalleryImage
        with db.connection_context():
            query = image.select(
                image.state, peewee.fn.COUNT(image.id), peewee.fn.SUM(image.file_size)
            ).group_by(image.state)
            for state, count, size in query.tuples().execute():
                setattr(stats, state, count)
                stats.total_bytes += size or 0
                if state == "trashed":
                    stats.trash_bytes = size or 0
            stats.favourites = (
                image.select().where(image.favourite == True, image.state != "trashed").count()  # noqa: E712
            )
        return stats

    # ---- review: keep, trash, restore, purge, edit, undo ------------------------------------

    def keep(self, ids: Iterable[int | str]) -> ActionResult:
        """Mark images as kept (taking them out of the trash if they were there)."""
        return review.change_state(self, "keep", self._unique_ids(ids), lambda row: "kept")

    def trash(self, ids: Iterable[int | str]) -> ActionResult:
        """Move images into the trash folder (undo or restore brings them back)."""
        return review.change_state(self, "trash", self._unique_ids(ids), lambda row: "trashed")

    def restore(self, ids: Iterable[int | str]) -> ActionResult:
        """Take images out of the trash, back to the state they had before."""
        return review.change_state(
            self,
            "restore",
            self._unique_ids(ids),
            lambda row: (row.restore_state or "inbox") if row.state == "trashed" else None,
        )

    def purge(
        self, ids: Iterable[int | str] | None = None, *, older_than_days: float | None = None
    ) -> PurgeResult:
        """Delete trashed images for good: those given, those trashed over N days ago, or all.

        Images outside the trash are never purged, even when named.
        """
        wanted = None if ids is None else self._unique_ids(ids)
        return review.purge(self, wanted, older_than_days)

    def update(
        self,
        image_id: int | str,
        *,
        favourite: bool | None = None,
        rating: int | None = None,
        tags: list[str] | None = None,
        notes: str | None = None,
    ) -> ImageOut:
        """Edit an image's favourite flag, rating, tags or notes (undoable); None leaves a field."""
        try:
            change = ImageUpdate(favourite=favourite, rating=rating, tags=tags, notes=notes)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            raise BadRequest(f"bad image {field}: {first['msg']}") from None
        values = change.model_dump(exclude_none=True)
        number = parse_image_id(image_id)
        with db.connection_context(), db.atomic("IMMEDIATE"):
            row = self._row(number)
            if "tags" in values:
                values["tags"] = json.dumps(values["tags"], ensure_ascii=False)
            changed = {key: value for key, value in values.items() if getattr(row, key) != value}
            if changed:
                journal.record("edit " + ", ".join(sorted(changed)), [journal.snapshot(row)])
                for key, value in changed.items():
                    setattr(row, key, value)
                row.save()
        return self.get(number)

    def undo(self) -> UndoResult:
        """Revert the last keep, trash, restore or edit; repeat to go further back."""
        return review.undo(self)

    # ---- import and reconcile ---------------------------------------------------------------

    def import_folder(self, folder: Path, *, move: bool = False) -> ImportReport:
        """Copy (or move) the PNGs of a folder into the gallery, reading their parameters."""
        from tsr.gallery.importer import import_folder

        return import_folder(self, folder, move=move)

    def reconcile(self, *, deep: bool = False, force: bool = False) -> ReconcileReport:
        """Make the database and the gallery folder agree after a crash or outside changes."""
        from tsr.gallery.reconcile import reconcile

        return reconcile(self, deep=deep, force=force)

    # ---- internals --------------------------------------------------------------------------

    def _unique_ids(self, ids: Iterable[int | str]) -> list[int]:
        if isinstance(ids, str | int):
            raise BadRequest("give a list of image ids")
        return list(dict.fromkeys(parse_image_id(value) for value in ids))

    def _first_free_id(self, moment: datetime) -> int:
        """The first id for `moment` no row holds; images of one time get consecutive ids.

        (Many imported files can share one modification time, e.g. all from one archive.)
        """
        base = first_id_at(moment)
        with db.connection_context():
            # base itself, or the end of the run of consecutive ids that starts there
            cursor = db.execute_sql(
                "SELECT ? WHERE NOT EXISTS (SELECT 1 FROM gallery_image WHERE id = ?)"
                " UNION ALL SELECT * FROM (SELECT a.id + 1 FROM gallery_image AS a"
                " WHERE a.id >= ? AND NOT EXISTS"
                " (SELECT 1 FROM gallery_image AS b WHERE b.id = a.id + 1)"
                " ORDER BY a.id LIMIT 1)",
                (base, base, base),
            )
            return int(cursor.fetchone()[0])

    def _exists(self, image_id: int) -> bool:
        with db.connection_context():
            return bool(GalleryImage.select().where(GalleryImage.id == image_id).exists())

    def _row(self, image_id: int, *columns: Any) -> GalleryImage:
        with db.connection_context():
            row = GalleryImage.select(*columns).where(GalleryImage.id == image_id).first()
        if row is None:
            raise NotFound(f"there is no image with id {image_id}")
        return row

    # `list` last: later annotations in the class body would otherwise see this method
    def list(
        self,
        filters: ImageFilters | None = None,
        cursor: str | int | None = None,
        limit: int = 100,
    ) -> ImagePage:
        """A page of images matching `filters`, newest first; `next_cursor` fetches the next."""
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"the page size {limit} is out of range; use 1 to {MAX_PAGE}")
        after = parse_cursor(cursor)
        with db.connection_context():
            items = fetch_images(page_query(filters or ImageFilters(), after, limit))
        more = len(items) > limit
        items = items[:limit]
        next_cursor = str(items[-1].id) if more and items else None
        return ImagePage.model_construct(items=items, next_cursor=next_cursor)
