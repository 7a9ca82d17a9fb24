"""The `tsr` command: one typer app; each verb group lives in its own module and imports lazily."""

from __future__ import annotations

import importlib
import sys

import typer

from tsr import __version__
from tsr.errors import TsrError

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


def main() -> None:
    """Entry point: run the app; a TsrError becomes one line on stderr and a non-zero exit."""
    try:
        # without standalone mode click returns a typer.Exit's status instead of exiting
        status = app(standalone_mode=False)
    except TsrError as exc:
        print(f"tsr: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("tsr: aborted", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("tsr: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        # usage errors arrive here with standalone_mode=False; typer ships its own copy of
        # click, so match the class by name rather than importing either click
        if any(
            cls.__name__ == "UsageError" or cls.__name__ == "ClickException"
            for cls in type(exc).__mro__
        ):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(getattr(exc, "exit_code", 2))
        raise
    sys.exit(status if isinstance(status, int) else 0)
