"""`tsr status`: is a tsr server reachable, and what does it run."""

from __future__ import annotations

import typer

from tsr.cli.common import JsonFlag, LocalFlag, RemoteOption
from tsr.cli.output import print_json, print_table


def register(app: typer.Typer) -> None:
    """Add `status` to the root app."""
    app.command("status")(status)


def status(
    remote: RemoteOption = None, local: LocalFlag = False, as_json: JsonFlag = False
) -> None:
    """Show whether the server answers, its version, backends and loaded models."""
    from tsr.cli.common import client_for
    from tsr.errors import RemoteError

    with client_for(remote, local) as client:
        endpoint = client.endpoint
        where = {
            "remote": endpoint.remote,
            "address": endpoint.address,
            "served_by": endpoint.description or None,
        }
        try:
            info = client.info()
        except RemoteError as exc:
            if as_json:
                print_json({**where, "reachable": False, "error": str(exc)})
            raise  # and one line on stderr, exit 1
    if as_json:
        print_json({**where, "reachable": True, **info.model_dump(mode="json")})
        return
    served = f", {endpoint.description}" if endpoint.description else ""
    print(f"remote:    {endpoint.remote}{served}")
    print(f"address:   {endpoint.address}")
    print(f"version:   tsr {info.version} ({info.mode}, pid {info.pid})")
    print(f"data dir:  {info.data_dir}")
    print(f"auth:      {'token required' if info.auth else 'none'}")
    print(f"models:    {', '.join(info.loaded_models) or 'none loaded'}")
    print("backends:")
    print_table(
        ["  NAME", "KIND", "STATE", "URL", "MODEL"],
        [(f"  {b.name}", b.kind, b.state, b.url, b.model or "-") for b in info.backends],
    )
