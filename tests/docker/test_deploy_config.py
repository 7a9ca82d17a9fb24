"""deploy_config.py's pieces: reading models.env like compose does, editing it in place."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.docker.conftest import ROCM_DOCKER, load_script

deploy_config = load_script("deploy_config")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.env"
    path.write_text(text)
    return path


def test_env_file_values_quotes_and_comments(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# comment\n\n"
        "MODELS_DIR=/srv/models\n"
        "SD15_MODEL='/srv/models/my model.safetensors'  # single quotes keep spaces\n"
        'SDXL_MODEL="/srv/models/#1.safetensors"\n'
        "FLUX_EXTRA_ARGS=--vae-tiling --offload-to-cpu # comment after a bare value\n"
        "EMPTY=\n",
    )
    assert deploy_config.parse_env_file(path) == {
        "MODELS_DIR": "/srv/models",
        "SD15_MODEL": "/srv/models/my model.safetensors",
        "SDXL_MODEL": "/srv/models/#1.safetensors",
        "FLUX_EXTRA_ARGS": "--vae-tiling --offload-to-cpu",
        "EMPTY": "",
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("export MODELS_DIR=/srv", "models.env:2: expected KEY=value"),
        ("just words", "models.env:2: expected KEY=value"),
        ('SD15_MODEL="/srv/open', "models.env:2: unbalanced quotes"),
    ],
)
def test_env_file_mistakes_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, f"# first\n{line}\n")
    with pytest.raises(deploy_config.DeployError, match=message):
        deploy_config.parse_env_file(path)


def test_set_env_replaces_or_appends_and_keeps_everything_else(tmp_path: Path) -> None:
    path = write(tmp_path, "# gids below\nVIDEO_GID=\nSD15_MODEL=/m/a.safetensors  # mine\n")
    path.chmod(0o640)
    messages = deploy_config.set_env_values(path, {"VIDEO_GID": "44", "RENDER_GID": "109"}, False)
    assert messages == [f"set VIDEO_GID=44 in {path}", f"set RENDER_GID=109 in {path}"]
    assert path.read_text() == (
        "# gids below\nVIDEO_GID=44\nSD15_MODEL=/m/a.safetensors  # mine\nRENDER_GID=109\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert deploy_config.set_env_values(path, {"VIDEO_GID": "44"}, False) == []


def test_set_env_dry_run_only_says_what_it_would_do(tmp_path: Path) -> None:
    path = write(tmp_path, "VIDEO_GID=\n")
    assert deploy_config.set_env_values(path, {"VIDEO_GID": "44"}, True) == [
        f"would set VIDEO_GID=44 in {path}"
    ]
    assert path.read_text() == "VIDEO_GID=\n"


def test_render_unit_fills_in_the_install(tmp_path: Path) -> None:
    template = (ROCM_DOCKER / "tsr-server.service").read_text()
    settings = {
        "tsr_bin": "/opt/x/venv/bin/tsr",
        "host": "127.0.0.1",
        "port": "9000",
        "config": "/etc/x/config.toml",
        "env_file": "/etc/x/tsr.env",
        "user": "tsr",
    }
    unit = deploy_config.render_unit(template, settings, [Path("/srv/models"), Path("/g")])
    assert (
        "ExecStart=/opt/x/venv/bin/tsr serve --host 127.0.0.1 --port 9000 "
        "--config /etc/x/config.toml\n" in unit
    )
    assert "EnvironmentFile=/etc/x/tsr.env\n" in unit
    assert "Environment=TSR_CONFIG=/etc/x/config.toml\n" in unit
    assert "ReadWritePaths=-/srv/models\nReadWritePaths=-/g\n" in unit
    assert unit.count("ReadWritePaths=") == 2
    # everything else (the hardening) is the template's, line for line
    kept = [line for line in template.splitlines() if line.startswith(("Protect", "Restrict"))]
    assert all(line in unit.splitlines() for line in kept)
