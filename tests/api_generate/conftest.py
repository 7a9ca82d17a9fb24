"""Contract fixtures: the same tsr, embedded as `local` and as a `tsr serve` process with a token,
over real model files, a fake CivitAI and the fake sd-server as a managed backend.

A test session gets one stack per mode (`stack` is parametrized), set up through the API
alone: scan the model roots, link files to the fake CivitAI, load sd15 on the `gpu` backend.
Tests leave `gpu` holding sd15 and the fake without faults.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.civitai import FakeCivitai
from tests.fakes.sd_server_fixtures import free_port, write_launcher
from tests.modelfiles import (
    write_flux_checkpoint,
    write_pony_checkpoint,
    write_pony_lora,
    write_sd15_checkpoint,
    write_sd15_lora,
    write_sdxl_lora,
)
from tests.server.conftest import TOKEN
from tests.server.running import ServeProcess
from tsr.client import Client, connect, endpoint_for
from tsr.client.local import shutdown_embedded
from tsr.config import Config, load_config
from tsr.schemas.jobs import JobOut

#: how long a fixture waits for a server or backend to settle (not a speed goal)
PATIENCE = 30.0
MODES = ("local", "served")


@dataclass(frozen=True)
class ModelTree:
    """Model files shared by both modes: checkpoints and LoRAs under two roots, one outside."""

    checkpoints: Path
    loras: Path
    outside: Path

    def checkpoint(self, stem: str) -> Path:
        """The checkpoint file with this stem."""
        return self.checkpoints / f"{stem}.safetensors"

    def lora(self, stem: str) -> Path:
        """The LoRA file with this stem (xl-ink sits in a subfolder)."""
        found = sorted(self.loras.rglob(f"{stem}.safetensors"))
        return found[0]


def sha256_of(path: Path) -> str:
    """A file's SHA256, as the scan records it and CivitAI lists it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> ModelTree:
    """sd15, pony and flux checkpoints; sd15, pony and SDXL LoRAs; a checkpoint outside."""
    base = tmp_path_factory.mktemp("models").resolve()
    found = ModelTree(base / "checkpoints", base / "loras", base / "outside")
    write_sd15_checkpoint(found.checkpoint("sd15"))
    write_pony_checkpoint(found.checkpoint("pony"))
    write_flux_checkpoint(found.checkpoint("flux"))
    write_sd15_lora(found.loras / "sd15-detail.safetensors")
    write_pony_lora(found.loras / "pony-style.safetensors")
    write_sdxl_lora(found.loras / "styles" / "xl-ink.safetensors")
    write_sd15_checkpoint(found.outside / "rogue.safetensors")
    return found


@pytest.fixture(scope="session")
def civitai(tree: ModelTree) -> Iterator[FakeCivitai]:
    """A fake CivitAI that knows the pony checkpoint and the pony LoRA by their hashes."""
    fake = FakeCivitai().start()
    fake.add(
        model_id=257749,
        version_id=290640,
        sha256=sha256_of(tree.checkpoint("pony")),
        file_name="ponyDiffusionV6XL.safetensors",
        model_name="Pony Diffusion V6 XL",
        version_name="V6 (start with this one)",
        type="Checkpoint",
        base_model="Pony",
    )
    fake.add(
        model_id=7001,
        version_id=7101,
        sha256=sha256_of(tree.lora("pony-style")),
        file_name="flat-pony-style.safetensors",
        model_name="Flat Pony Style",
        version_name="v2",
        type="LORA",
        base_model="Pony",
        trained_words=["flatstyle, bold lines", "ink wash"],
    )
    yield fake
    fake.stop()


def server_config(tree: ModelTree, civitai: FakeCivitai, launcher: Path, gpu: str, off: str) -> str:
    """The config a tsr server runs with: the tree's roots, a managed fake, a dead external."""
    return f"""
[civitai]
base_url = "{civitai.url}"

[paths]
checkpoints = ["{tree.checkpoints}"]
loras = ["{tree.loras}"]

[[backends]]
name = "gpu"
kind = "managed"
url = "{gpu}"
binary = "{launcher}"
ready_timeout = {PATIENCE}

[[backends]]
name = "offline"
kind = "external"
url = "{off}"
families = ["flux"]
model = "{tree.checkpoint("flux")}"
"""


