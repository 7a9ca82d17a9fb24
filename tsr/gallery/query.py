"""The filtered, newest-first page query over the gallery index (keyset pagination, no OFFSET)."""

from __future__ import annotations

import re
from typing import Any

import peewee

from tsr.db.images import GalleryImage, GalleryLora, GalleryPrompt
from tsr.errors import BadRequest
from tsr.gallery.ids import MAX_ID, first_id_at
from tsr.schemas.images import ImageFilters

_HASH = re.compile(r"^[0-9a-fA-F]{10,64}$")


def parse_cursor(cursor: str | int | None) -> int | None:
    """The id a cursor stands for (the last id of the previous page)."""
    if cursor is None or cursor == "":
        return None
    text = str(cursor)
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_ID + 1:
        raise BadRequest(f"the page cursor {text!r} is not valid; start again without one")
    return int(text)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def conditions(filters: ImageFilters) -> list[Any]:
    """The WHERE terms for `filters`."""
    image = GalleryImage
    terms: list[Any] = []
    if filters.state == "active":
        terms.append(image.state != "trashed")
    elif filters.state != "all":
        terms.append(image.state == filters.state)
    if filters.favourite is not None:
        terms.append(image.favourite == filters.favourite)
    if filters.checkpoint:
        value = filters.checkpoint.strip()
        if _HASH.match(value):
            terms.append(image.checkpoint_hash == value[:10].lower())
        else:
            terms.append(image.checkpoint == value)
    if filters.lora:
        users = GalleryLora.select(GalleryLora.image).where(GalleryLora.name == filters.lora)
        terms.append(image.id.in_(users))
    if filters.prompt and not _uses_index(filters.prompt):
        pattern = _like_pattern(filters.prompt)
        terms.append(peewee.SQL("prompt LIKE ? ESCAPE '\\'", [pattern]))
    if filters.since is not None:
        terms.append(image.id >= first_id_at(filters.since))
    if filters.until is not None:
        terms.append(image.id < first_id_at(filters.until))
    if filters.min_rating:
        terms.append(image.rating >= filters.min_rating)
    return terms


def _uses_index(text: str) -> bool:
    # the trigram index answers substrings of three characters or more; shorter ones are
    # common enough that a newest-first scan fills a page quickly
    return len(text) >= 3


def _phrase(text: str) -> str:
    """An FTS5 query matching `text` as a substring (trigram phrase, quotes doubled)."""
    return '"' + text.replace('"', '""') + '"'


def page_query(filters: ImageFilters, cursor: int | None, limit: int) -> Any:
    """The query of up to `limit + 1` rows matching `filters` older than `cursor`, newest first.

    One row more than asked tells whether another page follows. With a prompt filter the
    trigram index drives the walk (in id order, so it stops after a page even for common text).
    """
    terms = conditions(filters)
    query = GalleryImage.select()
    order_key: Any = GalleryImage.id
    if filters.prompt and _uses_index(filters.prompt):
        query = query.join(GalleryPrompt, on=(GalleryPrompt.rowid == GalleryImage.id))
        terms.append(GalleryPrompt.match(_phrase(filters.prompt)))
        order_key = GalleryPrompt.rowid
    if cursor is not None:
        terms.append(order_key < cursor)
    query = query.order_by(order_key.desc()).limit(limit + 1)
    if terms:
        query = query.where(*terms)
    return query
