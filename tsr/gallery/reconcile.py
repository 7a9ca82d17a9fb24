"""Reconcile: make the gallery folder and its database rows agree (after a crash or by hand edits).

The file system decides what exists and whether it is in the trash; the database keeps everything
else. Run it when the server starts, before it accepts work: it must not race a save.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tsr.db.database import db
from tsr.db.images import GalleryImage, delete_rows
from tsr.errors import TsrError
from tsr.gallery.files import TEMP_SUFFIX, move
from tsr.gallery.ids import id_from_file_name, relative_file
from tsr.gallery.importer import file_time, holds_sha256, read_image
from tsr.gallery.png import PngError, image_size, read_chunks
from tsr.gallery.records import new_row_fields
from tsr.gallery.thumbnails import remove_thumbnails
from tsr.schemas.images import ReconcileReport

if TYPE_CHECKING:
    from tsr.gallery.store import GalleryStore

#: unreadable files found in the gallery are moved here, never deleted
SET_ASIDE_DIR = ".set-aside"


@dataclass
class _Found:
    """What a walk of the gallery folder found."""

    #: image id -> (its file, whether it is in the trash)
    images: dict[int, tuple[Path, bool]] = field(default_factory=dict)
    #: PNG files not where an id puts them (dropped in by hand, or a second copy)
    foreign: list[tuple[Path, bool]] = field(default_factory=list)
    temp_removed: int = 0


def _walk(base: Path, in_trash: bool, found: _Found) -> None:
    for directory, subdirs, files in os.walk(base):
        # dot folders hold the trash, thumbnails and set-aside files: not images of this tree
        subdirs[:] = [name for name in subdirs if not name.startswith(".")]
        here = Path(directory)
        for name in files:
            path = here / name
            if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                path.unlink(missing_ok=True)
                found.temp_removed += 1
                continue
            if not name.lower().endswith(".png"):
                continue
            image_id = id_from_file_name(name)
            if (
                image_id is not None
                and path == base / relative_file(image_id)
                and image_id not in found.images
            ):
                found.images[image_id] = (path, in_trash)
            else:
                found.foreign.append((path, in_trash))


def _remove_temp_files(folder: Path) -> int:
    removed = 0
    for directory, _subdirs, files in os.walk(folder):
        for name in files:
            if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                (Path(directory) / name).unlink(missing_ok=True)
                removed += 1
    return removed


def _set_aside(store: GalleryStore, path: Path, report: ReconcileReport) -> None:
    target = store.root / SET_ASIDE_DIR / path.relative_to(store.root)
    with contextlib.suppress(OSError):
        move(path, target)
        report.set_aside.append(str(target))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_rows(store: GalleryStore, found: _Found, deep: bool, report: ReconcileReport) -> None:
    image = GalleryImage
    rows = image.select(image.id, image.state, image.file_size, image.sha256).tuples().execute()
    now = datetime.now(UTC).replace(tzinfo=None)
    for image_id, state, size, sha256 in list(rows):
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
        actual_size = path.stat().st_size
        if actual_size != size or (deep and _sha256(path) != sha256):
            image.update(file_size=actual_size, sha256=_sha256(path)).where(
                image.id == image_id
            ).execute()
            report.rows_updated.append(image_id)


def _add_orphans(store: GalleryStore, found: _Found, report: ReconcileReport) -> None:
    known = {row_id for (row_id,) in GalleryImage.select(GalleryImage.id).tuples().execute()}
    for image_id, (path, in_trash) in sorted(found.images.items()):
        if image_id in known:
            continue
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
    report = ReconcileReport()
    found = _Found()
    if store.root.is_dir():
        _walk(store.root, False, found)
        if store.trash_dir.is_dir():
            _walk(store.trash_dir, True, found)
    report.temp_files_removed = found.temp_removed
    if store.thumbs_dir.is_dir():
        report.temp_files_removed += _remove_temp_files(store.thumbs_dir)
    with db.connection_context():
        rows = GalleryImage.select().count()
        if rows and not found.images and not force:
            raise TsrError(
                f"the gallery folder {store.root} holds none of the {rows} images the database "
                "lists; check that it is mounted, or reconcile with force to forget them"
            )
        with db.atomic("IMMEDIATE"):
            _check_rows(store, found, deep, report)
            _add_orphans(store, found, report)
        _adopt_foreign(store, found, report)
    return report
