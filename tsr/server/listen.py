"""Listening sockets for the server: a private Unix socket, a TCP port, and loopback checks."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import stat
from pathlib import Path

from tsr.errors import ConfigError, TsrError

SOCKET_NAME = "tsr.sock"
#: sockaddr_un holds 108 bytes including the final NUL
MAX_SOCKET_PATH = 107
BACKLOG = 128


def socket_path(data_dir: Path) -> Path:
    """The embedded server's Unix socket in a data dir."""
    return data_dir / SOCKET_NAME


def ensure_private_dir(path: Path) -> None:
    """Create `path` as 0700, or take group and other access away from an existing one."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)
    except OSError as exc:
        raise TsrError(f"cannot prepare the data dir {path}: {exc.strerror}") from None


def bind_unix_socket(path: Path) -> socket.socket:
    """A listening Unix socket at `path`, mode 0600 from the start (any stale file replaced).

    The caller must hold the data dir's lock, so that a file already there is stale.
    """
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise TsrError(
            f"the socket path {path} is longer than {MAX_SOCKET_PATH} bytes; "
            "set TSR_HOME to a shorter directory"
        )
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # the umask makes the socket private from the moment it exists; chmod makes it certain
    previous = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise TsrError(f"cannot create the socket {path}: {exc.strerror}") from None
    finally:
        os.umask(previous)
    os.chmod(path, 0o600)
    # listening now lets early clients queue in the backlog until the app is ready
    sock.listen(BACKLOG)
    return sock


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it could resolve to anything


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0 picks a free one)."""
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    # proto given explicitly: asyncio sets TCP_NODELAY only on sockets whose proto is TCP, and
    # without it every response stalls ~40 ms (Nagle against delayed ACKs)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bare, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"cannot listen on {host}:{port}: {reason}; choose another --host or --port"
        ) from None
    return sock


def url_for(sock: socket.socket) -> str:
    """The http:// URL a client on this machine uses to reach a TCP socket."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
