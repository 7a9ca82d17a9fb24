"""The gallery service: the server's one GalleryStore, reconciled at start, its trash aged out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import peewee

from tsr import paths
from tsr.config import Config
from tsr.errors import TsrError
from tsr.gallery import GalleryStore
from tsr.gallery.clean_stop import RECORD_NAME, record_clean_stop, take_clean_stop
from tsr.gallery.reconcile import FolderStamps, reconcile_changes
from tsr.schemas.images import PurgeResult
from tsr.server.events import EventBus
from tsr.server.state import AppState

log = logging.getLogger(__name__)

#: seconds between purges of old trash while the server runs (with `[server] trash_days` set)
PURGE_INTERVAL = 24 * 60 * 60.0


def thumbs_dir_for(config: Config) -> Path:
    """Where thumbnails are cached: the user's cache dir, or `<data dir>/cache` for another one.

    The cache belongs to one data dir (thumbnails are found by image id alone), so a config
    whose data dir is not the default one keeps its own.
    """
    home = config.home.expanduser().absolute()
    if home == paths.data_dir().expanduser().absolute():
        return paths.cache_dir() / "thumbs"
    return home / "cache" / "thumbs"


def build_store(config: Config) -> GalleryStore:
    """The gallery store for `config`: its gallery folder, thumbnails in the cache."""
    return GalleryStore(config.gallery_dir(), thumbs_dir=thumbs_dir_for(config))


def reconcile_at_start(store: GalleryStore, record: Path) -> FolderStamps | None:
    """Make rows and files agree before anything can save; a refusal is logged, not fatal.

    After a clean stop (`record` holds what that run saw) only the folders changed since are
    read. Reconcile refuses to forget every row when the folder looks unmounted: the server then
    still starts (nothing is deleted) and the log says why. Returns the folders' stamps to
    record at the next clean stop (None when the reconcile did not finish).
    """
    try:
        since = take_clean_stop(record, store)
        report, stamps = reconcile_changes(store, since)
    except TsrError as exc:
        log.warning("gallery not reconciled: %s", exc)
        return None
    except OSError as exc:
        log.warning("gallery not reconciled: cannot read %s (%s)", store.root, exc.strerror or exc)
        return None
    changed = {
        "files added": len(report.files_added),
        "rows removed": len(report.rows_removed),
        "states fixed": len(report.states_fixed),
        "rows updated": len(report.rows_updated),
        "temp files removed": report.temp_files_removed,
        "files set aside": len(report.set_aside),
    }
    done = ", ".join(f"{count} {what}" for what, count in changed.items() if count)
    if done:
        log.info("gallery reconciled: %s", done)
    for path in report.set_aside:
        log.warning("unreadable image file set aside: %s", path)
    return stamps


def purge_old_trash(store: GalleryStore, days: int, events: EventBus | None) -> PurgeResult | None:
    """Delete images trashed more than `days` days ago; errors are logged, never raised."""
    try:
        result = store.purge(older_than_days=days)
    except (TsrError, OSError, peewee.DatabaseError) as exc:
        # e.g. the database busy with a long import: the next purge catches up
        log.warning("old trash not purged: %s", exc)
        return None
    if result.ids:
        log.info(
            "purged %d images trashed over %d days ago (%d bytes)",
            len(result.ids),
            days,
            result.bytes_freed,
        )
        if events is not None:
            data = {**result.model_dump(mode="json"), "reason": "age", "days": days}
            events.publish("image", "purged", data)
    return result


async def _purge_daily(store: GalleryStore, days: int, events: EventBus, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(purge_old_trash, store, days, events)


@asynccontextmanager
async def gallery_service(state: AppState) -> AsyncIterator[None]:
    """Lifespan starter: reconcile the gallery, purge old trash, provide the GalleryStore.

    Runs after the database opens and before anything that saves images (the job queue), so a
    reconcile never races a save.
    """
    store = build_store(state.config)
    days = state.config.server.trash_days
    record = state.config.home / RECORD_NAME
    stamps = await asyncio.to_thread(reconcile_at_start, store, record)
    if days:
        await asyncio.to_thread(purge_old_trash, store, days, None)
    state.provide(store)
    purger = (
        asyncio.create_task(_purge_daily(store, days, state.events, PURGE_INTERVAL))
        if days
        else None
    )
    try:
        yield
    finally:
        state.withdraw(GalleryStore)
        if purger is not None:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
        if stamps is not None:
            # the services that save and move images stopped before this one
            await asyncio.to_thread(record_clean_stop, record, store, stamps)
