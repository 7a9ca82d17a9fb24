"""The download queue: persisted in the database, run by one or two worker threads.

A download is resolved when it is asked for (CivitAI lookups, kind, root), then queued. A
worker streams it into `<root>/.tsr-partial/<id>.part`, verifies its SHA-256, moves it into
the root under a safe name, and scans and links that one file. Downloads that were queued or
running when the server stopped are resumed from their .part when it starts again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import BaseModel

from tsr import __version__
from tsr.civitai import CivitaiVersion
from tsr.config import Config
from tsr.db.database import db
from tsr.db.downloads import Download
from tsr.db.scan import KnownDigest
from tsr.downloads.catalog import CivitaiCatalog
from tsr.downloads.install import (
    install_file,
    part_path,
    prepare_part,
    present_copy,
    quarantine,
    register_file,
)
from tsr.downloads.names import filename_from_url, safe_file_name
from tsr.downloads.resolve import civitai_hosts, plan_download
from tsr.downloads.transfer import (
    DEFAULT_MAX_FAILURES,
    Transfer,
    TransferStatus,
    TransferStopped,
)
from tsr.errors import AuthRejected, Conflict, ModelFileError, TsrError
from tsr.schemas.downloads import DownloadOut, DownloadRequest

log = logging.getLogger(__name__)

#: downloads running at once
DEFAULT_WORKERS = 2
#: seconds between progress events (and between saves of the byte count)
PROGRESS_SECONDS = 0.25
SAVE_SECONDS = 2.0
#: the rate is measured over this many recent seconds
RATE_WINDOW = 5.0
#: what to type to store a CivitAI key
SET_KEY = "`tsr config set civitai.api_key KEY`"


class EventSink(Protocol):
    """Where download events go: the app's event bus."""

    def publish(
        self, topic: str, kind: str, data: Mapping[str, Any] | BaseModel | None = None
    ) -> None:
        """Send an event of `kind` to every subscriber of `topic`."""


def civitai_auth_error(status: int, has_key: bool) -> AuthRejected:
    """The sentence for a CivitAI file that answered 401/403."""
    if has_key:
        return AuthRejected(
            f"CivitAI refused the API key for this file (HTTP {status}); check it, or set "
            f"another with {SET_KEY}"
        )
    return AuthRejected(f"this file needs a CivitAI API key: set it with {SET_KEY}")


@dataclass
class _Live:
    """A download a worker is running: its row, its stop switch, its recent speed."""

    row: Download
    stop: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    finished: threading.Event = field(default_factory=threading.Event)
    samples: deque[tuple[float, int]] = field(default_factory=deque)
    last_event: float = 0.0
    last_save: float = 0.0

    def sample(self, now: float, done: int) -> None:
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > RATE_WINDOW:
            self.samples.popleft()

    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return max(0.0, (b1 - b0) / (t1 - t0)) if t1 > t0 else None

    def out(self) -> DownloadOut:
        rate = self.rate() if self.row.state == "running" else None
        total, done = self.row.bytes_total, self.row.bytes_done
        eta = (total - done) / rate if rate and total is not None and total >= done else None
        return self.row.out(rate=rate, eta=eta)


