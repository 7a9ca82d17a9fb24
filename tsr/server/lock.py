"""The server lock file: at most one tsr server per data dir, and where that server listens."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from tsr.errors import TsrError

LOCK_NAME = "server.lock"
#: how long to wait for a server that holds the lock to say where it listens
ANNOUNCE_TIMEOUT = 5.0

ServerKind = Literal["serve", "embedded"]


@dataclass(frozen=True)
class LockHolder:
    """The server that holds a data dir's lock: its process, kind, and address."""

    pid: int
    kind: ServerKind
    url: str | None = None
    socket: str | None = None

    def describe(self) -> str:
        """E.g. `tsr serve (pid 123) at http://127.0.0.1:8765`."""
        if self.kind == "serve":
            return f"tsr serve (pid {self.pid}) at {self.url}"
        return f"an embedded tsr server (pid {self.pid}) on {self.socket}"


class ServerLock:
    """A held lock on `<data dir>/server.lock`: flock()ed until `release()` or process exit."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        """True until released."""
        return self._fd is not None

    def publish(self, holder: LockHolder) -> None:
        """Write where this server listens (in place: the lock belongs to this inode)."""
        if self._fd is None:
            raise RuntimeError("the server lock was already released")
        data = json.dumps(asdict(holder)).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def release(self) -> None:
        """Empty the file and unlock it; the file stays, so nobody locks a stale inode."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def lock_path(data_dir: Path) -> Path:
    """The lock file of a data dir."""
    return data_dir / LOCK_NAME


def try_lock(data_dir: Path) -> ServerLock | None:
    """Take the data dir's lock if nobody holds it (a stale file is simply taken over)."""
    path = lock_path(data_dir)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise TsrError(f"cannot open the server lock {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return ServerLock(path, fd)


def read_holder(data_dir: Path) -> LockHolder | None:
    """What the lock file says (None when it is empty, unreadable or half written)."""
    try:
        raw = json.loads(lock_path(data_dir).read_bytes() or b"null")
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    try:
        holder = LockHolder(
            pid=int(raw["pid"]), kind=raw["kind"], url=raw.get("url"), socket=raw.get("socket")
        )
    except (KeyError, TypeError, ValueError):
        return None
    if holder.kind not in ("serve", "embedded") or not (holder.url or holder.socket):
        return None
    return holder


def claim_or_find(data_dir: Path, timeout: float = ANNOUNCE_TIMEOUT) -> ServerLock | LockHolder:
    """Take the lock, or say which live server holds it (waiting while it starts up)."""
    deadline = time.monotonic() + timeout
    while True:
        lock = try_lock(data_dir)
        if lock is not None:
            return lock
        holder = read_holder(data_dir)
        if holder is not None:
            return holder
        if time.monotonic() > deadline:
            raise TsrError(
                f"another process holds {lock_path(data_dir)} but does not say where it "
                "listens; wait for it to start or stop it"
            )
        # the holder has locked the file but not written its address yet
        time.sleep(0.02)
