"""The models and gallery database (Peewee on SQLite); `init_database` opens and migrates it."""

from tsr.db.database import db, init_database

__all__ = ["db", "init_database"]
