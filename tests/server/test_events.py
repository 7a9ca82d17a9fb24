"""The event bus and `GET /api/events`: order, topic filters, overflow, keep-alives, shut-down."""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import TOKEN, make_config
from tests.server.running import RunningApp, serve_app
from tsr.client import AsyncClient, Client
from tsr.errors import BadRequest
from tsr.schemas.server import Event
from tsr.server.events import EventBus, EventBusClosed


async def test_events_from_the_loop_and_from_threads_arrive_in_order() -> None:
    bus = EventBus()
    bus.start(asyncio.get_running_loop())
    jobs = bus.subscribe(["job"])
    everything = bus.subscribe()

    def from_thread() -> None:
        for n in range(50):
            bus.publish("job", "progress", {"n": n})

    worker = threading.Thread(target=from_thread)
    worker.start()
    for n in range(50):
        bus.publish("image", "created", {"n": n})
    await asyncio.to_thread(worker.join)

    seen = [await everything.get(max_wait=5) for _ in range(100)]
    assert all(isinstance(event, Event) for event in seen)
    by_topic = {
        topic: [e.data["n"] for e in seen if e is not None and e.topic == topic]
        for topic in ("job", "image")
    }
    assert by_topic == {"job": list(range(50)), "image": list(range(50))}
    ids = [e.id for e in seen if e is not None]
    assert ids == sorted(ids) and len(set(ids)) == 100

    only_jobs = [await jobs.get(max_wait=5) for _ in range(50)]
    assert {e.topic for e in only_jobs if e is not None} == {"job"}
    assert await jobs.get(max_wait=0.01) is None  # the images never reached it


async def test_a_slow_subscriber_loses_the_oldest_and_is_told() -> None:
    bus = EventBus()
    bus.start(asyncio.get_running_loop())
    slow = bus.subscribe(maxsize=3)
    for n in range(10):
        bus.publish("scan", "progress", {"n": n})
    notice = await slow.get(max_wait=1)
    assert notice is not None
    assert (notice.topic, notice.kind, notice.data) == ("bus", "dropped", {"count": 7})
    rest = [await slow.get(max_wait=1) for _ in range(3)]
    assert [e.data["n"] for e in rest if e is not None] == [7, 8, 9]


async def test_closing_the_bus_ends_every_subscription() -> None:
    bus = EventBus()
    bus.start(asyncio.get_running_loop())
    subscription = bus.subscribe()
    bus.publish("link", "linked", {"id": 1})
    bus.close()
    first = await subscription.get(max_wait=1)
    assert first is not None and first.kind == "linked"  # what was queued is still read
    with pytest.raises(EventBusClosed):
        await subscription.get(max_wait=1)
    bus.publish("link", "linked", {"id": 2})  # ignored, not an error
    assert bus.subscriber_count == 0


def test_unknown_topics_and_bad_payloads_fail_where_they_are_made() -> None:
    bus = EventBus()
    with pytest.raises(ValueError, match="unknown event topic 'jobs'"):
        bus.publish("jobs", "progress")
    with pytest.raises(TypeError, match="mapping or a model"):
        bus.publish("job", "progress", [1, 2])  # type: ignore[arg-type]


def publish_mixed(server: RunningApp) -> None:
    """job 0..4 from this thread, image 0..4 from the server's loop, scans nobody asked for."""
    bus = server.state.events
    for n in range(5):
        bus.publish("job", "progress", {"n": n})
        bus.publish("scan", "progress", {"n": n})
    for n in range(5):
        server.on_loop(functools.partial(bus.publish, "image", "created", {"n": n}))


def check_mixed(events: list[Event]) -> None:
    assert {e.topic for e in events} == {"job", "image"}
    assert [e.data["n"] for e in events if e.topic == "job"] == list(range(5))
    assert [e.data["n"] for e in events if e.topic == "image"] == list(range(5))
    ids = [e.id for e in events]
    assert ids == sorted(ids)


@pytest.fixture
def server(isolated_home: Path) -> RunningApp:
    return serve_app(make_config(isolated_home, token=TOKEN), sse_keepalive=0.2)


def test_the_sync_client_follows_events_over_tcp(server: RunningApp) -> None:
    with server, Client(server.url, token=TOKEN) as client:
        stream = client.events(["job", "image"])
        hello = next(stream)
        assert (hello.topic, hello.kind) == ("bus", "subscribed")
        assert hello.data["topics"] == ["image", "job"]
        publish_mixed(server)
        check_mixed([next(stream) for _ in range(10)])
        stream.close()


async def test_the_async_client_follows_events_over_tcp(server: RunningApp) -> None:
    with server:
        async with AsyncClient(server.url, token=TOKEN) as client:
            received: list[Event] = []
            async for event in client.events(["job", "image"]):
                if event.topic == "bus":
                    await asyncio.to_thread(publish_mixed, server)
                    continue
                received.append(event)
                if len(received) == 10:
                    break
        check_mixed(received)


def test_idle_streams_get_keep_alive_comments(server: RunningApp) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        server,
        httpx.stream("GET", f"{server.url}/api/events", headers=headers, timeout=10) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == "event: bus"
        comments = 0
        for line in lines:
            comments += line == ": keep-alive"
            if comments == 2:
                break
        assert comments == 2


def test_a_stopping_server_ends_open_streams(server: RunningApp) -> None:
    with Client(server.url, token=TOKEN) as client:
        with server:
            stream = client.events()
            assert next(stream).kind == "subscribed"
        # the server stopped (it did not hang on the open stream), and the stream ended
        assert list(stream) == []


def test_an_unknown_topic_is_refused_by_name(server: RunningApp) -> None:
    topic_named = r"rejected the request: topics\.0: Input should be"
    with (
        server,
        Client(server.url, token=TOKEN) as client,
        pytest.raises(BadRequest, match=topic_named),
    ):
        next(client.events(["jobs"]))
