"""`tsr remote` and `tsr config` as a user types them: real process, real config file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def tsr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tsr", *args], capture_output=True, text=True, check=False
    )


def test_remote_add_list_default_remove() -> None:
    assert (
        tsr("remote", "add", "gpu", "http://gpu-box:8765", "--token-env", "GPU_T").returncode == 0
    )
    listed = tsr("remote", "list")
    assert "local" in listed.stdout and "http://gpu-box:8765" in listed.stdout
    assert tsr("remote", "default", "gpu").returncode == 0
    assert tsr("remote", "default").stdout.strip() == "gpu"
    assert tsr("remote", "remove", "gpu").returncode == 0
    assert tsr("remote", "default").stdout.strip() == "local"


def test_unknown_remote_is_one_clear_line() -> None:
    result = tsr("remote", "default", "gpu-box")
    assert result.returncode == 1
    assert result.stderr.strip() == "tsr: there is no remote named 'gpu-box'; known remotes: local"


def test_bad_config_file_is_one_line_not_a_traceback() -> None:
    path = Path(os.environ["TSR_CONFIG"])
    path.parent.mkdir(parents=True)
    path.write_text("[server]\nport = 'x'\n")
    result = tsr("config", "show")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "'server.port'" in result.stderr


def test_config_set_and_show_masks_secrets() -> None:
    assert tsr("config", "set", "civitai.api_key", "abcdef123").stdout.strip() == (
        "civitai.api_key = ********"
    )
    shown = tsr("config", "show").stdout
    assert "abcdef123" not in shown
    assert "********" in shown
    assert tsr("config", "path").stdout.strip() == os.environ["TSR_CONFIG"]
