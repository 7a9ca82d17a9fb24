"""rocm-docker's scripts, Dockerfile and systemd unit pass their linters."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.docker.conftest import BIN_DIR, ROCM_DOCKER

pytestmark = pytest.mark.lint

SCRIPTS = sorted(ROCM_DOCKER.glob("*.sh"))
UNIT = ROCM_DOCKER / "tsr-server.service"


def lint(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, check=False, timeout=60
    )


def test_there_are_scripts_to_check() -> None:
    assert {path.name for path in SCRIPTS} >= {"build-all.sh", "deploy.sh"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_shellcheck_is_clean(script: Path) -> None:
    result = lint(BIN_DIR / "shellcheck", "--shell=bash", "--severity=style", script)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_scripts_are_executable_and_strict(script: Path) -> None:
    assert script.stat().st_mode & 0o111
    assert "set -euo pipefail" in script.read_text()


def test_hadolint_is_clean() -> None:
    result = lint(BIN_DIR / "hadolint", ROCM_DOCKER / "Dockerfile.sd-server")
    assert result.returncode == 0, result.stdout + result.stderr


def unit_with_existing_binary(tmp_path: Path, text: str) -> Path:
    """The unit, with ExecStart pointed at a binary this machine has (tsr is not installed here)."""
    binary = shutil.which("true") or "/bin/true"
    patched = re.sub(r"^ExecStart=\S+", f"ExecStart={binary}", text, flags=re.MULTILINE)
    assert patched != text
    path = tmp_path / "tsr-server.service"
    path.write_text(patched)
    return path


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    unit = unit_with_existing_binary(tmp_path, UNIT.read_text())
    result = lint("systemd-analyze", "verify", unit)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
def test_the_service_is_hardened(tmp_path: Path) -> None:
    unit = unit_with_existing_binary(tmp_path, UNIT.read_text())
    result = lint("systemd-analyze", "security", "--offline=true", "--no-pager", unit)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    if found is None:
        pytest.skip(f"this systemd-analyze cannot score offline: {result.stderr.strip()}")
    # systemd's scale: 0 = fully locked down, 10 = unprotected; a plain service scores 9.6
    assert float(found.group(1)) <= 2.5, result.stdout
