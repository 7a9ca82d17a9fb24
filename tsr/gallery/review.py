"""Review actions behind GalleryStore: state changes (keep, trash, restore), undo, and purge.

Each runs in one IMMEDIATE transaction: rows change, files are renamed, then it commits; a crash
before the commit leaves the files where the new state wants them, and reconcile follows them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsr.db.database import db
from tsr.db.images import GalleryImage, delete_rows
from tsr.errors import BadRequest, NotFound, TsrError
from tsr.gallery import journal
from tsr.gallery.files import move
from tsr.gallery.thumbnails import remove_thumbnails
from tsr.schemas.images import ActionResult, PurgeResult, UndoResult

if TYPE_CHECKING:
    from tsr.gallery.store import GalleryStore

#: SQLite allows 32,766 bound values; stay far below it
_CHUNK = 500


def now_utc() -> datetime:
    """Now, as the database stores times (naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def chunks(ids: list[int]) -> Iterable[list[int]]:
    """`ids` in slices small enough for one IN (...) each."""
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def rows_by_id(ids: list[int]) -> dict[int, GalleryImage]:
    """The rows of those ids that exist."""
    found: dict[int, GalleryImage] = {}
    for batch in chunks(ids):
        found.update(
            (row.id, row) for row in GalleryImage.select().where(GalleryImage.id.in_(batch))
        )
    return found


def move_files(moves: list[tuple[Path, Path]]) -> None:
    """Rename files into their new places; on failure put back those moved, then raise."""
    done: list[tuple[Path, Path]] = []
    for source, target in moves:
        if not source.exists():
            continue  # already there (an earlier crash) or gone: reconcile's business
        try:
            move(source, target)
        except OSError as exc:
            for moved_from, moved_to in reversed(done):
                with contextlib.suppress(OSError):
                    move(moved_to, moved_from)
            raise TsrError(f"cannot move {source} to {target}: {exc.strerror}") from None
        done.append((source, target))


def change_state(
    store: GalleryStore,
    action: str,
    ids: list[int],
    decide: Callable[[GalleryImage], str | None],
) -> ActionResult:
    """Give each image the state `decide` picks (None: leave it), moving files, journaled."""
    changed: list[int] = []
    with db.connection_context(), db.atomic("IMMEDIATE"):
        rows = rows_by_id(ids)
        unknown = [str(image_id) for image_id in ids if image_id not in rows]
        if unknown:
            raise NotFound(f"there is no image with id {', '.join(unknown[:5])}")
        before: list[dict[str, Any]] = []
        moves: list[tuple[Path, Path]] = []
        for image_id in ids:
            row = rows[image_id]
            target = decide(row)
            if target is None or target == row.state:
                continue
            before.append(journal.snapshot(row))
            source = store.location(row.id, row.state)
            if target == "trashed":
                row.restore_state, row.trashed_at = row.state, now_utc()
            else:
                row.restore_state, row.trashed_at = None, None
            row.state = target
            row.save()
            if store.location(row.id, target) != source:
                moves.append((source, store.location(row.id, target)))
            changed.append(row.id)
        journal.record(action, before)
        move_files(moves)
    return ActionResult(action=action, ids=changed)


def undo(store: GalleryStore) -> UndoResult:
    """Revert the newest journaled action (images purged since are skipped)."""
    with db.connection_context(), db.atomic("IMMEDIATE"):
        newest = journal.last()
        if newest is None:
            return UndoResult(action=None, remaining=0)
        entry, before = newest
        rows = rows_by_id([item["id"] for item in before])
        moves: list[tuple[Path, Path]] = []
        undone: list[int] = []
        for values in reversed(before):
            row = rows.get(values["id"])
            if row is None:
                continue
            source = store.location(row.id, row.state)
            journal.restore_fields(row, values)
            row.save()
            target = store.location(row.id, row.state)
            if source != target:
                moves.append((source, target))
            undone.append(row.id)
        entry.delete_instance()
        move_files(moves)
        left = journal.remaining()
    return UndoResult(action=entry.action, ids=sorted(undone), remaining=left)


def purge(store: GalleryStore, ids: list[int] | None, older_than_days: float | None) -> PurgeResult:
    """Delete trashed images (those of `ids`, trashed over N days ago, or all) and their files."""
    image = GalleryImage
    terms: list[Any] = [image.state == "trashed"]
    if older_than_days is not None:
        if older_than_days < 0:
            raise BadRequest("the purge age must be zero or more days")
        terms.append(image.trashed_at <= now_utc() - timedelta(days=older_than_days))
    with db.connection_context(), db.atomic("IMMEDIATE"):
        doomed: list[tuple[int, int]] = []
        for batch in [None] if ids is None else chunks(ids):
            where = terms if batch is None else [*terms, image.id.in_(batch)]
            doomed += image.select(image.id, image.file_size).where(*where).tuples().execute()
        doomed_ids = sorted(image_id for image_id, _size in doomed)
        for batch in chunks(doomed_ids):
            delete_rows(batch)
        # unlinked before the commit: a crash leaves rows without files, which reconcile drops
        for image_id in doomed_ids:
            store.location(image_id, "trashed").unlink(missing_ok=True)
    for image_id in doomed_ids:
        remove_thumbnails(store.thumbs_dir, image_id)
    return PurgeResult(ids=doomed_ids, bytes_freed=sum(size for _id, size in doomed))
