"""Listening sockets and the lock file: private, fast, and one server per data dir."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from tsr.errors import ConfigError, TsrError
from tsr.server.listen import bind_tcp, bind_unix_socket, ensure_private_dir, is_loopback, url_for
from tsr.server.lock import LockHolder, claim_or_find, read_holder, try_lock


def test_the_unix_socket_is_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        sock = bind_unix_socket(tmp_path / "tsr.sock")
    finally:
        os.umask(previous)
    with sock:
        assert stat.S_IMODE((tmp_path / "tsr.sock").stat().st_mode) == 0o600
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(tmp_path / "tsr.sock"))  # it listens at once


def test_a_socket_path_too_long_for_the_kernel_names_the_fix(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with pytest.raises(TsrError, match="longer than 107 bytes; set TSR_HOME to a shorter"):
        bind_unix_socket(deep / "tsr.sock")


def test_the_data_dir_is_made_private(tmp_path: Path) -> None:
    open_dir = tmp_path / "home"
    open_dir.mkdir(mode=0o755)
    ensure_private_dir(open_dir)
    ensure_private_dir(tmp_path / "new" / "home")
    assert stat.S_IMODE(open_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "home").stat().st_mode) == 0o700


def test_tcp_sockets_are_tcp_so_responses_are_not_delayed() -> None:
    # asyncio turns Nagle off (TCP_NODELAY) only for sockets whose proto is TCP
    with bind_tcp("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP
        assert url_for(sock).startswith("http://127.0.0.1:")


def test_a_port_in_use_is_one_sentence() -> None:
    with bind_tcp("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}: .*--port"):
            bind_tcp("127.0.0.1", port)


def test_a_wildcard_address_is_reached_over_loopback() -> None:
    with bind_tcp("0.0.0.0", 0) as sock:
        assert url_for(sock) == f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("gpu-box", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_lock_is_held_until_released(tmp_path: Path) -> None:
    lock = try_lock(tmp_path)
    assert lock is not None
    lock.publish(LockHolder(pid=os.getpid(), kind="serve", url="http://127.0.0.1:8765"))
    assert try_lock(tmp_path) is None
    found = claim_or_find(tmp_path)
    assert found == LockHolder(pid=os.getpid(), kind="serve", url="http://127.0.0.1:8765")
    assert found.describe() == f"tsr serve (pid {os.getpid()}) at http://127.0.0.1:8765"
    lock.release()
    assert read_holder(tmp_path) is None
    again = try_lock(tmp_path)
    assert again is not None
    again.release()


def test_a_lock_held_without_an_address_is_waited_for_then_reported(tmp_path: Path) -> None:
    lock = try_lock(tmp_path)
    assert lock is not None
    with pytest.raises(TsrError, match="does not say where it listens"):
        claim_or_find(tmp_path, timeout=0.1)
    lock.release()
