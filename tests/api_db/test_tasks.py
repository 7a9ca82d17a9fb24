"""Background tasks: one scan at a time (409), cancel, and progress on the event stream."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.api_db.conftest import TOKEN, Library, Mode, database_write_lock
from tsr.client import AsyncClient, connect_async
from tsr.errors import Conflict, NotFound


def test_a_second_scan_while_one_runs_is_refused_and_a_cancel_stops_it(
    api: Mode, library: Library
) -> None:
    db = api.client.db
    assert db.stats().files == 0  # the server is up and its database made
    # another writer holds the database: the scan starts, then waits for it
    with database_write_lock(api.db_file):
        first = db.scan()
        with pytest.raises(Conflict) as refused:
            db.scan([str(library.loras)])
        assert re.match(r"a scan is already (queued|running) on this server", str(refused.value))
        assert f"(task #{first.id}" in str(refused.value)
        assert f"`tsr db cancel {first.id}`" in str(refused.value)
        # a link is another kind of task: it may run beside the scan
        assert db.link().kind == "link"
        cancelling = db.cancel(first.id)
        assert cancelling.cancel_requested and not cancelling.finished_state
    stopped = db.wait(cancelling)
    assert stopped.state == "cancelled"
    assert stopped.scan is not None and stopped.scan.interrupted
    # a cancelled task stays as it ended; the next scan picks up where it stopped
    assert db.cancel(first.id).state == "cancelled"
    again = db.wait(db.scan())
    assert again.state == "done" and again.scan is not None
    assert again.scan.new + again.scan.unchanged == 3
    assert db.stats().present == 3
    with pytest.raises(NotFound, match="no task #999"):
        db.task(999)
    states = {t.id: t.state for t in db.tasks(kinds=["scan"])}
    assert states == {first.id: "cancelled", again.id: "done"}


async def test_the_async_client_follows_a_scan_on_the_event_stream(
    api: Mode, library: Library
) -> None:
    if api.name == "local":
        client = connect_async("local")
    else:
        client = AsyncClient(api.client.endpoint.base_url, token=TOKEN)
    async with client:
        events = client.events(["scan"])
        hello = await anext(events)
        assert (hello.topic, hello.kind) == ("bus", "subscribed")
        task = await client.db.scan()
        seen = []
        async with asyncio.timeout(30):
            async for event in events:
                assert event.topic == "scan" and event.data["id"] == task.id
                seen.append((event.kind, event.data["state"]))
                if event.kind == "finished":
                    break
        await events.aclose()
        assert seen[:2] == [("queued", "queued"), ("started", "running")]
        assert seen[-1] == ("finished", "done")
        finished = await client.db.wait(task)
        assert finished.scan is not None and finished.scan.new == 3
        assert [f.name for f in (await client.db.files(kind="checkpoint")).items] == [
            "ponyV6.safetensors"
        ]
        lora = await client.db.resolve("zkx_girl_v2")
        assert (await client.db.file(lora.id)).triggers[0].word != ""
        assert (await client.db.stats()).present == 3
