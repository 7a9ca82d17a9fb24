"""Wire models of the models database: files, CivitAI links, triggers, stats, scan and link runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TriggerSource = Literal["civitai", "training", "user"]
FileSort = Literal["name", "path", "size", "newest", "oldest", "kind", "family"]
#: the order of sources when one word comes from several
TRIGGER_SOURCES: tuple[TriggerSource, ...] = ("civitai", "user", "training")


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CivitaiRef(_Wire):
    """The CivitAI model and version a local file is linked to."""

    model_id: int
    version_id: int
    model_name: str
    version_name: str
    base_model: str | None = None
    model_type: str | None = None


class ModelFile(_Wire):
    """One model file on disk, as the database knows it."""

    id: int
    path: str
    name: str
    root: str
    size: int
    sha256: str | None = None
    autov2: str | None = None
    kind: str
    format: str | None = None
    architecture: str | None = None
    family: str | None = None
    #: what decided the family: "user", "civitai: Pony", "metadata: ss_base_model_version", ...
    family_signal: str | None = None
    tensor_count: int | None = None
    missing: bool = False
    hidden: bool = False
    error: str | None = None
    first_seen: datetime
    last_seen: datetime
    civitai: CivitaiRef | None = None


class FileOverride(_Wire):
    """What the user decided about a file: its family, whether it is hidden, notes."""

    family: str | None = None
    hidden: bool = False
    notes: str | None = None


class TriggerWord(_Wire):
    """One trigger word with where it comes from (several sources merge into one entry)."""

    word: str
    sources: list[TriggerSource]
    #: position within its first source (CivitAI order, user order, or frequency rank)
    rank: int
    #: how many training images carried the tag (ss_tag_frequency), when known
    count: int | None = None
    #: the compound CivitAI entry this word was split from ("red scarf, smile")
    part_of: str | None = None
    #: removed by the user; kept so that a refresh does not bring it back
    hidden: bool = False


class FileTriggers(_Wire):
    """A file's merged trigger words."""

    file_id: int
    path: str
    triggers: list[TriggerWord]


class FileDetail(ModelFile):
    """One file with its header metadata, trigger words and the user's override."""

    mtime_ns: int
    inode: int | None = None
    header_metadata: dict[str, Any] = Field(default_factory=dict)
    triggers: list[TriggerWord] = Field(default_factory=list)
    override: FileOverride = Field(default_factory=FileOverride)


class FilePage(_Wire):
    """A page of files and where the next page starts."""

    items: list[ModelFile]
    total: int
    offset: int
    limit: int | None
    next_offset: int | None = None


class SearchHit(_Wire):
    """A file that matched a search, best first (lower score is better, as FTS5's bm25)."""

    file: ModelFile
    score: float


class DuplicateGroup(_Wire):
    """One content hash found at several paths."""

    sha256: str
    size: int
    files: list[ModelFile]


class DbStats(_Wire):
    """Counts over the models database."""

    files: int
    present: int
    missing: int
    hidden: int
    errors: int
    linked: int
    unlinked: int
    total_bytes: int
    by_kind: dict[str, int]
    by_family: dict[str, int]
    civitai_models: int
    civitai_versions: int
    known_misses: int
    triggers: int
    duplicate_groups: int
    last_scan: datetime | None = None


class ScanProgress(_Wire):
    """Where a scan is: listing files, then hashing new and changed ones."""

    phase: Literal["walk", "hash", "done"]
    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    current: str | None = None


class ScanIssue(_Wire):
    """A file the scan could not read or parse, with the reason."""

    path: str
    error: str


class ScanResult(_Wire):
    """What a scan found and did."""

    roots: list[str]
    missing_roots: list[str] = Field(default_factory=list)
    seen: int = 0
    unchanged: int = 0
    new: int = 0
    changed: int = 0
    moved: int = 0
    vanished: int = 0
    reappeared: int = 0
    errors: list[ScanIssue] = Field(default_factory=list)
    hashed_bytes: int = 0
    seconds: float = 0.0
    interrupted: bool = False


class LinkProgress(_Wire):
    """Where a link run is: files checked against the cache and CivitAI so far."""

    files_total: int
    files_done: int
    linked: int
    requests: int


class LinkedFile(_Wire):
    """A file that a link run or a cache run tied to a CivitAI version."""

    file_id: int
    path: str
    civitai: CivitaiRef
    #: "cache" when a cached version file matched (no network), else "civitai"
    via: Literal["cache", "civitai"]


class LinkResult(_Wire):
    """What a link run did."""

    checked: int = 0
    linked: list[LinkedFile] = Field(default_factory=list)
    misses: int = 0
    skipped_known_misses: int = 0
    requests: int = 0
    #: True when the bulk endpoint failed and single lookups were used instead
    used_single_lookups: bool = False


class CacheResult(_Wire):
    """A CivitAI model stored (or refreshed) in the cache, and files it newly linked."""

    model_id: int
    name: str
    type: str | None = None
    versions: int
    files: int
    trained_words: int
    linked: list[LinkedFile] = Field(default_factory=list)


class FileFilter(_Wire):
    """Which files a listing shows; None means "either"."""

    kind: str | None = None
    family: str | None = None
    linked: bool | None = None
    missing: bool | None = None
    #: also list the files the user hid
    include_hidden: bool = False
