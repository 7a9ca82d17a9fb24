"""Fixtures for rocm-docker/: its Python helpers as modules, and a fake GPU host for deploy.sh.

No docker engine, GPU or systemd runs here: `docker`, `systemctl`, `curl`, `uv`, `useradd`,
`chown` and `getent` are small shell stubs on PATH that log their arguments (one call per line)
and answer like the real tools would on a working host. Everything else deploy.sh touches is
real: files, modes, python helpers, tsr's config code.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROCM_DOCKER = ROOT / "rocm-docker"
BIN_DIR = Path(sys.executable).parent

STUB = """#!/bin/sh
printf '%s' "{name}" >> "$STUB_LOG"
for arg in "$@"; do printf ' %s' "$arg" >> "$STUB_LOG"; done
printf '\\n' >> "$STUB_LOG"
{body}
exit 0
"""
STUB_BODIES = {
    "docker": '[ "$1" = info ] && [ -n "$STUB_DOCKER_DOWN" ] && exit 1',
    "curl": '[ -n "$STUB_CURL_FAIL" ] && exit 7',
    "getent": """case "$2" in
  video) echo "video:x:44:" ;;
  render) echo "render:x:109:" ;;
  docker) echo "docker:x:998:" ;;
  *) exit 2 ;;
esac""",
}
STUBBED = ("docker", "systemctl", "curl", "uv", "useradd", "chown", "getent")

CONFIG_WITH_COMMENTS = """\
# my tsr server
default_remote = "local"  # keep local

[server]
# everyone on the LAN
port = 8765  # the default

[[backends]]
# a CPU sd-server I run by hand
name = "cpu"
url = "http://127.0.0.1:9999"

[tui]
low_bandwidth = true  # over ssh
"""


def load_script(name: str) -> ModuleType:
    """Import rocm-docker/NAME.py (the folder is not a package) as a module."""
    spec = importlib.util.spec_from_file_location(name, ROCM_DOCKER / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeHost:
    """A temp folder laid out like a GPU host, and deploy.sh run against it."""

    root: Path
    env: dict[str, str]

    @property
    def config(self) -> Path:
        return Path(self.env["TSR_CONFIG"])

    @property
    def token_file(self) -> Path:
        return Path(self.env["TSR_ENV_FILE"])

    @property
    def models_env(self) -> Path:
        return Path(self.env["TSR_MODELS_ENV"])

    @property
    def unit(self) -> Path:
        return Path(self.env["SYSTEMD_UNIT_DIR"]) / "tsr-server.service"

    @property
    def compose_file(self) -> Path:
        return Path(self.env["TSR_PREFIX"]) / "docker-compose.yml"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def deploy(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """Run deploy.sh with the stubs; the stub log starts empty for each run."""
        log = Path(self.env["STUB_LOG"])
        log.write_text("")
        return subprocess.run(
            ["bash", str(ROCM_DOCKER / "deploy.sh"), *args],
            env={**self.env, **extra_env},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def calls(self, tool: str | None = None) -> list[str]:
        """The stubbed commands the last run made, e.g. 'docker compose -f ... up -d sd15'."""
        lines = Path(self.env["STUB_LOG"]).read_text().splitlines()
        return [line for line in lines if tool is None or line.split(" ", 1)[0] == tool]


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def fake_host(tmp_path: Path) -> FakeHost:
    """A GPU host with /dev/kfd, models for sd15 and sdxl, a commented config, and tsr's venv."""
    root = tmp_path / "host"
    stubs = root / "stubs"
    stubs.mkdir(parents=True)
    for name in STUBBED:
        _executable(stubs / name, STUB.format(name=name, body=STUB_BODIES.get(name, "")))
    # tsr's venv: python is this test run's interpreter (it has tsr and tomlkit installed)
    venv_bin = root / "opt" / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    _executable(venv_bin / "python", f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    _executable(venv_bin / "tsr", "#!/bin/sh\nexit 0\n")
    (root / "dev" / "dri").mkdir(parents=True)
    (root / "dev" / "kfd").touch()
    models = root / "models"
    (models / "loras").mkdir(parents=True)
    (models / "checkpoints").mkdir()
    (models / "checkpoints" / "sd15.safetensors").write_bytes(b"\0" * 8)
    (models / "checkpoints" / "sdxl.safetensors").write_bytes(b"\0" * 8)
    etc = root / "etc"
    etc.mkdir()
    (etc / "models.env").write_text(
        "# what my GPU serves\n"
        f"MODELS_DIR={models}\n"
        f"LORA_DIR={models / 'loras'}\n"
        f"SD15_MODEL={models / 'checkpoints' / 'sd15.safetensors'}\n"
        f'SDXL_MODEL="{models / "checkpoints" / "sdxl.safetensors"}"  # quoted\n'
        "HSA_OVERRIDE_GFX_VERSION=\n"
    )
    (etc / "config.toml").write_text(CONFIG_WITH_COMMENTS)
    units = root / "systemd"
    units.mkdir()
    env = {
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "HOME": str(root),
        "LANG": "C.UTF-8",
        "STUB_LOG": str(root / "calls.log"),
        "TSR_PREFIX": str(root / "opt"),
        "TSR_CONFIG": str(etc / "config.toml"),
        "TSR_ENV_FILE": str(etc / "tsr.env"),
        "TSR_MODELS_ENV": str(etc / "models.env"),
        "SYSTEMD_UNIT_DIR": str(units),
        "TSR_DEV_KFD": str(root / "dev" / "kfd"),
        "TSR_DEV_DRI": str(root / "dev" / "dri"),
    }
    return FakeHost(root=root, env=env)
