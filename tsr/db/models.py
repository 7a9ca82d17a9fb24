"""Tables for local model files, CivitAI records, links, triggers and the lookup cache."""

from __future__ import annotations

import peewee

#: the tables this module defines, in creation order
TABLES: list[type[peewee.Model]] = []


def create_extras(database: peewee.SqliteDatabase) -> None:
    """Create what `create_tables` cannot (FTS5 tables, triggers)."""
