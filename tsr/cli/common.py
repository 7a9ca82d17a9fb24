"""What every client verb shares: `--remote NAME`, `--local`, `--json`, and `client_for()`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from tsr.client import Client
    from tsr.config import Config

RemoteOption = Annotated[
    str | None,
    typer.Option(
        "--remote",
        "-r",
        metavar="NAME",
        help="The tsr server to use: `local` or a [remotes] name "
        "(default: $TSR_REMOTE, then default_remote).",
        show_default=False,
    ),
]
LocalFlag = Annotated[
    bool,
    typer.Option("--local", help="Use this machine's own server, whatever the default remote."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def chosen_remote(remote: str | None, local: bool) -> str | None:
    """`--local` wins over `--remote`; None leaves it to $TSR_REMOTE and `default_remote`."""
    return "local" if local else remote


def client_for(remote: str | None, local: bool = False, config: Config | None = None) -> Client:
    """The client a verb uses: `--local` > `--remote` > $TSR_REMOTE > `default_remote`.

    An unknown name raises UnknownRemote, which lists the known ones.
    """
    from tsr.client import connect
    from tsr.config import load_config

    return connect(chosen_remote(remote, local), config or load_config())
