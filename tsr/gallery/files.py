"""Crash-safe file writes for the gallery: temp file in the same folder, fsync, rename."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

#: every temporary file the gallery writes ends so; reconcile deletes leftovers
TEMP_SUFFIX = ".tmp"


def temp_path_for(path: Path) -> Path:
    """A hidden temp name beside `path` (same folder, hence same filesystem for the rename)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (no-op where directories cannot be opened)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def write_temp(path: Path, data: bytes, *, durable: bool = True) -> Path:
    """Write `data` fully (and durably) to a temp file beside `path`; return the temp file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(path)
    try:
        with open(temp, "xb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return temp


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data` so readers see the old file or the whole new one, never half.

    `durable` also survives a power cut (fsync of the file and its folder); a cache can skip it.
    """
    temp = write_temp(path, data, durable=durable)
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    if durable:
        fsync_dir(path.parent)


def move(source: Path, target: Path) -> None:
    """Rename `source` to `target` (same filesystem), creating the target's folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def publish(temp: Path, target: Path) -> bool:
    """Give a temp file its final name unless that name is taken (never replacing a file).

    Returns False, and removes the temp file, when `target` exists already.
    """
    try:
        os.link(temp, target)
    except FileExistsError:
        temp.unlink()
        return False
    except OSError:
        # a filesystem without hard links: check, then rename (the gallery has one writer)
        if target.exists():
            temp.unlink()
            return False
        os.replace(temp, target)
        return True
    temp.unlink()
    return True
