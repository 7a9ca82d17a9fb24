"""Native async jobs: submit, follow, cancel, expiry, queue limits, real seeds, determinism."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.sd_server_fixtures import FakeSdServer
from tsr.errors import Conflict, NotFound, RateLimited
from tsr.sdapi import GenerationParams, JobCancelled, JobExpired, NativeJob, SdServerClient
from tsr.sdapi.pngtext import parse_sdcpp_infotext

SMALL = {"width": 64, "height": 64, "steps": 1}


def params(**fields: object) -> GenerationParams:
    return GenerationParams.model_validate({"prompt": "a blue sphere", **SMALL, **fields})


class Updates:
    """An on_update callback that remembers every job state and signals the first one."""

    def __init__(self) -> None:
        self.jobs: list[NativeJob] = []
        self.arrived = asyncio.Event()

    def __call__(self, job: NativeJob) -> None:
        self.jobs.append(job)
        self.arrived.set()

    async def first(self) -> NativeJob:
        await asyncio.wait_for(self.arrived.wait(), timeout=10)
        return self.jobs[0]


async def until(sd: SdServerClient, job_id: str, status: str) -> NativeJob:
    for _ in range(500):
        job = await sd.poll(job_id)
        if job.status == status:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} never became {status}")


async def test_generate_returns_pngs_with_their_real_seeds(fake_sd_server: FakeSdServer) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        result = await sd.generate(params(seed=1000, batch_count=3))
    assert result.seeds == [1000, 1001, 1002]
    assert len(set(result.pngs)) == 3
    for image, seed in zip(result.images, [1000, 1001, 1002], strict=True):
        assert (image.width, image.height) == (64, 64)
        assert image.png.startswith(b"\x89PNG")
        assert f"Seed: {seed}," in image.infotext
        assert image.infotext.startswith("a blue sphere\nSteps: 1,")


async def test_a_random_seed_is_read_back_from_the_images(fake_sd_server: FakeSdServer) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        result = await sd.generate(params(seed=-1, batch_count=2))
    first, second = result.seeds
    assert first >= 0 and second == first + 1
    assert parse_sdcpp_infotext(result.images[0].infotext).seed == first


async def test_same_inputs_give_the_same_bytes(fake_sd_server: FakeSdServer) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        first = await sd.generate(params(seed=7))
        again = await sd.generate(params(seed=7))
        other_prompt = await sd.generate(params(seed=7, prompt="a red cube"))
        other_seed = await sd.generate(params(seed=8))
        with_lora = await sd.generate(params(seed=7, loras=[("detail.gguf", 0.7)]))
    assert first.pngs == again.pngs
    assert len({first.pngs[0], other_prompt.pngs[0], other_seed.pngs[0], with_lora.pngs[0]}) == 4


async def test_loras_are_refreshed_before_their_first_use(fake_sd_server: FakeSdServer) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        result = await sd.generate(params(loras=[("styles/ink-sketch.safetensors", 0.6)]))
    seen = fake_sd_server.requests_seen()
    assert seen.index(("GET", "/sdapi/v1/loras")) < seen.index(("POST", "/sdcpp/v1/img_gen"))
    assert parse_sdcpp_infotext(result.images[0].infotext).sdcpp["loras"] == [
        {"is_high_noise": False, "multiplier": 0.6000000238418579, "name": "ink-sketch.safetensors"}
    ]


async def test_a_restarted_server_that_forgot_its_lora_list_is_refreshed_again(
    fake_sd_server: FakeSdServer,
) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        await sd.loras()
        fake_sd_server.reset()  # as after a restart: sd-server's LoRA list is empty again
        result = await sd.generate(params(loras=[("detail.gguf", 1.0)]))
    assert "detail.gguf" in result.images[0].infotext
    assert fake_sd_server.requests_seen().count(("POST", "/sdcpp/v1/img_gen")) == 2


async def test_updates_report_queue_position_then_generation(fake_sd_server: FakeSdServer) -> None:
    updates = Updates()
    async with SdServerClient(fake_sd_server.url) as sd:
        fake_sd_server.set_mode(hold=True)
        blocker = await sd.submit(params(prompt="first"))
        await until(sd, blocker, "generating")
        follower = asyncio.create_task(sd.generate(params(prompt="second"), on_update=updates))
        await updates.first()
        fake_sd_server.set_mode(hold=False)
        result = await follower
    reported = [(job.status, job.queue_position) for job in updates.jobs]
    assert reported[0] == ("queued", 1)
    assert reported[-1] == ("completed", 0)
    assert len(result.images) == 1


async def test_async_callbacks_are_awaited(fake_sd_server: FakeSdServer) -> None:
    statuses: list[str] = []

    async def record(job: NativeJob) -> None:
        await asyncio.sleep(0)
        statuses.append(job.status)

    async with SdServerClient(fake_sd_server.url) as sd:
        await sd.generate(params(), on_update=record)
    assert statuses[-1] == "completed"


async def test_cancel_a_queued_job_and_refuse_a_generating_one(
    fake_sd_server: FakeSdServer,
) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        fake_sd_server.set_mode(hold=True)
        running = await sd.submit(params(prompt="first"))
        await until(sd, running, "generating")
        queued = await sd.submit(params(prompt="second"))
        assert (await sd.poll(queued)).queue_position == 1

        cancelled = await sd.cancel(queued)
        assert cancelled.status == "cancelled"
        assert cancelled.error is not None and cancelled.error.code == "cancelled"
        with pytest.raises(Conflict) as caught:
            await sd.cancel(running)
        assert str(caught.value) == (
            f"job {running} is already generating; sd-server cannot interrupt it"
        )
        fake_sd_server.set_mode(hold=False)
        assert (await until(sd, running, "completed")).result is not None
        assert (await sd.poll(queued)).status == "cancelled"


async def test_a_job_cancelled_elsewhere_ends_generate(fake_sd_server: FakeSdServer) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        fake_sd_server.set_mode(hold=True)
        running = await sd.submit(params(prompt="first"))
        await until(sd, running, "generating")
        updates = Updates()
        waiting = asyncio.create_task(sd.generate(params(prompt="second"), on_update=updates))
        queued = await updates.first()
        async with SdServerClient(fake_sd_server.url) as other:
            await other.cancel(queued.id)
        with pytest.raises(JobCancelled, match="was cancelled on sd-server before it started"):
            await waiting
        fake_sd_server.set_mode(hold=False)


async def test_cancelling_generate_cancels_its_queued_job(fake_sd_server: FakeSdServer) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        fake_sd_server.set_mode(hold=True)
        running = await sd.submit(params(prompt="first"))
        await until(sd, running, "generating")
        updates = Updates()
        task = asyncio.create_task(sd.generate(params(prompt="second"), on_update=updates))
        queued = await updates.first()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await sd.poll(queued.id)).status == "cancelled"
        fake_sd_server.set_mode(hold=False)


async def test_unknown_and_expired_jobs(fake_sd_server: FakeSdServer) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        with pytest.raises(NotFound) as caught:
            await sd.poll("job_nope")
        assert str(caught.value) == "sd-server has no job job_nope; it may have restarted since"

        fake_sd_server.set_mode(job_ttl=0.05)
        result = await sd.generate(params())
        await asyncio.sleep(0.1)
        with pytest.raises(JobExpired) as expired:
            await sd.poll(result.job_id)
    assert isinstance(expired.value, NotFound)
    assert "no longer has GET /sdcpp/v1/jobs/" in str(expired.value)
    assert "expire" in str(expired.value)


async def test_a_full_queue_is_rate_limited(fake_sd_server: FakeSdServer) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        fake_sd_server.set_mode(hold=True)
        ids = [await sd.submit(params(prompt=f"job {n}")) for n in range(64)]
        with pytest.raises(RateLimited) as caught:
            await sd.submit(params(prompt="one too many"))
        for job_id in ids[1:]:
            await sd.cancel(job_id)
        fake_sd_server.set_mode(hold=False)
        await until(sd, ids[0], "completed")
    assert str(caught.value) == (
        "sd-server's job queue is full (job queue is full); wait for queued jobs to finish"
    )
