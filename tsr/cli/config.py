"""`tsr config`: where the config file is, what it holds, and setting one key in place."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from tsr.cli.output import print_json

config_app = typer.Typer(help="Show and edit the config file.", no_args_is_help=True)

#: keys whose values are never printed
SECRET_KEYS = ("token", "api_key")


def register(app: typer.Typer) -> None:
    """Add the `config` group to the root app."""
    app.add_typer(config_app, name="config")


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: ("********" if key in SECRET_KEYS and item else _mask(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask(item) for item in value]
    return value


def parse_value(text: str) -> Any:
    """Read a `config set` value as TOML-ish: numbers, booleans and [lists] typed, else a string."""
    lowered = text.strip()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(lowered)
    except ValueError:
        pass
    try:
        return float(lowered)
    except ValueError:
        pass
    if lowered.startswith("["):
        try:
            return json.loads(lowered)
        except json.JSONDecodeError:
            pass
    return text


@config_app.command("path")
def config_path() -> None:
    """Print the config file's path (set TSR_CONFIG to use another)."""
    from tsr.paths import config_file

    typer.echo(str(config_file()))


@config_app.command("show")
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective config, defaults included, with secrets masked."""
    from tsr.config import load_config

    config = load_config()
    data = _mask(config.model_dump(mode="json"))
    data["effective"] = {
        "data_dir": str(config.home),
        "db_path": str(config.db_path()),
        "gallery_dir": str(config.gallery_dir()),
        "model_roots": {k: [str(p) for p in v] for k, v in config.model_roots().items()},
    }
    if as_json:
        print_json(data)
        return
    import tomlkit

    typer.echo(f"# {config.source}")
    typer.echo(tomlkit.dumps(_drop_nulls(data)).rstrip())


def _drop_nulls(value: Any) -> Any:
    # TOML has no null: leave unset keys out of the printed file
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


@config_app.command("set")
def config_set(
    key: Annotated[str, typer.Argument(help="A dotted key, e.g. server.port or civitai.api_key.")],
    value: Annotated[str, typer.Argument(help="The value (numbers, true/false, [lists] typed).")],
) -> None:
    """Set one key in the config file, keeping its comments and order."""
    from tsr.config import ConfigFile

    config_file = ConfigFile()
    config_file.set(key, parse_value(value))
    config_file.save()
    shown = "********" if key.rsplit(".", 1)[-1] in SECRET_KEYS else value
    typer.echo(f"{key} = {shown}")


@config_app.command("unset")
def config_unset(
    key: Annotated[str, typer.Argument(help="A dotted key to remove.")],
) -> None:
    """Remove one key from the config file (it falls back to its default)."""
    from tsr.config import ConfigFile

    config_file = ConfigFile()
    config_file.unset(key)
    config_file.save()
    typer.echo(f"{key} removed")
