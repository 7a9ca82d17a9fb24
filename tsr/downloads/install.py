"""From a verified .part to a model file: no-clobber atomic placement, quarantine, scan and link."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from pathlib import Path

from tsr.civitai import CivitaiClient, CivitaiVersion
from tsr.config import Config
from tsr.db.civitai_store import store_versions
from tsr.db.database import db
from tsr.db.files import file_ids_with_sha256, get_file
from tsr.db.link import link_files
from tsr.db.models import LocalFile
from tsr.db.scan import KnownDigest, scan_roots
from tsr.downloads.names import numbered
from tsr.errors import RootViolation, TsrError
from tsr.paths import is_within

#: folder (inside each model root) holding the .part files, so a rename never crosses disks
PARTIAL_DIR = ".tsr-partial"
#: how many numbered names to try before giving up on a crowded folder
MAX_NAME_TRIES = 1000
_HASH_CHUNK = 1 << 20


def part_path(root: Path, download_id: int) -> Path:
    """Where download `download_id` keeps its bytes until it is verified."""
    return root / PARTIAL_DIR / f"{download_id}.part"


def prepare_part(root: Path, download_id: int) -> Path:
    """The .part path, its folder created inside `root` (a symlink leading out is refused)."""
    part = part_path(root, download_id)
    part.parent.mkdir(parents=True, exist_ok=True)
    if not is_within(part.parent, root):
        raise RootViolation(f"{part.parent} leads out of the model root {root}; remove it")
    return part


def quarantine_dir(config: Config) -> Path:
    """Where files whose hash did not match are kept, never installed."""
    return config.home / "quarantine"


def sha256_of_file(path: Path) -> str:
    """The SHA-256 of a file on disk (lower-case hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _same_content(path: Path, size: int, sha256: str) -> bool:
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size != size:
            return False
        return sha256_of_file(path) == sha256
    except OSError:
        return False


def _place(part: Path, target: Path) -> bool:
    """Move `part` to `target` unless something is there already; True when it moved."""
    try:
        # a hard link fails when the name exists: no window in which a file is overwritten
        os.link(part, target)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        # filesystems without hard links (some network and FAT mounts): check, then rename
        if os.path.lexists(target):
            return False
        os.rename(part, target)
        return True
    os.unlink(part)
    return True


def install_file(part: Path, root: Path, name: str, sha256: str) -> tuple[Path, bool]:
    """Move the verified `part` into `root` as `name`, never replacing a different file.

    A file of that name with the same content means the model is already there (the .part is
    dropped); a different one makes the new file `name-2`, `name-3`, ...

    Returns:
        (the installed path, True when an identical file was already there).
    """
    size = part.stat().st_size
    for number in range(1, MAX_NAME_TRIES + 1):
        target = root / (name if number == 1 else numbered(name, number))
        if not is_within(target, root) or target.parent != root:
            raise RootViolation(f"the file name {name!r} would leave the model root {root}")
        if os.path.lexists(target):
            if _same_content(target, size, sha256):
                part.unlink()
                return target, True
            continue
        if _place(part, target):
            _fsync_dir(root)
            return target, False
    raise TsrError(f"{root} already holds {MAX_NAME_TRIES} files named like {name}; tidy it up")


def quarantine(part: Path, config: Config, download_id: int, name: str) -> Path:
    """Move a file that failed verification out of the model roots; its new path."""
    folder = quarantine_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{download_id}-{name}"
    number = 1
    while os.path.lexists(target):  # an earlier attempt of the same download is kept too
        number += 1
        target = folder / numbered(f"{download_id}-{name}", number)
    # the data dir may sit on another disk than the model root: move, not rename
    shutil.move(part, target)
    return target


def present_copy(sha256: str) -> tuple[int, str] | None:
    """A file with this content the models database knows and that is on disk: (id, path)."""
    for file_id in file_ids_with_sha256([sha256]).get(sha256, []):
        path = get_file(file_id).path
        if os.path.isfile(path):
            return file_id, path
    return None


def register_file(
    path: Path,
    config: Config,
    version: CivitaiVersion | None,
    client: CivitaiClient,
    known: KnownDigest | None = None,
) -> tuple[int | None, list[str]]:
    """Scan the one installed file into the models database and link it to CivitAI.

    The version the download came from is stored first, so the link needs no network; the
    SHA256 computed while downloading (`known`) spares the scan reading the file again.

    Returns:
        (the file's database id, or None if the scan skipped it; warnings to show).
    """
    warnings: list[str] = []
    with db.connection_context():
        if version is not None and version.model_id is not None:
            with db.atomic("IMMEDIATE"):
                store_versions([version])
        known_digests = [known] if known is not None else []
        result = scan_roots([path], model_roots=config.model_roots(), known_digests=known_digests)
        warnings += [f"{issue.path}: {issue.error}" for issue in result.errors]
        row = LocalFile.get_or_none(LocalFile.path == str(path))
        if row is None:
            return None, [*warnings, f"the scan did not pick up {path}"]
        try:
            link_files(client, file_ids=[row.id])
        except TsrError as exc:
            warnings.append(f"not linked to CivitAI yet ({exc}); `tsr db link` retries")
        return int(row.id), warnings
