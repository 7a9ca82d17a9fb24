"""Every way sd-server can fail reaches the caller as one typed error with a plain sentence."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.fakes.sd_server_fixtures import FakeSdServer
from tsr.errors import JobFailed, RemoteUnreachable, ServerError
from tsr.sdapi import GenerationParams, SdServerClient

SMALL = GenerationParams(prompt="a blue sphere", width=64, height=64, steps=1, seed=5)
StartFake = Callable[..., FakeSdServer]


async def test_generation_failure_is_job_failed_with_sd_servers_reason(
    fake_sd_server: FakeSdServer,
) -> None:
    fake_sd_server.set_mode(fail="500")
    async with SdServerClient(fake_sd_server.url) as sd:
        with pytest.raises(JobFailed) as caught:
            await sd.generate(SMALL)
    assert str(caught.value) == (
        "sd-server could not generate the image: generate_image returned no results"
    )


async def test_a_500_from_sdapi_is_a_server_error(fake_sd_server: FakeSdServer) -> None:
    fake_sd_server.set_mode(fail="500")
    async with SdServerClient(fake_sd_server.url) as sd:
        with pytest.raises(ServerError) as caught:
            await sd.txt2img({"prompt": "x", "width": 64, "height": 64})
    assert str(caught.value) == (
        "sd-server failed on POST /sdapi/v1/txt2img (HTTP 500): generate_image returned no results"
    )


async def test_answers_that_are_not_json_are_server_errors(fake_sd_server: FakeSdServer) -> None:
    fake_sd_server.set_mode(fail="garbage")
    async with SdServerClient(fake_sd_server.url) as sd:
        assert await sd.ping() is True  # GET / still answers: only the JSON is broken
        with pytest.raises(ServerError) as caught:
            await sd.loras()
        with pytest.raises(ServerError, match="capabilities with something that is not JSON"):
            await sd.generate(SMALL)
        with pytest.raises(ServerError, match="POST /sdapi/v1/txt2img with something that is not"):
            await sd.txt2img({"prompt": "x"})
    assert str(caught.value) == (
        f"sd-server at {fake_sd_server.url} answered GET /sdapi/v1/loras with something that "
        "is not JSON; is that address really sd-server?"
    )


async def test_missing_images_are_a_server_error(fake_sd_server: FakeSdServer) -> None:
    fake_sd_server.set_mode(fail="wrong-count")
    async with SdServerClient(fake_sd_server.url) as sd:
        with pytest.raises(ServerError) as native:
            await sd.generate(SMALL.model_copy(update={"batch_count": 2}))
        with pytest.raises(ServerError) as sdapi:
            await sd.txt2img({"prompt": "x", "width": 64, "height": 64})
    assert str(native.value) == "sd-server returned 1 image for a batch of 2"
    assert str(sdapi.value) == "sd-server returned 0 images for a batch of 1"


async def test_a_slow_generation_times_out_as_unreachable(fake_sd_server: FakeSdServer) -> None:
    fake_sd_server.set_mode(hold=True)  # the generation never ends while held
    async with SdServerClient(fake_sd_server.url, generation_timeout=0.2) as sd:
        with pytest.raises(RemoteUnreachable) as caught:
            await sd.txt2img({"prompt": "x", "width": 64, "height": 64})
    assert str(caught.value) == (
        f"cannot reach sd-server at {fake_sd_server.url}: no answer in time; is it running?"
    )


async def test_discovery_keeps_answering_while_a_generation_runs(
    fake_sd_server: FakeSdServer,
) -> None:
    fake_sd_server.set_mode(hold=True)
    async with SdServerClient(fake_sd_server.url) as sd:
        generation = asyncio.create_task(sd.txt2img({"prompt": "x", "width": 64, "height": 64}))
        for _ in range(200):
            if ("POST", "/sdapi/v1/txt2img") in fake_sd_server.requests_seen():
                break
            await asyncio.sleep(0.01)
        assert len(await sd.loras()) == 3
        assert await sd.ping()
        assert not generation.done()
        fake_sd_server.set_mode(hold=False)
        assert len((await generation).images) == 1


async def test_a_server_down_right_after_start_is_unreachable(
    fake_sd_server_factory: StartFake,
) -> None:
    fake = fake_sd_server_factory(extra_args=["--fake-fail", "down"])
    assert fake.wait_exit() == 1
    assert "exiting right after listening" in fake.log_text()
    async with SdServerClient(fake.url) as sd:
        assert await sd.ping() is False
        with pytest.raises(RemoteUnreachable, match="connection refused; is it running\\?"):
            await sd.capabilities()


async def test_a_server_switched_down_while_running(fake_sd_server_factory: StartFake) -> None:
    fake = fake_sd_server_factory()
    fake.set_mode(fail="down")
    assert fake.wait_exit() == 1
    async with SdServerClient(fake.url) as sd:
        with pytest.raises(RemoteUnreachable, match="connection refused"):
            await sd.generate(SMALL)


async def test_a_slow_start_is_unreachable_until_it_listens(
    fake_sd_server_factory: StartFake,
) -> None:
    fake = fake_sd_server_factory(extra_args=["--fake-fail", "slow-start:0.5"], wait=False)
    async with SdServerClient(fake.url) as sd:
        assert await sd.ping() is False
        with pytest.raises(RemoteUnreachable, match="connection refused"):
            await sd.loras()
        for _ in range(500):
            if await sd.ping():
                break
            await asyncio.sleep(0.02)
        assert len(await sd.loras()) == 3


async def test_a_crash_mid_generation_is_unreachable(fake_sd_server_factory: StartFake) -> None:
    fake = fake_sd_server_factory(extra_args=["--fake-fail", "die-after:1"])
    async with SdServerClient(fake.url) as sd:
        assert len((await sd.generate(SMALL)).images) == 1
        with pytest.raises(RemoteUnreachable) as caught:
            await sd.txt2img({"prompt": "x", "width": 64, "height": 64})
    assert "did sd-server crash?" in str(caught.value)
    assert fake.wait_exit() == 1
    assert "die-after 1" in fake.log_text()


async def test_faults_can_be_set_from_the_environment(fake_sd_server_factory: StartFake) -> None:
    fake = fake_sd_server_factory(env={"FAKE_SD_FAIL": "wrong-count", "FAKE_SD_LATENCY": "0"})
    async with SdServerClient(fake.url) as sd:
        with pytest.raises(ServerError, match="returned 0 images for a batch of 1"):
            await sd.generate(SMALL)
