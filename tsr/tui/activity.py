"""Work the server does for us and the job line follows: generate and switch jobs, downloads,
scan and link tasks. Each is read from its event or fetched again, and told in one line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import PurePath
from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError

from tsr.schemas.downloads import FINISHED_DOWNLOAD_STATES, DownloadOut
from tsr.schemas.jobs import FINISHED_STATES, JobOut
from tsr.schemas.server import Event
from tsr.schemas.tasks import FINISHED_TASK_STATES, TaskOut
from tsr.tui.text import human_size

if TYPE_CHECKING:
    from tsr.tui.data import Session

Activity = JobOut | DownloadOut | TaskOut
Slot = Literal["job", "download", "db_task"]
#: the event topic each kind of object arrives on
EVENT_MODELS: dict[str, type[JobOut] | type[DownloadOut] | type[TaskOut]] = {
    "job": JobOut,
    "download": DownloadOut,
    "scan": TaskOut,
    "link": TaskOut,
}


def slot_of(activity: Activity) -> Slot:
    """Which of the app's three followed things `activity` is."""
    if isinstance(activity, JobOut):
        return "job"
    return "download" if isinstance(activity, DownloadOut) else "db_task"


def is_finished(activity: Activity) -> bool:
    """Whether it has ended (done, failed or cancelled)."""
    states = {"job": FINISHED_STATES, "download": FINISHED_DOWNLOAD_STATES}
    return activity.state in states.get(slot_of(activity), FINISHED_TASK_STATES)


def from_event(event: Event) -> Activity | None:
    """The job, download or task an event carries (its data is the whole object)."""
    model = EVENT_MODELS.get(event.topic)
    if model is None:
        return None
    try:
        return model.model_validate(event.data)
    except ValidationError:
        return None


async def fetch_again(session: Session, activity: Activity) -> Activity:
    """Its state now, asked of the server."""
    if isinstance(activity, JobOut):
        return await session.job(activity.id)
    if isinstance(activity, DownloadOut):
        return await session.download_status(activity.id)
    return await session.task(activity.id)


def _elapsed(started: datetime | None, now: datetime | None) -> str:
    if started is None:
        return ""
    started = started if started.tzinfo else started.replace(tzinfo=UTC)
    return f" · {max(0, round(((now or datetime.now(UTC)) - started).total_seconds()))} s"


def job_text(job: JobOut, now: datetime | None = None) -> str:
    """A job: what, where in the queue, how long it has run, how it ended."""
    what = "switch to " + PurePath(job.model or "?").stem if job.kind == "switch" else "generate"
    if job.state == "queued":
        place = f" (position {job.queue_position})" if job.queue_position else ""
        return f"⏳ {what}: queued{place}"
    if job.state in ("switching", "running", "saving"):
        progress = f" {round(job.progress * 100)}%" if job.progress else ""
        return f"⟳ {what}: {job.state}{progress}{_elapsed(job.started, now)}"
    if job.state == "done":
        images = f", {len(job.image_ids)} image(s) in the inbox" if job.image_ids else ""
        return f"✓ {what}: done{images}"
    if job.state == "failed":
        return f"✗ {what} failed: {job.error or 'no reason given'}"
    return f"○ {what}: cancelled"


def download_text(download: DownloadOut) -> str:
    """A download: what, how far, how fast, how it ended."""
    what = download.model_name or download.file_name or download.ref
    if download.version_name:
        what += f" ({download.version_name})"
    if download.state == "queued":
        return f"⏳ download {what}: queued"
    if download.state in ("running", "verifying"):
        done = human_size(download.bytes_done)
        total = f" of {human_size(download.bytes_total)}" if download.bytes_total else ""
        rate = f", {human_size(download.rate)}/s" if download.rate else ""
        eta = f", {round(download.eta)} s left" if download.eta else ""
        return f"⇣ download {what}: {download.state} {done}{total}{rate}{eta}"
    if download.state == "done":
        where = " (already there)" if download.already_present else ""
        return f"✓ download {what}: done{where}"
    if download.state == "failed":
        return f"✗ download {what} failed: {download.error or 'no reason given'}"
    return f"○ download {what}: cancelled"


def task_result(task: TaskOut) -> str:
    """What a finished scan or link found."""
    if task.scan is not None:
        scan = task.scan
        unreadable = f", {len(scan.errors)} unreadable" if scan.errors else ""
        return f"{scan.new} new, {scan.changed} changed, {scan.vanished} gone{unreadable}"
    if task.link is not None:
        return f"{len(task.link.linked)} linked, {task.link.misses} unknown to CivitAI"
    if task.cache is not None:
        return f"{task.cache.name}: {task.cache.versions} version(s)"
    return "done"


def task_text(task: TaskOut) -> str:
    """A scan or link task: how far, how it ended."""
    what = {"scan": "scan", "link": "link to CivitAI", "cache": "CivitAI refresh"}.get(
        task.kind, task.kind
    )
    if task.state == "queued":
        return f"⏳ {what}: queued"
    if task.state == "running":
        progress = task.progress
        count = f" {progress.done}/{progress.total} {progress.unit}" if progress.total else ""
        return f"⟳ {what}: {progress.phase or 'running'}{count}"
    if task.state == "done":
        return f"✓ {what}: {task_result(task)}"
    if task.state == "failed":
        return f"✗ {what} failed: {task.error or 'no reason given'}"
    return f"○ {what}: cancelled"


def activity_text(activity: Activity) -> str:
    """One line about any of the three."""
    if isinstance(activity, JobOut):
        return job_text(activity)
    if isinstance(activity, DownloadOut):
        return download_text(activity)
    return task_text(activity)
