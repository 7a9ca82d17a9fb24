#!/usr/bin/env python3
"""deploy.sh's file work: check models.env, write tsr's [[backends]], render the systemd unit.

Subcommands (each prints what it did, or with --dry-run what it would do; a problem is one line
per problem on stderr and exit status 1):

  plan          check models.env and print "FAMILY<TAB>PORT" for each family to deploy
  set-env       set KEY=VALUE lines in models.env in place, keeping the rest of the file
  write-config  add/update/remove the [[backends]] that match the compose services in the tsr
                config, keeping the user's comments and other keys (write_backends.py)
  render-unit   fill the install's paths into tsr-server.service

`plan` and `set-env` need only the standard library; `write-config` and `render-unit` run with
the tsr install's python (they use tomlkit and tsr.config).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULTS_FILE = HERE / "model-defaults.toml"
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DeployError(Exception):
    """A problem that stops the deploy; `str()` is the line(s) shown, one problem per line."""


# ----------------------------------------------------------------------------- models.env


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (compose env-file syntax: # comments, optional quotes) into a dict."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DeployError(f"cannot read {path}: {exc.strerror}") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise DeployError(f"{path}:{number}: expected KEY=value, got {raw!r}")
        values[key] = _env_value(value.strip(), f"{path}:{number}")
    return values


def _env_value(text: str, where: str) -> str:
    """One value: 'quoted' or "quoted" (a # comment may follow), or bare up to a ' #' comment."""
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        rest = text[end + 1 :].strip() if end > 0 else ""
        if end < 0 or (rest and not rest.startswith("#")):
            raise DeployError(f"{where}: unbalanced quotes in {text!r}")
        return text[1:end]
    return re.split(r"\s+#", text, maxsplit=1)[0].rstrip()


def set_env_values(path: Path, updates: dict[str, str], dry_run: bool) -> list[str]:
    """Set each KEY=VALUE in the env file (replace the first line for KEY, or append)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    current = parse_env_file(path)
    messages = []
    for key, value in updates.items():
        if current.get(key) == value:
            continue
        messages.append(f"{'would set' if dry_run else 'set'} {key}={value} in {path}")
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for index, line in enumerate(lines):
            if pattern.match(line):
                lines[index] = f"{key}={value}"
                break
        else:
            lines.append(f"{key}={value}")
    if messages and not dry_run:
        atomic_write(path, "\n".join(lines) + "\n", path.stat().st_mode & 0o777)
    return messages


# ----------------------------------------------------------------------------- plan


def load_families(path: Path = DEFAULTS_FILE) -> dict[str, dict[str, Any]]:
    """Every family's table in model-defaults.toml, in file order."""
    families: dict[str, dict[str, Any]] = tomllib.loads(path.read_text(encoding="utf-8"))[
        "families"
    ]
    return families


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def plan(env: dict[str, str], env_path: Path, requested: Sequence[str]) -> list[tuple[str, int]]:
    """The families to deploy with their ports; every problem found is reported at once."""
    families = load_families()
    problems: list[str] = []
    folders: dict[str, Path] = {}
    for variable in ("MODELS_DIR", "LORA_DIR"):
        value = env.get(variable, "")
        if not value:
            problems.append(f"{variable} is not set in {env_path}")
        elif not Path(value).is_absolute() or not Path(value).is_dir():
            problems.append(f"{variable}={value} (in {env_path}) is not an existing folder path")
        else:
            folders[variable] = Path(value)
    unknown = [name for name in requested if name not in families]
    if unknown:
        raise DeployError(
            f"unknown family {', '.join(unknown)}; known families: {', '.join(families)}"
        )
    chosen = list(requested) or [name for name in families if env.get(f"{name.upper()}_MODEL")]
    if not chosen:
        wanted = ", ".join(f"{name.upper()}_MODEL" for name in families)
        problems.append(f"no family to deploy: set at least one of {wanted} in {env_path}")
    for name in chosen:
        variables = [f"{name.upper()}_MODEL"]
        variables += [
            f"{name.upper()}_{var}" for var in families[name].get("companions", {}).values()
        ]
        for variable in variables:
            problems += _check_model_file(variable, env.get(variable, ""), env_path, folders)
    if problems:
        raise DeployError("\n".join(problems))
    return [(name, int(families[name]["port"])) for name in chosen]


def _check_model_file(
    variable: str, value: str, env_path: Path, folders: dict[str, Path]
) -> list[str]:
    if not value:
        return [f"{variable} is not set in {env_path}"]
    path = Path(value)
    if not path.is_absolute() or not path.is_file():
        return [f"{variable}={value} (in {env_path}) is not an existing file path"]
    models_dir = folders.get("MODELS_DIR")
    if models_dir and not _inside(path, models_dir):
        return [
            f"{variable}={value} is outside MODELS_DIR={models_dir}: the container cannot see it"
        ]
    return []


# ----------------------------------------------------------------------------- systemd unit


def render_unit(template: str, settings: dict[str, str], writable: Sequence[Path]) -> str:
    """The unit text with this install's binary, flags, files and writable folders."""
    exec_start = (
        f"ExecStart={settings['tsr_bin']} serve --host {settings['host']} "
        f"--port {settings['port']} --config {settings['config']}"
    )
    replacements = {
        "ExecStart": exec_start,
        "EnvironmentFile": f"EnvironmentFile={settings['env_file']}",
        "Environment=TSR_CONFIG": f"Environment=TSR_CONFIG={settings['config']}",
        "User": f"User={settings['user']}",
        "Group": f"Group={settings['user']}",
    }
    out: list[str] = []
    rw_written = False
    for line in template.splitlines():
        key = line.split("=", 1)[0]
        if line.startswith("Environment=TSR_CONFIG="):
            key = "Environment=TSR_CONFIG"
        if key == "ReadWritePaths":
            if not rw_written:
                out += [f"ReadWritePaths=-{path}" for path in writable]
                rw_written = True
            continue
        out.append(replacements.get(key, line))
    return "\n".join(out) + "\n"


def writable_paths(config_path: Path, data_dir: Path) -> list[Path]:
    """Folders the server writes outside its state directory: gallery, database, model roots."""
    from tsr.config import load_config
    from tsr.errors import TsrError

    try:
        config = load_config(config_path)
    except TsrError as exc:
        raise DeployError(str(exc)) from None
    config.home = data_dir
    candidates = [config.gallery_dir(), config.db_path().parent, *config.all_model_roots()]
    found: dict[Path, None] = {}
    for path in candidates:
        path = path.expanduser().absolute()
        if not _inside(path, data_dir):
            found.setdefault(path, None)
    return list(found)


# ----------------------------------------------------------------------------- helpers


def atomic_write(path: Path, text: str, mode: int) -> None:
    """Write `text` through a temp file in the same folder, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise


def _families_arg(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deploy_config.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan", help="check models.env, print FAMILY<TAB>PORT lines")
    p.add_argument("--models-env", type=Path, required=True)
    p.add_argument("--families", type=_families_arg, default=[])
    p = sub.add_parser("set-env", help="set KEY=VALUE lines in models.env")
    p.add_argument("--models-env", type=Path, required=True)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    p = sub.add_parser("write-config", help="write [[backends]] into the tsr config")
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--compose", type=Path, required=True)
    p.add_argument("--models-env", type=Path, required=True)
    p.add_argument("--families", type=_families_arg, default=[])
    p.add_argument("--dry-run", action="store_true")
    p = sub.add_parser("render-unit", help="install tsr-server.service with this install's paths")
    p.add_argument("--template", type=Path, default=HERE / "tsr-server.service")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--tsr-bin", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", required=True)
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--env-file", type=Path, required=True)
    p.add_argument("--user", default="tsr")
    p.add_argument("--data-dir", type=Path, default=Path("/var/lib/tsr"))
    p.add_argument("--dry-run", action="store_true")
    return parser


def run(args: argparse.Namespace) -> list[str]:
    """Carry out one subcommand; returns the lines to print."""
    if args.command == "set-env":
        updates = {}
        for assignment in args.assignments:
            key, sep, value = assignment.partition("=")
            if not sep or not _KEY.match(key):
                raise DeployError(f"expected KEY=VALUE, got {assignment!r}")
            updates[key] = value
        return set_env_values(args.models_env, updates, args.dry_run)
    if args.command == "render-unit":
        settings = {
            "tsr_bin": args.tsr_bin,
            "host": args.host,
            "port": args.port,
            "config": str(args.config),
            "env_file": str(args.env_file),
            "user": args.user,
        }
        text = render_unit(
            args.template.read_text(encoding="utf-8"),
            settings,
            writable_paths(args.config, args.data_dir),
        )
        try:
            current = args.output.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current == text:
            return [f"{args.output} unchanged"]
        if args.dry_run:
            return [f"would write {args.output}"]
        atomic_write(args.output, text, 0o644)
        return [f"wrote {args.output}"]
    env = parse_env_file(args.models_env)
    planned = plan(env, args.models_env, args.families)
    if args.command == "plan":
        return [f"{family}\t{port}" for family, port in planned]
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from write_backends import BackendsProblem, write_backends

    try:
        return write_backends(
            args.config, planned, env, args.compose, args.models_env, args.dry_run
        )
    except BackendsProblem as exc:
        raise DeployError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: print the result lines; a DeployError is its lines on stderr, status 1."""
    args = _parser().parse_args(argv)
    try:
        lines = run(args)
    except DeployError as exc:
        for line in str(exc).splitlines():
            print(f"deploy: {line}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"deploy: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
