"""The `local` remote: this data dir's running server, or one embedded in this process.

The embedded server is `create_app(config)` under uvicorn in a daemon thread, on the private
Unix socket `<data dir>/tsr.sock` (mode 0600). The data dir's lock file says which server owns
the data dir: a running `tsr serve` or another process's embedded server is used instead of
starting a second one. `tsr.server` is imported only inside these functions (and the heavy part
only in the server's thread), so `connect("local")` returns at once.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from tsr.client.base import Endpoint
from tsr.config import Config
from tsr.errors import RemoteUnreachable, TsrError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from tsr.server.lock import LockHolder, ServerLock
    from tsr.server.runner import TsrServer

log = logging.getLogger(__name__)

LOCAL = "local"
#: how long the first request waits for the embedded server to come up
READY_TIMEOUT = 20.0
#: how long shutting down may wait for the server thread: above uvicorn's graceful shut-down
#: plus a managed sd-server's SIGTERM grace, so that one slow to stop is still killed
STOP_TIMEOUT = 15.0
#: the base URL requests over the Unix socket use (the host part is not looked at)
SOCKET_BASE_URL = "http://local"

_registry: dict[Path, EmbeddedServer] = {}
_registry_guard = threading.Lock()
_atexit_registered = False


class EmbeddedServer:
    """`create_app(config)` served from a background thread on the data dir's Unix socket."""

    def __init__(self, config: Config, lock: ServerLock) -> None:
        from tsr.server.listen import socket_path

        self.config = config
        self.lock = lock
        self.socket_path = socket_path(config.home)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._server: TsrServer | None = None
        self._guard = threading.Lock()
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._stopping = False
        self._error: str | None = None

    def start(self) -> None:
        """Bind the socket, say so in the lock file, and start serving in the background."""
        from tsr.server.listen import bind_unix_socket
        from tsr.server.lock import LockHolder

        try:
            self._sock = bind_unix_socket(self.socket_path)
            holder = LockHolder(pid=os.getpid(), kind="embedded", socket=str(self.socket_path))
            self.lock.publish(holder)
        except BaseException:
            self._cleanup()
            raise
        self._thread = threading.Thread(target=self._run, name="tsr-local-server", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            # the heavy imports (FastAPI, uvicorn) happen here, off the caller's thread
            from tsr.server.runner import run_embedded

            assert self._sock is not None
            run_embedded(self.config, self._sock, self._attach, self._ready.set)
        except TsrError as exc:
            self._error = str(exc)
        except BaseException as exc:
            if sys.is_finalizing() or not threading.main_thread().is_alive():
                # the command ended (Ctrl-C, exit) while this server was still starting:
                # nothing is waiting for it, and a traceback would only alarm the user
                self._error = "the tsr command exited while its server was starting"
                return
            log.exception("the embedded tsr server failed")
            self._error = f"{type(exc).__name__}: {exc}"
        finally:
            self._cleanup()
            self._finished.set()
            self._ready.set()  # wake anyone waiting, who then sees that it stopped

    def _attach(self, server: TsrServer) -> bool:
        with self._guard:
            if self._stopping:
                return False
            self._server = server
            return True

    @property
    def app(self) -> FastAPI | None:
        """The served app (None until the server thread has built it)."""
        server = self._server
        return None if server is None else server.app

    @property
    def alive(self) -> bool:
        """True while it serves or is starting (not stopped, not failed)."""
        return not self._stopping and not self._finished.is_set()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Block until it accepts requests.

        Raises:
            RemoteUnreachable: it failed to start, stopped, or did not start within `timeout`.
        """
        if not self._ready.wait(timeout):
            raise RemoteUnreachable(
                f"the local tsr server did not start within {timeout:g} s; "
                f"see {self.config.home / 'logs' / 'server.log'}"
            )
        if self._finished.is_set():
            reason = self._error or "it was stopped"
            raise RemoteUnreachable(f"the local tsr server is not running: {reason}")

    def endpoint(self, token: str | None) -> Endpoint:
        """How clients reach it."""
        return Endpoint(
            remote=LOCAL,
            base_url=SOCKET_BASE_URL,
            token=token,
            uds=str(self.socket_path),
            wait_ready=self.wait_ready,
            description="embedded in this process",
            unreachable_hint=f"see {self.config.home / 'logs' / 'server.log'}",
            token_hint="set the same token as the server's in [server] token or TSR_TOKEN",
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop serving (open event streams end), remove the socket and release the lock."""
        with self._guard:
            self._stopping = True
            server = self._server
        if server is not None:
            server.request_exit()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the embedded tsr server did not stop within %g s", timeout)
                return
        self._cleanup()

    def _cleanup(self) -> None:
        # from the server thread when it ends and from stop(): whichever comes first does it
        with self._guard:
            sock, self._sock = self._sock, None
            if sock is not None:
                sock.close()
                # removed while the lock is still held, so it cannot be a newer server's socket
                self.socket_path.unlink(missing_ok=True)
            self.lock.release()

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _holder_endpoint(holder: LockHolder, token: str | None) -> Endpoint:
    """How to reach a server another process (or `tsr serve`) runs for this data dir."""
    fix_token = "set the same token as the server's in [server] token or TSR_TOKEN"
    if holder.kind == "serve" and holder.url:
        return Endpoint(
            remote=LOCAL,
            base_url=holder.url,
            token=token,
            description=f"tsr serve (pid {holder.pid})",
            unreachable_hint=f"is that tsr serve (pid {holder.pid}) still running?",
            token_hint=f"local is served by tsr serve (pid {holder.pid}): {fix_token}",
        )
    return Endpoint(
        remote=LOCAL,
        base_url=SOCKET_BASE_URL,
        token=token,
        uds=holder.socket,
        description=f"embedded in pid {holder.pid}",
        unreachable_hint=f"is process {holder.pid} still running?",
        token_hint=fix_token,
    )


def local_endpoint(config: Config) -> Endpoint:
    """Reach this data dir's server: the one running, or a new one embedded in this process."""
    from tsr.server.listen import ensure_private_dir
    from tsr.server.lock import LockHolder, claim_or_find

    home = config.home.expanduser().absolute()
    token = config.server.resolved_token()
    with _registry_guard:
        running = _registry.get(home)
        if running is not None and running.alive:
            return running.endpoint(token)
        ensure_private_dir(home)
        found = claim_or_find(home)
        if isinstance(found, LockHolder):
            return _holder_endpoint(found, token)
        server = EmbeddedServer(config.model_copy(update={"home": home}), found)
        server.start()
        _registry[home] = server
        _register_atexit()
        return server.endpoint(token)


def embedded_server(config: Config) -> EmbeddedServer | None:
    """The server this process embeds for `config`'s data dir, if it runs one."""
    with _registry_guard:
        return _registry.get(config.home.expanduser().absolute())


def shutdown_embedded() -> None:
    """Stop every server this process embeds (runs at exit; tests call it between cases)."""
    with _registry_guard:
        servers = list(_registry.values())
        _registry.clear()
    for server in servers:
        server.stop()


def abandon_embedded() -> None:
    """Kill what embedded servers started (sd-servers, switch commands) without waiting: for
    a user who asked to quit at once while the servers were still stopping."""
    from tsr.server.processes import kill_all_now

    kill_all_now()


def _shutdown_at_exit() -> None:
    # a Ctrl-C while the command is already ending: the socket and lock go with the process
    with contextlib.suppress(KeyboardInterrupt):
        shutdown_embedded()


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        # The services stop through thread pools (asyncio.to_thread), which Python shuts down
        # in one of threading's exit hooks, before any atexit hook. Those hooks run newest
        # first: the pools' module is imported (its hook registered) before this one is added.
        import concurrent.futures.thread  # noqa: F401

        try:
            threading._register_atexit(_shutdown_at_exit)  # type: ignore[attr-defined]
        except (AttributeError, RuntimeError):
            # another Python, or its shutdown has begun already: the plain hook still runs
            atexit.register(_shutdown_at_exit)
        _atexit_registered = True
