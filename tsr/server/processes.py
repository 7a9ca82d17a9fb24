"""Managed sd-server processes: spawn, log capture, readiness on `GET /`, clean stop; and
switch commands run with their output in the same log."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import shlex
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from tsr.errors import JobFailed

#: lines kept in memory per backend for status and error messages
LOG_TAIL_LINES = 200
#: lines quoted in an error message
ERROR_TAIL_LINES = 15
#: a log file above this size is moved aside (one old generation kept) when a process starts
LOG_FILE_LIMIT = 5_000_000
READY_POLL_INTERVAL = 0.05
#: seconds to keep reading a child's output after it exited
READER_GRACE = 1.0


class LogRing:
    """The last lines of a backend's output in memory, and every line appended to a log file."""

    def __init__(self, path: Path | None, max_lines: int = LOG_TAIL_LINES) -> None:
        self.path = path
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._file: IO[str] | None = None
        self._partial = ""

    def open(self) -> None:
        """Open the log file for appending (moving an oversized one aside first)."""
        if self.path is None or self._file is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if self.path.stat().st_size > LOG_FILE_LIMIT:
                os.replace(self.path, self.path.with_suffix(self.path.suffix + ".1"))
        self._file = self.path.open("a", encoding="utf-8", errors="replace")

    def close_partial(self) -> None:
        """Record a last line that had no newline."""
        if self._partial:
            self.add_line(self._partial)
            self._partial = ""

    def close(self) -> None:
        """Flush what is pending and close the file."""
        self.close_partial()
        if self._file is not None:
            self._file.close()
            self._file = None

    def add_line(self, line: str) -> None:
        """Record one line (without its newline)."""
        line = line.rstrip()
        if not line:
            return
        self._lines.append(line)
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()

    def feed(self, chunk: str) -> None:
        """Record raw output; sd-server draws progress bars with \\r, so both end a line."""
        text = self._partial + chunk.replace("\r", "\n")
        *complete, self._partial = text.split("\n")
        for line in complete:
            self.add_line(line)

    def note(self, message: str) -> None:
        """Record a line written by tsr itself (start, stop, switch), marked as such."""
        self.add_line(f"[tsr {time.strftime('%H:%M:%S')}] {message}")

    def tail(self, count: int = LOG_TAIL_LINES) -> list[str]:
        """The last `count` lines, oldest first."""
        lines = list(self._lines)
        return lines[-count:] if count else []

    def tail_text(self, count: int = ERROR_TAIL_LINES) -> str:
        """The last lines as one indented block for an error message."""
        lines = self.tail(count)
        return "\n  ".join(["", *lines]) if lines else " (no output)"


async def wait_until_ready(
    url: str,
    limit: float,
    log: LogRing,
    what: str,
    exited: Callable[[], int | None] = lambda: None,
) -> None:
    """Poll `GET url/` until it answers 200; fail with the log tail on timeout or early exit."""
    deadline = time.monotonic() + limit
    last_problem = "no answer yet"
    # trust_env off: a proxy from the environment must not answer for a local sd-server
    async with httpx.AsyncClient(timeout=httpx.Timeout(2.0), trust_env=False) as client:
        while True:
            code = exited()
            if code is not None:
                raise JobFailed(
                    f"{what} exited with status {code} before it was ready; "
                    f"last log lines:{log.tail_text()}"
                )
            try:
                response = await client.get(url + "/")
                if response.status_code == 200:
                    return
                last_problem = f"GET / answered {response.status_code}"
            except httpx.HTTPError as exc:
                last_problem = type(exc).__name__
            if time.monotonic() >= deadline:
                raise JobFailed(
                    f"{what} was not ready at {url} after {limit:g} s ({last_problem}); "
                    f"last log lines:{log.tail_text()}"
                )
            await asyncio.sleep(READY_POLL_INTERVAL)


#: process groups of children still running (each child leads its own): what kill_all_now ends
_live_groups: set[int] = set()


def kill_all_now() -> None:
    """SIGKILL every child process group still running (a forced quit cannot wait for stops)."""
    for group in list(_live_groups):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    _live_groups.clear()


