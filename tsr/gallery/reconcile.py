"""Reconcile: make the gallery folder and its database rows agree (after a crash or by hand edits).

The file system decides what exists and whether it is in the trash; the database keeps everything
else. Run it when the server starts, before it accepts work: it must not race a save.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tsr.db.database import db
from tsr.db.images import GalleryImage, delete_rows
from tsr.errors import TsrError
from tsr.gallery.files import TEMP_SUFFIX, move
from tsr.gallery.folders import (
    FileVisitor,
    FolderStamp,
    Stamps,
    day_of,
    list_folder,
    settled,
    walk_tree,
)
from tsr.gallery.ids import first_id_at, id_from_file_name
from tsr.gallery.importer import file_time, holds_sha256, read_image
from tsr.gallery.png import PngError, image_size, read_chunks
from tsr.gallery.records import new_row_fields
from tsr.gallery.thumbnails import remove_thumbnails
from tsr.schemas.images import ReconcileReport

if TYPE_CHECKING:
    from tsr.gallery.store import GalleryStore

#: unreadable files found in the gallery are moved here, never deleted
SET_ASIDE_DIR = ".set-aside"
#: ids per `IN (...)` query (SQLite's limit on parameters is far above)
ID_BATCH = 500


@dataclass
class FolderStamps:
    """The gallery's folders as a reconcile saw them: the next one lists only what changed."""

    gallery: Stamps = field(default_factory=dict)
    trash: Stamps = field(default_factory=dict)
    #: when (epoch seconds) the full walk these stamps descend from ran
    full_walk_at: float = 0.0


@dataclass
class _Found:
    """What a walk of the gallery folder found."""

    #: image id -> (its file, whether it is in the trash); paths as strings: a gallery has
    #: a hundred thousand of them, and Path objects cost a walk seconds
    images: dict[int, tuple[str, bool]] = field(default_factory=dict)
    #: PNG files not where an id puts them (dropped in by hand, or a second copy)
    foreign: list[tuple[Path, bool]] = field(default_factory=list)
    temp_removed: int = 0

    def removed_as_temp(self, folder: Path, name: str) -> bool:
        """Delete the file if it is a leftover temp file; True when it was one."""
        if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
            return False
        (folder / name).unlink(missing_ok=True)
        self.temp_removed += 1
        return True

    def visitor(self, in_trash: bool) -> FileVisitor:
        """A file visitor for the gallery root's tree, or the trash folder's."""
        #: a day folder's relative path -> the ids whose files belong in it
        id_ranges: dict[str, tuple[int, int] | None] = {}

        def visit(folder: Path, relative: str, name: str) -> None:
            if self.removed_as_temp(folder, name) or not name.lower().endswith(".png"):
                return
            if relative not in id_ranges:
                day = day_of(relative)
                id_ranges[relative] = None if day is None else _day_ranges({day})[0]
            ids = id_ranges[relative]
            image_id = id_from_file_name(name)
            # `<id>.png` in the folder of the day the id was made (what relative_file says)
            if (
                image_id is not None
                and ids is not None
                and ids[0] <= image_id < ids[1]
                and image_id not in self.images
            ):
                self.images[image_id] = (os.path.join(folder, name), in_trash)
            else:
                self.foreign.append((folder / name, in_trash))

        return visit


def _temp_file_remover(found: _Found) -> FileVisitor:
    def visit(folder: Path, _relative: str, name: str) -> None:
        found.removed_as_temp(folder, name)

    return visit


