"""The root typer app: each verb group lives in its own module, whose heavy imports are lazy."""

from __future__ import annotations

import importlib

import typer

from tsr import __version__

#: modules under tsr.cli that each define `register(app)`; order is the order of `tsr --help`
COMMAND_MODULES = (
    "tui",
    "info",
    "db",
    "remote",
    "config",
    "serve",
    "status",
    "dl",
    "images",
    "generate",
    "models",
    "jobs",
)

app = typer.Typer(
    name="tsr",
    help="Run Stable Diffusion (sd-server) on your own GPU box from a terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tsr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Run Stable Diffusion (sd-server) on your own GPU box from a terminal."""


for _module in COMMAND_MODULES:
    importlib.import_module(f"tsr.cli.{_module}").register(app)
