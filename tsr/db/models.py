"""Tables for local model files, CivitAI records, links, triggers and the lookup cache."""

from __future__ import annotations

import peewee

from tsr.db.database import BaseModel

#: how long a "CivitAI does not know this hash" answer is trusted before asking again
MISS_TTL_SECONDS = 7 * 24 * 3600
#: how long a found version is trusted before a refresh is due
HIT_TTL_SECONDS = 30 * 24 * 3600


class LocalFile(BaseModel):
    """A model file under a model root; the row (and what hangs off it) follows moves."""

    id = peewee.AutoField()
    path = peewee.TextField(unique=True)
    root = peewee.TextField()
    name = peewee.TextField(index=True)
    size = peewee.IntegerField()
    mtime_ns = peewee.IntegerField()
    inode = peewee.IntegerField(null=True, index=True)
    sha256 = peewee.CharField(max_length=64, null=True, index=True)
    autov2 = peewee.CharField(max_length=10, null=True, index=True)
    format = peewee.CharField(null=True)
    kind = peewee.CharField(default="unknown", index=True)
    architecture = peewee.CharField(null=True)
    #: the family the header suggests, and why (kept so overrides and links can be undone)
    detected_family = peewee.CharField(null=True)
    detected_signal = peewee.TextField(null=True)
    #: the family in force (override > CivitAI baseModel > header), and what decided it
    family = peewee.CharField(null=True, index=True)
    family_signal = peewee.TextField(null=True)
    tensor_count = peewee.IntegerField(null=True)
    header_metadata = peewee.TextField(default="{}")
    first_seen = peewee.FloatField()
    last_seen = peewee.FloatField()
    missing = peewee.BooleanField(default=False, index=True)
    last_error = peewee.TextField(null=True)

    class Meta:
        table_name = "local_file"


class CachedModel(BaseModel):
    """A CivitAI model; `fetched_at` is None while only a version's summary of it is known."""

    id = peewee.IntegerField(primary_key=True)
    name = peewee.TextField()
    type = peewee.CharField(null=True)
    nsfw = peewee.BooleanField(default=False)
    poi = peewee.BooleanField(default=False)
    description = peewee.TextField(null=True)
    creator = peewee.TextField(null=True)
    fetched_at = peewee.FloatField(null=True)
    updated_at = peewee.FloatField()

    class Meta:
        table_name = "civitai_model"


class CachedModelTag(BaseModel):
    """A tag of a CivitAI model."""

    id = peewee.AutoField()
    model = peewee.ForeignKeyField(CachedModel, backref="tags", on_delete="CASCADE")
    tag = peewee.TextField()

    class Meta:
        table_name = "civitai_model_tag"
        indexes = ((("model", "tag"), True),)


class CachedVersion(BaseModel):
    """A CivitAI model version: base model and the rest of its description."""

    id = peewee.IntegerField(primary_key=True)
    model = peewee.ForeignKeyField(CachedModel, backref="versions", on_delete="CASCADE")
    name = peewee.TextField()
    base_model = peewee.CharField(null=True)
    base_model_type = peewee.CharField(null=True)
    air = peewee.TextField(null=True)
    description = peewee.TextField(null=True)
    published_at = peewee.TextField(null=True)
    download_url = peewee.TextField(null=True)
    updated_at = peewee.FloatField()

    class Meta:
        table_name = "civitai_version"


class CachedTrainedWord(BaseModel):
    """One `trainedWords` entry of a version, as CivitAI wrote it, in its order."""

    id = peewee.AutoField()
    version = peewee.ForeignKeyField(CachedVersion, backref="trained_words", on_delete="CASCADE")
    position = peewee.IntegerField()
    word = peewee.TextField()

    class Meta:
        table_name = "civitai_trained_word"
        indexes = ((("version", "word"), True),)


class CachedImage(BaseModel):
    """A sample image of a version (URL and generation parameters, not the pixels)."""

    id = peewee.AutoField()
    version = peewee.ForeignKeyField(CachedVersion, backref="images", on_delete="CASCADE")
    position = peewee.IntegerField()
    url = peewee.TextField()
    nsfw_level = peewee.IntegerField(null=True)
    width = peewee.IntegerField(null=True)
    height = peewee.IntegerField(null=True)
    meta = peewee.TextField(null=True)

    class Meta:
        table_name = "civitai_image"
        indexes = ((("version", "url"), True),)


