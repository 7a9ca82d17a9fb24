"""Wire models of the download queue: what to fetch, and how a download is doing."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: a model root kind a download can land in
DownloadKind = Literal["checkpoints", "loras", "vae", "embeddings"]
DownloadState = Literal["queued", "running", "verifying", "done", "failed", "cancelled"]
#: what the request named: a CivitAI version, a CivitAI model (its latest version), a URL, a hash
DownloadSource = Literal["version", "model", "url", "hash"]
#: states a download never leaves (a failed one can be asked for again and resumes)
FINISHED_DOWNLOAD_STATES: frozenset[str] = frozenset({"done", "failed", "cancelled"})

_HEX = re.compile(r"^[0-9a-fA-F]+$")


class DownloadRequest(BaseModel):
    """`POST /api/download`: exactly one of version_id, model_id, url or hash."""

    model_config = ConfigDict(extra="forbid")

    version_id: int | None = Field(None, gt=0)
    #: a CivitAI model: its newest version is fetched
    model_id: int | None = Field(None, gt=0)
    #: a CivitAI download or model page URL, or any http(s) URL (then `kind` is needed)
    url: str | None = None
    #: a file hash CivitAI knows (SHA256, AutoV2, ...)
    hash: str | None = None
    #: where a plain URL's file goes (CivitAI downloads know their kind)
    kind: DownloadKind | None = None
    #: one of the configured roots for the kind (default: the first)
    root: str | None = None
    #: the SHA-256 a plain URL's file must have (CivitAI downloads know theirs)
    sha256: str | None = None

    @field_validator("sha256")
    @classmethod
    def _sha256_hex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if len(value) != 64 or not _HEX.match(value):
            raise ValueError("a SHA-256 is 64 hex digits")
        return value

    @field_validator("hash")
    @classmethod
    def _hash_hex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not 8 <= len(value) <= 64 or not _HEX.match(value):
            raise ValueError("a file hash is 8 to 64 hex digits (SHA256, AutoV2, ...)")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _exactly_one_target(self) -> DownloadRequest:
        given = [k for k in ("version_id", "model_id", "url", "hash") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of version_id, model_id, url or hash")
        return self


class DownloadOut(BaseModel):
    """One download as clients see it: what it fetches, where it goes, how far it got."""

    id: int
    state: DownloadState
    source: DownloadSource
    #: the request's target as given (version id, model id, URL or hash)
    ref: str
    version_id: int | None = None
    model_id: int | None = None
    model_name: str | None = None
    version_name: str | None = None
    #: CivitAI's model type (Checkpoint, LORA, ...), when known
    model_type: str | None = None
    kind: DownloadKind
    #: the model root it lands in
    root: str
    #: the file name (from CivitAI or Content-Disposition, made safe); None until known
    file_name: str | None = None
    #: the installed file, once done
    path: str | None = None
    #: the SHA-256 the file must have (None: a plain URL without one; not verified)
    sha256: str | None = None
    bytes_done: int = 0
    bytes_total: int | None = None
    #: bytes per second over the last few seconds, while running
    rate: float | None = None
    #: seconds left at that rate, while running and the size is known
    eta: float | None = None
    #: the one sentence saying why it failed
    error: str | None = None
    #: where a file whose hash did not match was moved (never installed)
    quarantined: str | None = None
    #: the models database id of the installed file
    file_id: int | None = None
    #: the file was already there (same SHA-256): nothing was fetched
    already_present: bool = False
    #: problems after installing (e.g. CivitAI unreachable for the link); the file is in place
    warnings: list[str] = Field(default_factory=list)
    created: datetime
    started: datetime | None = None
    finished: datetime | None = None
