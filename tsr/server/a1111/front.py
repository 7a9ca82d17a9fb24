"""What the A1111 front remembers while the server runs: its requests in flight (for interrupt
and skip), the settings set through POST /sdapi/v1/options, and A1111's progress report.

sd-server reports no sampling steps, so progress is estimated: the current job's running time
against the time recent jobs took per step and pixel. A job already generating on sd-server
cannot be stopped (sd-server has no interrupt); interrupt and skip cancel what has not reached
it yet.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tsr.errors import Conflict, NotFound
from tsr.schemas.jobs import FINISHED_STATES, JobOut
from tsr.server.a1111.models import ProgressResponse
from tsr.server.jobs import JobQueue
from tsr.server.state import AppState

log = logging.getLogger(__name__)

#: finished jobs whose speed the ETA is estimated from
HISTORY = 10
#: where a job's progress estimate stops until the job really ends
MAX_ESTIMATE = 0.95


@dataclass
class A1111Front:
    """The A1111 front's state: requests in flight, settings, interrupt and skip flags."""

    #: `CLIP_stop_at_last_layers` from POST /sdapi/v1/options (None: the family's default)
    clip_skip: int | None = None
    interrupted: bool = False
    skipped: bool = False
    _requests: dict[int, list[str]] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    def track(self) -> int:
        """Start remembering one request's jobs (`add` each); returns the key for `untrack`."""
        key = next(self._numbers)
        self._requests[key] = []
        return key

    def add(self, key: int, job_id: str) -> None:
        """One more job of a tracked request, as soon as it is queued."""
        self._requests[key].append(job_id)

    def untrack(self, key: int) -> None:
        """Forget a request that has its answer; flags clear once none is in flight."""
        self._requests.pop(key, None)
        if not self._requests:
            self.interrupted = self.skipped = False

    def in_flight(self) -> list[str]:
        """Job ids of the requests waiting now, oldest request first."""
        return [job_id for ids in self._requests.values() for job_id in ids]

    async def interrupt(self, queue: JobQueue) -> list[str]:
        """Cancel every job of the requests in flight that sd-server does not run yet."""
        if self._requests:
            self.interrupted = True
        return [
            job_id
            for job_id in _unfinished(queue, self.in_flight())
            if await _cancel(queue, job_id)
        ]

    async def skip(self, queue: JobQueue) -> list[str]:
        """Cancel the first unfinished job of the requests in flight, if it can be stopped."""
        unfinished = _unfinished(queue, self.in_flight())
        if not unfinished:
            return []
        self.skipped = True
        return unfinished[:1] if await _cancel(queue, unfinished[0]) else []


def _unfinished(queue: JobQueue, job_ids: list[str]) -> list[str]:
    found = []
    for job_id in job_ids:
        with contextlib.suppress(NotFound):
            if queue.get(job_id).state not in FINISHED_STATES:
                found.append(job_id)
    return found


async def _cancel(queue: JobQueue, job_id: str) -> bool:
    try:
        job = await queue.cancel(job_id)
    except (Conflict, NotFound) as exc:
        # generating on sd-server (it has no interrupt), or finished meanwhile
        log.info("A1111 interrupt or skip: %s", exc)
        return False
    # cancelled now, or (taken by its worker but not sent yet) never sent to sd-server
    return job.state == "cancelled" or job.state == "queued"


def front_of(state: AppState) -> A1111Front:
    """The app's A1111 front, made on first use (it holds no resources to close)."""
    front = state.find(A1111Front)
    if front is None:
        front = A1111Front()
        state.provide(front)
    return front


# ---- progress ---------------------------------------------------------------------------------


def _units(job: JobOut) -> float | None:
    # the work a job stands for: steps x pixels x images
    resolved = job.resolved
    if resolved is None:
        return None
    return float(resolved.steps * resolved.width * resolved.height * resolved.batch)


def _seconds_per_unit(done: list[JobOut]) -> float | None:
    samples = []
    for job in reversed(done):
        units = _units(job)
        if job.kind == "generate" and job.started and job.finished and units:
            samples.append((job.finished - job.started).total_seconds() / units)
        if len(samples) >= HISTORY:
            break
    return sum(samples) / len(samples) if samples else None


def unfinished_jobs(queue: JobQueue) -> list[JobOut]:
    """The queue's jobs that have not finished, oldest first."""
    states = ("switching", "running", "saving", "queued")
    return sorted((job for state in states for job in queue.list(state)), key=lambda j: j.created)


def _state(
    job: JobOut | None, count: int, step: int, steps: int, front: A1111Front
) -> dict[str, Any]:
    return {
        "skipped": front.skipped,
        "interrupted": front.interrupted,
        "stopping_generation": False,
        "job": f"tsr {job.kind} job {job.id}" if job else "",
        "job_count": count,
        "job_timestamp": job.created.strftime("%Y%m%d%H%M%S") if job else "0",
        "job_no": 0,
        "sampling_step": step,
        "sampling_steps": steps,
    }


def progress_report(
    active: list[JobOut], done: list[JobOut], front: A1111Front, now: datetime | None = None
) -> ProgressResponse:
    """A1111's progress for the tsr job queue: the job running now (of any front) and the
    number of jobs not finished; progress and ETA are estimates (see the module docstring).

    Args:
        active: the jobs not finished, oldest first.
        done: jobs finished well, oldest first (their speed gives the estimate).
        front: the A1111 front (its interrupt and skip flags).
        now: the time to measure from.
    """
    now = now or datetime.now(UTC)
    if not active:
        return ProgressResponse(
            progress=0.0, eta_relative=0.0, state=_state(None, 0, 0, 0, front), textinfo=None
        )
    running = [job for job in active if job.state != "queued"]
    current = running[0] if running else active[0]
    rate = _seconds_per_unit(done)
    units = _units(current)
    expected = rate * units if rate is not None and units else None
    elapsed = (now - current.started).total_seconds() if current.started else 0.0
    if current.state == "saving":
        fraction = 0.99
    elif current.state == "running" and expected:
        fraction = min(elapsed / expected, MAX_ESTIMATE) if expected > 0 else 0.0
    else:
        fraction = 0.0
    remaining = max((expected or 0.0) - elapsed, 0.0) if current.state != "queued" else 0.0
    for job in active:
        if job is not current and rate is not None:
            remaining += rate * (_units(job) or 0.0)
    steps = current.resolved.steps if current.resolved else 0
    return ProgressResponse(
        progress=round(0.01 + fraction * 0.98, 4),
        eta_relative=round(remaining, 2),
        state=_state(current, len(active), int(fraction * steps), steps, front),
        current_image=None,
        textinfo=_textinfo(current, expected is not None),
    )


def _textinfo(job: JobOut, estimated: bool) -> str:
    where = f" on backend {job.backend}" if job.backend else ""
    if job.state == "queued":
        position = f" (position {job.queue_position})" if job.queue_position is not None else ""
        return f"job {job.id} is queued{where}{position}"
    if job.state == "switching":
        return f"job {job.id}: loading model {job.model}{where}"
    if job.state == "saving":
        return f"job {job.id}: saving images to the gallery"
    how = "estimated from recent jobs" if estimated else "no estimate yet"
    return f"job {job.id} is generating{where} (sd-server reports no steps; progress {how})"
