"""`tsr remote`: list, add, remove, show and choose the default tsr server."""

from __future__ import annotations

from typing import Annotated

import typer

from tsr.cli.output import print_json, print_table

remote_app = typer.Typer(help="Manage the tsr servers this machine talks to.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `remote` group to the root app."""
    app.add_typer(remote_app, name="remote")


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _remote_rows(as_json: bool) -> None:
    from tsr.config import LOCAL, load_config

    config = load_config()
    rows = [
        {
            "name": LOCAL,
            "url": "embedded (in-process)",
            "token": None,
            "default": config.default_remote == LOCAL,
        }
    ]
    for name, remote in config.remotes.items():
        token = f"env {remote.token_env}" if remote.token_env else ("set" if remote.token else None)
        rows.append(
            {
                "name": name,
                "url": remote.url,
                "token": token,
                "default": config.default_remote == name,
            }
        )
    if as_json:
        print_json(rows)
        return
    print_table(
        ["", "NAME", "URL", "TOKEN"],
        [("*" if r["default"] else "", r["name"], r["url"], r["token"] or "-") for r in rows],
    )


@remote_app.command("list")
def list_remotes(as_json: JsonFlag = False) -> None:
    """List `local` and the configured remotes; `*` marks the default."""
    _remote_rows(as_json)


@remote_app.command("add")
def add_remote(
    name: Annotated[str, typer.Argument(help="A short name, e.g. gpu-box.")],
    url: Annotated[str, typer.Argument(help="The server's URL, e.g. http://gpu-box:8765.")],
    token: Annotated[
        str | None, typer.Option(help="The server's token (stored in the config).")
    ] = None,
    token_env: Annotated[
        str | None, typer.Option(help="Read the token from this environment variable instead.")
    ] = None,
    default: Annotated[bool, typer.Option("--default", help="Also make it the default.")] = False,
) -> None:
    """Add (or replace) a remote tsr server."""
    from tsr.config import ConfigFile

    config_file = ConfigFile()
    config_file.add_remote(name, url, token, token_env)
    if default:
        config_file.set("default_remote", name)
    config_file.save()
    typer.echo(
        f"added remote {name} ({url.rstrip('/')})" + (", now the default" if default else "")
    )


@remote_app.command("remove")
def remove_remote(name: Annotated[str, typer.Argument(help="The remote to remove.")]) -> None:
    """Remove a remote (`local` cannot be removed)."""
    from tsr.config import ConfigFile

    config_file = ConfigFile()
    config_file.remove_remote(name)
    config_file.save()
    typer.echo(f"removed remote {name}")


@remote_app.command("default")
def default_remote(
    name: Annotated[str | None, typer.Argument(help="The remote to use by default.")] = None,
) -> None:
    """Show the default remote, or set it."""
    from tsr.config import ConfigFile, load_config

    if name is None:
        typer.echo(load_config().default_remote)
        return
    load_config().remote(name)  # an unknown name raises, listing the known ones
    config_file = ConfigFile()
    config_file.set("default_remote", name)
    config_file.save()
    typer.echo(f"default remote is now {name}")


@remote_app.command("show")
def show_remote(
    name: Annotated[
        str | None, typer.Argument(help="The remote (default: the default one).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show one remote's settings (the token itself is never printed)."""
    from tsr.config import LOCAL, load_config

    config = load_config()
    name = name or config.default_remote
    remote = config.remote(name)
    info: dict[str, object]
    if remote is None:
        info = {"name": LOCAL, "url": None, "embedded": True, "data_dir": str(config.home)}
    else:
        info = {
            "name": name,
            "url": remote.url,
            "embedded": False,
            "token": "from env " + remote.token_env
            if remote.token_env
            else ("set" if remote.token else "none"),
        }
    info["default"] = config.default_remote == name
    if as_json:
        print_json(info)
        return
    for key, value in info.items():
        typer.echo(f"{key}: {value}")
