"""External backends: a URL tsr does not start; switching only through a configured command."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.sd_server_fixtures import FakeSdServer, fake_sd_server_command, free_port
from tests.jobs.conftest import Env, ModelTree, external, reported_model, start_fake
from tsr.errors import Conflict, JobFailed

# What `docker compose up -d` does for a real deployment: replace the running server with one
# serving $MODEL, in the background, and return.
SWITCH_SCRIPT = """#!/bin/sh
echo "switching to $MODEL ($MODEL_FAMILY)"
echo "$MODEL $MODEL_FAMILY" >> "{record}"
if [ -f "{pidfile}" ]; then
  old=$(cat "{pidfile}")
  kill "$old" 2>/dev/null
  while kill -0 "$old" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$old/status"; do
    sleep 0.05
  done
fi
nohup {fake} -m "$MODEL" --lora-model-dir "{loras}" --listen-ip 127.0.0.1 \\
  --listen-port {port} >>"{log}" 2>&1 &
echo $! > "{pidfile}"
"""


@dataclass
class Switchable:
    """An sd-server that the switch script (re)starts; what the script was called with."""

    url: str
    script: Path
    record: Path


@pytest.fixture
def switchable(tree: ModelTree, tmp_path: Path) -> Iterator[Switchable]:
    """A fake sd-server started (and later replaced) by a switch script, holding sd15."""
    port = free_port()
    pidfile, record = tmp_path / "sd.pid", tmp_path / "switches.txt"
    script = tmp_path / "switch.sh"
    fake = " ".join(f'"{part}"' for part in fake_sd_server_command())
    script.write_text(
        SWITCH_SCRIPT.format(
            record=record,
            pidfile=pidfile,
            fake=fake,
            loras=tree.loras,
            port=port,
            log=tmp_path / "sd.log",
        )
    )
    script.chmod(0o755)
    environment = {**os.environ, "MODEL": str(tree.checkpoint("sd15")), "MODEL_FAMILY": "sd15"}
    subprocess.run([str(script)], check=True, env=environment, capture_output=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/", timeout=1)
            break
        except httpx.HTTPError:
            subprocess.run(["sleep", "0.05"], check=True)
    yield Switchable(url, script, record)
    os.kill(int(pidfile.read_text()), signal.SIGTERM)


async def test_an_external_backend_reports_its_model_matched_to_the_db(
    env: Env, sd15_server: FakeSdServer
) -> None:
    manager, _ = await env.start([external("box", sd15_server.url)])

    backend = manager.get("box")

    assert backend.state == "ready"
    assert (backend.model, backend.model_name) == (env.tree.checkpoint("sd15"), "sd15")
    assert backend.family == "sd15"


async def test_the_active_checkpoint_is_the_default(env: Env, sd15_server: FakeSdServer) -> None:
    _, queue = await env.start([external("box", sd15_server.url)])

    done = await queue.wait((await queue.submit({"prompt": "a cube", "seed": 7})).id)

    assert done.state == "done", done.error
    assert done.model == str(env.tree.checkpoint("sd15"))
    image = env.gallery.get(done.image_ids[0])
    assert image.checkpoint == "sd15"
    assert image.checkpoint_sha256 == env.sha256("sd15")
    # sd15's defaults: 512x512, 25 steps, CFG 7, DPM++ 2M / Karras, its negative prompt
    assert (image.width, image.height, image.steps, image.cfg) == (512, 512, 25, 7.0)
    assert (image.sampler, image.scheduler, image.seed) == ("DPM++ 2M", "Karras", 7)
    assert image.negative == "worst quality, low quality"


async def test_a_model_the_db_does_not_know_still_generates(
    env: Env, tree: ModelTree, tmp_path: Path
) -> None:
    mystery = tmp_path / "elsewhere" / "mystery.safetensors"
    mystery.parent.mkdir()
    mystery.write_bytes(tree.checkpoint("sd15").read_bytes())
    server = start_fake(mystery, tree.loras, tmp_path / "fake")
    try:
        manager, queue = await env.start([external("box", server.url)])
        assert (manager.get("box").model, manager.get("box").model_name) == (None, "mystery")

        done = await queue.wait((await queue.submit({"prompt": "x", "width": 64})).id)
    finally:
        server.stop()

    assert done.state == "done", done.error
    assert any("family of mystery is unknown; used sdxl" in w for w in done.warnings)
    assert env.gallery.get(done.image_ids[0]).checkpoint == "mystery"


async def test_without_a_switch_command_it_cannot_switch(
    env: Env, sd15_server: FakeSdServer
) -> None:
    manager, queue = await env.start([external("box", sd15_server.url)])

    with pytest.raises(Conflict) as refused:
        await manager.switch("box", env.tree.checkpoint("pony"))
    assert str(refused.value) == (
        "backend box is external and has no switch_command; load pony.safetensors on it "
        "yourself or configure switch_command"
    )
    with pytest.raises(Conflict, match="no backend holds pony and none can switch to it"):
        await queue.submit({"checkpoint": "pony", "prompt": "x"})
    assert queue.list() == []


async def test_the_switch_command_runs_with_model_in_its_environment(
    env: Env, switchable: Switchable
) -> None:
    pony = env.tree.checkpoint("pony")
    manager, queue = await env.start(
        [external("box", switchable.url, switch_command=[str(switchable.script)])]
    )
    assert manager.get("box").model == env.tree.checkpoint("sd15")

    job = await queue.submit({"checkpoint": "pony", "prompt": "x", "width": 64, "height": 64})
    done = await queue.wait(job.id)

    assert done.state == "done", done.error
    assert switchable.record.read_text().splitlines()[-1] == f"{pony} pony"
    assert await reported_model(switchable.url) == str(pony)
    backend = manager.get("box")
    assert (backend.model, backend.family) == (pony, "pony")
    assert f"switching to {pony} (pony)" in backend.log.tail()
    assert await env.events.job_states(job.id) == [
        "created",
        "switching",
        "running",
        "saving",
        "done",
    ]


async def test_a_failing_switch_command_fails_with_its_output(
    env: Env, sd15_server: FakeSdServer
) -> None:
    command = ["sh", "-c", "echo 'no such service: sd-pony' >&2; exit 3"]
    manager, queue = await env.start([external("box", sd15_server.url, switch_command=command)])

    failed = await queue.wait((await queue.submit_switch(env.tree.checkpoint("pony"))).id)

    assert failed.state == "failed"
    assert failed.error is not None
    assert "the switch command of backend box exited with status 3" in failed.error
    assert "no such service: sd-pony" in failed.error
    assert manager.get("box").state == "failed"


async def test_a_server_still_serving_the_old_model_after_the_command_fails(
    env: Env, sd15_server: FakeSdServer
) -> None:
    # a shell string: it "succeeds" but the server keeps serving sd15
    command = 'echo "loading $MODEL"'
    manager, _ = await env.start(
        [external("box", sd15_server.url, switch_command=command, ready_timeout=0.5)]
    )

    with pytest.raises(JobFailed) as failure:
        await manager.switch("box", env.tree.checkpoint("pony"))

    message = str(failure.value)
    assert "still reports model 'sd15' instead of 'pony'" in message
    assert f"loading {env.tree.checkpoint('pony')}" in message
