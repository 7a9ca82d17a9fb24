"""A process that used the embedded `local` server stops it cleanly when it exits: every service
gets to stop (downloads pause, managed sd-servers end, the gallery is recorded for a fast start)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.running import cli_env
from tsr.gallery.clean_stop import RECORD_NAME

SCRIPT = """
from tsr.client import connect
from tsr.config import load_config

client = connect("local", load_config())
print(client.info().mode)
"""


@pytest.mark.parametrize(
    "command",
    [["-m", "tsr", "db", "stats"], ["-c", SCRIPT]],
    ids=["a tsr command", "a script using the client"],
)
def test_the_embedded_server_stops_cleanly_when_its_process_exits(
    command: list[str], tmp_path: Path
) -> None:
    home, config = tmp_path / "home", tmp_path / "config.toml"
    config.write_text("")
    done = subprocess.run(
        [sys.executable, *command],
        env=cli_env(home, config),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    log = (home / "logs" / "server.log").read_text()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log and " ERROR " not in log
    assert (home / RECORD_NAME).is_file()
