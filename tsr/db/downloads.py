"""Tables for the download queue (CivitAI and URL downloads that survive restarts)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

import peewee

from tsr.db.database import BaseModel, db
from tsr.errors import NotFound
from tsr.schemas.downloads import DownloadKind, DownloadOut, DownloadSource, DownloadState

#: states whose downloads the manager (re)starts
PENDING_STATES = ("queued", "running", "verifying")


class Download(BaseModel):
    """One download: what it fetches, where it goes, and how far it got (the .part holds bytes)."""

    id = peewee.AutoField()
    source = peewee.CharField()
    ref = peewee.TextField()
    state = peewee.CharField(default="queued", index=True)
    url = peewee.TextField()
    version_id = peewee.IntegerField(null=True, index=True)
    model_id = peewee.IntegerField(null=True)
    civitai_file_id = peewee.IntegerField(null=True)
    model_name = peewee.TextField(null=True)
    version_name = peewee.TextField(null=True)
    model_type = peewee.CharField(null=True)
    kind = peewee.CharField()
    root = peewee.TextField()
    file_name = peewee.TextField(null=True)
    #: the name CivitAI gives the file, used when the server sends no Content-Disposition
    fallback_name = peewee.TextField(null=True)
    path = peewee.TextField(null=True)
    sha256 = peewee.CharField(max_length=64, null=True)
    #: the CivitAI version object (JSON), stored into the cache at install for an offline link
    version_json = peewee.TextField(null=True)
    bytes_done = peewee.IntegerField(default=0)
    bytes_total = peewee.IntegerField(null=True)
    error = peewee.TextField(null=True)
    quarantined = peewee.TextField(null=True)
    file_id = peewee.IntegerField(null=True)
    already_present = peewee.BooleanField(default=False)
    warnings = peewee.TextField(default="[]")
    created_at = peewee.FloatField()
    started_at = peewee.FloatField(null=True)
    finished_at = peewee.FloatField(null=True)

    class Meta:
        table_name = "download"

    def out(self, rate: float | None = None, eta: float | None = None) -> DownloadOut:
        """The download as clients see it (`rate` and `eta` come from the live transfer)."""
        return DownloadOut(
            id=self.id,
            state=cast(DownloadState, self.state),
            source=cast(DownloadSource, self.source),
            ref=self.ref,
            version_id=self.version_id,
            model_id=self.model_id,
            model_name=self.model_name,
            version_name=self.version_name,
            model_type=self.model_type,
            kind=cast(DownloadKind, self.kind),
            root=self.root,
            file_name=self.file_name,
            path=self.path,
            sha256=self.sha256,
            bytes_done=self.bytes_done,
            bytes_total=self.bytes_total,
            rate=rate,
            eta=eta,
            error=self.error,
            quarantined=self.quarantined,
            file_id=self.file_id,
            already_present=self.already_present,
            warnings=json.loads(self.warnings or "[]"),
            created=_when(self.created_at),
            started=_when(self.started_at) if self.started_at else None,
            finished=_when(self.finished_at) if self.finished_at else None,
        )

    @classmethod
    def add(cls, **values: Any) -> Download:
        """Queue a new download."""
        return cast(Download, cls.create(state="queued", created_at=time.time(), **values))

    @classmethod
    def fetch(cls, download_id: int) -> Download:
        """One download by id (NotFound naming it)."""
        row = cls.get_or_none(cls.id == download_id)
        if row is None:
            raise NotFound(f"there is no download #{download_id}")
        return cast(Download, row)

    @classmethod
    def pending(cls) -> list[Download]:
        """Downloads to run, oldest first (running ones were interrupted by a restart)."""
        query = cls.select().where(cls.state.in_(PENDING_STATES)).order_by(cls.id)
        return list(query)

    @classmethod
    def recent(cls, states: Iterable[str] | None = None, limit: int = 100) -> list[Download]:
        """The newest downloads first, optionally only some states."""
        query = cls.select().order_by(cls.id.desc()).limit(limit)
        wanted = list(states or ())
        if wanted:
            query = query.where(cls.state.in_(wanted))
        return list(query)

    @classmethod
    def same_target(cls, version_id: int | None, url: str, root: str) -> Download | None:
        """The newest unfinished or failed download of the same file into the same root."""
        match = (cls.version_id == version_id) if version_id is not None else (cls.url == url)
        query = (
            cls.select()
            .where(match & (cls.root == root) & cls.state.in_([*PENDING_STATES, "failed"]))
            .order_by(cls.id.desc())
        )
        return cast(Download | None, query.first())

    def save_fields(self, **values: Any) -> None:
        """Set these fields on the row and in the database, in one UPDATE."""
        for key, value in values.items():
            setattr(self, key, value)
        with db.atomic("IMMEDIATE"):
            type(self).update(values).where(type(self).id == self.id).execute()

    def add_warning(self, warning: str) -> None:
        """Remember a problem that did not stop the install."""
        warnings = [*json.loads(self.warnings or "[]"), warning]
        self.save_fields(warnings=json.dumps(warnings))


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


#: the tables this module defines, in creation order
TABLES: list[type[peewee.Model]] = [Download]
