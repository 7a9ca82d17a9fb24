"""Fixtures of the backend and job-queue tests: real model files, DB, gallery, fake sd-servers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.sd_server_fixtures import FakeSdServer, fake_sd_server_command, free_port
from tests.modelfiles import (
    write_flux_checkpoint,
    write_pony_checkpoint,
    write_pony_lora,
    write_sd15_checkpoint,
    write_sd15_lora,
    write_sdxl_lora,
)
from tsr.config import Config
from tsr.db import init_database
from tsr.db.files import resolve_file, set_override
from tsr.db.scan import scan_roots
from tsr.gallery import GalleryStore
from tsr.schemas.server import Event
from tsr.server.backends import BackendManager
from tsr.server.events import EventBus
from tsr.server.jobs import JobQueue


@dataclass(frozen=True)
class ModelTree:
    """Model files written once per test module: two roots, and a file outside them."""

    checkpoints: Path
    loras: Path
    outside: Path

    def checkpoint(self, stem: str) -> Path:
        """The checkpoint file with this stem."""
        return self.checkpoints / f"{stem}.safetensors"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> ModelTree:
    """sd15, pony and flux checkpoints; sd15, pony and sdxl LoRAs; a rogue file and a symlink."""
    base = tmp_path_factory.mktemp("models")
    found = ModelTree(base / "checkpoints", base / "loras", base / "outside")
    write_sd15_checkpoint(found.checkpoint("sd15"))
    write_pony_checkpoint(found.checkpoint("pony"))
    write_pony_checkpoint(found.checkpoint("illus"))
    write_flux_checkpoint(found.checkpoint("flux"))
    write_sd15_lora(found.loras / "sd15-detail.safetensors")
    write_pony_lora(found.loras / "pony-style.safetensors")
    write_sdxl_lora(found.loras / "styles" / "xl-ink.safetensors")
    rogue = write_sd15_checkpoint(found.outside / "rogue.safetensors")
    (found.checkpoints / "sneaky.safetensors").symlink_to(rogue)
    return found


class EventLog:
    """Every event the app's bus delivered, read back in order."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.subscription = bus.subscribe(["job", "image", "backend"])
        self.seen: list[Event] = []

    async def drain(self) -> list[Event]:
        """Every event published so far, oldest first."""
        while (event := await self.subscription.get(max_wait=0.01)) is not None:
            self.seen.append(event)
        return self.seen

    async def job_states(self, job_id: str) -> list[str]:
        """The states one job went through, as announced."""
        return [
            e.kind
            for e in await self.drain()
            if e.topic == "job"
            and e.data["id"] == job_id
            and e.kind not in ("position", "progress")
        ]


@dataclass
class Env:
    """One test's tsr: config, DB scanned from the tree, gallery, event bus."""

    home: Path
    tree: ModelTree
    gallery: GalleryStore
    bus: EventBus
    events: EventLog
    managers: list[BackendManager] = field(default_factory=list)
    queues: list[JobQueue] = field(default_factory=list)

    def config(self, backends: list[dict[str, Any]]) -> Config:
        """A config with the tree's roots and these `[[backends]]`."""
        return Config.model_validate(
            {
                "paths": {
                    "checkpoints": [str(self.tree.checkpoints)],
                    "loras": [str(self.tree.loras)],
                },
                "backends": backends,
            }
        )

    async def start(
        self, backends: list[dict[str, Any]], *, wait: bool = True, **queue_options: Any
    ) -> tuple[BackendManager, JobQueue]:
        """A started backend manager and job queue (stopped after the test)."""
        config = self.config(backends)
        queue_options.setdefault("poll_interval", 0.02)
        manager = BackendManager(config, events=self.bus, restart_delay=0.1)
        queue = JobQueue(manager, self.gallery, events=self.bus, **queue_options)
        manager.lookup = queue.resolver
        self.managers.append(manager)
        self.queues.append(queue)
        await manager.start(wait=wait)
        await queue.start()
        return manager, queue

    def file_id(self, stem: str) -> int:
        """The DB id of a model file."""
        return resolve_file(stem).id

    def sha256(self, stem: str) -> str:
        """The SHA256 the scan recorded for a model file."""
        found = resolve_file(stem).sha256
        assert found is not None
        return found

    def set_family(self, stem: str, family: str) -> None:
        """The user's family override for a file."""
        set_override(self.file_id(stem), family=family)

    def gallery_count(self) -> int:
        """How many images the gallery holds."""
        stats = self.gallery.stats()
        return stats.inbox + stats.kept + stats.trashed


