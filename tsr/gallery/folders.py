"""Folder stamps: which folders of a tree changed since an earlier walk, so a walk reads only those.

A folder's modification time changes whenever an entry is added, removed or renamed in it, so a
folder whose (mtime, inode) is what an earlier walk saw holds the same entries: its files need
not be listed again, only its known subfolders looked at. Files rewritten in place do not change
their folder and are not noticed this way.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

#: (mtime_ns, inode) of a folder
FolderStamp = tuple[int, int]
#: folder path relative to the tree's base ("" for the base) -> its stamp
Stamps = dict[str, FolderStamp]
#: called with (folder, its path relative to the base, file name) for files of listed folders
FileVisitor = Callable[[Path, str, str], None]

#: a folder changed this recently may change again within its file system's mtime granularity
#: (seconds on some) without its stamp changing: it is not trusted by the next walk
SETTLE_NS = 2_000_000_000
#: the mtime of a stamp that never matches, so that its folder is listed next time
UNSETTLED = -1
_DAY_FOLDER = re.compile(r"^(\d{4})/(\d{2})/(\d{2})$")


@dataclass
class TreeWalk:
    """What one walk of a tree saw."""

    #: every folder found, stamped as it was when looked at
    stamps: Stamps = field(default_factory=dict)
    #: folders whose files were listed (new or changed since the earlier walk, or all of them)
    listed: set[str] = field(default_factory=set)
    #: folders the earlier walk saw that are gone
    vanished: set[str] = field(default_factory=set)


def walk_tree(base: Path, previous: Stamps | None, visit: FileVisitor) -> TreeWalk:
    """Walk the folders under `base` (dot folders and folder symlinks skipped), calling `visit`
    for each file of every folder that is new or changed since `previous` (all when None)."""
    children = _children(previous) if previous is not None else {}
    walk = TreeWalk()
    pending = [""]
    while pending:
        relative = pending.pop()
        folder = base / relative if relative else base
        try:
            info = os.stat(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not stat.S_ISDIR(info.st_mode):
            continue
        stamp = (info.st_mtime_ns, info.st_ino)
        walk.stamps[relative] = stamp
        if previous is not None and previous.get(relative) == stamp:
            pending.extend(children.get(relative, ()))
            continue
        walk.listed.add(relative)
        for name, is_folder in _entries(folder):
            if is_folder:
                pending.append(f"{relative}/{name}" if relative else name)
            else:
                visit(folder, relative, name)
    if previous is not None:
        walk.vanished = set(previous) - set(walk.stamps)
    return walk


def list_folder(base: Path, relative: str, visit: FileVisitor) -> None:
    """Call `visit` for each file of one folder of the tree (nothing when it does not exist)."""
    folder = base / relative if relative else base
    try:
        entries = _entries(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name, is_folder in entries:
        if not is_folder:
            visit(folder, relative, name)


def settled(stamps: Stamps, taken_before_ns: int) -> Stamps:
    """`stamps` for the next walk: a folder changed within SETTLE_NS of `taken_before_ns` (a
    time read before the walk began) gets a stamp that never matches."""
    return {
        relative: (UNSETTLED, inode) if taken_before_ns - mtime < SETTLE_NS else (mtime, inode)
        for relative, (mtime, inode) in stamps.items()
    }


def day_of(relative: str) -> date | None:
    """The day a `YYYY/MM/DD` folder stands for; None for any other folder."""
    match = _DAY_FOLDER.match(relative)
    if match is None:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def _entries(folder: Path) -> list[tuple[str, bool]]:
    """(name, is a folder to descend into) of the entries of a folder, files being regular ones."""
    found: list[tuple[str, bool]] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith("."):
                        found.append((entry.name, True))
                elif entry.is_file():
                    found.append((entry.name, False))
            except OSError:
                continue  # gone while listing, or a broken link: nothing to reconcile
    return found


def _children(stamps: Stamps) -> dict[str, list[str]]:
    """Each folder's subfolders, from the relative paths of a walk."""
    children: dict[str, list[str]] = {}
    for relative in stamps:
        if relative:
            parent = relative.rpartition("/")[0]
            children.setdefault(parent, []).append(relative)
    return children
