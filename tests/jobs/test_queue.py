"""The job queue: order, positions, cancel, events, and jobs that outlive their caller."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.sd_server_fixtures import FakeSdServer
from tests.jobs.conftest import Env, external, until
from tsr.errors import Conflict, NotFound
from tsr.gallery.png import read_chunks, text_of

SMALL = {"width": 64, "height": 64, "steps": 1}


async def test_two_concurrent_requests_both_complete_in_order(
    env: Env, sd15_server: FakeSdServer
) -> None:
    _, queue = await env.start([external("box", sd15_server.url)])
    sd15_server.set_mode(hold=True)

    submitted = await asyncio.gather(
        queue.submit({"prompt": "red", "batch": 2, "seed": 100, **SMALL}),
        queue.submit({"prompt": "blue", "batch": 3, "seed": 200, **SMALL}),
    )
    # whichever request was queued first runs first
    first, second = sorted(submitted, key=lambda job: job.created)
    await until(lambda: queue.get(first.id).state == "running")
    assert queue.get(second.id).state == "queued"
    assert queue.get(second.id).queue_position == 1
    sd15_server.set_mode(hold=False)
    one, two = await queue.wait(first.id), await queue.wait(second.id)

    assert (one.state, two.state) == ("done", "done"), (one.error, two.error)
    assert one.finished is not None and two.started is not None
    assert one.finished <= two.started
    assert env.gallery_count() == 5
    by_prompt = {job.request.prompt: job for job in (one, two) if job.request}
    assert (by_prompt["red"].seeds, by_prompt["blue"].seeds) == ([100, 101], [200, 201, 202])
    saved = [env.gallery.get(i) for i in by_prompt["red"].image_ids + by_prompt["blue"].image_ids]
    assert [image.seed for image in saved] == [100, 101, 200, 201, 202]
    assert [image.prompt for image in saved] == ["red"] * 2 + ["blue"] * 3
    # the file carries the A1111 parameters with the real seed and the model hash
    text = text_of(read_chunks(env.gallery.path_of(saved[3].id).read_bytes()))["parameters"]
    assert "Seed: 201" in text
    assert f"Model hash: {env.sha256('sd15')[:10]}" in text


async def test_a_queued_job_can_be_cancelled_a_generating_one_cannot(
    env: Env, sd15_server: FakeSdServer
) -> None:
    _, queue = await env.start([external("box", sd15_server.url)])
    generations = sd15_server.state()["generations"]
    sd15_server.set_mode(hold=True)
    running = await queue.submit({"prompt": "kept", **SMALL})
    waiting = await queue.submit({"prompt": "dropped", **SMALL})
    last = await queue.submit({"prompt": "last", **SMALL})
    await until(lambda: queue.get(running.id).state == "running")
    assert queue.get(last.id).queue_position == 2

    cancelled = await queue.cancel(waiting.id)
    with pytest.raises(Conflict, match="cannot interrupt a generation; it will finish"):
        await queue.cancel(running.id)

    assert cancelled.state == "cancelled"
    assert queue.get(last.id).queue_position == 1
    sd15_server.set_mode(hold=False)
    assert (await queue.wait(running.id)).state == "done"
    assert (await queue.wait(last.id)).state == "done"
    assert sd15_server.state()["generations"] == generations + 2
    assert [j.id for j in queue.list(state="cancelled")] == [waiting.id]
    with pytest.raises(Conflict, match="already finished"):
        await queue.cancel(waiting.id)
    with pytest.raises(NotFound):
        queue.get("no-such-job")


async def test_every_state_change_and_image_is_announced(
    env: Env, sd15_server: FakeSdServer
) -> None:
    _, queue = await env.start([external("box", sd15_server.url)])

    done = await queue.wait((await queue.submit({"prompt": "x", "batch": 2, **SMALL})).id)

    assert await env.events.job_states(done.id) == ["created", "running", "saving", "done"]
    images = [e for e in await env.events.drain() if e.topic == "image"]
    assert [e.data["image"]["id"] for e in images] == done.image_ids
    assert {e.data["job"] for e in images} == {done.id}


async def test_a_job_outlives_the_caller_that_asked_for_it(
    env: Env, sd15_server: FakeSdServer
) -> None:
    _, queue = await env.start([external("box", sd15_server.url)])
    sd15_server.set_mode(hold=True)

    async def impatient_client() -> None:
        job = await queue.submit({"prompt": "left behind", **SMALL})
        await queue.wait(job.id)

    client = asyncio.create_task(impatient_client())
    await until(lambda: bool(queue.list(state="running")))
    client.cancel()
    with pytest.raises(asyncio.CancelledError):
        await client
    sd15_server.set_mode(hold=False)
    job = queue.list()[0]

    assert (await queue.wait(job.id)).state == "done"
    assert env.gallery_count() == 1


async def test_a_switch_job_waits_its_turn_behind_generations(
    env: Env, sd15_server: FakeSdServer
) -> None:
    command = ["sh", "-c", "exit 0"]
    _, queue = await env.start([external("box", sd15_server.url, switch_command=command)])
    sd15_server.set_mode(hold=True)
    generation = await queue.submit({"prompt": "x", **SMALL})
    switch = await queue.submit_switch(env.tree.checkpoint("sd15"))
    await until(lambda: queue.get(generation.id).state == "running")

    assert queue.get(switch.id).state == "queued"
    assert queue.get(switch.id).kind == "switch"
    sd15_server.set_mode(hold=False)
    assert (await queue.wait(switch.id)).state == "done"
    assert queue.get(generation.id).state == "done"