@dataclass
class Stack:
    """One running tsr (embedded `local` or a `tsr serve` process) and how to reach it."""

    mode: str
    tree: ModelTree
    #: what the CLI and clients of this stack read (TSR_CONFIG, TSR_HOME)
    config_file: Path
    home: Path
    remote: str
    #: the managed fake sd-server of backend `gpu`, and the dead address of backend `offline`
    gpu_url: str
    offline_url: str
    serve: ServeProcess | None = None

    def config(self) -> Config:
        """The config clients of this stack read."""
        return load_config(self.config_file).model_copy(update={"home": self.home})

    def client(self) -> Client:
        """A client of this stack (for `local`: the embedded server, started on first use)."""
        return connect(self.remote, self.config())

    def cli_args(self, *args: str) -> list[str]:
        """`tsr ARGS` aimed at this stack."""
        return [*args, "--local"] if self.remote == "local" else [*args, "--remote", self.remote]

    def http(self) -> httpx.Client:
        """Raw HTTP to the stack (to look at status codes), with the token where one is needed."""
        endpoint = endpoint_for(self.remote, self.config())
        transport = httpx.HTTPTransport(uds=endpoint.uds) if endpoint.uds else None
        return httpx.Client(
            base_url=endpoint.base_url,
            headers=endpoint.headers(),
            transport=transport,
            timeout=PATIENCE,
        )

    def fake(self, **change: Any) -> dict[str, Any]:
        """Switch the gpu fake's faults or hold (`POST /__fake__/mode`)."""
        response = httpx.post(f"{self.gpu_url}/__fake__/mode", json=change, timeout=5)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def reported_model(self) -> str:
        """The model path the gpu fake says it serves."""
        data = httpx.get(f"{self.gpu_url}/sdcpp/v1/capabilities", timeout=5).json()
        return str(data["model"]["path"])


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after PATIENCE seconds."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def prepare(stack: Stack) -> None:
    """Through the API only: scan, link to CivitAI, load sd15 on gpu, let `offline` be probed."""
    with stack.client() as client:
        scanned = client.db.wait(client.db.scan(), timeout=PATIENCE)
        assert scanned.state == "done", scanned
        linked = client.db.wait(client.db.link(), timeout=PATIENCE)
        assert linked.state == "done", linked
        switched = client.models.switch_and_wait("sd15", "gpu")
        assert switched.state == "done", switched.error

        def offline_probed() -> bool:
            return any(
                b.name == "offline" and b.state == "unreachable" for b in client.models.active()
            )

        wait_until(offline_probed, "the offline backend to be probed")


@pytest.fixture(scope="session", params=MODES)
def stack(
    request: pytest.FixtureRequest,
    tree: ModelTree,
    civitai: FakeCivitai,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The tsr under test, in each mode in turn."""
    mode: str = request.param
    base = tmp_path_factory.mktemp(mode).resolve()
    launcher = write_launcher(base / "bin")
    gpu, offline = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    text = server_config(tree, civitai, launcher, gpu, offline)
    if mode == "local":
        config_file = base / "config.toml"
        config_file.write_text(text)
        found = Stack(mode, tree, config_file, base / "home", "local", gpu, offline)
        try:
            prepare(found)
            yield found
        finally:
            shutdown_embedded()
        return
    (base / "server.toml").write_text(text)
    client_file = base / "client.toml"
    client_file.write_text(f'[remotes.srv]\nurl = "URL"\ntoken = "{TOKEN}"\n')
    serve = ServeProcess(
        base / "server-home", base / "server.toml", TSR_TOKEN=TOKEN, CIVITAI_BASE_URL=civitai.url
    )
    try:
        client_file.write_text(client_file.read_text().replace("URL", serve.url))
        found = Stack(mode, tree, client_file, base / "home", "srv", gpu, offline, serve)
        prepare(found)
        yield found
    finally:
        code, err = serve.stop()
        if code not in (0, -15):
            print(err, file=sys.stderr)


@pytest.fixture
def api(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """A client of the stack; the environment points the CLI at the same config and data dir."""
    monkeypatch.setenv("TSR_CONFIG", str(stack.config_file))
    monkeypatch.setenv("TSR_HOME", str(stack.home))
    with stack.client() as client:
        yield client


def run_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> tuple[int, str, str]:
    """Run `tsr ARGS` through its real entry point; (exit status, stdout, stderr)."""
    from tsr.cli import main

    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["tsr", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@dataclass
class Cli:
    """`tsr` run in this process against the stack."""

    stack: Stack
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    def __call__(self, *args: str) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) of `tsr ARGS --local|--remote srv`."""
        return run_cli(self.capsys, self.monkeypatch, self.stack.cli_args(*args))

    def json(self, *args: str) -> Any:
        """The JSON a successful `tsr ARGS --json` printed."""
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(
    api: Client, stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    """The CLI aimed at the stack."""
    return Cli(stack, capsys, monkeypatch)


def wait_for_state(client: Client, job: JobOut, *states: str) -> JobOut:
    """Poll a job until it is in one of `states`."""
    found = [job]

    def reached() -> bool:
        found[0] = client.generation.job(job.id)
        return found[0].state in states

    wait_until(reached, f"job {job.id} to be {' or '.join(states)}")
    return found[0]
