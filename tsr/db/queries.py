"""Read-only questions about the models database: list, search, stats, duplicates, one file."""

from __future__ import annotations

import json
import time

import peewee

from tsr.db.database import db
from tsr.db.files import (
    dict_rows,
    file_select,
    get_file,
    get_override,
    timestamp,
    to_model_file,
    tuple_rows,
)
from tsr.db.models import (
    CachedModel,
    CachedVersion,
    FileLink,
    FileOverride,
    HashLookup,
    LocalFile,
    ScanRun,
    Trigger,
)
from tsr.db.search_index import matching_ids
from tsr.db.triggers import triggers_for
from tsr.schemas.models import (
    DbStats,
    DuplicateGroup,
    FileDetail,
    FileFilter,
    FilePage,
    FileSort,
    ModelFile,
    SearchHit,
)

_ORDER: dict[str, list[peewee.Node]] = {
    "name": [LocalFile.name.collate("NOCASE"), LocalFile.id],
    "path": [LocalFile.path, LocalFile.id],
    "size": [LocalFile.size.desc(), LocalFile.id],
    "newest": [LocalFile.mtime_ns.desc(), LocalFile.id],
    "oldest": [LocalFile.mtime_ns, LocalFile.id],
    "kind": [LocalFile.kind, LocalFile.name.collate("NOCASE"), LocalFile.id],
    "family": [LocalFile.family, LocalFile.name.collate("NOCASE"), LocalFile.id],
}


def _filtered(
    query: peewee.ModelSelect[LocalFile], filters: FileFilter
) -> peewee.ModelSelect[LocalFile]:
    if filters.kind:
        query = query.where(LocalFile.kind == filters.kind)
    if filters.family:
        query = query.where(LocalFile.family == filters.family)
    if filters.linked is not None:
        query = query.where(
            FileLink.id.is_null(False) if filters.linked else FileLink.id.is_null(True)
        )
    if filters.missing is not None:
        query = query.where(LocalFile.missing == filters.missing)
    if not filters.include_hidden:
        query = query.where(FileOverride.hidden.is_null(True) | (FileOverride.hidden == False))  # noqa: E712
    return query


def list_files(
    filters: FileFilter | None = None,
    *,
    sort: FileSort = "name",
    limit: int | None = None,
    offset: int = 0,
) -> FilePage:
    """A page of files matching `filters`, in `sort` order (`limit=None`: all of them)."""
    filters = filters or FileFilter()
    query = _filtered(file_select(), filters)
    total = query.count()
    ordered = query.order_by(*_ORDER[sort]).offset(offset)
    if limit is not None:
        ordered = ordered.limit(limit)
    items = [to_model_file(row) for row in dict_rows(ordered)]
    next_offset = offset + len(items) if offset + len(items) < total else None
    return FilePage(items=items, total=total, offset=offset, limit=limit, next_offset=next_offset)


def search(query: str, *, limit: int = 50, include_hidden: bool = False) -> list[SearchHit]:
    """Files whose name, CivitAI names, trigger words or tags match every word of `query`."""
    scored = matching_ids(query, limit * 2 if not include_hidden else limit)
    if not scored:
        return []
    wanted = file_select().where(LocalFile.id.in_([file_id for file_id, _ in scored]))
    rows = {row["id"]: row for row in dict_rows(wanted)}
    hits = []
    for file_id, score in scored:
        row = rows.get(file_id)
        if row is None or (row["o_hidden"] and not include_hidden):
            continue
        hits.append(SearchHit(file=to_model_file(row), score=score))
    return hits[:limit]


def _grouped_counts(column: peewee.Field) -> dict[str, int]:
    query = (
        LocalFile.select(column, peewee.fn.COUNT(LocalFile.id))
        .where(LocalFile.missing == False)  # noqa: E712
        .group_by(column)
    )
    return {
        str(value) if value is not None else "unknown": count for value, count in tuple_rows(query)
    }


def stats() -> DbStats:
    """How many files, of which kinds and families, linked or not, and what the cache holds."""
    (files, present, total_bytes, errors) = db.execute_sql(
        "SELECT COUNT(*), COALESCE(SUM(missing = 0), 0), "
        "COALESCE(SUM(CASE WHEN missing = 0 THEN size ELSE 0 END), 0), "
        "COALESCE(SUM(last_error IS NOT NULL AND missing = 0), 0) FROM local_file"
    ).fetchone()
    linked = (
        FileLink.select().join(LocalFile).where(LocalFile.missing == False).count()  # noqa: E712
    )
    hidden = FileOverride.select().where(FileOverride.hidden == True).count()  # noqa: E712
    duplicate_groups = db.execute_sql(
        "SELECT COUNT(*) FROM (SELECT sha256 FROM local_file WHERE missing = 0 "
        "AND sha256 IS NOT NULL GROUP BY sha256 HAVING COUNT(*) > 1)"
    ).fetchone()[0]
    last = ScanRun.select().where(ScanRun.finished_at.is_null(False))
    last_run = last.order_by(ScanRun.finished_at.desc()).first()
    return DbStats(
        files=files,
        present=present,
        missing=files - present,
        hidden=hidden,
        errors=errors,
        linked=linked,
        unlinked=present - linked,
        total_bytes=total_bytes,
        by_kind=_grouped_counts(LocalFile.kind),
        by_family=_grouped_counts(LocalFile.family),
        civitai_models=CachedModel.select().count(),
        civitai_versions=CachedVersion.select().count(),
        known_misses=HashLookup.select()
        .where(HashLookup.version_id.is_null() & (HashLookup.expires_at > time.time()))
        .count(),
        triggers=Trigger.select().where(Trigger.hidden == False).count(),  # noqa: E712
        duplicate_groups=duplicate_groups,
        last_scan=timestamp(last_run.finished_at) if last_run else None,
    )


def duplicates() -> list[DuplicateGroup]:
    """Contents present at several paths, biggest first."""
    groups = db.execute_sql(
        "SELECT sha256, MAX(size) FROM local_file WHERE missing = 0 AND sha256 IS NOT NULL "
        "GROUP BY sha256 HAVING COUNT(*) > 1 ORDER BY MAX(size) DESC, sha256"
    ).fetchall()
    if not groups:
        return []
    rows: dict[str, list[ModelFile]] = {}
    query = file_select().where(
        LocalFile.sha256.in_([sha for sha, _ in groups]) & (LocalFile.missing == False)  # noqa: E712
    )
    for row in dict_rows(query.order_by(LocalFile.path)):
        rows.setdefault(row["sha256"], []).append(to_model_file(row))
    return [DuplicateGroup(sha256=sha, size=size, files=rows[sha]) for sha, size in groups]


def file_detail(file_id: int) -> FileDetail:
    """One file with its header metadata, merged trigger words and the user's override."""
    info = get_file(file_id)
    local = LocalFile.get_by_id(file_id)
    try:
        metadata = json.loads(local.header_metadata or "{}")
    except ValueError:
        metadata = {}
    return FileDetail(
        **info.model_dump(),
        mtime_ns=local.mtime_ns,
        inode=local.inode,
        header_metadata=metadata if isinstance(metadata, dict) else {},
        triggers=triggers_for(file_id).triggers,
        override=get_override(file_id),
    )