@pytest.fixture
async def env(tree: ModelTree, isolated_home: Path) -> AsyncIterator[Env]:
    """A fresh DB (scanned from the tree) and gallery for each test."""
    config = Config.model_validate(
        {"paths": {"checkpoints": [str(tree.checkpoints)], "loras": [str(tree.loras)]}}
    )
    init_database(config.db_path())
    scan_roots(model_roots=config.model_roots())
    bus = EventBus()
    bus.start(asyncio.get_running_loop())
    setup = Env(isolated_home, tree, GalleryStore(config.gallery_dir()), bus, EventLog(bus))
    yield setup
    for queue in setup.queues:
        await queue.stop()
    for manager in setup.managers:
        await manager.stop()
    bus.close()


def managed(name: str, launcher: Path, model: Path | None = None, **more: Any) -> dict[str, Any]:
    """A `[[backends]]` entry for a managed fake sd-server on a free port."""
    entry: dict[str, Any] = {
        "name": name,
        "kind": "managed",
        "url": f"http://127.0.0.1:{free_port()}",
        "binary": str(launcher),
        "ready_timeout": 10.0,
    }
    if model is not None:
        entry["model"] = str(model)
    return {**entry, **more}


@pytest.fixture
def launcher(tmp_path: Path) -> Path:
    """An executable `sd-server` that runs the fake (what a managed backend's `binary` names)."""
    script = tmp_path / "bin" / "sd-server"
    script.parent.mkdir(parents=True)
    fake = " ".join(f'"{part}"' for part in fake_sd_server_command())
    script.write_text(f'#!/bin/sh\nexec {fake} "$@"\n')
    script.chmod(0o755)
    return script


def start_fake(
    model: Path, lora_dir: Path, workdir: Path, *extra: str, port: int | None = None
) -> FakeSdServer:
    """Start the fake sd-server process on existing files; return once `GET /` answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    out, err = workdir / "sd-server.out", workdir / "sd-server.log"
    command = [*fake_sd_server_command(), "-m", str(model), "--lora-model-dir", str(lora_dir)]
    command += ["--listen-ip", "127.0.0.1", "--listen-port", str(port), *extra]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=dict(os.environ))
    server = FakeSdServer(f"http://127.0.0.1:{port}", process, model, lora_dir, out, err)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.url + "/", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.02)
    server.stop()
    raise RuntimeError(f"the fake sd-server did not come up:\n{server.log_text()}")


@pytest.fixture(scope="module")
def external_fake(
    tree: ModelTree, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeSdServer]:
    """One fake sd-server holding the sd15 checkpoint, shared by a module; reset per test."""
    server = start_fake(tree.checkpoint("sd15"), tree.loras, tmp_path_factory.mktemp("ext"))
    yield server
    server.stop()


@pytest.fixture
def sd15_server(external_fake: FakeSdServer) -> FakeSdServer:
    """The shared external fake, reset (no faults, no latency, no hold)."""
    if external_fake.process.poll() is not None:
        pytest.fail(f"the shared fake sd-server died:\n{external_fake.log_text()}")
    external_fake.reset()
    return external_fake


def external(name: str, url: str, **more: Any) -> dict[str, Any]:
    """A `[[backends]]` entry for an external sd-server."""
    return {"name": name, "kind": "external", "url": url, **more}


async def reported_model(url: str) -> str:
    """The model path a (fake) sd-server says it serves."""
    async with httpx.AsyncClient() as client:
        data = (await client.get(url + "/sdcpp/v1/capabilities", timeout=5)).json()
    return str(data["model"]["path"])


async def fake_control(url: str, **change: Any) -> dict[str, Any]:
    """Switch a fake's faults, latency or hold while it runs (POST /__fake__/mode)."""
    async with httpx.AsyncClient() as client:
        response = await client.post(url + "/__fake__/mode", json=change, timeout=5)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait until `condition()` holds (polling what tsr reports); fail after `seconds`."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not reached within {seconds} s")
