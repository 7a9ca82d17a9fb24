"""Background tasks for long database work: one worker thread per kind, progress and events.

A scan, a link run or a cache fetch can take minutes, so an endpoint only starts one and
answers 202 with its `TaskOut`; clients follow it by `GET /api/db/tasks/{id}` or the `scan` and
`link` event topics. Each kind runs one task at a time: kinds started with `queue=False` refuse
a second one (409 naming the first), the others wait their turn.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tsr.errors import Conflict, NotFound, TsrError
from tsr.schemas.models import CacheResult, LinkResult, ScanResult
from tsr.schemas.tasks import TASK_TOPICS, TaskKind, TaskOut, TaskProgress, TaskState
from tsr.server.events import EventBus

log = logging.getLogger(__name__)

#: what a task's work returns; stored in the TaskOut field named after the task's kind
TaskOutcome = ScanResult | LinkResult | CacheResult | list[CacheResult]
#: finished tasks kept for `GET /api/db/tasks` (the oldest go first)
HISTORY = 100
#: queued tasks of one kind at most
QUEUE_LIMIT = 50
#: the least time between two progress events of one task
EVENT_SECONDS = 0.25
#: the window the rate (and so the ETA) is measured over
RATE_WINDOW_SECONDS = 5.0


class TaskCancelled(Exception):
    """Raised inside a task's work to end it as cancelled, with what it did so far if any."""

    def __init__(self, partial: TaskOutcome | None = None) -> None:
        super().__init__("cancelled")
        self.partial = partial


@dataclass
class _Task:
    """A task's state, guarded by the runner's lock."""

    out: TaskOut
    work: Callable[[TaskControl], TaskOutcome]
    stop: threading.Event = field(default_factory=threading.Event)
    #: (monotonic time, amount) samples for the rate
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))
    last_event: float = 0.0


class TaskControl:
    """What a task's work gets: the stop event, and `report()` for its progress."""

    def __init__(self, runner: TaskRunner, task: _Task) -> None:
        self._runner = runner
        self._task = task

    @property
    def stop(self) -> threading.Event:
        """Set when a cancel was asked for (or the server is shutting down)."""
        return self._task.stop

    def check(self) -> None:
        """Raise TaskCancelled when a cancel was asked for (call between steps)."""
        if self._task.stop.is_set():
            raise TaskCancelled

    def report(self, **progress: Any) -> None:
        """Update the task's progress (TaskProgress fields); rate and ETA are worked out here."""
        self._runner._progress(self._task, progress)


