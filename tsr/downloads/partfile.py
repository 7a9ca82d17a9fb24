"""The .part file of a download: its size, opening it safely, its running SHA-256, a full disk."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path

from tsr.errors import TsrError

#: bytes read back per call when re-hashing an existing .part
_REHASH_CHUNK = 1 << 20


class TransferStopped(Exception):
    """The transfer was asked to stop (cancel or shut-down); the .part file stays."""


class DiskFull(TsrError):
    """The disk ran out of space; the .part file stays for a later resume."""


class RunningHash:
    """SHA-256 of the first `length` bytes of the .part file, kept across attempts."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.length = 0

    def reset(self) -> None:
        """Forget everything (the .part starts again from byte zero)."""
        self.digest = hashlib.sha256()
        self.length = 0

    def catch_up(self, part: Path, size: int, stop: threading.Event) -> None:
        """Hash what the .part holds when this object has not seen it (after a restart)."""
        if self.length == size:
            return
        self.reset()
        with part.open("rb") as handle:
            while self.length < size:
                if stop.is_set():
                    raise TransferStopped
                chunk = handle.read(min(_REHASH_CHUNK, size - self.length))
                if not chunk:
                    break
                self.digest.update(chunk)
                self.length += len(chunk)

    def update(self, chunk: bytes | memoryview) -> None:
        """Take the next bytes written to the .part."""
        self.digest.update(chunk)
        self.length += len(chunk)


def open_part(part: Path) -> int:
    """A write descriptor on the .part file, created if missing (mode 0644)."""
    # O_NOFOLLOW: a symlink planted at the .part path must not redirect writes elsewhere
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    return os.open(part, flags, 0o644)


def part_size(part: Path) -> int:
    """How many bytes the .part file holds (0 when there is none)."""
    try:
        return part.stat().st_size
    except FileNotFoundError:
        return 0


def disk_full_error(folder: Path, needed: int | None = None) -> DiskFull:
    """The one sentence for a full disk: where, how much is free, and that it resumes."""
    try:
        free = size_text(shutil.disk_usage(folder).free)
    except OSError:
        free = "no space"
    more = f"; {size_text(needed)} more are needed" if needed else ""
    return DiskFull(
        f"the disk holding {folder} is full ({free} free{more}); free some space and start "
        "the download again: it resumes where it stopped"
    )


def size_text(size: float) -> str:
    """Bytes as a short human size: 2.0 GiB, 151 MiB, 12 KiB."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    for unit in units:
        if abs(size) < 1024 or unit == units[-1]:
            break
        size /= 1024
    return f"{size:.0f} {unit}" if unit == "B" or abs(size) >= 100 else f"{size:.1f} {unit}"
