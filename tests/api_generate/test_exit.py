"""Ctrl-C while a command cleans up after itself (here its embedded server stops an sd-server that
is slow to go): the first says it is finishing, a second quits at once; never a traceback, and
the sd-server it started does not outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.api_generate.conftest import PATIENCE, ModelTree, server_config, wait_until
from tests.fakes.civitai import FakeCivitai
from tests.fakes.sd_server_fixtures import FAKE_SD_SERVER, free_port
from tests.server.running import cli_env


def _stubborn_launcher(directory: Path) -> Path:
    """An `sd-server` that ignores SIGTERM (the fake, started with SIGTERM ignored)."""
    directory.mkdir(parents=True)
    launcher = directory / "sd-server"
    launcher.write_text(
        f'#!/bin/sh\ntrap \'\' TERM\nexec "{sys.executable}" "{FAKE_SD_SERVER}" "$@"\n'
    )
    launcher.chmod(0o755)
    return launcher


def test_a_second_ctrl_c_while_cleaning_up_quits_at_once(
    tree: ModelTree, civitai: FakeCivitai, tmp_path: Path
) -> None:
    gpu, offline = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "config.toml"
    config.write_text(
        server_config(tree, civitai, _stubborn_launcher(tmp_path / "bin"), gpu, offline)
    )
    env = cli_env(tmp_path / "home", config, PYTHONUNBUFFERED="1")
    tsr = [sys.executable, "-m", "tsr"]
    scanned = subprocess.run(
        [*tsr, "db", "scan"], env=env, capture_output=True, text=True, timeout=PATIENCE
    )
    assert scanned.returncode == 0, scanned.stderr

    # the scan's own server stopped too: only a stop after this one is the switch command's
    stops_before = (
        (tmp_path / "home" / "logs" / "server.log")
        .read_text()
        .count("Waiting for application shutdown")
    )
    command = subprocess.Popen(
        [*tsr, "models", "switch", "sd15", "--backend", "gpu"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert command.stdout is not None and command.stderr is not None
        answer = command.stdout.readline()  # the switch is done: the command's work is over
        assert answer.startswith("backend gpu now holds") and "sd15" in answer, answer
        assert _fake_running(gpu)
        # the command's work is over; its embedded server now stops the sd-server, which
        # ignores SIGTERM and would be killed only after its grace period
        log = tmp_path / "home" / "logs" / "server.log"
        stopping = "Waiting for application shutdown"
        wait_until(lambda: log.read_text().count(stopping) == stops_before + 1, "the stop")
        command.send_signal(signal.SIGINT)
        assert command.stderr.readline() == "tsr: finishing; press Ctrl-C again to quit at once\n"
        command.send_signal(signal.SIGINT)
        _, err = command.communicate(timeout=PATIENCE)

        assert command.returncode == 130
        assert "Traceback" not in err
        wait_until(lambda: not _fake_running(gpu), "the sd-server it started to be gone")
    finally:
        # whatever failed, nothing is left running: this sd-server ignores SIGTERM
        if command.poll() is None:
            command.kill()
        for pid in _fake_pids(gpu):
            os.kill(pid, signal.SIGKILL)


def _fake_running(url: str) -> bool:
    """Whether a fake sd-server listening on `url`'s port is still running."""
    return bool(_fake_pids(url))


def _fake_pids(url: str) -> list[int]:
    """The fake sd-servers listening on `url`'s port (from /proc)."""
    port = url.rsplit(":", 1)[1].encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # ended while looking
        if str(FAKE_SD_SERVER).encode() in args and b"--listen-port" in args:
            at = args.index(b"--listen-port")
            if at + 1 < len(args) and args[at + 1] == port:
                found.append(int(cmdline.parent.name))
    return found
