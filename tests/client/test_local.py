"""The `local` remote: embedded on a private Unix socket, reused, or a running `tsr serve`."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from tests.server.conftest import TOKEN, make_config
from tsr.client import connect, connect_async
from tsr.client.local import embedded_server, shutdown_embedded
from tsr.config import load_config
from tsr.errors import RemoteUnreachable
from tsr.schemas.server import Event
from tsr.server.app import app_state
from tsr.server.lock import try_lock


def lock_content(home: Path) -> dict[str, object]:
    return json.loads((home / "server.lock").read_text() or "null")


def test_local_is_embedded_on_a_private_socket(
    isolated_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with connect("local") as client:
        info = client.info()
        assert client.health().status == "ok"
    assert (info.mode, info.pid, info.data_dir) == ("embedded", os.getpid(), str(isolated_home))
    assert "events" in info.capabilities
    socket_file = isolated_home / "tsr.sock"
    assert stat.S_ISSOCK(socket_file.stat().st_mode)
    assert stat.S_IMODE(socket_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(isolated_home.stat().st_mode) == 0o700
    assert lock_content(isolated_home) == {
        "pid": os.getpid(),
        "kind": "embedded",
        "url": None,
        "socket": str(socket_file),
    }
    # nothing printed: a TUI's screen would be garbled by server logs
    assert capfd.readouterr() == ("", "")


def test_a_second_connect_reuses_the_embedded_server(isolated_home: Path) -> None:
    first, second = connect("local"), connect()
    assert first.info().server_id == second.info().server_id
    first.close()
    assert second.health().status == "ok"  # closing one client leaves the server running
    second.close()


def test_shutting_down_removes_the_socket_and_frees_the_lock(isolated_home: Path) -> None:
    with connect("local") as client:
        client.health()
    shutdown_embedded()
    assert not (isolated_home / "tsr.sock").exists()
    assert (isolated_home / "server.lock").read_text() == ""
    lock = try_lock(isolated_home)
    assert lock is not None
    lock.release()


def test_a_stale_lock_and_socket_are_taken_over(isolated_home: Path) -> None:
    isolated_home.mkdir(parents=True)
    stale = {"pid": 999_999, "kind": "serve", "url": "http://127.0.0.1:9", "socket": None}
    (isolated_home / "server.lock").write_text(json.dumps(stale))
    (isolated_home / "tsr.sock").write_text("left over by a crash")
    with connect("local") as client:
        assert client.info().pid == os.getpid()
    assert lock_content(isolated_home)["pid"] == os.getpid()


def test_a_local_server_that_cannot_start_says_why(isolated_home: Path) -> None:
    not_a_file = isolated_home / "db-is-a-directory"
    not_a_file.mkdir(parents=True)
    config = make_config(isolated_home, db_path=str(not_a_file))
    with connect("local", config) as client, pytest.raises(RemoteUnreachable) as caught:
        client.info()
    message = str(caught.value)
    assert message.startswith("the local tsr server is not running: cannot open the database")
    assert str(not_a_file) in message
    assert not (isolated_home / "tsr.sock").exists()


def test_local_sends_the_configured_token(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TSR_TOKEN", TOKEN)
    with connect("local", load_config()) as client:
        assert client.info().auth is True


def publish_on(home: Path) -> None:
    server = embedded_server(load_config())
    assert server is not None and server.app is not None
    bus = app_state(server.app).events
    for n in range(3):
        bus.publish("download", "progress", {"n": n})
        bus.publish("backend", "ready", {"n": n})


def test_events_stream_over_the_unix_socket(isolated_home: Path) -> None:
    with connect("local") as client:
        stream = client.events(["download"])
        assert next(stream).kind == "subscribed"
        publish_on(isolated_home)
        received = [next(stream) for _ in range(3)]
        stream.close()
    assert [(e.topic, e.data["n"]) for e in received] == [("download", n) for n in range(3)]


async def test_async_events_stream_over_the_unix_socket(isolated_home: Path) -> None:
    received: list[Event] = []
    async with connect_async("local") as client:
        async for event in client.events(["backend"]):
            if event.kind == "subscribed":
                await asyncio.to_thread(publish_on, isolated_home)
                continue
            received.append(event)
            if len(received) == 3:
                break
    assert [(e.topic, e.data["n"]) for e in received] == [("backend", n) for n in range(3)]
