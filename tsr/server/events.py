"""The in-process event bus: publish from any thread or coroutine, read per subscriber (SSE)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from tsr.schemas.server import TOPICS, Event, EventTopic

log = logging.getLogger(__name__)

#: events a subscriber may fall behind by before the oldest are dropped
DEFAULT_QUEUE_SIZE = 1000


class EventBusClosed(Exception):
    """The bus has shut down; a subscriber has read everything it will ever get."""


class Subscription:
    """One reader of the bus (e.g. one SSE stream): a bounded queue, filtered by topic."""

    def __init__(self, bus: EventBus, topics: frozenset[str] | None, maxsize: int) -> None:
        self._bus = bus
        self.topics = topics
        self.maxsize = maxsize
        self._queue: deque[Event] = deque()
        self._dropped = 0
        self._wakeup = asyncio.Event()
        self._closed = False

    def wants(self, topic: str) -> bool:
        """True when this subscriber reads events of `topic` (`bus` events always)."""
        return topic == "bus" or self.topics is None or topic in self.topics

    def _offer(self, event: Event) -> None:
        # runs on the bus's loop only, so no lock is needed
        if self._closed or not self.wants(event.topic):
            return
        if len(self._queue) >= self.maxsize:
            # a slow reader loses the oldest events, never the newest; it is told how many
            self._queue.popleft()
            if not self._dropped:
                log.warning("an event subscriber fell behind; dropping its oldest events")
            self._dropped += 1
        self._queue.append(event)
        self._wakeup.set()

    def _end(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def get(self, max_wait: float | None = None) -> Event | None:
        """The next event; None when `max_wait` seconds pass without one.

        Raises:
            EventBusClosed: the bus shut down (or this subscription was closed) and the queue is
                empty.
        """
        while True:
            if self._dropped:
                count, self._dropped = self._dropped, 0
                return self._bus.notice("dropped", {"count": count})
            if self._queue:
                return self._queue.popleft()
            if self._closed:
                raise EventBusClosed
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), max_wait)
            except TimeoutError:
                return None

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        with contextlib.suppress(EventBusClosed):
            while True:
                event = await self.get()
                if event is not None:
                    yield event

    def close(self) -> None:
        """Stop receiving events (call from the bus's loop)."""
        self._bus._subscribers.discard(self)
        self._end()


class EventBus:
    """Fans events out to subscribers on one asyncio loop; `publish` is safe from any thread."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[Subscription] = set()
        self._last_id = 0
        self._closed = False

    @property
    def last_id(self) -> int:
        """The id of the latest published event (0 before the first)."""
        return self._last_id

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the bus delivers on (None before the app starts)."""
        return self._loop

    @property
    def subscriber_count(self) -> int:
        """How many subscribers are reading now."""
        return len(self._subscribers)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind the bus to the loop that serves the app (done by the app's lifespan)."""
        self._loop = loop
        self._closed = False

    def close(self) -> None:
        """End every subscription (their streams finish); later publishes are ignored."""
        if self._closed:
            return
        self._closed = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if _running_loop() is loop:
            self._end_all()
        else:
            with contextlib.suppress(RuntimeError):  # the loop stopped meanwhile
                loop.call_soon_threadsafe(self._end_all)

    def _end_all(self) -> None:
        for subscription in list(self._subscribers):
            subscription._end()
        self._subscribers.clear()

    def subscribe(
        self, topics: Iterable[str] | None = None, maxsize: int | None = None
    ) -> Subscription:
        """A new subscription to `topics` (all when None); call on the bus's loop."""
        wanted = None if topics is None else frozenset(topics)
        unknown = sorted((wanted or frozenset()) - set(TOPICS))
        if unknown:
            raise ValueError(f"unknown event topics {unknown}; known: {', '.join(TOPICS)}")
        subscription = Subscription(self, wanted, maxsize or self.queue_size)
        if self._closed:
            subscription._end()
        else:
            self._subscribers.add(subscription)
        return subscription

    def publish(
        self, topic: str, kind: str, data: Mapping[str, Any] | BaseModel | None = None
    ) -> None:
        """Send an event to every subscriber of `topic`, from any thread or coroutine.

        Events published from one thread arrive in the order they were published.
        """
        if topic not in TOPICS:
            raise ValueError(f"unknown event topic {topic!r}; known: {', '.join(TOPICS)}")
        # converted here, in the publisher's thread, so a bad payload fails where it was made
        payload = to_jsonable_python(data) if data is not None else {}
        if not isinstance(payload, dict):
            raise TypeError(f"event data must be a mapping or a model, got {type(data).__name__}")
        loop = self._loop
        if self._closed or loop is None or loop.is_closed():
            return
        now = datetime.now(UTC)
        if _running_loop() is loop:
            self._deliver(topic, kind, payload, now)
            return
        try:
            loop.call_soon_threadsafe(self._deliver, topic, kind, payload, now)
        except RuntimeError:  # the loop closed between the check and the call
            log.debug("event %s/%s published after the bus stopped", topic, kind)

    def _deliver(self, topic: str, kind: str, data: dict[str, Any], when: datetime) -> None:
        if self._closed:
            return
        self._last_id += 1
        event = Event(
            id=self._last_id, topic=cast(EventTopic, topic), kind=kind, data=data, time=when
        )
        for subscription in list(self._subscribers):
            subscription._offer(event)

    def notice(self, kind: str, data: Mapping[str, Any] | None = None) -> Event:
        """A `bus` event about the stream itself (not published to anyone)."""
        return Event(
            id=self._last_id, topic="bus", kind=kind, data=dict(data or {}), time=datetime.now(UTC)
        )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
