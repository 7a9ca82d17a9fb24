"""Pytest fixtures running the fake sd-server as a real subprocess, as tsr would start sd-server.

Import what you need into a conftest.py: `from tests.fakes.sd_server_fixtures import
fake_sd_server, fake_sd_server_process, fake_sd_server_factory`.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FAKE_SD_SERVER = Path(__file__).with_name("sd_server.py")
MODEL_NAME = "sd15-random.safetensors"
LORA_NAMES = ("tiny-random-lora.safetensors", "styles/ink-sketch.safetensors", "detail.gguf")


def fake_sd_server_command() -> list[str]:
    """The command that runs the fake (flags go after it, as for sd-server)."""
    return [sys.executable, str(FAKE_SD_SERVER)]


def write_launcher(directory: Path) -> Path:
    """Write an executable `sd-server` script that runs the fake: a binary path for configs."""
    directory.mkdir(parents=True, exist_ok=True)
    launcher = directory / "sd-server"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_SD_SERVER}" "$@"\n')
    launcher.chmod(0o755)
    return launcher


def write_safetensors(path: Path, metadata: dict[str, str] | None = None) -> Path:
    """A tiny but well-formed safetensors file (header only, no tensors)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = json.dumps({"__metadata__": metadata or {}}).encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    return path


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class FakeSdServer:
    """A running fake sd-server process and the files it was started with."""

    url: str
    process: subprocess.Popen[bytes]
    model: Path
    lora_dir: Path
    stdout_path: Path
    stderr_path: Path

    def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        # urllib, not httpx: no SSL context to build, and these calls happen before every test
        data = json.dumps(body or {}).encode() if method == "POST" else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def set_mode(self, **change: Any) -> dict[str, Any]:
        """Switch the fake while it runs.

        Keys: fail = "500" | "garbage" | "wrong-count" | "die-after:N" | "down" | None,
        latency = seconds per image, hold = True | False, job_ttl = seconds.
        """
        result: dict[str, Any] = self._control("POST", "/__fake__/mode", change)
        return result

    def reset(self) -> dict[str, Any]:
        """No faults, no latency, no hold; request log and sd-server's LoRA list forgotten."""
        result: dict[str, Any] = self._control("POST", "/__fake__/reset")
        return result

    def state(self) -> dict[str, Any]:
        """Switches, generation count, the validated LoRA list and the requests seen."""
        result: dict[str, Any] = self._control("GET", "/__fake__/state")
        return result

    def requests_seen(self) -> list[tuple[str, str]]:
        """(method, path) of every API request since the last reset."""
        return [(method, path) for method, path in self.state()["requests"]]

    def log_text(self) -> str:
        """The server log so far (its stderr)."""
        return self.stderr_path.read_text(errors="replace")

    def wait_exit(self, timeout: float = 5.0) -> int | None:
        """Wait for the process to end; its exit status, or None if it is still running."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Terminate the process (kill it if it does not go)."""
        if self.process.poll() is None:
            self.process.terminate()
            if self.wait_exit(5) is None:
                self.process.kill()
                self.process.wait()


def start_fake_sd_server(
    workdir: Path,
    *,
    model_name: str = MODEL_NAME,
    model_flag: str = "-m",
    loras: Sequence[str] = LORA_NAMES,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    port: int | None = None,
    wait: bool = True,
    timeout: float = 10.0,
) -> FakeSdServer:
    """Create a model file and a LoRA folder under `workdir` and start the fake on them.

    `model_flag` "--diffusion-model" starts it the way Flux is served (add the text encoders
    and VAE to `extra_args`).

    With `wait`, return once it prints `listening on:` (port 0 lets it pick a free port);
    without, return at once on a free port chosen here (for slow-start tests).
    """
    model = write_safetensors(workdir / "models" / model_name)
    lora_dir = workdir / "loras"
    lora_dir.mkdir(parents=True, exist_ok=True)
    for name in loras:
        write_safetensors(lora_dir / name, {"ss_output_name": Path(name).stem})
    chosen = port if port is not None else (0 if wait else free_port())
    stdout_path, stderr_path = workdir / "sd-server.out", workdir / "sd-server.log"
    command = [
        *fake_sd_server_command(),
        *(model_flag, str(model), "--lora-model-dir", str(lora_dir)),
        *("--listen-ip", "127.0.0.1", "--listen-port", str(chosen)),
        *extra_args,
    ]
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            command, stdout=stdout, stderr=stderr, env={**os.environ, **(env or {})}
        )
    server = FakeSdServer(
        f"http://127.0.0.1:{chosen}", process, model, lora_dir, stdout_path, stderr_path
    )
    if wait:
        server.url = _wait_listening(server, timeout)
    return server


def _wait_listening(server: FakeSdServer, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in server.stdout_path.read_text(errors="replace").splitlines():
            if line.startswith("listening on: "):
                return line.removeprefix("listening on: ").strip()
        if server.process.poll() is not None:
            raise RuntimeError(f"fake sd-server exited before listening:\n{server.log_text()}")
        time.sleep(0.01)
    server.stop()
    raise RuntimeError(f"fake sd-server did not listen within {timeout} s:\n{server.log_text()}")


@pytest.fixture(scope="module")
def fake_sd_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSdServer]:
    """One fake sd-server process shared by a test module."""
    server = start_fake_sd_server(tmp_path_factory.mktemp("sd-server"))
    yield server
    server.stop()


@pytest.fixture
def fake_sd_server(fake_sd_server_process: FakeSdServer) -> FakeSdServer:
    """The module's shared fake, reset to a clean state (as if freshly started)."""
    if fake_sd_server_process.process.poll() is not None:
        pytest.fail(f"the shared fake sd-server died:\n{fake_sd_server_process.log_text()}")
    fake_sd_server_process.reset()
    return fake_sd_server_process


@pytest.fixture
def fake_sd_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., FakeSdServer]]:
    """Start fakes of your own (extra flags, faults at start); all stopped after the test."""
    started: list[FakeSdServer] = []

    def start(**kwargs: Any) -> FakeSdServer:
        server = start_fake_sd_server(tmp_path_factory.mktemp("sd-server"), **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
