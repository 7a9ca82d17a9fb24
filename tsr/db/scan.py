"""Scan model roots into the database: incremental, hashing in parallel, moves kept, Ctrl-C safe."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from tsr.db.database import db
from tsr.db.models import ScanRun
from tsr.db.scan_store import Job, KnownRow, store_batch
from tsr.db.search_index import reindex
from tsr.db.sql import chunked, placeholders
from tsr.db.walk import ScanRoot, SeenFile, plan_roots, walk
from tsr.inspect import ModelInfo, inspect_file, with_digest
from tsr.schemas.models import ScanProgress, ScanResult

ScanProgressCallback = Callable[[ScanProgress], None]
#: results written per transaction, and the longest a finished result waits to be written
BATCH_FILES = 100
BATCH_SECONDS = 1.0
#: how often the progress callback hears from a scan busy hashing one big file
PROGRESS_SECONDS = 0.1


class KnownDigest(NamedTuple):
    """A file's SHA256 computed already, valid while the file still has this size, mtime and inode
    (a download hashes the bytes as they arrive; the rename into the root keeps all three)."""

    size: int
    mtime_ns: int
    inode: int
    sha256: str


class _Aborted(Exception):
    """Raised inside a hashing worker to stop reading when the scan stops."""


@dataclass
class _State:
    """What the hashing workers share with the scanning thread."""

    abort: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    bytes_done: int = 0
    current: str | None = None
    #: rows this scan flagged missing (a later hash match may move them back)
    vanished: set[int] = field(default_factory=set)


def default_workers() -> int:
    """Hashing threads: hashlib releases the GIL, so one per core, at most four."""
    return max(1, min(4, os.cpu_count() or 1))


def scan_roots(
    roots: Sequence[Path] | None = None,
    *,
    model_roots: Mapping[str, Sequence[Path]] | None = None,
    workers: int | None = None,
    progress: ScanProgressCallback | None = None,
    stop_event: threading.Event | None = None,
    known_digests: Sequence[KnownDigest] = (),
) -> ScanResult:
    """Bring the database in line with the model files under `roots`.

    Args:
        roots: folders to scan; None scans every root of `model_roots`.
        model_roots: the configured roots per kind; given roots must lie inside one, and
            symlinks are followed only into them. None trusts `roots` as they are.
        workers: hashing threads (default: one per core, at most four).
        progress: called from this thread while the scan runs; raising KeyboardInterrupt
            from it stops the scan like Ctrl-C does.
        stop_event: set it (from any thread) to stop the scan early; the result says so.
        known_digests: hashes computed already; a file that still matches one is not read
            for it (nor counted in `hashed_bytes`).

    Unchanged files (same size, mtime_ns and inode) are not read. Results are committed in
    batches, so an interrupted scan leaves a consistent database and the next one resumes.
    """
    started = time.monotonic()
    planned = plan_roots(roots, model_roots)
    allowed = sorted({p.root for p in planned} | _configured(model_roots))
    result = ScanResult(roots=[p.path for p in planned])
    _emit(progress, ScanProgress(phase="walk"))
    seen = _walk_all(planned, result, allowed)
    state = _State()
    run = ScanRun.create(started_at=time.time(), roots=json.dumps(result.roots))
    try:
        jobs = _reconcile(planned, seen, result, state)
        _apply_known(jobs, known_digests)
        _hash_and_store(jobs, result, state, workers or default_workers(), progress, stop_event)
    finally:
        result.seconds = round(time.monotonic() - started, 3)
        result.vanished = _still_missing(state.vanished)
        ScanRun.update(
            finished_at=time.time(),
            summary=result.model_dump_json(exclude={"errors"}),
            interrupted=result.interrupted,
        ).where(ScanRun.id == run.id).execute()
    _emit(progress, ScanProgress(phase="done", files_total=len(jobs), files_done=len(jobs)))
    return result


def _configured(model_roots: Mapping[str, Sequence[Path]] | None) -> set[str]:
    return {
        os.path.abspath(os.path.expanduser(p)) for ps in (model_roots or {}).values() for p in ps
    }


def _emit(progress: ScanProgressCallback | None, snapshot: ScanProgress) -> None:
    if progress is not None:
        progress(snapshot)


def _walk_all(
    planned: Sequence[ScanRoot], result: ScanResult, allowed: Sequence[str]
) -> dict[str, SeenFile]:
    seen: dict[str, SeenFile] = {}
    for scan_root in planned:
        if not os.path.exists(scan_root.path):
            result.missing_roots.append(scan_root.path)
            continue
        for found in walk(scan_root, allowed):
            seen.setdefault(found.path, found)
    result.seen = len(seen)
    return seen


def _under(path: str, folders: Sequence[str]) -> bool:
    # a scan root may also be one file
    return any(
        path == folder or path.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders
    )


def _still_missing(file_ids: set[int]) -> int:
    count = 0
    for chunk in chunked(sorted(file_ids)):
        count += db.execute_sql(
            "SELECT COUNT(*) FROM local_file WHERE missing = 1 "
            f"AND id IN ({placeholders(len(chunk))})",
            chunk,
        ).fetchone()[0]
    return count


def _reconcile(
    planned: Sequence[ScanRoot], seen: dict[str, SeenFile], result: ScanResult, state: _State
) -> list[Job]:
    """Sort seen files into unchanged, moved (same inode) and to-hash; flag vanished rows."""
    rows = [
        KnownRow(*values)
        for values in db.execute_sql(
            "SELECT id, path, size, mtime_ns, inode, missing, sha256 FROM local_file"
        )
    ]
    by_path = {row.path: row for row in rows}
    folders = [p.path for p in planned]
    vanished = {
        row.id
        for row in rows
        if not row.missing and row.path not in seen and _under(row.path, folders)
    }
    by_stat: dict[tuple[int | None, int, int], list[KnownRow]] = {}
    for row in rows:
        by_stat.setdefault((row.inode, row.size, row.mtime_ns), []).append(row)
    now = time.time()
    touched: list[int] = []
    reappeared: list[tuple[int, SeenFile]] = []
    moved: list[tuple[int, SeenFile]] = []
    jobs: list[Job] = []
    claimed: set[int] = set()
    for path, found in seen.items():
        existing = by_path.get(path)
        stat_key = (found.inode, found.size, found.mtime_ns)
        if existing is not None and (existing.inode, existing.size, existing.mtime_ns) == stat_key:
            if existing.missing:
                reappeared.append((existing.id, found))
            else:
                touched.append(existing.id)
            continue
        if existing is None:
            # a rename keeps inode, size and mtime: the same trust as the unchanged check
            twin = next(
                (
                    r
                    for r in by_stat.get(stat_key, [])
                    if r.id not in claimed
                    and r.path not in seen
                    and (r.id in vanished or r.missing or not os.path.lexists(r.path))
                ),
                None,
            )
            if twin is not None:
                claimed.add(twin.id)
                vanished.discard(twin.id)
                moved.append((twin.id, found))
                continue
        jobs.append(Job(found, existing))
    with db.atomic("IMMEDIATE"):
        for chunk in chunked(touched):
            db.execute_sql(
                f"UPDATE local_file SET last_seen = ? WHERE id IN ({placeholders(len(chunk))})",
                (now, *chunk),
            )
        for chunk in chunked(sorted(vanished)):
            db.execute_sql(
                f"UPDATE local_file SET missing = 1 WHERE id IN ({placeholders(len(chunk))})",
                chunk,
            )
        db.cursor().executemany(
            "UPDATE local_file SET path = ?, root = ?, name = ?, inode = ?, missing = 0, "
            "last_seen = ? WHERE id = ?",
            [
                (found.path, found.root, os.path.basename(found.path), found.inode, now, file_id)
                for file_id, found in [*reappeared, *moved]
            ],
        )
        reindex(file_id for file_id, _ in moved)
    result.unchanged = len(touched) + len(reappeared)
    result.reappeared = len(reappeared)
    result.moved = len(moved)
    state.vanished = vanished
    # path order: a resumed scan goes on where the last one stopped, and output is stable
    return sorted(jobs, key=lambda job: job.seen.path)


def _hash_and_store(
    jobs: list[Job],
    result: ScanResult,
    state: _State,
    workers: int,
    progress: ScanProgressCallback | None,
    stop_event: threading.Event | None,
) -> None:
    """Hash jobs on a bounded pool; write finished ones from this thread in batches."""
    if not jobs:
        return
    bytes_total = sum(job.seen.size for job in jobs)
    finished: list[tuple[Job, ModelInfo]] = []
    files_done = 0
    queue = iter(jobs)
    running: dict[Future[ModelInfo], Job] = {}
    last_flush = last_report = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tsr-hash")

    def report() -> None:
        _emit(
            progress,
            ScanProgress(
                phase="hash",
                files_total=len(jobs),
                files_done=files_done,
                bytes_total=bytes_total,
                bytes_done=state.bytes_done,
                current=state.current,
            ),
        )

    try:
        report()
        while True:
            # a few jobs per worker in flight: workers stay busy while this thread writes,
            # memory stays flat, and a stop is quick
            while len(running) < workers * 4 and not state.abort.is_set():
                job = next(queue, None)
                if job is None:
                    break
                running[pool.submit(_inspect, job, state)] = job
            if not running:
                break
            done, _ = wait(running, timeout=PROGRESS_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                try:
                    finished.append((job, future.result()))
                except _Aborted:
                    continue
                except Exception as exc:
                    # inspect_file reports bad files itself; this is a file it choked on
                    info = ModelInfo(path=Path(job.seen.path), error=f"cannot inspect: {exc}")
                    finished.append((job, info))
                files_done += 1
            now = time.monotonic()
            if stop_event is not None and stop_event.is_set() and not state.abort.is_set():
                state.abort.set()
                result.interrupted = True
            if len(finished) >= BATCH_FILES or (finished and now - last_flush >= BATCH_SECONDS):
                # handed over before writing: an interrupted write rolls back, never repeats
                batch, finished = finished, []
                store_batch(batch, result)
                last_flush = now
            # after every finished file (cheap), and while a big file hashes
            if done or now - last_report >= PROGRESS_SECONDS:
                report()
                last_report = now
    except BaseException:
        # Ctrl-C (or a progress callback raising): stop the workers, keep what is finished
        state.abort.set()
        pool.shutdown(wait=True, cancel_futures=True)
        finished += [
            (running[f], f.result()) for f in running if not f.cancelled() and f.exception() is None
        ]
        result.interrupted = True
        store_batch(finished, result)
        raise
    pool.shutdown(wait=True)
    store_batch(finished, result)


def _apply_known(jobs: list[Job], known: Sequence[KnownDigest]) -> None:
    """Give jobs whose file still is what a known digest was computed from that digest."""
    by_identity = {(k.size, k.mtime_ns, k.inode): k.sha256 for k in known}
    for job in jobs if by_identity else ():
        seen = job.seen
        job.known_sha256 = by_identity.get((seen.size, seen.mtime_ns, seen.inode))


def _inspect(job: Job, state: _State) -> ModelInfo:
    path = job.seen.path
    if job.known_sha256 is not None:
        # the header is still read (family, tensors); the bytes were hashed as they arrived
        with state.lock:
            state.bytes_done += job.seen.size
        return with_digest(inspect_file(Path(path)), job.known_sha256)
    last = 0

    def count(done: int) -> None:
        nonlocal last
        with state.lock:
            state.bytes_done += done - last
        last = done
        if state.abort.is_set():
            raise _Aborted

    if state.abort.is_set():
        raise _Aborted
    state.current = path
    return inspect_file(Path(path), with_hash=True, progress=count)