def _walk_gallery(
    store: GalleryStore, found: _Found, since: FolderStamps | None
) -> tuple[FolderStamps, set[date] | None]:
    """Walk the gallery and its trash (only what changed since `since`, when given; the
    thumbnails too when not); the stamps seen, and the days whose rows must be checked (None:
    every day)."""
    walks = []
    for base, in_trash, previous in (
        (store.root, False, since.gallery if since else None),
        (store.trash_dir, True, since.trash if since else None),
    ):
        walks.append(walk_tree(base, previous, found.visitor(in_trash)))
    stamps = FolderStamps(walks[0].stamps, walks[1].stamps)
    if since is None:
        # a half-written thumbnail is left only by a process that was killed, never by a clean
        # stop: the thumbnails (as many as images) are looked through only in a full reconcile
        walk_tree(store.thumbs_dir, None, _temp_file_remover(found))
        return stamps, None
    days: set[date] = set()
    for walk in walks:
        days.update(day for day in map(day_of, walk.listed | walk.vanished) if day is not None)
    # a day's images live in its folder under the root or under the trash: a day that changed
    # on one side is read on both, or the images on the unchanged side would look missing
    sides = ((walks[0], store.root, False), (walks[1], store.trash_dir, True))
    for day in days:
        relative = f"{day:%Y/%m/%d}"  # the folder relative_file puts that day's images in
        for walk, base, in_trash in sides:
            if relative not in walk.listed:
                list_folder(base, relative, found.visitor(in_trash))
    return stamps, days


def _same_folder(folder: Path, stamp: FolderStamp | None) -> bool:
    """True when `folder` is the very folder (same inode) that `stamp` was taken of."""
    try:
        inode = os.stat(folder).st_ino
    except OSError:
        return False
    return stamp is not None and stamp[1] == inode


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _day_ranges(days: set[date]) -> list[tuple[int, int]]:
    """Image id ranges [low, high) covering `days`, consecutive days merged."""
    ranges: list[tuple[int, int]] = []
    for day in sorted(days):
        low = first_id_at(_midnight(day))
        high = first_id_at(_midnight(day) + timedelta(days=1))
        if ranges and ranges[-1][1] == low:
            ranges[-1] = (ranges[-1][0], high)
        else:
            ranges.append((low, high))
    return ranges


def _set_aside(store: GalleryStore, path: Path, report: ReconcileReport) -> None:
    target = store.root / SET_ASIDE_DIR / path.relative_to(store.root)
    with contextlib.suppress(OSError):
        move(path, target)
        report.set_aside.append(str(target))


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _rows_to_check(days: set[date] | None) -> list[tuple[int, str, int, str]]:
    """(id, state, size, sha256) of every row, or of the rows of `days`."""
    # plain SQL: building a hundred thousand rows through peewee took a second
    columns = "SELECT id, state, file_size, sha256 FROM gallery_image"
    if days is None:
        return list(db.execute_sql(columns).fetchall())
    rows: list[tuple[int, str, int, str]] = []
    for low, high in _day_ranges(days):
        cursor = db.execute_sql(f"{columns} WHERE id >= ? AND id < ?", (low, high))
        rows.extend(cursor.fetchall())
    return rows


def _check_rows(
    store: GalleryStore,
    found: _Found,
    deep: bool,
    report: ReconcileReport,
    days: set[date] | None,
) -> None:
    image = GalleryImage
    now = datetime.now(UTC).replace(tzinfo=None)
    for image_id, state, size, sha256 in _rows_to_check(days):
        where = found.images.get(image_id)
        if where is None:
            delete_rows([image_id])
            remove_thumbnails(store.thumbs_dir, image_id)
            report.rows_removed.append(image_id)
            continue
        path, in_trash = where
        if in_trash != (state == "trashed"):
            if in_trash:
                changes = {"state": "trashed", "restore_state": state, "trashed_at": now}
            else:
                row = image.get_by_id(image_id)
                changes = {"state": row.restore_state or "inbox", "restore_state": None}
                changes["trashed_at"] = None
            image.update(changes).where(image.id == image_id).execute()
            report.states_fixed.append(image_id)
        actual_size = os.stat(path).st_size
        if actual_size != size or (deep and _sha256(path) != sha256):
            image.update(file_size=actual_size, sha256=_sha256(path)).where(
                image.id == image_id
            ).execute()
            report.rows_updated.append(image_id)


