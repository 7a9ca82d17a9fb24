"""The generation service in the app's lifespan: backends and queue start and stop with the app."""

from __future__ import annotations

import httpx

from tests.fakes.sd_server_fixtures import FakeSdServer
from tests.jobs.conftest import Env, external
from tsr.server.app import SERVICES, app_state, create_app
from tsr.server.backends import BackendManager
from tsr.server.jobs import JobQueue, generation_service


async def test_the_app_runs_the_queue_and_reports_its_backends(
    env: Env, sd15_server: FakeSdServer
) -> None:
    app = create_app(
        env.config([external("box", sd15_server.url)]), services=[*SERVICES, generation_service]
    )
    state = app_state(app)

    async with app.router.lifespan_context(app):
        queue = state.service(JobQueue)
        job = await queue.submit({"prompt": "x", "width": 64, "height": 64, "steps": 1})
        done = await queue.wait(job.id)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tsr") as client:
            info = (await client.get("/api/info")).json()

    assert done.state == "done", done.error
    assert info["backends"] == [
        {
            "name": "box",
            "kind": "external",
            "url": sd15_server.url,
            "state": "ready",
            "model": str(env.tree.checkpoint("sd15")),
        }
    ]
    assert state.find(JobQueue) is None
    assert state.find(BackendManager) is None
