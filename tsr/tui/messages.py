"""Messages and shared state the app sends to every screen (connection, server events)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textual.message import Message

from tsr.schemas.server import Event, Info

ConnectionStatus = Literal["connecting", "online", "offline"]


@dataclass(frozen=True)
class Connection:
    """Which remote the app talks to and how that is going."""

    remote: str
    status: ConnectionStatus = "connecting"
    #: why it is offline, in one sentence
    reason: str = ""
    info: Info | None = None
    #: bumps on every new session, so panes know to reload
    generation: int = 0

    @property
    def online(self) -> bool:
        """True when requests can be made."""
        return self.status == "online"


@dataclass
class ServerEventReceived(Message):
    """An event arrived on the server's stream (jobs, images, scans, downloads, backends)."""

    event: Event


@dataclass
class SessionChanged(Message):
    """A new session is online (first connection, a remote switch or a retry): reload."""

    connection: Connection
