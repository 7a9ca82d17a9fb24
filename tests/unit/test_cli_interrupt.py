"""Ctrl-C at any moment of a command (imports, start-up, exit) ends it without a traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

COMMAND = [sys.executable, "-m", "tsr", "db", "stats"]


@pytest.fixture(scope="module")
def uninterrupted_seconds() -> float:
    """How long the command takes on this machine when nobody presses Ctrl-C."""
    started = time.monotonic()
    subprocess.run(COMMAND, capture_output=True, check=True, timeout=120)
    return time.monotonic() - started


# `db stats` imports the CLI, starts the embedded server, answers, then stops the server and the
# interpreter at exit. The Ctrl-C lands at these fractions of the command's own run time, so each
# phase is hit whatever the machine's speed; the last ones land in the exit, where the
# interpreter has restored the default handler and a Ctrl-C used to kill the process.
@pytest.mark.parametrize("fraction", [0.1, 0.35, 0.6, 0.8, 0.9, 0.95, 0.98, 1.0])
def test_ctrl_c_never_prints_a_traceback(fraction: float, uninterrupted_seconds: float) -> None:
    command = subprocess.Popen(COMMAND, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(fraction * uninterrupted_seconds)
    command.send_signal(signal.SIGINT)
    _, err = command.communicate(timeout=60)
    assert "Traceback" not in err
    assert "Exception ignored" not in err
    # 0: the command had finished; 130: it was interrupted and said so (never killed mid-exit)
    assert command.returncode in (0, 130)
    if command.returncode == 130:
        assert err.strip().endswith("interrupted")


def test_running_the_cli_in_process_leaves_ctrl_c_working(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a script (or a test) that calls main() goes on running, and every process it starts
    # inherits its SIGINT disposition: an ignored one would make them deaf to Ctrl-C
    from tsr.cli import main

    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(sys, "argv", ["tsr", "config", "path"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip()
    assert signal.getsignal(signal.SIGINT) is before
    child = subprocess.run(
        [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "default_int_handler" in child.stdout