def _add_orphans(
    store: GalleryStore, found: _Found, report: ReconcileReport, days: set[date] | None
) -> None:
    if days is None:
        known = {row_id for (row_id,) in db.execute_sql("SELECT id FROM gallery_image")}
    else:
        candidates = list(found.images)
        known = set()
        for start in range(0, len(candidates), ID_BATCH):
            batch = candidates[start : start + ID_BATCH]
            query = GalleryImage.select(GalleryImage.id).where(GalleryImage.id.in_(batch))
            known.update(row_id for (row_id,) in query.tuples().execute())
    for image_id, (file, in_trash) in sorted(found.images.items()):
        if image_id in known:
            continue
        path = Path(file)
        try:
            data, fields, loras = read_image(path)
            size = image_size(read_chunks(data, check_crc=False))
        except (PngError, OSError):
            _set_aside(store, path, report)
            continue
        digest = hashlib.sha256(data).hexdigest()
        row = {**fields, **new_row_fields(image_id, len(data), digest, size)}
        row["state"] = "trashed" if in_trash else "inbox"
        if in_trash:
            row.update(restore_state="inbox", trashed_at=datetime.now(UTC).replace(tzinfo=None))
        store.insert_row(row, loras)
        report.files_added.append(image_id)


def _adopt_foreign(store: GalleryStore, found: _Found, report: ReconcileReport) -> None:
    for path, in_trash in found.foreign:
        try:
            data, fields, loras = read_image(path)
        except (PngError, OSError):
            _set_aside(store, path, report)
            continue
        if holds_sha256(hashlib.sha256(data).hexdigest()):
            # a second copy of an image the gallery holds: keep it aside rather than delete it
            _set_aside(store, path, report)
            continue
        state = "trashed" if in_trash else "inbox"
        image_id = store.add_file(data, fields, loras, moment=file_time(path), state=state)
        path.unlink(missing_ok=True)
        report.files_added.append(image_id)


def reconcile(store: GalleryStore, *, deep: bool = False, force: bool = False) -> ReconcileReport:
    """Bring rows and files into agreement; see the module docstring for who wins.

    Rows whose file is gone are removed; files without a row get one (from the parameters they
    carry); a file in or out of the trash sets its row's state; temp files are deleted; unreadable
    files are set aside. `deep` also re-hashes every file. Refuses to drop every row of a
    gallery whose folder is empty or missing (an unmounted disk?) unless `force`.
    """
    return reconcile_changes(store, None, deep=deep, force=force)[0]


def reconcile_changes(
    store: GalleryStore,
    since: FolderStamps | None,
    *,
    deep: bool = False,
    force: bool = False,
) -> tuple[ReconcileReport, FolderStamps]:
    """Reconcile what changed since a reconcile saw the folders as `since` (all when None), and
    stamp the folders for the next one.

    Only folders whose stamp changed are listed, and only the rows of the days they hold are
    checked. `since` must come from a run after which nothing changed the rows or the folders
    without changing the folders' stamps (a clean stop of the only server of this data dir).
    """
    if deep or (since is not None and not _same_folder(store.root, since.gallery.get(""))):
        # re-hashing reads every file anyway; a root that is gone or another folder now (an
        # empty mount point, a folder restored from a backup) is for the full checks to judge
        since = None
    report = ReconcileReport()
    found = _Found()
    taken_before = time.time_ns()
    stamps, days = _walk_gallery(store, found, since)
    with db.connection_context():
        if days is None:
            rows = GalleryImage.select().count()
            if rows and not found.images and not force:
                raise TsrError(
                    f"the gallery folder {store.root} holds none of the {rows} images the "
                    "database lists; check that it is mounted, or reconcile with force to "
                    "forget them"
                )
        with db.atomic("IMMEDIATE"):
            _check_rows(store, found, deep, report, days)
            _add_orphans(store, found, report, days)
        _adopt_foreign(store, found, report)
    report.temp_files_removed = found.temp_removed
    next_stamps = FolderStamps(
        settled(stamps.gallery, taken_before),
        settled(stamps.trash, taken_before),
        taken_before / 1e9 if since is None else since.full_walk_at,
    )
    return report, next_stamps
