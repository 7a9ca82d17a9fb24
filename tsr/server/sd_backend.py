"""One sd-server backend: its config, state, process, lock and log; and what it needs from
the rest of the server (an event sink, a model lookup)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from tsr.config import BackendConfig
from tsr.families import FALLBACK_FAMILY
from tsr.schemas.jobs import BackendOut, BackendState
from tsr.sdapi import SdServerClient
from tsr.server.processes import LoggedProcess, LogRing


class EventSink(Protocol):
    """Where state changes go: the app's event bus (`tsr.server.events.EventBus`)."""

    def publish(self, topic: str, kind: str, data: Mapping[str, Any] | None = None) -> None:
        """Send an event of `kind` to every subscriber of `topic`."""


class ModelLookup(Protocol):
    """What the backends need from the models DB (sync; called in a worker thread)."""

    def family_of(self, path: Path) -> str | None:
        """The family recorded for the checkpoint file at `path`, if known."""

    def match_loaded(self, name: str | None, path: str | None) -> tuple[Path, str | None] | None:
        """The local checkpoint (path, family) that sd-server's reported model name/path is."""


class Backend:
    """One sd-server: its config, its process if managed, what it holds, its lock and its log."""

    def __init__(self, config: BackendConfig, log_dir: Path) -> None:
        self.config = config
        self.name = config.name
        self.state: BackendState = "stopped"
        #: the checkpoint it holds (a local path when known) and its family
        self.model: Path | None = None
        self.model_name: str | None = None
        self.family: str | None = None
        self.error: str | None = None
        self.restarts = 0
        self.log = LogRing(log_dir / f"sd-server-{config.name}.log")
        self.lock = asyncio.Lock()
        self.process: LoggedProcess | None = None
        self.client = SdServerClient(config.url)
        #: when the managed process died lately (restarts stop after too many)
        self.deaths: list[float] = []

    @property
    def url(self) -> str:
        """The sd-server's base URL."""
        return self.config.url

    def is_managed(self) -> bool:
        """True when tsr starts and stops this sd-server itself."""
        return self.config.kind == "managed"

    def can_switch(self) -> bool:
        """True when tsr can make this backend load another checkpoint."""
        return self.is_managed() or self.config.switch_command is not None

    def serves_family(self, family: str | None) -> bool:
        """True when the backend's `families` allow `family` (an empty list allows any)."""
        return not self.config.families or (family or FALLBACK_FAMILY) in self.config.families

    def out(self, queued: int = 0) -> BackendOut:
        """The backend as clients see it."""
        return BackendOut(
            name=self.name,
            kind=self.config.kind,
            url=self.url,
            state=self.state,
            model=str(self.model) if self.model else None,
            model_name=self.model_name,
            family=self.family,
            families=list(self.config.families),
            error=self.error,
            pid=self.process.pid if self.process and self.process.returncode is None else None,
            restarts=self.restarts,
            queued=queued,
            log_tail=self.log.tail(40),
        )
