"""The image entrypoint: sd-server's flags per family, companions, clear one-line errors, exec."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker.conftest import ROCM_DOCKER, load_script

cmdline = load_script("sd_server_cmdline")
DEFAULTS = tomllib.loads((ROCM_DOCKER / "model-defaults.toml").read_text())["families"]
SCRIPT = ROCM_DOCKER / "sd_server_cmdline.py"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "model.safetensors"
    path.parent.mkdir()
    path.write_bytes(b"\0" * 8)
    return path


def companions(tmp_path: Path, family: str) -> dict[str, str]:
    """Real files for every companion the family needs, as the environment names them."""
    env = {}
    for variable in DEFAULTS[family]["companions"].values():
        path = tmp_path / f"{variable.lower()}.safetensors"
        path.write_bytes(b"\0")
        env[variable] = str(path)
    return env


def run_script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("family", list(DEFAULTS))
def test_every_family_gets_its_model_flag_port_and_defaults(
    family: str, model: Path, tmp_path: Path
) -> None:
    settings = DEFAULTS[family]
    env = {"MODEL": str(model), **companions(tmp_path, family)}
    command = cmdline.build_command(family, env, DEFAULTS, binary="/opt/sd-server/bin/sd-server")
    assert command[:3] == ["/opt/sd-server/bin/sd-server", settings["model_flag"], str(model)]
    joined = " ".join(command)
    assert f"--listen-ip 0.0.0.0 --listen-port {settings['port']}" in joined
    assert command[-len(settings["server_args"]) :] == settings["server_args"]
    for flag, variable in settings["companions"].items():
        assert command[command.index(flag) + 1] == env[variable]
    assert "--lora-model-dir" not in command


def test_flux_loads_a_diffusion_model_with_its_three_companions(
    model: Path, tmp_path: Path
) -> None:
    env = {"MODEL": str(model), **companions(tmp_path, "flux")}
    command = cmdline.build_command("flux", env, DEFAULTS)
    assert command[1:3] == ["--diffusion-model", str(model)]
    assert {"--clip_l", "--t5xxl", "--vae"} <= set(command)
    assert "-m" not in command
    assert command[command.index("--guidance") + 1] == "3.5"


def test_lora_dir_port_and_extra_args_come_from_the_environment(
    model: Path, tmp_path: Path
) -> None:
    loras = tmp_path / "loras"
    loras.mkdir()
    env = {
        "MODEL": str(model),
        "LORA_DIR": str(loras),
        "PORT": "9000",
        "SD_EXTRA_ARGS": "--vae-tiling --steps 30 --embd-dir '/models/my embeddings'",
    }
    command = cmdline.build_command("sdxl", env, DEFAULTS)
    assert command[command.index("--lora-model-dir") + 1] == str(loras)
    assert command[command.index("--listen-port") + 1] == "9000"
    # extra args come last, so they win over the family's --steps 28
    assert command[-5:] == ["--vae-tiling", "--steps", "30", "--embd-dir", "/models/my embeddings"]


@pytest.mark.parametrize(
    ("family", "env", "message"),
    [
        (
            "sdxl",
            {},
            "MODEL is not set: give the sdxl checkpoint's path (SDXL_MODEL in models.env)",
        ),
        (
            "sd15",
            {"MODEL": "/nowhere/x.safetensors"},
            "MODEL=/nowhere/x.safetensors does not exist",
        ),
        ("sd21", {"MODEL": "/x"}, "unknown MODEL_FAMILY 'sd21'; known families: sd15, sdxl"),
        ("", {"MODEL": "/x"}, "MODEL_FAMILY is not set"),
    ],
)
def test_bad_settings_are_one_clear_sentence(
    family: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(cmdline.CommandLineError) as error:
        cmdline.build_command(family, env, DEFAULTS)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_flux_without_a_companion_names_the_missing_variable(model: Path, tmp_path: Path) -> None:
    env = {"MODEL": str(model), **companions(tmp_path, "flux")}
    del env["T5XXL"]
    with pytest.raises(cmdline.CommandLineError, match=r"flux needs T5XXL \(the --t5xxl file\)"):
        cmdline.build_command("flux", env, DEFAULTS)
    env["T5XXL"] = str(tmp_path / "missing-t5.safetensors")
    with pytest.raises(cmdline.CommandLineError, match=r"T5XXL=.*missing-t5\.safetensors does not"):
        cmdline.build_command("flux", env, DEFAULTS)


def test_a_folder_as_model_a_bad_port_and_bad_quoting_are_refused(
    model: Path, tmp_path: Path
) -> None:
    with pytest.raises(cmdline.CommandLineError, match="is not a file"):
        cmdline.build_command("sd15", {"MODEL": str(tmp_path)}, DEFAULTS)
    with pytest.raises(cmdline.CommandLineError, match="PORT='http' is not a port number"):
        cmdline.build_command("sd15", {"MODEL": str(model), "PORT": "http"}, DEFAULTS)
    with pytest.raises(cmdline.CommandLineError, match="SD_EXTRA_ARGS cannot be split"):
        cmdline.build_command("sd15", {"MODEL": str(model), "SD_EXTRA_ARGS": "--x 'open"}, DEFAULTS)
    with pytest.raises(cmdline.CommandLineError, match="LORA_DIR=/no/loras is not a folder"):
        cmdline.build_command("sd15", {"MODEL": str(model), "LORA_DIR": "/no/loras"}, DEFAULTS)


def test_the_script_fails_with_one_line_and_status_2(tmp_path: Path) -> None:
    result = run_script(env={"MODEL_FAMILY": "flux", "MODEL": str(tmp_path / "gone.gguf")})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("sd-server: MODEL=")
    assert "Traceback" not in result.stderr


def test_check_mode_validates_the_family_for_the_image_build() -> None:
    ok = run_script("--check", env={"MODEL_FAMILY": "pony"})
    assert (ok.returncode, ok.stdout.strip()) == (0, "pony: Pony, port 1236")
    bad = run_script("--check", env={"MODEL_FAMILY": "ponyxl"})
    assert bad.returncode == 2
    assert "known families: sd15, sdxl, pony, illustrious, flux" in bad.stderr


def test_exec_replaces_the_entrypoint_with_sd_server(model: Path, tmp_path: Path) -> None:
    """The real exec path: a stand-in sd-server prints its argv and the ROCm variables it got."""
    fake = tmp_path / "sd-server"
    fake.write_text(
        '#!/bin/sh\necho "$0 $*"\necho "pid=$$"\n'
        'echo "hsa=${HSA_OVERRIDE_GFX_VERSION-unset} hip=${HIP_VISIBLE_DEVICES-unset}"\n'
    )
    fake.chmod(0o755)
    env = {
        "MODEL_FAMILY": "sd15",
        "MODEL": str(model),
        "SD_SERVER_BIN": str(fake),
        "HSA_OVERRIDE_GFX_VERSION": "",
        "HIP_VISIBLE_DEVICES": "1",
    }
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT)], env=env, stdout=subprocess.PIPE, text=True
    )
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    argv, pid, rocm = out.splitlines()
    assert argv.startswith(f"{fake} -m {model} --listen-ip 0.0.0.0 --listen-port 1234")
    assert pid == f"pid={process.pid}"  # same process: exec, not a child
    assert rocm == "hsa=unset hip=1"  # an empty override is dropped, not passed as ''


def test_print_mode_shows_the_command_quoted(model: Path) -> None:
    result = run_script("--print", env={"MODEL_FAMILY": "sd15", "MODEL": str(model)})
    assert result.returncode == 0
    assert result.stdout.startswith(f"/opt/sd-server/bin/sd-server -m {model} --listen-ip")


class _Root(http.server.BaseHTTPRequestHandler):
    """sd-server's readiness answer: GET / is 200 with a page."""

    def do_GET(self) -> None:
        status = 200 if self.path == "/" else 404
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"stable-diffusion.cpp server" if status == 200 else b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def listening_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_health_mode_probes_get_root(listening_port: int) -> None:
    up = run_script("--health", env={"MODEL_FAMILY": "sd15", "PORT": str(listening_port)})
    assert up.returncode == 0
    down = run_script("--health", env={"MODEL_FAMILY": "sd15", "PORT": str(closed_port())})
    assert down.returncode == 1
