"""deploy.sh on a fake GPU host: what it runs and writes; a second run changes nothing."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.docker.conftest import CONFIG_WITH_COMMENTS, ROCM_DOCKER, FakeHost
from tsr.config import load_config

requires_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="a real deploy run installs system files and must run as root"
)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root (but the stub log) with its bytes and mode."""
    return {
        str(path.relative_to(root)): (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "calls.log"
    }


def compose_prefix(host: FakeHost) -> str:
    return f"docker compose -f {host.compose_file} --env-file {host.models_env}"


def test_dry_run_prints_every_action_and_changes_nothing(fake_host: FakeHost) -> None:
    before = snapshot(fake_host.root)
    result = fake_host.deploy("--dry-run")
    assert result.returncode == 0, result.stderr
    assert snapshot(fake_host.root) == before
    out = result.stdout
    for expected in (
        "would set VIDEO_GID=44",
        "would run: docker build --file",
        "--tag sd-server:rocm-sd15",
        "--tag sd-server:rocm-sdxl",
        "would run: useradd --system",
        "uv pip install",
        f"would run: env -u MODEL {compose_prefix(fake_host)} up -d sd15 sdxl",
        "would add backend sd15 (http://127.0.0.1:1234)",
        "would add backend sdxl (http://127.0.0.1:1235)",
        f"would generate a token into {fake_host.token_file} (mode 0600)",
        f"would write {fake_host.unit}",
        "would run: systemctl restart tsr-server.service",
        "would wait for http://127.0.0.1:8765/api/health",
        "would wait for http://127.0.0.1:1235/",
        "dry run complete: nothing was changed",
    ):
        assert expected in out, f"{expected!r} missing from:\n{out}"
    assert "--tag sd-server:rocm-flux" not in out  # only the families models.env names
    # only questions were asked of the host's tools, nothing was started or installed
    assert fake_host.calls() == [
        "docker compose version",
        "docker info",
        "getent group video",
        "getent group render",
        "getent group docker",
        "getent group video",
        "getent group render",
    ]


@requires_root
def test_deploy_installs_everything_and_a_second_run_changes_nothing(fake_host: FakeHost) -> None:
    result = fake_host.deploy("--skip-build")
    assert result.returncode == 0, result.stdout + result.stderr

    # the sd-servers: one compose call starts the wanted families, the others are removed
    compose = compose_prefix(fake_host)
    assert fake_host.calls("docker")[2:] == [
        f"{compose} up -d sd15 sdxl",
        f"{compose} rm --stop --force pony illustrious flux",
    ]
    assert fake_host.compose_file.read_bytes() == (ROCM_DOCKER / "docker-compose.yml").read_bytes()

    # tsr's config: the user's comments and keys stay, the backends match the compose services
    text = fake_host.config.read_text()
    for line in CONFIG_WITH_COMMENTS.splitlines():
        assert line in text
    config = load_config(fake_host.config)
    assert [backend.name for backend in config.backends] == ["cpu", "sd15", "sdxl"]
    sd15 = config.backends[1]
    assert (sd15.kind, sd15.url, sd15.families) == ("external", "http://127.0.0.1:1234", ["sd15"])
    assert sd15.switch_command == [
        *("docker", "compose", "-f", str(fake_host.compose_file)),
        *("--env-file", str(fake_host.models_env), "up", "-d", "--force-recreate", "sd15"),
    ]
    assert sd15.model == fake_host.models / "checkpoints" / "sd15.safetensors"
    assert config.backends[2].model == fake_host.models / "checkpoints" / "sdxl.safetensors"
    assert config.paths["checkpoints"] == [fake_host.models]
    assert config.paths["loras"] == [fake_host.models / "loras"]
    assert stat.S_IMODE(fake_host.config.stat().st_mode) == 0o640
    assert f"chown root:tsr {fake_host.config}" in fake_host.calls("chown")

    # the token: generated, private, never shown
    token_text = fake_host.token_file.read_text()
    token = re.fullmatch(r"TSR_TOKEN=([0-9a-f]{64})\n", token_text)
    assert token, token_text
    assert stat.S_IMODE(fake_host.token_file.stat().st_mode) == 0o600
    assert token.group(1) not in result.stdout + result.stderr
    assert f"token:       in {fake_host.token_file}" in result.stdout

    # the unit: this install's paths, enabled and (re)started, then everything answered
    unit = fake_host.unit.read_text()
    venv_tsr = Path(fake_host.env["TSR_PREFIX"]) / "venv" / "bin" / "tsr"
    assert (
        f"ExecStart={venv_tsr} serve --host 0.0.0.0 --port 8765 --config {fake_host.config}" in unit
    )
    assert f"EnvironmentFile={fake_host.token_file}" in unit
    assert f"ReadWritePaths=-{fake_host.models}\n" in unit
    assert fake_host.calls("systemctl") == [
        "systemctl daemon-reload",
        "systemctl enable tsr-server.service",
        "systemctl restart tsr-server.service",
    ]
    assert [call.split()[-1] for call in fake_host.calls("curl")] == [
        "http://127.0.0.1:8765/api/health",
        "http://127.0.0.1:1234/",
        "http://127.0.0.1:1235/",
    ]

    # models.env: the host's group ids recorded, the user's lines untouched
    models_env = fake_host.models_env.read_text()
    assert models_env.startswith("# what my GPU serves\n")
    assert models_env.endswith("VIDEO_GID=44\nRENDER_GID=109\n")

    # a second run: same files byte for byte, no duplicated backends, same token
    first = snapshot(fake_host.root)
    again = fake_host.deploy("--skip-build")
    assert again.returncode == 0, again.stdout + again.stderr
    assert snapshot(fake_host.root) == first
    assert "backend sd15 unchanged" in again.stdout
    assert "keeping the token already there" in again.stdout
    assert f"{fake_host.unit} unchanged" in again.stdout


@requires_root
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
def test_the_installed_unit_passes_systemd_analyze_verify(fake_host: FakeHost) -> None:
    assert fake_host.deploy("--skip-build").returncode == 0
    unit = fake_host.root / "check" / "tsr-server.service"
    unit.parent.mkdir()
    text = fake_host.unit.read_text()
    unit.write_text(re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", text, flags=re.MULTILINE))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@requires_root
def test_naming_fewer_families_removes_the_others_backends_but_not_the_users(
    fake_host: FakeHost,
) -> None:
    assert fake_host.deploy("--skip-build").returncode == 0
    result = fake_host.deploy("--skip-build", "--families", "sdxl")
    assert result.returncode == 0, result.stderr
    assert "remove backend sd15 (family no longer deployed)" in result.stdout
    assert [b.name for b in load_config(fake_host.config).backends] == ["cpu", "sdxl"]
    assert f"{compose_prefix(fake_host)} rm --stop --force sd15 pony illustrious flux" in (
        fake_host.calls("docker")
    )


@requires_root
def test_an_existing_token_is_kept_and_made_private(fake_host: FakeHost) -> None:
    fake_host.token_file.write_text("# mine\nTSR_TOKEN=correct-horse\n")
    fake_host.token_file.chmod(0o644)
    fake_host.models_env.chmod(0o600)  # but the service user must read this one to switch
    assert fake_host.deploy("--skip-build").returncode == 0
    assert fake_host.token_file.read_text() == "# mine\nTSR_TOKEN=correct-horse\n"
    assert stat.S_IMODE(fake_host.token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(fake_host.models_env.stat().st_mode) == 0o644


@requires_root
def test_a_backend_of_the_users_with_a_family_name_is_not_overwritten(
    fake_host: FakeHost,
) -> None:
    mine = CONFIG_WITH_COMMENTS + '\n[[backends]]\nname = "sd15"\nurl = "http://10.0.0.9:1234"\n'
    fake_host.config.write_text(mine)
    result = fake_host.deploy()
    assert result.returncode == 1
    assert "already has a backend named 'sd15' that deploy.sh did not write" in result.stderr
    assert f"fix {fake_host.config} (see above)" in result.stderr
    assert fake_host.config.read_text() == mine
    # found before the build: nothing was built, installed or started
    assert [call for call in fake_host.calls() if not call.startswith(("getent", "docker "))] == []
    assert fake_host.calls("docker") == ["docker compose version", "docker info"]


@requires_root
def test_a_service_that_does_not_answer_fails_and_says_where_to_look(fake_host: FakeHost) -> None:
    result = fake_host.deploy("--skip-build", STUB_CURL_FAIL="1", HEALTH_TIMEOUT="0")
    assert result.returncode == 1
    assert "http://127.0.0.1:8765/api/health did not answer within 0s" in result.stderr
    assert "journalctl -u tsr-server.service" in result.stderr


@requires_root
def test_a_first_run_creates_models_env_from_the_example_and_stops(fake_host: FakeHost) -> None:
    fake_host.models_env.unlink()
    result = fake_host.deploy()
    assert result.returncode == 1
    assert f"{fake_host.models_env} is new: set MODELS_DIR, LORA_DIR" in result.stderr
    assert fake_host.models_env.read_text() == (ROCM_DOCKER / "models.env.example").read_text()
    assert "docker compose -f" not in "\n".join(fake_host.calls())


def test_missing_gpu_devices_and_docker_daemon_are_named(fake_host: FakeHost) -> None:
    result = fake_host.deploy(
        "--dry-run", TSR_DEV_KFD=str(fake_host.root / "no-kfd"), STUB_DOCKER_DOWN="1"
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines == [
        "deploy.sh: cannot talk to the docker daemon: start it (systemctl start docker) "
        "and run deploy.sh as root",
        f"deploy.sh: {fake_host.root / 'no-kfd'} is missing: the amdgpu driver's compute "
        "interface is not loaded (install the AMD GPU driver, then reboot)",
    ]


def test_bad_model_settings_are_all_listed_before_anything_runs(fake_host: FakeHost) -> None:
    outside = fake_host.root / "elsewhere.safetensors"
    outside.write_bytes(b"\0")
    text = fake_host.models_env.read_text().replace(
        str(fake_host.models / "checkpoints" / "sd15.safetensors"), str(outside)
    )
    fake_host.models_env.write_text(text + f"FLUX_MODEL={fake_host.models}/flux.gguf\n")
    result = fake_host.deploy("--dry-run", "--families", "sd15,flux")
    assert result.returncode == 1
    problems = [line for line in result.stderr.splitlines() if line.startswith("deploy: ")]
    assert problems == [
        f"deploy: SD15_MODEL={outside} is outside MODELS_DIR={fake_host.models}: "
        "the container cannot see it",
        f"deploy: FLUX_MODEL={fake_host.models}/flux.gguf (in {fake_host.models_env}) "
        "is not an existing file path",
        f"deploy: FLUX_CLIP_L is not set in {fake_host.models_env}",
        f"deploy: FLUX_T5XXL is not set in {fake_host.models_env}",
        f"deploy: FLUX_VAE is not set in {fake_host.models_env}",
    ]
    assert f"fix {fake_host.models_env} (see above)" in result.stderr
    assert "would run" not in result.stdout


def test_unknown_family_and_bad_port_are_refused(fake_host: FakeHost) -> None:
    result = fake_host.deploy("--dry-run", "--families", "sd15,sd3")
    assert result.returncode == 1
    assert "deploy: unknown family sd3; known families: sd15, sdxl, pony, illustrious, flux" in (
        result.stderr
    )
    bad_port = fake_host.deploy("--dry-run", "--port", "http")
    assert bad_port.returncode == 1
    assert bad_port.stderr == "deploy.sh: --port http is not a port number (1-65535)\n"


def test_help_names_the_options_and_files(fake_host: FakeHost) -> None:
    result = fake_host.deploy("--help")
    assert result.returncode == 0
    for text in ("--families", "--dry-run", "--skip-build", "TSR_MODELS_ENV", "TSR_ENV_FILE"):
        assert text in result.stdout
    assert fake_host.calls() == []
