"""docker-compose.yml: valid per the Compose Specification and in step with model-defaults.toml."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.docker.conftest import ROCM_DOCKER

SCHEMA = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
COMPOSE_TEXT = (ROCM_DOCKER / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
FAMILIES: dict[str, Any] = tomllib.loads((ROCM_DOCKER / "model-defaults.toml").read_text())[
    "families"
]
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_the_file_follows_the_compose_specification() -> None:
    validator = jsonschema.Draft7Validator(SCHEMA)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(COMPOSE)]
    assert errors == []


def test_the_schema_catches_a_broken_service() -> None:
    """The vendored schema really checks services (a typo'd key must fail)."""
    broken = {"services": {"sd15": {**SERVICES["sd15"], "restart_policy": "always"}}}
    assert not jsonschema.Draft7Validator(SCHEMA).is_valid(broken)


def test_every_family_has_exactly_one_service_with_its_image_and_profile() -> None:
    assert set(SERVICES) == set(FAMILIES)
    for family, service in SERVICES.items():
        assert service["image"] == f"sd-server:rocm-{family}"  # the tag build-all.sh gives it
        assert service["profiles"] == [family]


def test_ports_are_the_families_ports_published_on_loopback_only() -> None:
    published = []
    for family, service in SERVICES.items():
        (port,) = service["ports"]
        host_ip, host_port, container_port = port.split(":")
        assert host_ip == "127.0.0.1", f"{family} must not be reachable from the network"
        assert int(host_port) == int(container_port) == FAMILIES[family]["port"]
        published.append(host_port)
    assert len(published) == len(set(published))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_service_can_use_the_gpu(family: str) -> None:
    service = SERVICES[family]
    assert "/dev/kfd:/dev/kfd" in service["devices"]
    assert "/dev/dri:/dev/dri" in service["devices"]
    assert service["group_add"] == ["${VIDEO_GID:-44}", "${RENDER_GID:-109}"]
    assert service["ipc"] == "host"
    assert service["shm_size"]
    assert service["restart"] == "unless-stopped"
    assert service["healthcheck"]["test"][-1] == "--health"
    assert service["pull_policy"] == "never"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_models_are_mounted_read_only_at_the_same_path(family: str) -> None:
    mounts = SERVICES[family]["volumes"]
    assert mounts
    for mount in mounts:
        source, target, mode = mount.rsplit(":", 2)
        variable = re.match(r"\$\{(\w+):\?", source)
        assert variable, f"{mount}: the host folder must be a required models.env variable"
        assert target == f"${{{variable.group(1)}}}"  # same path inside as outside
        assert mode == "ro"
    assert SERVICES[family]["environment"]["LORA_DIR"].startswith("${LORA_DIR:?")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_model_comes_from_the_switch_environment_first_then_models_env(family: str) -> None:
    environment = SERVICES[family]["environment"]
    assert environment["MODEL"] == f"${{MODEL:-${{{family.upper()}_MODEL:-}}}}"
    assert environment["SD_EXTRA_ARGS"] == f"${{{family.upper()}_EXTRA_ARGS:-}}"
    for variable in FAMILIES[family]["companions"].values():
        assert environment[variable] == f"${{{family.upper()}_{variable}:-}}"


def test_models_env_example_names_every_variable_the_compose_file_reads() -> None:
    example = (ROCM_DOCKER / "models.env.example").read_text()
    declared = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE_TEXT)) - {"MODEL"}
    assert used - declared == set()
