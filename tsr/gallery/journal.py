"""The undo journal: each gallery action records the images' fields as they were before it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tsr.db.images import GalleryAction, GalleryImage

#: how many actions can be undone, newest first
MAX_ACTIONS = 100
#: the fields an action may change, hence the ones an undo puts back
FIELDS = ("state", "restore_state", "trashed_at", "favourite", "rating", "tags", "notes")


def snapshot(row: GalleryImage) -> dict[str, Any]:
    """The undoable fields of a row, as JSON-ready values."""
    values: dict[str, Any] = {"id": row.id}
    for field in FIELDS:
        value = getattr(row, field)
        values[field] = value.isoformat() if isinstance(value, datetime) else value
    return values


def restore_fields(row: GalleryImage, values: dict[str, Any]) -> None:
    """Put a snapshot's fields back on a row (not saved)."""
    for field in FIELDS:
        value = values.get(field)
        if field == "trashed_at" and isinstance(value, str):
            value = datetime.fromisoformat(value)
        setattr(row, field, value)


def record(action: str, before: list[dict[str, Any]]) -> None:
    """Journal an action with its images' snapshots; forget the oldest beyond MAX_ACTIONS."""
    if not before:
        return
    entry = GalleryAction.create(
        created=datetime.now(UTC).replace(tzinfo=None), action=action, before=json.dumps(before)
    )
    GalleryAction.delete().where(GalleryAction.id <= entry.id - MAX_ACTIONS).execute()


def last() -> tuple[GalleryAction, list[dict[str, Any]]] | None:
    """The newest journal entry and its snapshots, or None when there is nothing to undo."""
    entry = GalleryAction.select().order_by(GalleryAction.id.desc()).first()
    if entry is None:
        return None
    return entry, json.loads(entry.before)


def remaining() -> int:
    """How many actions can still be undone."""
    return int(GalleryAction.select().count())