class DownloadManager:
    """Runs the download queue; every method is safe to call from any thread."""

    def __init__(
        self,
        config: Config,
        catalog: CivitaiCatalog,
        events: EventSink | None = None,
        *,
        workers: int = DEFAULT_WORKERS,
        max_failures: int = DEFAULT_MAX_FAILURES,
        retry_base: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.events = events
        self.workers = max(1, workers)
        self.max_failures = max_failures
        self.retry_base = retry_base
        self._transport = transport
        self._cond = threading.Condition()
        self._live: dict[int, _Live] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = False

    # ---- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Requeue downloads a stop interrupted, and start the workers."""
        with db.connection_context(), db.atomic("IMMEDIATE"):
            Download.update(state="queued").where(
                Download.state.in_(["running", "verifying"])
            ).execute()
        self._stopping = False
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"tsr-download-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers; running downloads keep their .part and resume at the next start."""
        with self._cond:
            self._stopping = True
            for live in self._live.values():
                live.stop.set()
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    # ---- asking -------------------------------------------------------------------------------

    def submit(self, request: DownloadRequest) -> DownloadOut:
        """Queue a download (resolved now, so a bad request fails at once).

        The same file already queued or running is returned as it is; a failed one is queued
        again and resumes from its .part.
        """
        plan = plan_download(request, self.config, self.catalog)
        version = plan.version
        with self._cond, db.connection_context(), db.atomic("IMMEDIATE"):
            existing = Download.same_target(plan.version_id, plan.url, plan.root)
            if existing is not None and existing.state != "failed":
                return self._out(existing)
            fields: dict[str, Any] = {
                "url": plan.url,
                "kind": plan.kind,
                "root": plan.root,
                "sha256": plan.sha256,
                "fallback_name": plan.fallback_name,
                "civitai_file_id": plan.civitai_file_id,
                "version_id": plan.version_id,
                "model_id": version.model_id if version else None,
                "model_name": version.model.name if version and version.model else None,
                "version_name": version.name if version else None,
                "model_type": version.model.type if version and version.model else None,
                "version_json": version.model_dump_json(by_alias=True) if version else None,
                "bytes_total": plan.bytes_total,
            }
            if existing is not None:
                existing.save_fields(
                    state="queued", error=None, quarantined=None, finished_at=None, **fields
                )
                row = existing
            else:
                row = Download.add(source=plan.source, ref=plan.ref, **fields)
            self._cond.notify()
        self._publish("queued", row.out())
        return row.out()

    def get(self, download_id: int) -> DownloadOut:
        """One download, with its live rate and ETA while it runs."""
        with db.connection_context():
            return self._out(Download.fetch(download_id))

    def list(self, states: Iterable[str] | None = None, limit: int = 100) -> list[DownloadOut]:
        """The newest downloads first (optionally only some states)."""
        with db.connection_context():
            return [self._out(row) for row in Download.recent(states, limit)]

    def cancel(self, download_id: int, timeout: float = 10.0) -> DownloadOut:
        """Cancel a queued, running or failed download; its .part file is deleted."""
        with self._cond:
            live = self._live.get(download_id)
            if live is not None:
                live.cancelled = True
                live.stop.set()
            else:
                with db.connection_context():
                    row = Download.fetch(download_id)
                    if row.state in ("done", "cancelled"):
                        raise Conflict(f"download #{download_id} is already {row.state}")
                    row.save_fields(state="cancelled", finished_at=time.time())
                    part_path(Path(row.root), row.id).unlink(missing_ok=True)
        if live is not None:
            live.finished.wait(timeout)
        out = self.get(download_id)
        if live is None:
            self._publish("finished", out)
        return out

    def _out(self, row: Download) -> DownloadOut:
        live = self._live.get(row.id)
        return live.out() if live is not None else row.out()

    def _publish(self, kind: str, out: DownloadOut) -> None:
        if self.events is not None:
            self.events.publish("download", kind, out)

    # ---- working ------------------------------------------------------------------------------

    def _claim(self) -> _Live | None:
        """The oldest queued download no worker runs, marked running (call holding _cond)."""
        with db.connection_context():
            for row in Download.pending():
                if row.id in self._live:
                    continue
                row.save_fields(state="running", started_at=time.time(), error=None)
                live = _Live(row)
                self._live[row.id] = live
                return live
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                live = None
                while not self._stopping and (live := self._claim()) is None:
                    self._cond.wait(1.0)
                if self._stopping or live is None:
                    return
            try:
                with db.connection_context():
                    self._run(live)
            except Exception:
                log.exception("download #%s failed unexpectedly", live.row.id)
                with db.connection_context():
                    live.row.save_fields(
                        state="failed",
                        error="the download failed unexpectedly; see the server log",
                        finished_at=time.time(),
                    )
            finally:
                with self._cond:
                    self._live.pop(live.row.id, None)
                live.finished.set()
                if live.row.state != "queued":
                    self._publish("finished", live.row.out())

    def _run(self, live: _Live) -> None:
        row = live.row
        self._publish("started", live.out())
        try:
            self._fetch_and_install(live)
        except TransferStopped:
            if live.cancelled:
                part_path(Path(row.root), row.id).unlink(missing_ok=True)
                row.save_fields(state="cancelled", finished_at=time.time())
            else:
                row.save_fields(state="queued")  # the server stops: resume at its next start
        except TsrError as exc:
            row.save_fields(state="failed", error=str(exc), finished_at=time.time())
        except OSError as exc:
            where = exc.filename or row.root
            reason = exc.strerror or str(exc)
            row.save_fields(
                state="failed", error=f"cannot write {where}: {reason}", finished_at=time.time()
            )

    def _fetch_and_install(self, live: _Live) -> None:
        row = live.row
        if row.path and row.sha256 and os.path.isfile(row.path):
            # installed before an interruption: only the scan and link are left
            self._register(live, Path(row.path))
            return
        if row.sha256 and (found := present_copy(row.sha256)) is not None:
            file_id, path = found
            part_path(Path(row.root), row.id).unlink(missing_ok=True)
            row.save_fields(
                state="done",
                path=path,
                file_name=os.path.basename(path),
                file_id=file_id,
                already_present=True,
                finished_at=time.time(),
            )
            return
        root = Path(row.root)
        root.mkdir(parents=True, exist_ok=True)
        part = prepare_part(root, row.id)
        with self._http(row) as http:
            transfer = Transfer(
                row.url,
                part,
                http,
                stop=live.stop,
                progress=lambda status: self._progress(live, status),
                auth_error=lambda status: self._auth_error(row, status),
                retry_base=self.retry_base,
                max_failures=self.max_failures,
            )
            result = transfer.run()
        name = (
            safe_file_name(result.file_name)
            or row.fallback_name
            or safe_file_name(filename_from_url(result.final_url))
            or f"download-{row.id}.safetensors"
        )
        row.save_fields(
            state="verifying", file_name=name, bytes_done=result.size, bytes_total=result.size
        )
        self._publish("verifying", live.out())
        if row.sha256 and result.sha256 != row.sha256:
            moved = quarantine(part, self.config, row.id, name)
            row.save_fields(quarantined=str(moved))
            raise ModelFileError(
                f"the downloaded {name} is not the file CivitAI describes (SHA-256 "
                f"{result.sha256[:12]}… instead of {row.sha256[:12]}…); it was not installed "
                f"and is kept in {moved}"
            )
        # what was hashed: the rename into the root keeps size, mtime and inode, so the scan
        # can tell that the installed file is still these bytes and skip reading it again
        hashed = part.stat()
        known = KnownDigest(hashed.st_size, hashed.st_mtime_ns, hashed.st_ino, result.sha256)
        installed, already = install_file(part, root, name, result.sha256)
        row.save_fields(path=str(installed), file_name=installed.name, already_present=already)
        if row.sha256 is None:
            row.save_fields(sha256=result.sha256)
        self._register(live, installed, None if already else known)

    def _register(self, live: _Live, path: Path, known: KnownDigest | None = None) -> None:
        row = live.row
        version = CivitaiVersion.model_validate_json(row.version_json) if row.version_json else None
        client = self.catalog.client()
        file_id, warnings = register_file(path, self.config, version, client, known)
        for warning in warnings:
            row.add_warning(warning)
        row.save_fields(state="done", file_id=file_id, finished_at=time.time())

    def _http(self, row: Download) -> httpx.Client:
        headers = {"User-Agent": f"tsr/{__version__}"}
        key = self.catalog.api_key()
        if key and self._is_civitai(row.url):
            # only to CivitAI itself; httpx drops it when a redirect leaves that host
            headers["Authorization"] = f"Bearer {key}"
        return httpx.Client(headers=headers, follow_redirects=True, transport=self._transport)

    def _is_civitai(self, url: str) -> bool:
        return httpx.URL(url).netloc.decode().lower() in civitai_hosts(self.catalog)

    def _auth_error(self, row: Download, status: int) -> TsrError:
        if self._is_civitai(row.url) or row.version_id is not None:
            return civitai_auth_error(status, bool(self.catalog.api_key()))
        host = httpx.URL(row.url).host
        return AuthRejected(
            f"the download from {host} needs credentials tsr does not have (HTTP {status})"
        )

    def _progress(self, live: _Live, status: TransferStatus) -> None:
        row = live.row
        row.bytes_done = status.done
        if status.file_name and row.file_name is None:
            row.file_name = safe_file_name(status.file_name)
        if status.total is not None:
            row.bytes_total = status.total
        now = time.monotonic()
        live.sample(now, status.done)
        if now - live.last_event >= PROGRESS_SECONDS:
            live.last_event = now
            self._publish("progress", live.out())
        if now - live.last_save >= SAVE_SECONDS:
            live.last_save = now
            row.save_fields(bytes_done=row.bytes_done, bytes_total=row.bytes_total)
