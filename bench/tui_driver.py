"""A Textual driver that renders like a real terminal but counts the bytes instead of showing them.

Textual's headless driver renders nothing, so `run_test()` cannot tell what a key press costs over
ssh. This driver says it is not headless (so every frame is encoded exactly as for a terminal) and
records each write: its size and when it happened. Pin `TEXTUAL_COLOR_SYSTEM=truecolor` before
the app starts, or Textual picks 16 colours and the counts come out low.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from textual import events
from textual.driver import Driver
from textual.geometry import Size


@dataclass
class WriteLog:
    """Every write the app made: (monotonic time, bytes)."""

    writes: list[tuple[float, int]] = field(default_factory=list)

    def mark(self) -> int:
        """A position in the log to measure from."""
        return len(self.writes)

    def bytes_since(self, mark: int) -> int:
        """Bytes written after `mark`."""
        return sum(size for _, size in self.writes[mark:])

    def last_write_since(self, mark: int) -> float | None:
        """When the last write after `mark` happened (None: nothing was written)."""
        return self.writes[-1][0] if len(self.writes) > mark else None

    def first_write_since(self, mark: int) -> float | None:
        """When the first write after `mark` happened."""
        return self.writes[mark][0] if len(self.writes) > mark else None

    async def settle(self, quiet: float = 0.25, limit: float = 10.0) -> None:
        """Wait until nothing has been written for `quiet` seconds."""
        start = time.monotonic()
        seen = len(self.writes)
        last_change = time.monotonic()
        while time.monotonic() - start < limit:
            await asyncio.sleep(0.02)
            if len(self.writes) != seen:
                seen, last_change = len(self.writes), time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                return


#: the log the driver of the running app writes to (one app at a time)
LOG = WriteLog()


class ByteCountingDriver(Driver):
    """Renders every frame as escape codes for a terminal, and only counts them."""

    @property
    def is_headless(self) -> bool:
        """Not headless: frames are encoded as they would be for a terminal."""
        return False

    def write(self, data: str) -> None:
        """Count the bytes a terminal would receive."""
        LOG.writes.append((time.monotonic(), len(data.encode("utf-8"))))

    def start_application_mode(self) -> None:
        """Announce the terminal size, as a real driver does once it starts."""
        width, height = self._size or (200, 60)
        size = Size(width, height)
        event = events.Resize(size, size)
        asyncio.run_coroutine_threadsafe(self._app._post_message(event), loop=self._loop)

    def disable_input(self) -> None:
        """There is no input to stop (keys come from the pilot)."""

    def stop_application_mode(self) -> None:
        """Nothing to restore."""