class LoggedProcess:
    """A child process (sd-server, or a switch command) whose output goes to a LogRing."""

    def __init__(
        self, command: Sequence[str] | str, log: LogRing, env: dict[str, str] | None = None
    ) -> None:
        #: a list is run directly, a string by the shell
        self.command = command if isinstance(command, str) else list(command)
        self.log = log
        self.env = env
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while it exists."""
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        """The exit status once the child has ended, else None."""
        return self._process.returncode if self._process else None

    async def start(self) -> None:
        """Spawn the process in its own session, its stdout and stderr going to the log."""
        shown = self.command if isinstance(self.command, str) else shlex.join(self.command)
        self.log.open()
        self.log.note(f"starting: {shown}")
        options: dict[str, Any] = {
            "stdin": asyncio.subprocess.DEVNULL,
            "stdout": asyncio.subprocess.PIPE,
            "stderr": asyncio.subprocess.STDOUT,
            "env": self.env,
            # its own process group, so that stop() also reaches anything it spawned
            "start_new_session": True,
        }
        try:
            if isinstance(self.command, str):
                process = await asyncio.create_subprocess_shell(self.command, **options)
            else:
                process = await asyncio.create_subprocess_exec(*self.command, **options)
        except OSError as exc:
            self.log.note(f"cannot start: {exc}")
            raise JobFailed(f"cannot run {shown}: {exc.strerror or exc}") from None
        self._process = process
        _live_groups.add(process.pid)
        self._reader = asyncio.create_task(self._read_output(process))

    async def _read_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        # incremental: a UTF-8 character may be split between two reads
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while chunk := await process.stdout.read(4096):
            self.log.feed(decoder.decode(chunk))
        self.log.feed(decoder.decode(b"", final=True))

    async def wait(self) -> int:
        """Wait for the process to end (its output fully read); return its exit status."""
        if self._process is None:
            return 0
        code = await self._process.wait()
        _live_groups.discard(self._process.pid)
        await self._finish_reading()
        return code

    async def _finish_reading(self) -> None:
        # a child left running in the background (`cmd &`) may hold the pipe open for ever
        if self._reader is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), READER_GRACE)
        except TimeoutError:
            self._reader.cancel()
            self.log.note("a background process still holds the output open; not reading it")
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL after `grace` seconds."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            self.log.note(f"stopping pid {process.pid}")
            self._signal(process, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                self.log.note(f"pid {process.pid} ignored SIGTERM for {grace:g} s; killing it")
                self._signal(process, signal.SIGKILL)
                await process.wait()
        _live_groups.discard(process.pid)
        await self._finish_reading()
        self.log.note(f"exited with status {process.returncode}")

    @staticmethod
    def _signal(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            process.send_signal(sig)


def sd_server_command(
    binary: str,
    model_flag: str,
    model: Path,
    lora_dir: Path,
    port: int,
    companions: dict[str, str],
    server_args: Sequence[str],
    extra_args: Sequence[str],
    environ: dict[str, str],
) -> list[str]:
    """sd-server's command line for one model: model, LoRA dir, address, family flags, extras.

    Companion files (flux's text encoders and VAE) come from the backend's own args when given
    there, else from the environment variable the family names (as in the docker entrypoint).
    """
    command = [binary, model_flag, str(model), "--lora-model-dir", str(lora_dir)]
    command += ["--listen-ip", "127.0.0.1", "--listen-port", str(port)]
    for flag, variable in companions.items():
        if flag in extra_args:
            continue
        value = environ.get(variable)
        if not value:
            raise JobFailed(
                f"this model family needs {flag}: set {variable} in tsr's environment "
                f"or add {flag} PATH to the backend's args"
            )
        command += [flag, value]
    return command + list(server_args) + list(extra_args)


async def run_logged_command(
    command: Sequence[str] | str, env: dict[str, str], seconds: float, log: LogRing, what: str
) -> None:
    """Run a command (a list, or a string for the shell), its output going to `log` as it comes;
    JobFailed with the log tail when it fails or outlives `seconds`."""
    process = LoggedProcess(command, log, env)
    await process.start()
    try:
        code = await asyncio.wait_for(process.wait(), seconds)
    except TimeoutError:
        await process.stop(grace=1.0)
        raise JobFailed(
            f"{what} did not finish within {seconds:g} s; last log lines:{log.tail_text()}"
        ) from None
    finally:
        log.close_partial()
    if code:
        raise JobFailed(f"{what} exited with status {code}; last log lines:{log.tail_text()}")
