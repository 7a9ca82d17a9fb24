"""Tables for the download queue (CivitAI and URL downloads that survive restarts)."""

from __future__ import annotations

import peewee

#: the tables this module defines, in creation order
TABLES: list[type[peewee.Model]] = []
