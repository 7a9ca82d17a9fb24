"""Image ids: time-ordered integers (milliseconds since 2000 and a sequence), and where files live.

An id is `(ms_since_2000 << 11) | sequence`: it sorts by creation time, fits in 52 bits (safe as a
JSON number in any language, until 2069), carries nothing of the seed, and tells where its file is:
`YYYY/MM/DD/<id>.png` (UTC date) under the gallery root, or the same under the trash folder.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath

from tsr.errors import NotFound

SEQUENCE_BITS = 11
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
#: the largest id this scheme produces (2^52 - 1)
MAX_ID = (1 << 52) - 1
_MAX_MS = MAX_ID >> SEQUENCE_BITS
_FILE_NAME = re.compile(r"^([1-9][0-9]{0,15})\.png$")


def ms_of(moment: datetime) -> int:
    """Milliseconds since the id epoch for `moment` (naive means UTC), clamped to the id range."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    return min(max(ms, 1), _MAX_MS)


def first_id_at(moment: datetime) -> int:
    """The smallest id that could be made at `moment`: date filters compare ids with it."""
    return ms_of(moment) << SEQUENCE_BITS


def created_of(image_id: int) -> datetime:
    """The creation time (UTC, millisecond precision) an id encodes."""
    return _EPOCH + timedelta(milliseconds=image_id >> SEQUENCE_BITS)


class IdMaker:
    """Makes unique, increasing ids for one process, even within a millisecond."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def make(self) -> int:
        """A new id for now, above every id this maker gave before."""
        base = first_id_at(datetime.now(UTC))
        with self._lock:
            self._last = min(max(base, self._last + 1), MAX_ID)
            return self._last


def parse_image_id(value: int | str) -> int:
    """An id from user input (API path, CLI); anything else is refused with NotFound."""
    if isinstance(value, bool):
        raise NotFound(f"there is no image with id {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 16:
        number = int(value)
    else:
        raise NotFound(f"there is no image with id {value!r}; ids are numbers")
    if not 0 < number <= MAX_ID:
        raise NotFound(f"there is no image with id {value!r}")
    return number


def relative_file(image_id: int) -> PurePosixPath:
    """Where an image's file lives, relative to the gallery root (or to the trash folder)."""
    day = created_of(image_id)
    return PurePosixPath(f"{day:%Y}", f"{day:%m}", f"{day:%d}", f"{image_id}.png")


def id_from_file_name(name: str) -> int | None:
    """The id in a file name like `123.png`, or None when the name is not one tsr gives."""
    match = _FILE_NAME.match(name)
    if match is None:
        return None
    number = int(match.group(1))
    return number if number <= MAX_ID else None
