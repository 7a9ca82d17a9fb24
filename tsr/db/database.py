"""The deferred SQLite database: pragmas, schema version, and migrations from the first release."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import peewee

from tsr.errors import TsrError

#: the one database handle; `init_database` points it at a file (peewee's deferred init)
db = peewee.SqliteDatabase(None)

PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
    "synchronous": "normal",
    "cache_size": -32_000,
    "temp_store": "memory",
}


class BaseModel(peewee.Model):
    """Base of every table: bound to the deferred database."""

    class Meta:
        database = db
        legacy_table_names = False


def _tables() -> list[type[peewee.Model]]:
    # imported here so that each table module can import BaseModel from this one
    from tsr.db import downloads, images, models

    return [*models.TABLES, *images.TABLES, *downloads.TABLES]


def _create_all(database: peewee.SqliteDatabase) -> None:
    database.create_tables(_tables())
    from tsr.db import models

    models.create_extras(database)


def _gallery_count_indexes(database: peewee.SqliteDatabase) -> None:
    """Schema 2: covering indexes for the gallery's counts (100 ms -> 11 ms at 100,000 images)."""
    # the names peewee gives the same indexes in GalleryImage.Meta (a new database has them)
    for name, columns in (
        ("gallery_image_state_file_size", "state, file_size"),
        ("gallery_image_favourite_state", "favourite, state"),
    ):
        database.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON gallery_image ({columns})")


#: migration N takes a database at user_version N-1 to N; entry 1 creates the first schema.
#: Append new steps; never edit a released one.
MIGRATIONS: list[Callable[[peewee.SqliteDatabase], None]] = [_create_all, _gallery_count_indexes]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(database: peewee.SqliteDatabase = db) -> int:
    """The schema version stored in the file (SQLite's user_version)."""
    return int(database.execute_sql("PRAGMA user_version").fetchone()[0])


def init_database(path: Path) -> peewee.SqliteDatabase:
    """Open (creating if needed) the database at `path` and migrate it to SCHEMA_VERSION."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if db.database != str(path) and not db.is_closed():
        db.close()
    db.init(str(path), pragmas=PRAGMAS, check_same_thread=False)
    try:
        with db.connection_context():
            version = schema_version()
            if version > SCHEMA_VERSION:
                raise TsrError(
                    f"the database {path} was written by a newer tsr (schema {version}); "
                    "upgrade tsr to open it"
                )
            for step in range(version, SCHEMA_VERSION):
                with db.atomic("IMMEDIATE"):
                    MIGRATIONS[step](db)
                    db.execute_sql(f"PRAGMA user_version = {step + 1}")
    except peewee.DatabaseError as exc:
        raise TsrError(f"cannot open the database {path}: {exc}") from None
    return db
