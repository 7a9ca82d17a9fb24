#!/usr/bin/env python3
"""The sd-server image's entrypoint: build sd-server's command line for one family, then exec it.

Stdlib only (the runtime image has no packages beyond python3). Reads the family's flags from
model-defaults.toml and the paths from the environment:

  MODEL_FAMILY   the family baked into the image (sd15, sdxl, pony, illustrious, flux, ...)
  MODEL          the checkpoint (or, for flux, the diffusion model) to load; required
  companions     extra files the family needs, e.g. CLIP_L, T5XXL and VAE for flux
  LORA_DIR       folder of LoRAs (optional)
  PORT           port to listen on inside the container (default: the family's port)
  LISTEN_IP      address to listen on (default 0.0.0.0: the container's published port is the fence)
  SD_EXTRA_ARGS  more sd-server flags, shell-quoted, appended last so they win

`--print` shows the command instead of running it; `--health` probes GET / (the image's
HEALTHCHECK); `--check` only validates MODEL_FAMILY (the image build runs it).
Any problem is one line on stderr and exit status 2.
"""

from __future__ import annotations

import os
import shlex
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULTS_FILE = HERE / "model-defaults.toml"
SD_SERVER_BIN = "/opt/sd-server/bin/sd-server"
DEFAULT_LISTEN_IP = "0.0.0.0"
EXIT_USAGE = 2


class CommandLineError(ValueError):
    """A setting that keeps sd-server from starting; `str()` is the one line shown."""


def load_families(path: Path = DEFAULTS_FILE) -> dict[str, dict[str, Any]]:
    """Every family's table from model-defaults.toml, keyed by name."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CommandLineError(f"cannot read the family defaults {path}: {exc}") from None
    families = data.get("families")
    if not isinstance(families, dict) or not families:
        raise CommandLineError(f"{path} defines no [families.*] tables")
    return families


def family_settings(name: str, families: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The named family's table; an unknown name lists the known ones."""
    if not name:
        raise CommandLineError(f"MODEL_FAMILY is not set; known families: {', '.join(families)}")
    if name not in families:
        known = ", ".join(families)
        raise CommandLineError(f"unknown MODEL_FAMILY {name!r}; known families: {known}")
    return families[name]


def _existing_file(variable: str, value: str, what: str) -> str:
    path = Path(value)
    if not path.exists():
        raise CommandLineError(
            f"{variable}={value} does not exist in the container; is its folder mounted "
            f"(MODELS_DIR in models.env) and the path right? ({what})"
        )
    if not path.is_file():
        raise CommandLineError(f"{variable}={value} is not a file ({what})")
    return value


def _port(value: str) -> str:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise CommandLineError(f"PORT={value!r} is not a port number (1-65535)")
    return value


def build_command(
    family_name: str,
    env: Mapping[str, str],
    families: Mapping[str, dict[str, Any]],
    binary: str = SD_SERVER_BIN,
) -> list[str]:
    """sd-server's argv for `family_name` from `env`; raises CommandLineError on a bad setting."""
    family = family_settings(family_name, families)
    model = env.get("MODEL", "").strip()
    if not model:
        raise CommandLineError(
            f"MODEL is not set: give the {family_name} checkpoint's path "
            f"({family_name.upper()}_MODEL in models.env)"
        )
    command = [binary, family["model_flag"], _existing_file("MODEL", model, "the checkpoint")]
    for flag, variable in family.get("companions", {}).items():
        value = env.get(variable, "").strip()
        if not value:
            raise CommandLineError(
                f"{family_name} needs {variable} (the {flag} file) but it is not set "
                f"({family_name.upper()}_{variable} in models.env)"
            )
        command += [flag, _existing_file(variable, value, f"the {flag} file")]
    listen_ip = env.get("LISTEN_IP", "").strip() or DEFAULT_LISTEN_IP
    port = _port(env.get("PORT", "").strip() or str(family["port"]))
    command += ["--listen-ip", listen_ip, "--listen-port", port]
    lora_dir = env.get("LORA_DIR", "").strip()
    if lora_dir:
        if not Path(lora_dir).is_dir():
            raise CommandLineError(f"LORA_DIR={lora_dir} is not a folder in the container")
        command += ["--lora-model-dir", lora_dir]
    command += [str(arg) for arg in family.get("server_args", [])]
    try:
        command += shlex.split(env.get("SD_EXTRA_ARGS", ""))
    except ValueError as exc:
        raise CommandLineError(f"SD_EXTRA_ARGS cannot be split into flags: {exc}") from None
    return command


def server_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The environment sd-server runs with: empty ROCm overrides are dropped, not passed as ''."""
    cleaned = dict(env)
    for name in ("HSA_OVERRIDE_GFX_VERSION", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"):
        if not cleaned.get(name, "").strip():
            cleaned.pop(name, None)
    return cleaned


def probe_health(port: str, timeout: float = 4.0) -> bool:
    """True when sd-server answers GET / with 200 on this container's loopback."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run one mode (exec sd-server, --print, --health, --check); problems are one line."""
    args = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    mode = args[0] if args else "--exec"
    if mode not in ("--exec", "--print", "--health", "--check") or len(args) > 1:
        print("usage: sd_server_cmdline.py [--print | --health | --check]", file=sys.stderr)
        return EXIT_USAGE
    try:
        families = load_families(Path(env.get("SD_DEFAULTS", "") or DEFAULTS_FILE))
        family_name = env.get("MODEL_FAMILY", "").strip()
        family = family_settings(family_name, families)
        if mode == "--check":
            print(f"{family_name}: {family.get('label', family_name)}, port {family['port']}")
            return 0
        if mode == "--health":
            return (
                0 if probe_health(_port(env.get("PORT", "").strip() or str(family["port"]))) else 1
            )
        binary = env.get("SD_SERVER_BIN", "").strip() or SD_SERVER_BIN
        command = build_command(family_name, env, families, binary)
    except CommandLineError as exc:
        print(f"sd-server: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if mode == "--print":
        print(shlex.join(command))
        return 0
    sys.stdout.flush()
    try:
        # exec, not a child: sd-server takes this PID and gets docker's signals directly
        os.execve(binary, command, server_environment(env))
    except OSError as exc:
        print(f"sd-server: cannot run {binary}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # not reached: execve replaced this process


if __name__ == "__main__":
    sys.exit(main())
