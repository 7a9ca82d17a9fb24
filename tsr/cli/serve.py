"""`tsr serve`: run the tsr server (the API every front end talks to) in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tsr.errors import ConfigError


class InsecureListen(ConfigError):
    """A non-loopback address without a token and without --insecure-no-auth."""

    exit_code = 2


def register(app: typer.Typer) -> None:
    """Add `serve` to the root app."""
    app.command("serve")(serve)


def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (default: [server] host, 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Port (default: [server] port, 8765; 0: any free)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Config file to use (default: $TSR_CONFIG or the user's)."),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Allow a non-loopback address without a token (anyone who reaches it can use it).",
        ),
    ] = False,
) -> None:
    """Run the tsr server until Ctrl-C; logs go to stderr and <data dir>/logs/server.log."""
    from tsr.config import load_config
    from tsr.server.listen import is_loopback

    if config is not None and not config.is_file():
        raise ConfigError(f"the config file {config} does not exist")
    settings = load_config(config)
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    if not is_loopback(host) and not settings.server.resolved_token() and not insecure_no_auth:
        raise InsecureListen(
            f"refusing to listen on {host} without a token: set one with "
            "`tsr config set server.token ...` or TSR_TOKEN, or pass --insecure-no-auth "
            "to let anyone on the network use this server"
        )
    from tsr.server.runner import serve as run_server

    run_server(settings, host, port)
