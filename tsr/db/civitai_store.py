"""Store CivitAI models and versions in the cache tables; storing twice changes nothing.

Raw SQL with executemany: a link run stores hundreds of versions at once, and building each
statement through the ORM cost more than the network round trips.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence

from tsr.civitai import CivitaiModel, CivitaiVersion
from tsr.db.database import db
from tsr.db.sql import chunked, placeholders

_UPSERT_MODEL_SUMMARY = (
    "INSERT INTO civitai_model (id, name, type, nsfw, poi, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET name = excluded.name, type = excluded.type, "
    "nsfw = excluded.nsfw, poi = excluded.poi, updated_at = excluded.updated_at"
)
_UPSERT_MODEL = (
    "INSERT INTO civitai_model (id, name, type, nsfw, poi, description, creator, fetched_at, "
    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET name = excluded.name, type = excluded.type, "
    "nsfw = excluded.nsfw, poi = excluded.poi, description = excluded.description, "
    "creator = excluded.creator, fetched_at = excluded.fetched_at, updated_at = excluded.updated_at"
)
_UPSERT_VERSION = (
    "INSERT INTO civitai_version (id, model_id, name, base_model, base_model_type, air, "
    "description, published_at, download_url, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET model_id = excluded.model_id, name = excluded.name, "
    "base_model = excluded.base_model, base_model_type = excluded.base_model_type, "
    "air = excluded.air, description = excluded.description, "
    "published_at = excluded.published_at, download_url = excluded.download_url, "
    "updated_at = excluded.updated_at"
)
_UPSERT_FILE = (
    'INSERT INTO civitai_file (id, version_id, name, size_kb, type, "primary", format, fp, '
    "download_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET version_id = excluded.version_id, name = excluded.name, "
    'size_kb = excluded.size_kb, type = excluded.type, "primary" = excluded."primary", '
    "format = excluded.format, fp = excluded.fp, download_url = excluded.download_url"
)


def _delete_where_in(table: str, column: str, ids: Iterable[int]) -> None:
    for chunk in chunked(sorted(set(ids))):
        db.execute_sql(f"DELETE FROM {table} WHERE {column} IN ({placeholders(len(chunk))})", chunk)


def store_model(model: CivitaiModel) -> None:
    """Store a full model (`GET /models/{id}`): its row, tags and every version."""
    now = time.time()
    creator = (model.creator or {}).get("username")
    db.execute_sql(
        _UPSERT_MODEL,
        (
            model.id,
            model.name or f"model {model.id}",
            model.type,
            model.nsfw,
            model.poi,
            model.description,
            creator,
            now,
            now,
        ),
    )
    # the set of tags is replaced whole: nothing refers to a tag row
    db.execute_sql("DELETE FROM civitai_model_tag WHERE model_id = ?", (model.id,))
    tags = list(dict.fromkeys(tag for tag in model.tags if tag))
    db.cursor().executemany(
        "INSERT INTO civitai_model_tag (model_id, tag) VALUES (?, ?)",
        [(model.id, tag) for tag in tags],
    )
    for version in model.model_versions:
        version.model_id = model.id
    # a version the listing leaves out (unpublished, early access) is kept: files link to it
    store_versions(model.model_versions, with_model=False)


def store_versions(versions: Sequence[CivitaiVersion], *, with_model: bool = True) -> None:
    """Store versions with their trained words, images, files and hashes (call in a transaction).

    With `with_model`, each version's `model` summary also creates or updates the model row.
    Versions without a model id cannot be stored and are skipped.
    """
    usable = list({v.id: v for v in versions if v.model_id is not None}.values())
    if not usable:
        return
    now = time.time()
    cursor = db.cursor()
    if with_model:
        cursor.executemany(
            _UPSERT_MODEL_SUMMARY,
            [
                (v.model_id, v.model.name or f"model {v.model_id}", v.model.type, v.model.nsfw,
                 v.model.poi, now)
                for v in usable
                if v.model is not None
            ],
        )  # fmt: skip
        cursor.executemany(
            "INSERT OR IGNORE INTO civitai_model (id, name, updated_at) VALUES (?, ?, ?)",
            [(v.model_id, f"model {v.model_id}", now) for v in usable if v.model is None],
        )
    cursor.executemany(
        _UPSERT_VERSION,
        [
            (v.id, v.model_id, v.name or f"version {v.id}", v.base_model, v.base_model_type,
             v.air, v.description, v.published_at, v.download_url, now)
            for v in usable
        ],
    )  # fmt: skip
    version_ids = [v.id for v in usable]
    # words and images are replaced whole (nothing refers to their rows)
    _delete_where_in("civitai_trained_word", "version_id", version_ids)
    cursor.executemany(
        "INSERT INTO civitai_trained_word (version_id, position, word) VALUES (?, ?, ?)",
        [
            (v.id, position, word)
            for v in usable
            for position, word in enumerate(dict.fromkeys(w.strip() for w in v.trained_words))
            if word
        ],
    )
    _delete_where_in("civitai_image", "version_id", version_ids)
    cursor.executemany(
        "INSERT INTO civitai_image (version_id, position, url, nsfw_level, width, height, meta) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (v.id, position, image.url, image.nsfw_level, image.width, image.height,
             json.dumps(image.meta) if image.meta is not None else None)
            for v in usable
            for position, image in enumerate({i.url: i for i in v.images}.values())
        ],
    )  # fmt: skip
    _store_files(usable)


def _store_files(versions: Sequence[CivitaiVersion]) -> None:
    # files are upserted, not replaced: a local file's link names its CivitAI file
    files = {entry.id: (version.id, entry) for version in versions for entry in version.files}
    cursor = db.cursor()
    cursor.executemany(
        _UPSERT_FILE,
        [
            (entry.id, version_id, entry.name, entry.size_kb, entry.type, entry.primary,
             entry.metadata.get("format"), entry.metadata.get("fp"), entry.download_url)
            for version_id, entry in files.values()
        ],
    )  # fmt: skip
    for version in versions:
        kept = [entry.id for entry in version.files]
        query = "DELETE FROM civitai_file WHERE version_id = ?"
        if kept:
            query += f" AND id NOT IN ({placeholders(len(kept))})"
        db.execute_sql(query, (version.id, *kept))
    _delete_where_in("civitai_file_hash", "file_id", files)
    cursor.executemany(
        "INSERT INTO civitai_file_hash (file_id, algorithm, value) VALUES (?, ?, ?)",
        [
            (file_id, algorithm, value.lower())
            for file_id, (_, entry) in files.items()
            for algorithm, value in entry.hashes.items()
            if value
        ],
    )


def trained_words_of(version_ids: Iterable[int]) -> dict[int, list[str]]:
    """Cached versions' trained words, in CivitAI's order."""
    words: dict[int, list[str]] = {}
    for chunk in chunked(sorted(set(version_ids))):
        rows = db.execute_sql(
            "SELECT version_id, word FROM civitai_trained_word "
            f"WHERE version_id IN ({placeholders(len(chunk))}) ORDER BY version_id, position",
            chunk,
        )
        for version_id, word in rows:
            words.setdefault(version_id, []).append(word)
    return words
