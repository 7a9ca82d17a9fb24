"""Trigger words per file: CivitAI trainedWords, training tags, and the user's own, merged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from tsr.db.database import db
from tsr.db.models import LocalFile, Trigger
from tsr.db.search_index import reindex
from tsr.db.sql import chunked, placeholders
from tsr.errors import BadRequest, NotFound
from tsr.schemas.models import TRIGGER_SOURCES, FileTriggers, TriggerSource, TriggerWord

#: how many of the most frequent training tags become trigger candidates
TRAINING_TRIGGER_LIMIT = 20


@dataclass(frozen=True)
class TriggerSpec:
    """One trigger row to store: word, rank, and for CivitAI parts the entry they came from."""

    word: str
    rank: int
    count: int | None = None
    part_of: str | None = None


def split_trained_words(entries: Sequence[str]) -> list[TriggerSpec]:
    """CivitAI entries in order; a compound entry ("red scarf, smile") is kept and split."""
    specs: list[TriggerSpec] = []
    seen: set[str] = set()

    def add(word: str, part_of: str | None) -> None:
        if word and word.casefold() not in seen:
            seen.add(word.casefold())
            specs.append(TriggerSpec(word, len(specs), part_of=part_of))

    for entry in entries:
        original = entry.strip()
        parts = [part.strip() for part in original.split(",") if part.strip()]
        add(original.strip(", "), None)
        if len(parts) > 1:
            for part in parts:
                add(part, original)
    return specs


def training_specs(candidates: Iterable[tuple[str, int]]) -> list[TriggerSpec]:
    """The most frequent training tags (already summed over dataset dirs), most frequent first."""
    ranked = sorted(
        ((tag.strip(), int(count)) for tag, count in candidates if tag.strip()),
        key=lambda item: -item[1],
    )
    specs: list[TriggerSpec] = []
    seen: set[str] = set()
    for tag, count in ranked:
        if tag.casefold() in seen:
            continue
        seen.add(tag.casefold())
        specs.append(TriggerSpec(tag, len(specs), count=count))
        if len(specs) == TRAINING_TRIGGER_LIMIT:
            break
    return specs


def sync_source(
    file_ids: Iterable[int], source: TriggerSource, specs: Sequence[TriggerSpec]
) -> None:
    """Make `source`'s rows for these files exactly `specs`, keeping what the user hid hidden."""
    sync_sources(source, dict.fromkeys(file_ids, specs))


def sync_sources(source: TriggerSource, specs_by_file: Mapping[int, Sequence[TriggerSpec]]) -> None:
    """Per file, make `source`'s rows exactly its specs (call inside a transaction)."""
    cursor = db.cursor()
    for chunk in chunked(sorted(specs_by_file)):
        wanted = {file_id: {spec.word for spec in specs_by_file[file_id]} for file_id in chunk}
        existing = db.execute_sql(
            "SELECT file_id, word FROM trigger "
            f"WHERE source = ? AND file_id IN ({placeholders(len(chunk))})",
            (source, *chunk),
        ).fetchall()
        cursor.executemany(
            "DELETE FROM trigger WHERE file_id = ? AND source = ? AND word = ?",
            [(f, source, word) for f, word in existing if word not in wanted[f]],
        )
        cursor.executemany(
            "INSERT INTO trigger (file_id, word, source, rank, count, part_of, hidden) "
            "VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT(file_id, word, source) DO UPDATE SET "
            "rank = excluded.rank, count = excluded.count, part_of = excluded.part_of",
            [
                (file_id, spec.word, source, spec.rank, spec.count, spec.part_of)
                for file_id in chunk
                for spec in specs_by_file[file_id]
            ],
        )


def _merge(rows: Iterable[Trigger], include_hidden: bool) -> list[TriggerWord]:
    merged: dict[str, TriggerWord] = {}
    priority: dict[str, int] = {source: index for index, source in enumerate(TRIGGER_SOURCES)}
    ordered = sorted(rows, key=lambda row: (priority[row.source], row.rank))
    for row in ordered:
        key = row.word.casefold()
        entry = merged.get(key)
        source = cast(TriggerSource, row.source)
        if entry is None:
            merged[key] = TriggerWord(
                word=row.word,
                sources=[source],
                rank=row.rank,
                count=row.count,
                part_of=row.part_of,
                hidden=row.hidden,
            )
            continue
        if source not in entry.sources:
            entry.sources.append(source)
        entry.count = entry.count if entry.count is not None else row.count
        entry.part_of = entry.part_of or row.part_of
        entry.hidden = entry.hidden and row.hidden
    return [word for word in merged.values() if include_hidden or not word.hidden]


def _file(file_id: int) -> LocalFile:
    found = LocalFile.get_or_none(LocalFile.id == file_id)
    if found is None:
        raise NotFound(f"there is no model file with id {file_id} in the database")
    return found


def triggers_for(file_id: int, *, include_hidden: bool = False) -> FileTriggers:
    """A file's trigger words, one entry per word with all its sources (CivitAI first)."""
    local = _file(file_id)
    rows = Trigger.select().where(Trigger.file == file_id)
    return FileTriggers(file_id=file_id, path=local.path, triggers=_merge(rows, include_hidden))


def add_trigger(file_id: int, words: Sequence[str]) -> FileTriggers:
    """Add the user's words to a file (a word the user had removed comes back)."""
    _file(file_id)
    cleaned = [word.strip() for word in words if word.strip()]
    if not cleaned:
        raise BadRequest("give at least one trigger word to add")
    with db.atomic("IMMEDIATE"):
        existing = Trigger.select().where(Trigger.file == file_id)
        user_words = {row.word.casefold() for row in existing if row.source == "user"}
        next_rank = max((row.rank + 1 for row in existing if row.source == "user"), default=0)
        for word in cleaned:
            folded = word.casefold()
            for row in existing:
                if row.word.casefold() == folded and row.hidden:
                    Trigger.update(hidden=False).where(Trigger.id == row.id).execute()
            if folded in user_words:
                continue
            user_words.add(folded)
            Trigger.create(file=file_id, word=word, source="user", rank=next_rank)
            next_rank += 1
        reindex([file_id])
    return triggers_for(file_id)


def remove_trigger(file_id: int, words: Sequence[str]) -> FileTriggers:
    """Drop words from a file: the user's are deleted, others hidden (a refresh keeps them so)."""
    _file(file_id)
    with db.atomic("IMMEDIATE"):
        rows = list(Trigger.select().where(Trigger.file == file_id))
        for word in words:
            folded = word.strip().casefold()
            matching = [row for row in rows if row.word.casefold() == folded]
            if not matching:
                raise NotFound(f"file {file_id} has no trigger word {word.strip()!r}")
            for row in matching:
                if row.source == "user":
                    Trigger.delete().where(Trigger.id == row.id).execute()
                else:
                    Trigger.update(hidden=True).where(Trigger.id == row.id).execute()
        reindex([file_id])
    return triggers_for(file_id)
