"""tsr's [[backends]] for the compose services: added, updated or removed in the config in place.

deploy_config.py's `write-config` runs this with the tsr install's python: it edits the file with
tomlkit (comments, order and the user's other keys survive) and validates and saves it through
tsr.config.ConfigFile (atomic write). Only tables this module wrote are ever changed or removed:
they are the ones whose switch_command names the installed compose file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from tsr.config import ConfigFile
from tsr.errors import TsrError
from tsr.paths import is_within

#: marks the [[backends]] tables deploy.sh writes (and may therefore rewrite or remove)
OWNER_COMMENT = "written by rocm-docker/deploy.sh"


class BackendsProblem(Exception):
    """The config cannot be updated as asked; `str()` is the sentence to show."""


def backend_values(
    family: str, port: int, compose: Path, env_file: Path, model: str
) -> dict[str, Any]:
    """The [[backends]] entry for one compose service."""
    switch = ["docker", "compose", "-f", str(compose), "--env-file", str(env_file)]
    switch += ["up", "-d", "--force-recreate", family]
    return {
        "name": family,
        "kind": "external",
        "url": f"http://127.0.0.1:{port}",
        "families": [family],
        "switch_command": switch,
        "model": model,
    }


def _is_ours(table: Any, compose: Path) -> bool:
    command = table.get("switch_command")
    return isinstance(command, list) and str(compose) in [str(part) for part in command]


def _toml_value(value: Any) -> Any:
    if isinstance(value, list) and len(value) > 2:
        array = tomlkit.array()
        array.extend(value)
        return array.multiline(True)
    return value


def write_backends(
    config_path: Path,
    planned: list[tuple[str, int]],
    env: dict[str, str],
    compose: Path,
    env_file: Path,
    dry_run: bool,
) -> list[str]:
    """Make the config's deploy-owned [[backends]] match `planned`; keep everything else."""
    try:
        config = ConfigFile(config_path)
    except TsrError as exc:
        raise BackendsProblem(str(exc)) from None
    document = config.document
    before = tomlkit.dumps(document)
    would = "would " if dry_run else ""
    messages: list[str] = []
    backends = document.get("backends")
    if backends is None:
        backends = tomlkit.aot()
        document.append("backends", backends)
    if not isinstance(backends, AoT):
        raise BackendsProblem(
            f"{config_path}: write backends as [[backends]] tables (not an inline array) "
            "so deploy.sh can update them"
        )
    wanted = dict(planned)
    added: list[Table] = []
    for index in reversed(range(len(backends))):
        table = backends[index]
        name = str(table.get("name", ""))
        if _is_ours(table, compose) and name not in wanted:
            del backends[index]
            messages.append(f"{would}remove backend {name} (family no longer deployed)")
        elif name in wanted and not _is_ours(table, compose):
            raise BackendsProblem(
                f"{config_path} already has a backend named {name!r} that deploy.sh did not "
                "write; rename or remove it, then run deploy.sh again"
            )
    for family, port in planned:
        values = backend_values(family, port, compose, env_file, env[f"{family.upper()}_MODEL"])
        existing = next((t for t in backends if str(t.get("name", "")) == family), None)
        if existing is None:
            entry: Table = tomlkit.table()
            entry.comment(OWNER_COMMENT)
            entry.trivia.indent = _blank_line_needed(document, backends)
            for key, value in values.items():
                entry[key] = _toml_value(value)
            backends.append(entry)
            added.append(entry)
            messages.append(f"{would}add backend {family} ({values['url']})")
            continue
        changed = [key for key, value in values.items() if existing.get(key) != value]
        for key in changed:
            existing[key] = _toml_value(values[key])
        if changed:
            messages.append(f"{would}update backend {family}: {', '.join(changed)}")
        else:
            messages.append(f"backend {family} unchanged ({values['url']})")
    # a blank line between the last new table and a table of the user's that follows it
    last = added[-1] if added else None
    if (
        last is not None
        and _followed_by_more(document, backends)
        and not last.as_string().endswith("\n\n")
    ):
        last.add(tomlkit.nl())
    messages += _ensure_model_roots(document, env, would)
    if tomlkit.dumps(document) == before and config_path.exists():
        messages.append(f"{config_path} unchanged")
    elif not dry_run:
        try:
            config.save()
        except TsrError as exc:
            raise BackendsProblem(str(exc)) from None
    return messages


def _blank_line_needed(document: Any, backends: Any) -> str:
    """A new table's header gets a blank line above it unless the text before ends in one."""
    before = backends[-1].as_string() if len(backends) else tomlkit.dumps(document)
    return "" if not before or before.endswith("\n\n") else "\n"


def _followed_by_more(document: Any, backends: Any) -> bool:
    keys = [key for key, _ in document.body]
    position = next(i for i, (_, item) in enumerate(document.body) if item is backends)
    return any(key is not None for key in keys[position + 1 :])


def _ensure_model_roots(document: Any, env: dict[str, str], would: str) -> list[str]:
    """tsr refuses to switch to files outside its model roots: make sure the mounts are roots."""
    messages = []
    paths = document.get("paths")
    for kind, variable in (("checkpoints", "MODELS_DIR"), ("loras", "LORA_DIR")):
        folder = env[variable]
        configured = paths.get(kind) if paths is not None else None
        if configured is None:
            if paths is None:
                paths = tomlkit.table()
                document["paths"] = paths
            paths[kind] = [folder]
            messages.append(f"{would}set paths.{kind} = [{folder!r}]")
            continue
        roots = [configured] if isinstance(configured, str) else list(configured)
        if not any(is_within(Path(folder), Path(str(root))) for root in roots):
            messages.append(
                f"note: paths.{kind} does not include {variable}={folder}; tsr will not "
                "switch to models there"
            )
    return messages
