"""Serving the app with uvicorn: `tsr serve` in the foreground, the embedded server in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn
from fastapi import FastAPI

from tsr.config import Config
from tsr.errors import ConfigError, TsrError
from tsr.server.app import app_state, create_app
from tsr.server.listen import bind_tcp, ensure_private_dir, is_loopback, url_for
from tsr.server.lock import LockHolder, read_holder, try_lock
from tsr.server.logging import configure_logging, reset_logging

log = logging.getLogger("tsr.server")

#: seconds open requests get to finish at shut-down before they are cancelled
GRACEFUL_SHUTDOWN = 3
#: seconds between the server's housekeeping ticks (uvicorn's own period)
TICK = 0.1
TICKS_PER_DAY = 864_000


class TsrServer(uvicorn.Server):
    """uvicorn's server that ends the event streams first when it stops, so it never hangs."""

    def __init__(
        self,
        config: uvicorn.Config,
        app: FastAPI,
        on_started: Callable[[], None] | None = None,
        on_stopped: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.app = app
        self.on_started = on_started
        self.on_stopped = on_stopped
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def request_exit(self) -> None:
        """Stop serving, from any thread; the server notices at once, not at its next tick."""
        self.should_exit = True
        self._wake_up()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """A SIGINT or SIGTERM: stop as uvicorn does (a second SIGINT forces), without delay."""
        super().handle_exit(sig, frame)
        self._wake_up()

    def _wake_up(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: it has stopped
                loop.call_soon_threadsafe(wake.set)

    async def main_loop(self) -> None:
        """uvicorn's loop (a tick every 0.1 s keeps its headers' date), woken by request_exit()."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % TICKS_PER_DAY
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK)
            should_exit = await self.on_tick(counter)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, then report readiness."""
        await super().startup(sockets)
        if self.started and self.on_started is not None:
            self.on_started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Close the event bus (SSE streams end), then shut down as uvicorn does."""
        app_state(self.app).events.close()
        try:
            if self.server_state.connections or self.server_state.tasks:
                await super().shutdown(sockets)
            else:
                # nothing in flight (the usual exit of a command): uvicorn's own shut-down
                # would first pause 0.1 s for connections to close; there are none
                for server in self.servers:
                    server.close()
                for sock in sockets or []:
                    sock.close()
                if not self.force_exit:
                    await self.lifespan.shutdown()
        finally:
            if self.on_stopped is not None:
                self.on_stopped()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM stop the server gracefully; unlike uvicorn, never re-raised after."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def uvicorn_config(app: FastAPI, *, access_log: bool) -> uvicorn.Config:
    """uvicorn settings for a tsr app: our logging, h11, no websockets, bounded shut-down."""
    return uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=access_log,
        http="h11",
        ws="none",
        loop="asyncio",
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
    )


def startup_failure(app: FastAPI, fallback: str) -> str:
    """Why an app did not start: its lifespan's error if it recorded one."""
    error = app_state(app).startup_error
    if isinstance(error, TsrError):
        return str(error)
    if error is not None and not isinstance(error, SystemExit):
        return f"{type(error).__name__}: {error}"
    return fallback


def serve(config: Config, host: str, port: int) -> None:
    """`tsr serve`: hold the data dir's lock, listen on host:port, and serve until a signal.

    Raises:
        ConfigError: another server holds the data dir, or the address cannot be bound.
    """
    ensure_private_dir(config.home)
    lock = try_lock(config.home)
    if lock is None:
        holder = read_holder(config.home)
        who = holder.describe() if holder else "another tsr server, still starting"
        raise ConfigError(
            f"{who} already serves the data dir {config.home}; stop it first, "
            "or point TSR_HOME at another data dir"
        )
    try:
        log_path = configure_logging(config, to_stderr=True)
        sock = bind_tcp(host, port)
        with sock:
            lock.publish(LockHolder(pid=os.getpid(), kind="serve", url=url_for(sock)))
            bound_port = sock.getsockname()[1]
            shown_host = f"[{host}]" if ":" in host else host
            app = create_app(config, mode="serve")
            if app_state(app).token:
                auth = "token required"
            elif is_loopback(host):
                auth = "no token: only this machine can reach it"
            else:
                auth = "NO TOKEN: anyone who reaches this port can use it"
            server = TsrServer(
                uvicorn_config(app, access_log=True),
                app,
                on_started=lambda: log.info(
                    "tsr serving on http://%s:%d (%s); log file %s",
                    shown_host,
                    bound_port,
                    auth,
                    log_path,
                ),
                on_stopped=lock.release,
            )
            with contextlib.suppress(SystemExit):  # how uvicorn reports a failed lifespan
                server.run(sockets=[sock])
            if not server.started:
                reason = startup_failure(app, f"see {log_path}")
                raise TsrError(f"tsr serve could not start: {reason}")
            log.info("tsr server stopped")
    finally:
        lock.release()


def run_embedded(
    config: Config,
    sock: socket.socket,
    attach: Callable[[TsrServer], bool],
    on_started: Callable[[], None],
) -> None:
    """Serve `config`'s app on a bound Unix socket until `server.should_exit` (blocking).

    `attach` receives the server before it starts and returns False to cancel the start (a stop
    was asked for meanwhile). Runs in the embedded server's own thread and loop.

    Raises:
        TsrError: the app failed to start, with the reason.
    """
    log_path = configure_logging(config, to_stderr=False)
    try:
        app = create_app(config, mode="embedded")
        server = TsrServer(uvicorn_config(app, access_log=False), app, on_started=on_started)
        if not attach(server):
            return
        with contextlib.suppress(SystemExit):  # how uvicorn reports a failed lifespan
            asyncio.run(server.serve(sockets=[sock]))
    finally:
        # the process goes on (a test run, a TUI that reconnects): its logging is left as found
        reset_logging()
    if not server.started:
        raise TsrError(startup_failure(app, f"see {log_path}"))
