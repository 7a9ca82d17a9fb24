"""Following jobs: through a stream that drops, with the async client, and a Ctrl-C while the
CLI waits; against the embedded `local` server and a `tsr serve` process with a token."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.api_generate.conftest import PATIENCE, Stack, wait_until
from tests.api_generate.proxy import StreamCuttingProxy
from tests.server.running import cli_env
from tsr.client import Client, connect_async, endpoint_for
from tsr.client.base import url_endpoint
from tsr.schemas.jobs import JobOut

TINY = {"checkpoint": "sd15", "width": 64, "height": 64, "steps": 1}


def test_a_dropped_event_stream_falls_back_to_polling(api: Client, stack: Stack) -> None:
    endpoint = endpoint_for(stack.remote, stack.config())
    seen: list[str] = []
    with (
        StreamCuttingProxy(endpoint) as proxy,
        Client(url_endpoint(proxy.url, endpoint.token)) as client,
    ):
        client.generation.poll_interval = 0.05
        job = client.generation.generate_and_wait(
            {"prompt": "cut", **TINY}, lambda update: seen.append(update.state)
        )

    assert proxy.cuts == 1
    assert job.state == "done", job.error
    assert (seen[0], seen[-1]) == ("queued", "done")
    assert api.generation.job(job.id).image_ids == job.image_ids != []


async def test_the_async_client_generates_switches_and_lists(stack: Stack) -> None:
    seen: list[JobOut] = []
    async with connect_async(stack.remote, stack.config()) as client:
        job = await client.generation.generate_and_wait({"prompt": "async", **TINY}, seen.append)
        images = await client.generation.images(job.id)
        switched = await client.models.switch_and_wait("sd15", "gpu")
        checkpoints = await client.models.list(family="sd15")
        active = await client.models.active()
        loras = await client.models.loras()

    assert job.state == "done", job.error
    assert seen[-1].state == "done"
    assert [image.id for image in images] == job.image_ids
    assert switched.state == "done"  # already loaded: nothing to restart, done at once
    assert [(c.name, c.loaded_on) for c in checkpoints.items] == [("sd15.safetensors", ["gpu"])]
    assert [b.name for b in active] == ["gpu", "offline"]
    assert loras.family == "sd15"


def test_ctrl_c_stops_waiting_and_says_how_to_cancel(api: Client, stack: Stack) -> None:
    args = stack.cli_args("generate", "interrupt me", "-m", "sd15", "-W", "64", "-H", "64")
    stack.fake(hold=True)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "tsr", *args],
            env=cli_env(stack.home, stack.config_file),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        found: list[JobOut] = []

        def generating() -> bool:
            found[:] = [
                job
                for job in api.generation.jobs(state="running")
                if job.request is not None and job.request.prompt == "interrupt me"
            ]
            return bool(found)

        wait_until(generating, "the CLI's job to reach sd-server")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=PATIENCE)
    finally:
        stack.fake(hold=False)

    job = found[0]
    suffix = "" if stack.remote == "local" else f" --remote {stack.remote}"
    assert (process.returncode, out) == (130, "")
    assert err == (
        f"tsr: stopped waiting; job {job.id} keeps running on {stack.remote}; "
        f"cancel it with `tsr jobs cancel {job.id}{suffix}`\n"
    )
    assert api.generation.follow([job])[0].state == "done"
