"""Small helpers for raw SQL over many ids: batches that stay under SQLite's parameter limit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

_T = TypeVar("_T")
#: SQLite's default limit on bound parameters is 999 in old builds: stay under it
CHUNK = 500


def chunked(items: Sequence[_T], size: int = CHUNK) -> Iterator[list[_T]]:
    """`items` in consecutive lists of at most `size`."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def placeholders(count: int) -> str:
    """`?,?,?` for `count` parameters."""
    return ",".join("?" * count)
