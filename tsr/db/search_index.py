"""The FTS5 index of files: file name, CivitAI names, trigger words, CivitAI and caption tags."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable

from tsr.db.database import db
from tsr.db.models import SEARCH_TABLE
from tsr.db.sql import CHUNK, chunked, placeholders

_TOKEN = re.compile(r"\w+", re.UNICODE)


def reindex(file_ids: Iterable[int]) -> None:
    """Rewrite these files' search rows from the tables (call inside the write's transaction)."""
    ids = sorted(set(file_ids))
    for chunk in chunked(ids, CHUNK):
        marks = placeholders(len(chunk))
        names: dict[int, str] = {}
        tags: dict[int, list[str]] = defaultdict(list)
        for file_id, name, metadata in db.execute_sql(
            f"SELECT id, name, header_metadata FROM local_file WHERE id IN ({marks})", chunk
        ):
            names[file_id] = name
            tags[file_id] += training_tags(metadata)
        civitai: dict[int, list[str]] = defaultdict(list)
        for file_id, model_name, version_name in db.execute_sql(
            "SELECT l.file_id, m.name, v.name FROM file_link l "
            "JOIN civitai_version v ON v.id = l.version_id "
            "JOIN civitai_model m ON m.id = v.model_id "
            f"WHERE l.file_id IN ({marks})",
            chunk,
        ):
            civitai[file_id] += [model_name, version_name]
        words: dict[int, list[str]] = defaultdict(list)
        for file_id, word in db.execute_sql(
            f"SELECT file_id, word FROM trigger WHERE hidden = 0 AND file_id IN ({marks})", chunk
        ):
            words[file_id].append(word)
        for file_id, tag in db.execute_sql(
            "SELECT l.file_id, t.tag FROM file_link l "
            "JOIN civitai_version v ON v.id = l.version_id "
            "JOIN civitai_model_tag t ON t.model_id = v.model_id "
            f"WHERE l.file_id IN ({marks})",
            chunk,
        ):
            tags[file_id].append(tag)
        db.execute_sql(f"DELETE FROM {SEARCH_TABLE} WHERE rowid IN ({marks})", chunk)
        rows = [
            (
                file_id,
                names[file_id],
                " ".join(civitai.get(file_id, [])),
                " ; ".join(words.get(file_id, [])),
                " ; ".join(tags.get(file_id, [])),
            )
            for file_id in chunk
            if file_id in names
        ]
        if rows:
            db.cursor().executemany(
                f"INSERT INTO {SEARCH_TABLE} (rowid, name, civitai, triggers, tags) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )


def training_tags(header_metadata: str | None) -> list[str]:
    """Every caption tag of a LoRA's `ss_tag_frequency` (stored header metadata, JSON)."""
    if not header_metadata or "ss_tag_frequency" not in header_metadata:
        return []
    try:
        frequency = json.loads(header_metadata).get("ss_tag_frequency")
    except (ValueError, AttributeError):
        return []
    if not isinstance(frequency, dict):
        return []
    found: dict[str, None] = {}
    for folder in frequency.values():
        if isinstance(folder, dict):
            found.update(dict.fromkeys(" ".join(str(tag).split()) for tag in folder))
    return [tag for tag in found if tag]


def reindex_all() -> None:
    """Rebuild the whole index (after a migration, or to repair it)."""
    db.execute_sql(f"DELETE FROM {SEARCH_TABLE}")
    reindex(row[0] for row in db.execute_sql("SELECT id FROM local_file"))


def match_expression(query: str) -> str | None:
    """The user's words as an FTS5 query: every word must match the start of an indexed word."""
    tokens = _TOKEN.findall(query)
    if not tokens:
        return None
    # quoting each token keeps FTS5 syntax (AND, NEAR, column:) out of user input
    return " ".join(f'"{token}"*' for token in tokens)


def matching_ids(query: str, limit: int) -> list[tuple[int, float]]:
    """(file id, bm25 score) of the best matches: file-name matches first, then by bm25."""
    expression = match_expression(query)
    if expression is None:
        return []
    # bm25 alone cannot rank a small library (a word in most files has no weight), so a
    # match in the file name comes first whatever the score
    rows = db.execute_sql(
        f"SELECT rowid, bm25({SEARCH_TABLE}, 10.0, 5.0, 3.0, 1.0) AS score, "
        f"rowid IN (SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH ?) AS by_name "
        f"FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH ? "
        "ORDER BY by_name DESC, score LIMIT ?",
        (f"name : ({expression})", expression, limit),
    )
    return [(int(rowid), float(score)) for rowid, score, _ in rows]
