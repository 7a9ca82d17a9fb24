"""Write scanned files to the database: new rows, changed rows, and rows that moved."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tsr.db.database import db
from tsr.db.files import refresh_families
from tsr.db.search_index import reindex
from tsr.db.sql import placeholders
from tsr.db.triggers import TriggerSpec, sync_sources, training_specs
from tsr.db.walk import SeenFile
from tsr.inspect import ModelInfo
from tsr.schemas.models import ScanIssue, ScanResult

#: metadata values bigger than this are summarised (GGUF tokenizer tables run to megabytes)
MAX_LIST_ITEMS = 256
MAX_TEXT_CHARS = 256 * 1024


@dataclass
class KnownRow:
    """A file the database already knows, with what the scan compares."""

    id: int
    path: str
    size: int
    mtime_ns: int
    inode: int | None
    missing: bool
    sha256: str | None


@dataclass
class Job:
    """A file to read: what the walk saw, and its row if the path is known."""

    seen: SeenFile
    row: KnownRow | None
    #: the file's SHA256 when it is known already (a verified download): not read again
    known_sha256: str | None = None


def _compact(value: Any) -> Any:
    if isinstance(value, list) and len(value) > MAX_LIST_ITEMS:
        return f"[{len(value)} items]"
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        return value[:MAX_TEXT_CHARS] + "..."
    if isinstance(value, dict):
        return {key: _compact(item) for key, item in value.items()}
    return value


def store_batch(finished: Iterable[tuple[Job, ModelInfo]], result: ScanResult) -> None:
    """Write finished files in one transaction (a rollback loses only this batch)."""
    batch = list(finished)
    if not batch:
        return
    now = time.time()
    training: dict[int, list[TriggerSpec]] = {}
    issues: list[ScanIssue] = []
    counts = Counter[str]()
    with db.atomic("IMMEDIATE"):
        for job, info in batch:
            if info.error and not os.path.lexists(job.seen.path):
                continue  # gone between listing and reading: the next scan flags it
            file_id, outcome = _store_one(job, info, now)
            counts[outcome] += 1
            counts["bytes"] += job.seen.size if info.sha256 and not job.known_sha256 else 0
            if info.error:
                issues.append(ScanIssue(path=job.seen.path, error=info.error))
            training[file_id] = training_specs((c.tag, c.count) for c in info.trigger_candidates)
        sync_sources("training", training)
        refresh_families(training)
        reindex(training)
    # counted once the batch is committed: a rolled-back batch counts for nothing
    result.new += counts["new"]
    result.changed += counts["changed"]
    result.moved += counts["moved"]
    result.hashed_bytes += counts["bytes"]
    result.errors += issues


_FILE_COLUMNS = (
    "path", "root", "name", "size", "mtime_ns", "inode", "sha256", "autov2", "format", "kind",
    "architecture", "detected_family", "detected_signal", "tensor_count", "header_metadata",
    "last_seen", "missing", "last_error",
)  # fmt: skip
_INSERT_FILE = (
    f"INSERT INTO local_file ({', '.join(_FILE_COLUMNS)}, first_seen) "
    f"VALUES ({placeholders(len(_FILE_COLUMNS) + 1)})"
)
_UPDATE_FILE = f"UPDATE local_file SET {', '.join(c + ' = ?' for c in _FILE_COLUMNS)} WHERE id = ?"


def _store_one(job: Job, info: ModelInfo, now: float) -> tuple[int, str]:
    """Insert or update one file's row; says which: new, changed or moved."""
    seen = job.seen
    kind = info.kind if info.kind != "unknown" else (seen.kind_hint or "unknown")
    values = (
        seen.path,
        seen.root,
        os.path.basename(seen.path),
        seen.size,
        seen.mtime_ns,
        seen.inode,
        info.sha256,
        info.autov2,
        info.format,
        kind,
        info.architecture,
        info.family,
        info.family_signal,
        info.tensor_count,
        json.dumps(_compact(info.metadata), default=str),
        now,
        False,
        info.error,
    )
    if job.row is not None:
        if job.row.sha256 != info.sha256:
            # new content at the same path: the old CivitAI link no longer describes it
            db.execute_sql("DELETE FROM file_link WHERE file_id = ?", (job.row.id,))
            db.execute_sql(
                "DELETE FROM trigger WHERE file_id = ? AND source = 'civitai'", (job.row.id,)
            )
        db.execute_sql(_UPDATE_FILE, (*values, job.row.id))
        return job.row.id, "changed"
    twin = _moved_from(info.sha256, seen.path)
    if twin is not None:
        db.execute_sql(_UPDATE_FILE, (*values, twin))
        return twin, "moved"
    cursor = db.execute_sql(_INSERT_FILE, (*values, now))
    return int(cursor.lastrowid), "new"


def _moved_from(sha256: str | None, path: str) -> int | None:
    """A row with this content whose file is gone: the file was moved or copied then deleted."""
    if not sha256:
        return None
    candidates = db.execute_sql(
        "SELECT id, path, name FROM local_file WHERE sha256 = ? AND path != ?", (sha256, path)
    ).fetchall()
    gone = [
        (file_id, name) for file_id, old_path, name in candidates if not os.path.lexists(old_path)
    ]
    if not gone:
        return None
    name = os.path.basename(path)
    return next((file_id for file_id, old in gone if old == name), gone[0][0])
