"""build-all.sh: one image per family, named as the compose file expects, with clear failures."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

from tests.docker.conftest import ROCM_DOCKER

FAMILIES = list(tomllib.loads((ROCM_DOCKER / "model-defaults.toml").read_text())["families"])


def build_all(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROCM_DOCKER / "build-all.sh"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def build_args(command: list[str]) -> dict[str, str]:
    pairs = [command[i + 1] for i, part in enumerate(command) if part == "--build-arg"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_dry_run_prints_one_docker_build_per_family() -> None:
    result = build_all("--dry-run")
    assert result.returncode == 0, result.stderr
    commands = [shlex.split(line) for line in result.stdout.splitlines()]
    assert len(commands) == len(FAMILIES)
    for family, command in zip(FAMILIES, commands, strict=True):
        assert command[:2] == ["docker", "build"]
        assert command[command.index("--file") + 1] == str(ROCM_DOCKER / "Dockerfile.sd-server")
        assert command[command.index("--tag") + 1] == f"sd-server:rocm-{family}"
        assert build_args(command) == {"MODEL_FAMILY": family}
        assert command[-1] == str(ROCM_DOCKER)  # the context holds the entrypoint and defaults


def test_named_families_revision_and_gpu_targets_are_passed_on() -> None:
    result = build_all(
        "--dry-run", "--ref", "master-500-abc1234", "--gpu-targets", "gfx1100", "flux"
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    command = shlex.split(line)
    assert build_args(command) == {
        "SD_CPP_REF": "master-500-abc1234",
        "GPU_TARGETS": "gfx1100",
        "MODEL_FAMILY": "flux",
    }


def test_environment_gives_the_defaults_and_semicolons_survive_quoting() -> None:
    result = subprocess.run(
        ["bash", str(ROCM_DOCKER / "build-all.sh"), "--dry-run", "sd15"],
        env={"PATH": "/usr/bin:/bin", "GPU_TARGETS": "gfx1030;gfx1100", "ROCM_VERSION": "6.4.1"},
        capture_output=True,
        text=True,
        check=False,
    )
    args = build_args(shlex.split(result.stdout))
    assert args["GPU_TARGETS"] == "gfx1030;gfx1100"
    assert args["ROCM_VERSION"] == "6.4.1"


def test_unknown_family_fails_with_the_list_of_known_ones() -> None:
    result = build_all("--dry-run", "sd15", "sd3")
    assert result.returncode == 1
    assert result.stdout == ""  # nothing half-done
    assert result.stderr == (
        "build-all.sh: unknown family 'sd3'; known families: sd15 sdxl pony illustrious flux\n"
    )


def test_missing_docker_is_named_before_anything_runs(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # the tools the script uses, but no docker
    bin_dir.mkdir()
    for tool in ("dirname", "sed", "grep"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    result = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(ROCM_DOCKER / "build-all.sh"), "sd15"],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "build-all.sh: docker is not installed (or not on PATH); see README.md: prerequisites\n"
    )


def test_help_lists_the_families_and_options() -> None:
    result = build_all("--help")
    assert result.returncode == 0
    assert "Families: sd15 sdxl pony illustrious flux" in result.stdout
    for option in ("--ref", "--gpu-targets", "--dry-run"):
        assert option in result.stdout
    assert build_all("--frobnicate").stderr.startswith("build-all.sh: unknown option --frobnicate")
