"""Link local files to CivitAI versions by SHA256 (cache first, then bulk lookups); cache models."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from tsr.civitai import BULK_LIMIT, CivitaiClient, CivitaiVersion
from tsr.db.civitai_store import store_model, store_versions, trained_words_of
from tsr.db.database import db
from tsr.db.files import dict_rows, file_select, refresh_families, to_model_file, tuple_rows
from tsr.db.models import (
    HIT_TTL_SECONDS,
    MISS_TTL_SECONDS,
    CachedModel,
    CachedVersion,
    FileLink,
    LocalFile,
)
from tsr.db.search_index import reindex
from tsr.db.sql import chunked, placeholders
from tsr.db.triggers import split_trained_words, sync_sources
from tsr.errors import BadRequest, NotFound
from tsr.schemas.models import CacheResult, LinkedFile, LinkProgress, LinkResult

LinkProgressCallback = Callable[[LinkProgress], None]


def _unlinked_by_sha(file_ids: Sequence[int] | None) -> dict[str, list[int]]:
    sql = (
        "SELECT f.id, f.sha256 FROM local_file f LEFT JOIN file_link l ON l.file_id = f.id "
        "WHERE l.id IS NULL AND f.missing = 0 AND f.sha256 IS NOT NULL"
    )
    rows: list[tuple[int, str]] = []
    if file_ids is None:
        rows = list(db.execute_sql(sql))
    else:
        for chunk in chunked(list(file_ids)):
            marks = placeholders(len(chunk))
            rows += list(db.execute_sql(f"{sql} AND f.id IN ({marks})", chunk))
    grouped: dict[str, list[int]] = {}
    for file_id, sha in rows:
        grouped.setdefault(sha, []).append(file_id)
    return grouped


def _cached_files_for(sha256s: Iterable[str]) -> dict[str, tuple[int, int]]:
    """SHA256 -> (version id, CivitAI file id) for hashes the cache already holds."""
    found: dict[str, tuple[int, int]] = {}
    for chunk in chunked(sorted(set(sha256s))):
        rows = db.execute_sql(
            "SELECT h.value, f.version_id, f.id FROM civitai_file_hash h "
            "JOIN civitai_file f ON f.id = h.file_id "
            f"WHERE h.algorithm = 'SHA256' AND h.value IN ({placeholders(len(chunk))})",
            chunk,
        )
        for sha, version_id, file_id in rows:
            found.setdefault(sha, (version_id, file_id))
    return found


@dataclass(frozen=True)
class Link:
    """Local files to tie to one cached version (and the CivitAI file they are)."""

    file_ids: Sequence[int]
    version_id: int
    civitai_file_id: int | None
    via: Literal["cache", "civitai"]


def apply_links(links: Sequence[Link]) -> list[LinkedFile]:
    """Link files to cached versions: link rows, CivitAI triggers, family, search rows.

    Call inside a transaction; the versions must be stored already.
    """
    if not links:
        return []
    now = time.time()
    db.cursor().executemany(
        "INSERT INTO file_link (file_id, version_id, civitai_file_id, via, linked_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(file_id) DO UPDATE SET "
        "version_id = excluded.version_id, civitai_file_id = excluded.civitai_file_id, "
        "via = excluded.via, linked_at = excluded.linked_at",
        [
            (f, link.version_id, link.civitai_file_id, link.via, now)
            for link in links
            for f in link.file_ids
        ],
    )
    _resync_triggers({f: link.version_id for link in links for f in link.file_ids})
    via = {f: link.via for link in links for f in link.file_ids}
    linked: list[LinkedFile] = []
    for chunk in chunked(sorted(via)):
        for row in dict_rows(file_select().where(LocalFile.id.in_(chunk))):
            info = to_model_file(row)
            if info.civitai is not None:
                linked.append(
                    LinkedFile(
                        file_id=info.id, path=info.path, civitai=info.civitai, via=via[info.id]
                    )
                )
    return linked


def _resync_triggers(version_of: dict[int, int]) -> None:
    """CivitAI triggers, family and search row of files, from their versions' cached words."""
    words = trained_words_of(version_of.values())
    specs = {v: split_trained_words(words.get(v, [])) for v in set(version_of.values())}
    sync_sources("civitai", {f: specs[v] for f, v in version_of.items()})
    refresh_families(version_of)
    reindex(version_of)


def link_from_cache(by_sha: dict[str, list[int]]) -> list[LinkedFile]:
    """Link files whose hash a cached CivitAI file has; no network. Call inside a transaction."""
    cached = _cached_files_for(by_sha)
    return apply_links(
        [
            Link(by_sha[sha], version_id, file_id, "cache")
            for sha, (version_id, file_id) in cached.items()
        ]
    )


def _known_misses(sha256s: Sequence[str], now: float) -> set[str]:
    misses: set[str] = set()
    for chunk in chunked(list(sha256s)):
        rows = db.execute_sql(
            "SELECT sha256 FROM hash_lookup WHERE version_id IS NULL AND expires_at > ? "
            f"AND sha256 IN ({placeholders(len(chunk))})",
            (now, *chunk),
        )
        misses.update(sha for (sha,) in rows)
    return misses


