"""Clients of the tsr API: `Client` (sync, CLI), `AsyncClient` (TUI), `connect()` by remote name.

`connect("local")` reaches this data dir's server, starting one embedded in this process when
none runs; any other name is a `[remotes.NAME]` entry of the config.
"""

from __future__ import annotations

import os

from tsr.client.aio import AsyncClient
from tsr.client.base import Endpoint, url_endpoint
from tsr.client.sync import Client
from tsr.config import LOCAL, Config, load_config

__all__ = [
    "AsyncClient",
    "Client",
    "Endpoint",
    "connect",
    "connect_async",
    "endpoint_for",
    "resolve_remote",
]


def resolve_remote(remote: str | None, config: Config) -> str:
    """The remote to use: `remote`, else `$TSR_REMOTE`, else the config's `default_remote`."""
    return remote or os.environ.get("TSR_REMOTE") or config.default_remote


def endpoint_for(remote: str | None, config: Config) -> Endpoint:
    """Where the named remote is; an unknown name raises UnknownRemote listing the known ones."""
    name = resolve_remote(remote, config)
    settings = config.remote(name)
    if settings is None or name == LOCAL:
        from tsr.client.local import local_endpoint

        return local_endpoint(config)
    return url_endpoint(settings.url, settings.resolved_token(), remote=name)


def connect(remote: str | None = None, config: Config | None = None) -> Client:
    """A sync client for `remote` (None: `$TSR_REMOTE` or the default); returns at once."""
    return Client(endpoint_for(remote, config or load_config()))


def connect_async(remote: str | None = None, config: Config | None = None) -> AsyncClient:
    """An async client for `remote`; returns at once, the first request waits for `local`."""
    return AsyncClient(endpoint_for(remote, config or load_config()))