class TaskRunner:
    """Runs tasks in worker threads, one at a time per kind, and publishes what they do."""

    def __init__(
        self,
        events: EventBus | None = None,
        *,
        history: int = HISTORY,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self.events = events
        self.history = history
        self.queue_limit = queue_limit
        self._lock = threading.Lock()
        self._tasks: dict[int, _Task] = {}
        self._waiting: dict[str, deque[_Task]] = {}
        self._running: dict[str, _Task] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._next_id = 1
        self._closed = False

    # ---- starting and following ---------------------------------------------------------

    def submit(
        self,
        kind: TaskKind,
        params: dict[str, Any],
        work: Callable[[TaskControl], TaskOutcome],
        *,
        queue: bool = False,
    ) -> TaskOut:
        """Start `work` as a task of `kind` (or queue it behind the running one if `queue`).

        Raises:
            Conflict: a task of this kind is already running (and `queue` is False), the queue
                is full, or the server is shutting down.
        """
        with self._lock:
            if self._closed:
                raise Conflict("this tsr server is shutting down; start the task again later")
            busy = self._running.get(kind) or next(iter(self._waiting.get(kind, ())), None)
            if busy is not None and not queue:
                raise Conflict(_busy_sentence(busy.out))
            waiting = self._waiting.setdefault(kind, deque())
            if len(waiting) >= self.queue_limit:
                raise Conflict(f"{len(waiting)} {kind} tasks are waiting already; try again later")
            task = _Task(
                out=TaskOut(
                    id=self._next_id,
                    kind=kind,
                    state="queued",
                    params=params,
                    progress=TaskProgress(
                        unit="models" if kind in ("cache", "refresh") else "files"
                    ),
                    created=_now(),
                ),
                work=work,
            )
            self._next_id += 1
            self._tasks[task.out.id] = task
            waiting.append(task)
            self._prune()
            snapshot = task.out.model_copy(deep=True)
            worker = self._workers.get(kind)
            if worker is None or not worker.is_alive():
                worker = threading.Thread(
                    target=self._drain, args=(kind,), name=f"tsr-{kind}-task", daemon=True
                )
                self._workers[kind] = worker
                worker.start()
        self._publish(snapshot, "queued")
        return snapshot

    def get(self, task_id: int) -> TaskOut:
        """One task as it is now (NotFound when there is none)."""
        with self._lock:
            return self._find(task_id).out.model_copy(deep=True)

    def list(
        self,
        kinds: Iterable[str] | None = None,
        states: Iterable[str] | None = None,
        limit: int = 50,
    ) -> list[TaskOut]:
        """Tasks newest first, optionally only some kinds and states."""
        wanted_kinds = set(kinds or ())
        wanted_states = set(states or ())
        with self._lock:
            found = [
                task.out.model_copy(deep=True)
                for task in sorted(self._tasks.values(), key=lambda t: -t.out.id)
                if (not wanted_kinds or task.out.kind in wanted_kinds)
                and (not wanted_states or task.out.state in wanted_states)
            ]
        return found[:limit]

    def cancel(self, task_id: int) -> TaskOut:
        """Stop a task: a queued one at once, a running one at its next step.

        A finished task is answered as it is. A running `cache` task is one CivitAI call and
        cannot stop halfway (Conflict).
        """
        with self._lock:
            task = self._find(task_id)
            out = task.out
            if out.finished_state:
                return out.model_copy(deep=True)
            if out.state == "running" and out.kind == "cache":
                raise Conflict(
                    f"cache task #{out.id} is already fetching its model and cannot stop "
                    "halfway; it takes one request"
                )
            out.cancel_requested = True
            task.stop.set()
            dropped = out.state == "queued"
            if dropped:
                self._waiting[out.kind].remove(task)
                self._finish(task, "cancelled")
            snapshot = out.model_copy(deep=True)
        self._publish(snapshot, "finished" if dropped else "progress")
        return snapshot

    def stop(self, timeout: float = 10.0) -> None:
        """Refuse new tasks, cancel every queued and running one, wait for the workers."""
        with self._lock:
            self._closed = True
            for task in self._tasks.values():
                if not task.out.finished_state:
                    task.out.cancel_requested = True
                    task.stop.set()
            workers = list(self._workers.values())
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                log.warning("the %s did not stop within %g s", worker.name, timeout)

    # ---- the workers --------------------------------------------------------------------

    def _drain(self, kind: str) -> None:
        while True:
            with self._lock:
                waiting = self._waiting.get(kind)
                if not waiting:
                    self._running.pop(kind, None)
                    self._workers.pop(kind, None)
                    return
                task = waiting.popleft()
                if task.stop.is_set():
                    self._finish(task, "cancelled")
                    snapshot = task.out.model_copy(deep=True)
                    started = False
                else:
                    self._running[kind] = task
                    task.out.state = "running"
                    task.out.started = _now()
                    snapshot = task.out.model_copy(deep=True)
                    started = True
            self._publish(snapshot, "started" if started else "finished")
            if started:
                self._run(task)

    def _run(self, task: _Task) -> None:
        outcome: TaskOutcome | None = None
        state: TaskState = "done"
        error: str | None = None
        error_kind: str | None = None
        try:
            outcome = task.work(TaskControl(self, task))
        except TaskCancelled as stopped:
            state, outcome = "cancelled", stopped.partial
        except TsrError as exc:
            state, error, error_kind = "failed", str(exc), type(exc).__name__
        except Exception as exc:
            log.exception("%s task #%d failed", task.out.kind, task.out.id)
            state = "failed"
            error = (
                f"the {task.out.kind} task failed unexpectedly ({type(exc).__name__}); "
                "see the server log"
            )
        with self._lock:
            if outcome is not None:
                setattr(task.out, task.out.kind, outcome)
            task.out.error, task.out.error_kind = error, error_kind
            self._finish(task, state)
            self._running.pop(task.out.kind, None)
            snapshot = task.out.model_copy(deep=True)
        self._publish(snapshot, "finished")

    def _finish(self, task: _Task, state: TaskState) -> None:
        """Mark a task finished (call with the lock held)."""
        out = task.out
        out.state = state
        out.finished = _now()
        if state == "done" and out.progress.total is not None:
            out.progress.done = out.progress.total
        if state == "done" and out.progress.bytes_total is not None:
            out.progress.bytes_done = out.progress.bytes_total
        out.progress.rate = out.progress.eta = None
        out.progress.current = None

    def _progress(self, task: _Task, values: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._lock:
            progress = task.out.progress
            phase_changed = "phase" in values and values["phase"] != progress.phase
            task.out.progress = progress = progress.model_copy(update=values)
            amount = progress.bytes_done if progress.bytes_total else progress.done
            task.samples.append((now, amount))
            while len(task.samples) > 2 and now - task.samples[0][0] > RATE_WINDOW_SECONDS:
                task.samples.popleft()
            progress.rate, progress.eta = _rate_and_eta(task.samples, progress)
            due = phase_changed or now - task.last_event >= EVENT_SECONDS
            if due:
                task.last_event = now
                snapshot = task.out.model_copy(deep=True)
        if due:
            self._publish(snapshot, "progress")

    def _find(self, task_id: int) -> _Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise NotFound(
                f"there is no task #{task_id} on this server (tasks last until it stops)"
            )
        return task

    def _prune(self) -> None:
        finished = [t for t in self._tasks.values() if t.out.finished_state]
        for task in sorted(finished, key=lambda t: t.out.id)[
            : max(0, len(finished) - self.history)
        ]:
            del self._tasks[task.out.id]

    def _publish(self, out: TaskOut, kind: str) -> None:
        if self.events is not None:
            self.events.publish(TASK_TOPICS[out.kind], kind, out)


def _busy_sentence(out: TaskOut) -> str:
    done = ""
    progress = out.progress
    if out.state == "running" and progress.total:
        done = f", {progress.done} of {progress.total} {progress.unit} done"
    return (
        f"a {out.kind} is already {out.state} on this server (task #{out.id}{done}); wait for "
        f"it, or stop it with `tsr db cancel {out.id}`"
    )


def _rate_and_eta(
    samples: deque[tuple[float, int]], progress: TaskProgress
) -> tuple[float | None, float | None]:
    if len(samples) < 2:
        return None, None
    (t0, a0), (t1, a1) = samples[0], samples[-1]
    if t1 - t0 < 0.2 or a1 <= a0:
        return None, None
    rate = (a1 - a0) / (t1 - t0)
    total = progress.bytes_total if progress.bytes_total else progress.total
    eta = max(0.0, (total - a1) / rate) if total else None
    return round(rate, 1), None if eta is None else round(eta, 1)


def _now() -> datetime:
    return datetime.now(UTC)
