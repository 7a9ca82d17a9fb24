"""Real servers for tests: a tsr app under uvicorn on 127.0.0.1, and `tsr serve` as a process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from tsr.config import Config
from tsr.server.app import app_state, create_app
from tsr.server.listen import bind_tcp, url_for
from tsr.server.runner import TsrServer, uvicorn_config
from tsr.server.state import AppState

START_TIMEOUT = 30.0


class RunningApp:
    """`create_app(config)` served by uvicorn from a thread on a free loopback port."""

    def __init__(self, app: FastAPI, *, access_log: bool = False) -> None:
        self.app = app
        self._sock = bind_tcp("127.0.0.1", 0)
        self.url = url_for(self._sock)
        self._started = threading.Event()
        self.server = TsrServer(
            uvicorn_config(app, access_log=access_log), app, on_started=self._started.set
        )
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self.server.serve(sockets=[self._sock]))
        finally:
            self._started.set()

    @property
    def state(self) -> AppState:
        """The app's services container."""
        return app_state(self.app)

    def on_loop(self, function: Callable[[], Any]) -> None:
        """Run `function` on the server's event loop (as a coroutine's code would)."""
        loop = self.state.events.loop
        assert loop is not None
        loop.call_soon_threadsafe(function)

    def __enter__(self) -> RunningApp:
        self._thread.start()
        self._started.wait(START_TIMEOUT)
        assert self.server.started, "the test server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.request_exit()
        self._thread.join(START_TIMEOUT)
        assert not self._thread.is_alive(), "the test server did not stop"
        self._sock.close()


def serve_app(config: Config, *, access_log: bool = False, **options: Any) -> RunningApp:
    """A RunningApp for `create_app(config, **options)` (use it as a context manager)."""
    return RunningApp(create_app(config, **options), access_log=access_log)


def cli_env(home: Path, config_file: Path, **extra: str) -> dict[str, str]:
    """The environment for a `tsr` subprocess using this data dir and config file."""
    env = {k: v for k, v in os.environ.items() if k not in ("TSR_TOKEN", "TSR_REMOTE")}
    # nothing listens there: a test server never goes online
    env.update(CIVITAI_BASE_URL="http://127.0.0.1:9/api/v1")
    env.update(TSR_HOME=str(home), TSR_CONFIG=str(config_file), **extra)
    # compiled modules cached outside the repo: a process starts in a second, not in four
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "tsr-test-pycache"))
    return env


class ServeProcess:
    """`tsr serve --port 0` as a subprocess; `url` is read from the data dir's lock file."""

    def __init__(self, home: Path, config_file: Path, *args: str, **env: str) -> None:
        self.home = home
        # a file, not a pipe: the access log of a few hundred requests would fill a pipe that
        # nobody reads until stop(), and the server would block on its next log line
        self.log_path = config_file.parent / f"serve-{time.monotonic_ns()}.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tsr", "serve", "--port", "0", *args],
                env=cli_env(home, config_file, **env),
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.url = self._wait_for_url()

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"tsr serve exited: {self.output()}")
            try:
                lock = json.loads((self.home / "server.lock").read_text() or "null")
            except (OSError, ValueError):
                lock = None
            if lock and lock.get("pid") == self.process.pid and lock.get("url"):
                url = str(lock["url"])
                # the port listens from the start; this returns once the app is ready
                httpx.get(f"{url}/api/health", timeout=START_TIMEOUT).raise_for_status()
                return url
            time.sleep(0.05)
        raise AssertionError("tsr serve did not start")

    def stop(self) -> tuple[int, str]:
        """SIGTERM it; its exit status and stderr."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=START_TIMEOUT)
        return self.process.returncode, self.output()
