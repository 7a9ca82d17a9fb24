"""Managed backends: tsr starts the (fake) sd-server, switches by restarting it, keeps it alive."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from tests.jobs.conftest import Env, fake_control, managed, reported_model, until
from tsr.errors import ConfigError, JobFailed, RootViolation
from tsr.server.backends import BackendManager


async def test_start_and_switch_change_the_model_sd_server_serves(env: Env, launcher: Path) -> None:
    sd15, pony = env.tree.checkpoint("sd15"), env.tree.checkpoint("pony")
    manager, _ = await env.start([managed("gpu", launcher, sd15)])
    backend = manager.get("gpu")
    assert (backend.state, backend.family) == ("ready", "sd15")
    assert await reported_model(backend.url) == str(sd15)

    out = await manager.switch("gpu", pony)

    assert (out.state, out.model, out.family) == ("ready", str(pony), "pony")
    assert await reported_model(backend.url) == str(pony)
    # started with the family's flags, the LoRA root, and on the configured port
    started = [line for line in out.log_tail if "starting:" in line][-1]
    assert f"-m {pony}" in started
    assert f"--lora-model-dir {env.tree.loras}" in started
    assert "--sampling-method euler_a --scheduler simple" in started
    assert "--clip-skip 2" in started
    assert (env.home / "logs" / "sd-server-gpu.log").read_text().count("listening on:") == 2


async def test_a_request_for_another_checkpoint_switches_first(env: Env, launcher: Path) -> None:
    manager, queue = await env.start([managed("gpu", launcher, env.tree.checkpoint("sd15"))])

    job = await queue.submit({"checkpoint": "pony", "prompt": "a red cube", "width": 64})
    done = await queue.wait(job.id)

    assert done.state == "done", done.error
    assert await env.events.job_states(job.id) == [
        "created",
        "switching",
        "running",
        "saving",
        "done",
    ]
    assert await reported_model(manager.get("gpu").url) == str(env.tree.checkpoint("pony"))
    # pony's defaults: its prompt prefix and negative, Euler a / Simple, clip skip 2, 1024 tall
    image = env.gallery.get(done.image_ids[0])
    assert image.prompt.startswith("score_9, score_8_up, score_7_up, a red cube")
    assert image.negative == "score_4, score_5, score_6"
    assert (image.sampler, image.scheduler, image.clip_skip) == ("Euler a", "Simple", 2)
    assert (image.width, image.height, image.steps) == (64, 1024, 25)


@pytest.mark.parametrize("target", ["outside/rogue.safetensors", "checkpoints/sneaky.safetensors"])
async def test_a_switch_outside_the_checkpoint_roots_is_refused(
    env: Env, launcher: Path, target: str
) -> None:
    sd15 = env.tree.checkpoint("sd15")
    manager, queue = await env.start([managed("gpu", launcher, sd15)])
    path = env.tree.checkpoints.parent / target

    with pytest.raises(RootViolation, match="outside the checkpoint roots"):
        await manager.switch("gpu", path)
    with pytest.raises(RootViolation):
        await queue.submit_switch(path)

    assert queue.list() == []
    assert manager.get("gpu").state == "ready"
    assert await reported_model(manager.get("gpu").url) == str(sd15)


async def test_a_readiness_timeout_fails_with_the_log_tail(env: Env, launcher: Path) -> None:
    slow = managed("slow", launcher, ready_timeout=0.5, args=["--fake-fail", "slow-start:4"])
    manager, queue = await env.start([slow])

    job = await queue.submit_switch(env.tree.checkpoint("sd15"), "slow")
    failed = await queue.wait(job.id)

    assert failed.state == "failed"
    assert failed.error is not None
    assert "was not ready" in failed.error and "after 0.5 s" in failed.error
    assert "slow start: listening in 4" in failed.error  # the fake's own log line
    backend = manager.get("slow")
    assert (backend.state, backend.error) == ("failed", failed.error)
    assert backend.process is None  # the half-started process was stopped


async def test_a_server_that_exits_at_start_fails_clearly(env: Env, launcher: Path) -> None:
    manager, _ = await env.start([managed("down", launcher, args=["--fake-fail", "down"])])

    with pytest.raises(JobFailed, match="exited with status 1 before it was ready") as failure:
        await manager.switch("down", env.tree.checkpoint("sd15"))

    assert "fake fault 'down'" in str(failure.value)
    assert manager.get("down").state == "failed"


async def test_a_dead_server_is_restarted_and_the_next_job_works(env: Env, launcher: Path) -> None:
    manager, queue = await env.start([managed("gpu", launcher, env.tree.checkpoint("sd15"))])
    backend = manager.get("gpu")
    first = await queue.wait((await queue.submit({"prompt": "one", "width": 64})).id)
    assert first.state == "done", first.error
    old_pid = backend.process.pid if backend.process else None

    await fake_control(backend.url, fail="die-after:0")
    dying = await queue.wait((await queue.submit({"prompt": "two", "width": 64})).id)
    after = await queue.wait((await queue.submit({"prompt": "three", "width": 64})).id)

    assert dying.state == "failed"
    assert dying.error is not None and "sd-server" in dying.error
    assert after.state == "done", after.error
    assert backend.restarts == 1
    assert backend.process is not None and backend.process.pid != old_pid
    assert env.gallery_count() == 2
    log = (env.home / "logs" / "sd-server-gpu.log").read_text()
    assert "with status 1" in log
    assert log.count("listening on:") == 2


async def test_flux_needs_its_companion_files(
    env: Env, launcher: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sd15, flux = env.tree.checkpoint("sd15"), env.tree.checkpoint("flux")
    manager, _ = await env.start([managed("gpu", launcher, sd15)])

    with pytest.raises(JobFailed, match="needs --clip_l: set CLIP_L"):
        await manager.switch("gpu", flux)
    # the server that ran keeps running
    assert manager.get("gpu").state == "ready"
    assert await reported_model(manager.get("gpu").url) == str(sd15)

    for variable in ("CLIP_L", "T5XXL", "VAE"):
        monkeypatch.setenv(variable, str(env.tree.outside / f"{variable.lower()}.safetensors"))
    out = await manager.switch("gpu", flux)
    started = [line for line in out.log_tail if "starting:" in line][-1]
    assert f"--diffusion-model {flux}" in started
    assert f"--clip_l {os.environ['CLIP_L']}" in started
    assert "--guidance 3.5" in started


async def test_a_job_cancelled_while_its_backend_switches_never_reaches_sd_server(
    env: Env, launcher: Path
) -> None:
    manager, queue = await env.start([managed("gpu", launcher, env.tree.checkpoint("sd15"))])
    job = await queue.submit({"checkpoint": "pony", "prompt": "x", "width": 64, "height": 64})
    await until(lambda: queue.get(job.id).state == "switching")

    await queue.cancel(job.id)
    cancelled = await queue.wait(job.id)

    assert cancelled.state == "cancelled"
    assert manager.get("gpu").model == env.tree.checkpoint("pony")  # the switch itself finished
    state = await fake_control(manager.get("gpu").url)
    assert state["generations"] == 0
    assert env.gallery_count() == 0


def test_a_managed_backend_must_listen_on_loopback(env: Env, launcher: Path) -> None:
    config = env.config([managed("gpu", launcher, url="http://192.168.1.5:1234")])

    with pytest.raises(ConfigError, match=re.escape("its url must be http://127.0.0.1:PORT")):
        BackendManager(config)


async def test_a_server_that_dies_while_idle_is_restarted(env: Env, launcher: Path) -> None:
    sd15 = env.tree.checkpoint("sd15")
    manager, _ = await env.start([managed("gpu", launcher, sd15)])
    backend = manager.get("gpu")
    assert backend.process is not None and backend.process.pid is not None
    old_pid = backend.process.pid

    os.kill(old_pid, signal.SIGKILL)
    await until(lambda: backend.restarts == 1 and backend.state == "ready")

    assert backend.process is not None and backend.process.pid != old_pid
    assert await reported_model(backend.url) == str(sd15)
    assert any("sd-server died with status -9" in line for line in backend.log.tail())


async def test_a_missing_sd_server_binary_is_named(env: Env, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "sd-server"
    manager, _ = await env.start([managed("gpu", missing)])

    with pytest.raises(
        JobFailed, match=f"cannot run {re.escape(str(missing))} -m .*: No such file"
    ):
        await manager.switch("gpu", env.tree.checkpoint("sd15"))

    assert manager.get("gpu").state == "failed"
