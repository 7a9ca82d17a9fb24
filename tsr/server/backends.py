"""sd-server backends from `[[backends]]`: managed processes and external URLs, and switching."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tsr.config import Config
from tsr.errors import (
    ConfigError,
    Conflict,
    JobFailed,
    NotFound,
    RemoteUnreachable,
    RootViolation,
    TsrError,
)
from tsr.families import FALLBACK_FAMILY, Family, get_family
from tsr.paths import is_within
from tsr.schemas.jobs import BackendOut, BackendState
from tsr.schemas.server import BackendSummary
from tsr.server.processes import (
    LoggedProcess,
    run_logged_command,
    sd_server_command,
    wait_until_ready,
)
from tsr.server.sd_backend import Backend, EventSink, ModelLookup

__all__ = ["Backend", "BackendManager", "EventSink", "ModelLookup"]

#: a managed sd-server that dies this many times within RESTART_WINDOW seconds is left down
MAX_RESTARTS = 3
RESTART_WINDOW = 60.0
#: hosts a managed sd-server's url may name (it always listens on 127.0.0.1)
LOOPBACK = ("127.0.0.1", "localhost")
#: seconds a stopping sd-server gets between SIGTERM and SIGKILL
STOP_GRACE = 5.0


class BackendManager:
    """Every configured backend: start, stop, switch models, and keep managed ones alive."""

    def __init__(
        self,
        config: Config,
        events: EventSink | None = None,
        lookup: ModelLookup | None = None,
        restart_delay: float = 1.0,
    ) -> None:
        self.config = config
        self.events = events
        self.lookup = lookup
        self.restart_delay = restart_delay
        self.checkpoint_roots = config.model_roots()["checkpoints"]
        log_dir = config.home / "logs"
        self._backends: dict[str, Backend] = {}
        for backend_config in config.effective_backends():
            if backend_config.name in self._backends:
                raise ConfigError(f"two [[backends]] are named {backend_config.name!r}")
            address = urlsplit(backend_config.url)
            if backend_config.kind == "managed" and (
                address.port is None or address.hostname not in LOOPBACK
            ):
                raise ConfigError(
                    f"backend {backend_config.name!r} is managed: tsr starts sd-server on "
                    "127.0.0.1, so its url must be http://127.0.0.1:PORT"
                )
            self._backends[backend_config.name] = Backend(backend_config, log_dir)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        #: queue lengths per backend, filled in by the job queue for status reports
        self.queued: dict[str, int] = {}

    @property
    def backends(self) -> list[Backend]:
        """The backends in config order."""
        return list(self._backends.values())

    def get(self, name: str | None = None) -> Backend:
        """The named backend, or the first one for None; an unknown name lists the known ones."""
        if name is None:
            return self.backends[0]
        if name not in self._backends:
            known = ", ".join(self._backends)
            raise NotFound(f"there is no backend named {name!r}; backends: {known}")
        return self._backends[name]

    def summaries(self) -> list[BackendSummary]:
        """The backends as `GET /api/info` lists them."""
        return [
            BackendSummary(
                name=b.name,
                kind=b.config.kind,
                url=b.url,
                state=b.state,
                model=str(b.model) if b.model else b.model_name,
            )
            for b in self.backends
        ]

    def status(self) -> list[BackendOut]:
        """Every backend as clients see it."""
        return [b.out(self.queued.get(b.name, 0)) for b in self.backends]

    def find_for(self, model: Path) -> Backend | None:
        """A ready backend that already holds `model`, if any."""
        wanted = model.resolve()
        for backend in self.backends:
            if backend.state == "ready" and backend.model and backend.model.resolve() == wanted:
                return backend
        return None

    async def start(self, wait: bool = False) -> None:
        """Start managed backends that name a model and probe external ones, in the background."""
        self._stopping = False
        starts = [self._initial_start(backend) for backend in self.backends]
        if wait:
            await asyncio.gather(*starts)
        else:
            for start in starts:
                self._spawn(start)

    async def stop(self) -> None:
        """Stop every managed sd-server and background task."""
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for backend in self.backends:
            if backend.process is not None:
                process, backend.process = backend.process, None
                await process.stop(STOP_GRACE)
                self._set_state(backend, "stopped")
            backend.log.close()
            await backend.client.aclose()

    async def _initial_start(self, backend: Backend) -> None:
        try:
            if backend.is_managed():
                if backend.config.model is not None:
                    async with backend.lock:
                        await self._start_managed(backend, self.check_model(backend.config.model))
            else:
                if backend.config.model is not None:
                    # what the config says it holds, until the server itself says otherwise
                    backend.model = backend.config.model.expanduser().absolute()
                    backend.model_name = backend.model.stem
                    backend.family = await self._family_of(backend, backend.model)
                await self.refresh(backend.name)
        except TsrError as exc:
            backend.log.note(str(exc))
            backend.error = str(exc)
            if backend.state != "ready":
                self._set_state(backend, "failed")

    def observed(self, name: str, error: TsrError | None) -> None:
        """What a job saw of a backend: an external one that answered is ready, one that could
        not be reached is unreachable."""
        backend = self.get(name)
        if backend.state == "switching" or backend.is_managed():
            return
        if error is None and backend.state != "ready":
            backend.error = None
            self._set_state(backend, "ready")
        elif isinstance(error, RemoteUnreachable):
            backend.error = str(error)
            self._set_state(backend, "unreachable")

    def check_model(self, model: Path) -> Path:
        """The checkpoint's resolved path; RootViolation outside the checkpoint roots."""
        path = Path(model).expanduser()
        if not any(is_within(path, root) for root in self.checkpoint_roots):
            roots = ", ".join(str(root) for root in self.checkpoint_roots)
            raise RootViolation(f"{path} is outside the checkpoint roots ({roots}); not loading it")
        resolved = path.resolve()
        if not resolved.is_file():
            raise NotFound(f"the checkpoint {path} does not exist")
        return resolved

    def check_switchable(self, backend: Backend, model: Path | None = None) -> None:
        """Conflict when tsr has no way to make `backend` load another model."""
        if not backend.can_switch():
            what = model.name if model else "the model"
            raise Conflict(
                f"backend {backend.name} is external and has no switch_command; load {what} "
                "on it yourself or configure switch_command"
            )

    async def refresh(self, name: str | None = None) -> BackendOut:
        """Ask the backend whether it answers and which model it holds (external ones mostly)."""
        backend = self.get(name)
        if backend.is_managed() and backend.process is None:
            return backend.out(self.queued.get(backend.name, 0))
        try:
            capabilities = await backend.client.capabilities()
        except TsrError as exc:
            if backend.state not in ("switching", "starting"):
                backend.error = str(exc)
                self._set_state(backend, "unreachable")
            return backend.out(self.queued.get(backend.name, 0))
        reported_path = capabilities.model.path or None
        reported_name = capabilities.model.stem or capabilities.model.name or None
        if not backend.is_managed():
            await self._adopt_reported(backend, reported_name, reported_path)
        backend.error = None
        if backend.state not in ("switching", "starting"):
            self._set_state(backend, "ready")
        return backend.out(self.queued.get(backend.name, 0))

    async def _adopt_reported(self, backend: Backend, name: str | None, path: str | None) -> None:
        # what an external sd-server says it holds, matched to a local file when the DB knows it
        backend.model_name = name
        match = None
        if self.lookup is not None and (name or path):
            match = await asyncio.to_thread(self.lookup.match_loaded, name, path)
        if match is not None:
            backend.model, backend.family = match
        elif backend.config.model is not None and backend.config.model.stem == name:
            backend.model = backend.config.model.expanduser().absolute()
            backend.family = await self._family_of(backend, backend.model)
        else:
            backend.model = None
            backend.family = backend.config.families[0] if backend.config.families else None

    async def switch(self, name: str | None, model: Path, family: str | None = None) -> BackendOut:
        """Make the backend hold `model` (restart or switch command), waiting until it is ready.

        This acts at once, even while a job generates there; endpoints queue a switch behind
        the backend's jobs with `JobQueue.submit_switch` instead.
        """
        backend = self.get(name)
        path = self.check_model(model)
        self.check_switchable(backend, path)
        family = family or await self._family_of(backend, path)
        if not backend.serves_family(family):
            allowed = ", ".join(backend.config.families)
            raise Conflict(f"backend {backend.name} serves only {allowed}; {path.name} is {family}")
        async with backend.lock:
            if backend.model == path and backend.state == "ready" and self._alive(backend):
                return backend.out(self.queued.get(backend.name, 0))
            if backend.is_managed():
                await self._start_managed(backend, path, family)
            else:
                await self._run_switch_command(backend, path, family)
        return backend.out(self.queued.get(backend.name, 0))

    async def ensure_ready(self, name: str | None) -> Backend:
        """Wait for a backend that is (re)starting; restart a managed one that has died or stopped
        answering."""
        backend = self.get(name)
        async with backend.lock:
            if not backend.is_managed() or backend.model is None:
                return backend
            # a process that crashed a moment ago may not have been reaped yet: ask it too
            if self._alive(backend) and await backend.client.ping():
                return backend
            if backend.process is not None:
                backend.restarts += 1
                backend.log.note("sd-server is gone or not answering; restarting it")
            await self._start_managed(backend, backend.model, backend.family)
        return backend

    @staticmethod
    def _alive(backend: Backend) -> bool:
        if not backend.is_managed():
            return True
        return backend.process is not None and backend.process.returncode is None

    async def _family_of(self, backend: Backend, path: Path) -> str:
        family = None
        if self.lookup is not None:
            family = await asyncio.to_thread(self.lookup.family_of, path)
        if family is None and backend.config.families:
            family = backend.config.families[0]
        return family or FALLBACK_FAMILY

    async def _start_managed(
        self, backend: Backend, model: Path, family: str | None = None
    ) -> None:
        # the caller holds backend.lock
        family = family or await self._family_of(backend, model)
        # built first: a missing companion file must not take down the server that runs now
        command = self._command(backend, model, get_family(family))
        self._set_state(backend, "switching" if backend.model not in (None, model) else "starting")
        if backend.process is not None:
            old, backend.process = backend.process, None
            await old.stop(STOP_GRACE)
        backend.model, backend.model_name, backend.family = model, model.stem, family
        try:
            process = LoggedProcess(command, backend.log)
            await process.start()
            backend.process = process
            await wait_until_ready(
                backend.url,
                backend.config.ready_timeout,
                backend.log,
                f"sd-server for backend {backend.name}",
                exited=lambda: process.returncode,
            )
        except TsrError as exc:
            await self._fail(backend, str(exc))
            raise JobFailed(str(exc)) from None
        backend.error = None
        self._set_state(backend, "ready")
        self._spawn(self._watch(backend, process))

    def _command(self, backend: Backend, model: Path, family: Family) -> list[str]:
        return sd_server_command(
            binary=os.path.expanduser(backend.config.binary),
            model_flag=family.model_flag,
            model=model,
            lora_dir=self.config.model_roots()["loras"][0],
            port=urlsplit(backend.url).port or 0,
            companions=family.companions,
            server_args=family.server_args,
            extra_args=backend.config.args,
            environ=dict(os.environ),
        )

    async def _run_switch_command(self, backend: Backend, model: Path, family: str) -> None:
        # the caller holds backend.lock
        command = backend.config.switch_command
        assert command is not None
        timeout = backend.config.ready_timeout
        self._set_state(backend, "switching")
        backend.log.open()
        backend.log.note(f"switching to {model} with: {command}")
        env = {**os.environ, "MODEL": str(model), "MODEL_FAMILY": family}
        deadline = time.monotonic() + timeout
        try:
            await run_logged_command(
                command, env, timeout, backend.log, f"the switch command of backend {backend.name}"
            )
            await wait_until_ready(
                backend.url,
                max(deadline - time.monotonic(), 0.1),
                backend.log,
                f"sd-server for backend {backend.name}",
            )
            await self._await_model(backend, model, deadline)
        except TsrError as exc:
            await self._fail(backend, str(exc))
            raise JobFailed(str(exc)) from None
        backend.model, backend.model_name, backend.family = model, model.stem, family
        backend.error = None
        self._set_state(backend, "ready")

    async def _await_model(self, backend: Backend, model: Path, deadline: float) -> None:
        # a command like `docker compose up -d` returns while the old server may still answer
        while True:
            try:
                capabilities = await backend.client.capabilities()
                reported = capabilities.model.stem or Path(capabilities.model.path or "").stem
                if not reported or reported == model.stem:
                    return
            except TsrError as exc:
                reported = f"no answer ({exc})"
            if time.monotonic() >= deadline:
                raise JobFailed(
                    f"backend {backend.name} still reports model {reported!r} instead of "
                    f"{model.stem!r} after its switch command; last log lines:"
                    f"{backend.log.tail_text()}"
                )
            await asyncio.sleep(0.1)

    async def _fail(self, backend: Backend, message: str) -> None:
        backend.error = message
        if backend.process is not None and backend.is_managed():
            process, backend.process = backend.process, None
            await process.stop(STOP_GRACE)
        self._set_state(backend, "failed")

    async def _watch(self, backend: Backend, process: LoggedProcess) -> None:
        code = await process.wait()
        if self._stopping or backend.process is not process:
            return  # stopped or replaced on purpose
        backend.log.note(f"sd-server died with status {code}")
        now = time.monotonic()
        backend.deaths = [t for t in backend.deaths if now - t < RESTART_WINDOW] + [now]
        if len(backend.deaths) > MAX_RESTARTS:
            message = (
                f"sd-server for backend {backend.name} died {len(backend.deaths)} times within "
                f"{RESTART_WINDOW:g} s; not restarting it; last log lines:{backend.log.tail_text()}"
            )
            await self._fail(backend, message)
            return
        self._set_state(backend, "starting")
        await asyncio.sleep(self.restart_delay)
        async with backend.lock:
            if backend.process is not process or backend.model is None:
                return
            backend.restarts += 1
            with contextlib.suppress(JobFailed):
                await self._start_managed(backend, backend.model, backend.family)

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _set_state(self, backend: Backend, state: BackendState) -> None:
        backend.state = state
        if self.events is not None:
            out = backend.out(self.queued.get(backend.name, 0))
            self.events.publish("backend", "state", out.model_dump(mode="json"))
