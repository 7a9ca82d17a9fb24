"""SHA256 of model files, streamed in large chunks, and the short forms A1111 and CivitAI use.

Convention: tsr stores and prints hashes in lower case (as A1111 writes `Model hash`) and compares
them case-insensitively (CivitAI shows upper case and accepts either).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import string
from collections.abc import Callable
from pathlib import Path

from tsr.errors import ModelFileError

#: 1 MiB: big enough that system calls cost nothing, small enough to stay in the CPU cache
#: between read and hash (bench/hash.py --sweep: 256 KiB to 4 MiB tie, 16 MiB is slower warm;
#: a reader thread or WILLNEED read-ahead showed no gain that stood out of the disk's noise)
DEFAULT_CHUNK_SIZE = 1 << 20
AUTOV2_LENGTH = 10
LORA_SHORT_LENGTH = 12


def sha256_file(
    path: Path,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> str:
    """The lower-case hex SHA256 of the file at `path`.

    Args:
        path: the file to hash.
        progress: called after each chunk with the number of bytes hashed so far.
        chunk_size: bytes read per system call.

    Raises:
        ModelFileError: the file is missing or cannot be read.
    """
    digest = hashlib.sha256()
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    done = 0
    try:
        with path.open("rb", buffering=0) as stream:
            _advise_sequential(stream.fileno())
            while read := stream.readinto(buffer):
                digest.update(view[:read])
                done += read
                if progress is not None:
                    progress(done)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, not a model file") from None
    except PermissionError:
        raise ModelFileError(f"{path}: cannot be read (permission denied)") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return digest.hexdigest()


def _advise_sequential(fd: int) -> None:
    # Doubles the kernel's read-ahead on Linux: helps when the file is not in the page cache.
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        # some filesystems (FUSE, NFS) refuse advice; reading works all the same
        with contextlib.suppress(OSError):
            advise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)


def _checked(sha256: str) -> str:
    lowered = sha256.strip().lower()
    if len(lowered) != 64 or not all(char in string.hexdigits for char in lowered):
        raise ValueError(f"not a SHA256 hex digest: {sha256!r}")
    return lowered


def autov2(sha256: str) -> str:
    """AutoV2, A1111's `Model hash`: the first 10 hex characters of the SHA256, lower case."""
    return _checked(sha256)[:AUTOV2_LENGTH]


def lora_short_hash(sha256: str) -> str:
    """The LoRA hash A1111 writes in `Lora hashes`: the first 12 hex characters, lower case."""
    return _checked(sha256)[:LORA_SHORT_LENGTH]


def same_hash(full_or_short: str, other: str) -> bool:
    """Whether two hashes name the same file: case-insensitive; a short form (AutoV2 or longer)
    matches the full SHA256 it begins."""
    first, second = full_or_short.strip().lower(), other.strip().lower()
    shorter, longer = sorted((first, second), key=len)
    if len(shorter) < AUTOV2_LENGTH:
        return bool(first) and first == second
    return longer.startswith(shorter)
