"""Dockerfile.sd-server: pinned source, the build args build-all.sh passes, a non-root runtime."""

from __future__ import annotations

import re

from tests.docker.conftest import ROCM_DOCKER

DOCKERFILE = (ROCM_DOCKER / "Dockerfile.sd-server").read_text()
INSTRUCTIONS = re.sub(r"\\\n\s*", " ", DOCKERFILE)  # continuation lines joined


def instructions(keyword: str) -> list[str]:
    return re.findall(rf"^{keyword} (.+)$", INSTRUCTIONS, flags=re.MULTILINE)


def test_the_source_revision_is_pinned_to_a_commit() -> None:
    (ref,) = [arg for arg in instructions("ARG") if arg.startswith("SD_CPP_REF=")]
    assert re.fullmatch(r"SD_CPP_REF=[0-9a-f]{40}", ref)


def test_build_args_for_family_targets_and_revision_exist() -> None:
    names = {arg.split("=", 1)[0] for arg in instructions("ARG")}
    assert {"MODEL_FAMILY", "GPU_TARGETS", "SD_CPP_REF", "ROCM_VERSION"} <= names
    assert "-DSD_HIPBLAS=ON" in INSTRUCTIONS
    assert '-DGPU_TARGETS="${GPU_TARGETS}"' in INSTRUCTIONS
    assert '-DAMDGPU_TARGETS="${GPU_TARGETS}"' in INSTRUCTIONS


def test_two_stages_rocm_dev_to_build_and_a_plain_runtime() -> None:
    stages = instructions("FROM")
    assert stages[0].startswith("rocm/dev-ubuntu-") and stages[0].endswith(" AS build")
    assert stages[-1] == "ubuntu:${UBUNTU_VERSION} AS runtime"
    assert "COPY --from=build /out/sd-server /opt/sd-server/bin/sd-server" in INSTRUCTIONS


def test_runtime_is_non_root_with_a_health_check_and_an_exec_entrypoint() -> None:
    (user,) = instructions("USER")
    assert user == "10001:10001"
    (healthcheck,) = instructions("HEALTHCHECK")
    assert healthcheck.endswith(
        'CMD ["python3", "/opt/sd-server/sd_server_cmdline.py", "--health"]'
    )
    (entrypoint,) = instructions("ENTRYPOINT")
    assert entrypoint == '["python3", "/opt/sd-server/sd_server_cmdline.py"]'  # exec form


def test_the_build_context_sends_exactly_what_the_image_copies() -> None:
    copied = {
        name
        for line in instructions("COPY")
        if not line.startswith("--from")
        for name in line.split()[:-1]
    }
    allowed = {
        line[1:]
        for line in (ROCM_DOCKER / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert copied == allowed == {"model-defaults.toml", "sd_server_cmdline.py"}