class CachedFile(BaseModel):
    """A file of a CivitAI version."""

    id = peewee.IntegerField(primary_key=True)
    version = peewee.ForeignKeyField(CachedVersion, backref="files", on_delete="CASCADE")
    name = peewee.TextField()
    size_kb = peewee.FloatField(null=True)
    type = peewee.CharField(null=True)
    primary = peewee.BooleanField(default=False)
    format = peewee.CharField(null=True)
    fp = peewee.CharField(null=True)
    download_url = peewee.TextField(null=True)

    class Meta:
        table_name = "civitai_file"


class CachedFileHash(BaseModel):
    """One hash of a CivitAI file (`SHA256`, `AutoV2`, ...), value in lower case."""

    id = peewee.AutoField()
    file = peewee.ForeignKeyField(CachedFile, backref="hashes", on_delete="CASCADE")
    algorithm = peewee.CharField()
    value = peewee.CharField()

    class Meta:
        table_name = "civitai_file_hash"
        indexes = ((("file", "algorithm"), True), (("algorithm", "value"), False))


class FileLink(BaseModel):
    """Which CivitAI version (and file) a local file is."""

    id = peewee.AutoField()
    file = peewee.ForeignKeyField(LocalFile, unique=True, backref="link", on_delete="CASCADE")
    version = peewee.ForeignKeyField(CachedVersion, backref="links", on_delete="CASCADE")
    civitai_file = peewee.ForeignKeyField(CachedFile, null=True, on_delete="SET NULL")
    via = peewee.CharField()
    linked_at = peewee.FloatField()

    class Meta:
        table_name = "file_link"


class Trigger(BaseModel):
    """A trigger word of a local file, from CivitAI, the training tags, or the user."""

    id = peewee.AutoField()
    file = peewee.ForeignKeyField(LocalFile, backref="triggers", on_delete="CASCADE")
    word = peewee.TextField()
    source = peewee.CharField()
    rank = peewee.IntegerField()
    count = peewee.IntegerField(null=True)
    part_of = peewee.TextField(null=True)
    hidden = peewee.BooleanField(default=False)

    class Meta:
        table_name = "trigger"
        indexes = ((("file", "word", "source"), True),)


class HashLookup(BaseModel):
    """The last CivitAI answer for a SHA256: a version id, or a miss (None) until it expires."""

    sha256 = peewee.CharField(max_length=64, primary_key=True)
    version_id = peewee.IntegerField(null=True)
    checked_at = peewee.FloatField()
    expires_at = peewee.FloatField(index=True)

    class Meta:
        table_name = "hash_lookup"


class FileOverride(BaseModel):
    """The user's word on a file: its family, whether it is hidden, and notes."""

    id = peewee.AutoField()
    file = peewee.ForeignKeyField(LocalFile, unique=True, backref="override", on_delete="CASCADE")
    family = peewee.CharField(null=True)
    hidden = peewee.BooleanField(default=False)
    notes = peewee.TextField(null=True)
    updated_at = peewee.FloatField()

    class Meta:
        table_name = "file_override"


class ScanRun(BaseModel):
    """One scan: when it ran, over which roots, and its summary (JSON)."""

    id = peewee.AutoField()
    started_at = peewee.FloatField()
    finished_at = peewee.FloatField(null=True)
    roots = peewee.TextField()
    summary = peewee.TextField(null=True)
    interrupted = peewee.BooleanField(default=False)

    class Meta:
        table_name = "scan_run"


#: the tables this module defines, in creation order
TABLES: list[type[peewee.Model]] = [
    LocalFile,
    CachedModel,
    CachedModelTag,
    CachedVersion,
    CachedTrainedWord,
    CachedImage,
    CachedFile,
    CachedFileHash,
    FileLink,
    Trigger,
    HashLookup,
    FileOverride,
    ScanRun,
]

#: the full-text index over files: rowid = local_file.id (kept by tsr.db.search_index)
SEARCH_TABLE = "file_search"


def create_extras(database: peewee.SqliteDatabase) -> None:
    """Create what `create_tables` cannot (FTS5 tables, triggers)."""
    # separators include _ - . so "zkx_girl_v2.safetensors" indexes as zkx, girl, v2, safetensors
    database.execute_sql(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {SEARCH_TABLE} USING fts5("
        "name, civitai, triggers, tags, "
        "tokenize = 'unicode61 remove_diacritics 2')"
    )