def _remember(hits: dict[str, int], misses: Iterable[str]) -> None:
    now = time.time()
    rows: list[tuple[str, int | None, float, float]]
    rows = [(s, v, now, now + HIT_TTL_SECONDS) for s, v in hits.items()]
    rows += [(s, None, now, now + MISS_TTL_SECONDS) for s in misses]
    db.cursor().executemany(
        "INSERT INTO hash_lookup (sha256, version_id, checked_at, expires_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(sha256) DO UPDATE SET version_id = excluded.version_id, "
        "checked_at = excluded.checked_at, expires_at = excluded.expires_at",
        rows,
    )


def _lookup(client: CivitaiClient, chunk: list[str], result: LinkResult) -> list[CivitaiVersion]:
    try:
        return client.versions_by_hashes(chunk)
    except (BadRequest, NotFound):
        # the bulk endpoint refused or is gone: ask hash by hash (slow, but still answers)
        result.used_single_lookups = True
        versions = [client.version_by_hash(sha) for sha in chunk]
        return [version for version in versions if version is not None]


def link_files(
    client: CivitaiClient,
    *,
    retry_misses: bool = False,
    progress: LinkProgressCallback | None = None,
    file_ids: Sequence[int] | None = None,
    fetch_models: bool = False,
) -> LinkResult:
    """Link every unlinked present file (or those of `file_ids`) to its CivitAI version.

    The cache answers first; the rest go to the bulk by-hash endpoint, 100 hashes a call.
    Hashes CivitAI did not know are remembered and skipped until they expire, unless
    `retry_misses`. Each call's results are committed as they come, so an error (offline,
    401/403, rate limit) keeps what was already linked and never touches the scan data.
    With `fetch_models`, each newly linked model not cached in full yet is fetched too (its
    tags and other versions): one more call per model.
    """
    start_requests = client.requests
    by_sha = _unlinked_by_sha(file_ids)
    total = sum(len(ids) for ids in by_sha.values())
    result = LinkResult(checked=total)
    done = 0

    def report() -> None:
        if progress is not None:
            progress(
                LinkProgress(
                    files_total=total,
                    files_done=done,
                    linked=len(result.linked),
                    requests=client.requests - start_requests,
                )
            )

    with db.atomic("IMMEDIATE"):
        result.linked += link_from_cache(by_sha)
    linked_ids = {entry.file_id for entry in result.linked}
    remaining = [sha for sha, ids in by_sha.items() if not linked_ids.intersection(ids)]
    done = total - sum(len(by_sha[sha]) for sha in remaining)
    if not retry_misses:
        skipped = _known_misses(remaining, time.time())
        result.skipped_known_misses = sum(len(by_sha[sha]) for sha in skipped)
        done += result.skipped_known_misses
        remaining = [sha for sha in remaining if sha not in skipped]
    report()
    for chunk in chunked(remaining, BULK_LIMIT):
        versions = _lookup(client, chunk, result)
        wanted = set(chunk)
        with db.atomic("IMMEDIATE"):
            # a version without its model id cannot be stored: its files count as misses
            usable = [version for version in versions if version.model_id is not None]
            store_versions(usable)
            hits: dict[str, int] = {}
            links: list[Link] = []
            for version in usable:
                for entry in version.files:
                    if entry.sha256 in wanted and entry.sha256 not in hits:
                        hits[entry.sha256] = version.id
                        links.append(Link(by_sha[entry.sha256], version.id, entry.id, "civitai"))
            result.linked += apply_links(links)
            misses = wanted - hits.keys()
            _remember(hits, misses)
        result.misses += sum(len(by_sha[sha]) for sha in misses)
        done += sum(len(by_sha[sha]) for sha in chunk)
        report()
    if fetch_models:
        for model_id in sorted({entry.civitai.model_id for entry in result.linked}):
            if CachedModel.get_by_id(model_id).fetched_at is None:
                cache_model(client, model_id)
    result.requests = client.requests - start_requests
    return result


def cache_model(client: CivitaiClient, model_id: int) -> CacheResult:
    """Fetch a model with all its versions into the cache, and link local files it matches.

    Running it again refreshes the same rows: words, files, tags and images never double.
    """
    model = client.model(model_id)
    with db.atomic("IMMEDIATE"):
        store_model(model)
        version_ids = [version.id for version in model.model_versions]
        query = FileLink.select(FileLink.file, FileLink.version).where(
            FileLink.version.in_(version_ids)
        )
        _resync_triggers(dict(tuple_rows(query)))
        hashes = {entry.sha256 for v in model.model_versions for entry in v.files if entry.sha256}
        unlinked = _unlinked_by_sha(None) if hashes else {}
        linked = link_from_cache({sha: ids for sha, ids in unlinked.items() if sha in hashes})
    return CacheResult(
        model_id=model.id,
        name=model.name,
        type=model.type,
        versions=len(model.model_versions),
        files=sum(len(version.files) for version in model.model_versions),
        trained_words=sum(len(version.trained_words) for version in model.model_versions),
        linked=linked,
    )


def linked_model_ids() -> list[int]:
    """The CivitAI models that local files are linked to."""
    query = (
        CachedVersion.select(CachedVersion.model)
        .join(FileLink, on=FileLink.version == CachedVersion.id)
        .distinct()
    )
    return sorted(model_id for (model_id,) in tuple_rows(query))


def refresh_linked(
    client: CivitaiClient, progress: Callable[[int, int], None] | None = None
) -> list[CacheResult]:
    """Re-fetch every model a local file is linked to (trained words, files, tags may change)."""
    model_ids = linked_model_ids()
    results = []
    for index, model_id in enumerate(model_ids):
        results.append(cache_model(client, model_id))
        if progress is not None:
            progress(index + 1, len(model_ids))
    return results
