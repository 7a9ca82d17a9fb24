"""sd-server failing in every way the fake can: the job fails clearly, nothing is half saved, the
next job works."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.sd_server_fixtures import FakeSdServer, free_port
from tests.jobs.conftest import Env, external, start_fake

SMALL = {"width": 64, "height": 64, "steps": 1, "batch": 2}


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("500", "sd-server could not generate the image: generate_image returned no results"),
        ("garbage", "with something that is not JSON"),
        ("wrong-count", "returned 1 image for a batch of 2"),
    ],
)
async def test_a_broken_answer_fails_the_job_and_saves_nothing(
    env: Env, sd15_server: FakeSdServer, fault: str, message: str
) -> None:
    _, queue = await env.start([external("box", sd15_server.url)])
    sd15_server.set_mode(fail=fault)

    failed = await queue.wait((await queue.submit({"prompt": "broken", **SMALL})).id)

    assert failed.state == "failed"
    assert failed.error is not None and message in failed.error
    assert "Traceback" not in failed.error
    assert (failed.image_ids, env.gallery_count()) == ([], 0)
    sd15_server.reset()
    after = await queue.wait((await queue.submit({"prompt": "fine", **SMALL})).id)
    assert after.state == "done", after.error
    assert env.gallery_count() == 2


async def test_a_generation_slower_than_the_timeout_fails(
    env: Env, sd15_server: FakeSdServer
) -> None:
    _, queue = await env.start([external("box", sd15_server.url)], generation_timeout=0.3)
    sd15_server.set_mode(latency=1.0)

    failed = await queue.wait((await queue.submit({"prompt": "slow", **SMALL})).id)

    assert failed.state == "failed"
    assert failed.error == "sd-server on backend box did not finish within 0.3 s"
    assert env.gallery_count() == 0
    sd15_server.reset()
    # the slow generation still runs on sd-server; the next job waits for it there, then runs
    queue.generation_timeout = 30.0
    after = await queue.wait((await queue.submit({"prompt": "fine", **SMALL})).id)
    assert after.state == "done", after.error
    assert env.gallery_count() == 2


async def test_a_server_that_is_down_fails_the_job_until_it_is_back(
    env: Env, tmp_path: Path
) -> None:
    port = free_port()
    sd15 = env.tree.checkpoint("sd15")
    manager, queue = await env.start([external("box", f"http://127.0.0.1:{port}", model=str(sd15))])
    assert manager.get("box").state == "unreachable"

    failed = await queue.wait((await queue.submit({"prompt": "nobody home", **SMALL})).id)

    assert failed.state == "failed"
    assert failed.error is not None
    assert f"cannot reach sd-server at http://127.0.0.1:{port}" in failed.error
    assert env.gallery_count() == 0
    server = start_fake(sd15, env.tree.loras, tmp_path / "fake", port=port)
    try:
        after = await queue.wait((await queue.submit({"prompt": "back", **SMALL})).id)
    finally:
        server.stop()
    assert after.state == "done", after.error
    assert manager.get("box").state == "ready"
    assert env.gallery_count() == 2
