"""Tables for the image gallery index."""

from __future__ import annotations

import peewee

#: the tables this module defines, in creation order
TABLES: list[type[peewee.Model]] = []
