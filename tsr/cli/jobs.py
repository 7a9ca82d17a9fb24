"""`tsr jobs`: the generation and switch jobs of a tsr server: list, show, cancel; and the live
display other verbs use while they wait for jobs."""

from __future__ import annotations

import sys
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tsr.cli.common import JsonFlag, LocalFlag, RemoteOption
from tsr.cli.output import print_json, print_table, warn

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from tsr.client import Client
    from tsr.schemas.generation_api import JobImage
    from tsr.schemas.jobs import JobOut

jobs_app = typer.Typer(help="Generation and switch jobs: list, show, cancel.", no_args_is_help=True)

#: what the embedded `local` server says it is (its jobs end with the process that runs it)
EMBEDDED = "embedded in this process"


class StateChoice(StrEnum):
    """Job states `list` can filter on."""

    queued = "queued"
    switching = "switching"
    running = "running"
    saving = "saving"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


JobIdArgument = Annotated[str, typer.Argument(metavar="ID", help="The job's id.")]


def register(app: typer.Typer) -> None:
    """Add `jobs` to the root app."""
    app.add_typer(jobs_app, name="jobs")


# ---- what other verbs share ---------------------------------------------------------------------


def describe(job: JobOut) -> str:
    """A job's state in a few words: `queued, 2 ahead`, `loading the model`, `generating`..."""
    if job.state == "queued":
        ahead = job.queue_position
        return f"queued, {ahead} ahead" if ahead else "queued, next"
    if job.state == "switching":
        return "loading the model"
    if job.state == "running":
        ahead = job.queue_position
        return f"waiting in sd-server's queue, {ahead} ahead" if ahead else "generating"
    if job.state == "saving":
        return "saving the images"
    if job.state == "failed":
        return f"failed: {job.error}"
    return job.state


class JobDisplay:
    """A live line per job on stderr while a verb waits (nothing when stderr is no terminal)."""

    def __init__(self, label: str = "job") -> None:
        self.label = label
        #: every job seen, by id, in the order seen (for the Ctrl-C message)
        self.jobs: dict[str, JobOut] = {}
        self._progress: Progress | None = _live_progress()
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> JobDisplay:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, job: JobOut) -> None:
        """Show a job's latest state (the `on_update` of the client's follow helpers)."""
        first = job.id not in self.jobs
        self.jobs[job.id] = job
        if first:
            for warning in job.warnings:
                warn(warning)
        if self._progress is None:
            return
        text = f"{self.label} {job.id}: {describe(job)}"
        if first:
            self._tasks[job.id] = self._progress.add_task(text, total=1.0)
        self._progress.update(self._tasks[job.id], description=text, completed=job.progress or 0)


def _live_progress() -> Progress | None:
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def stopped_waiting(client: Client, job_ids: list[str]) -> None:
    """Say what happens to jobs a Ctrl-C stopped waiting for, and how to cancel them."""
    if not job_ids:
        return
    listed = ", ".join(job_ids)
    if client.endpoint.description == EMBEDDED:
        warn(
            f"stopped waiting; job {listed} ends with this command because the local server "
            "runs inside it; start `tsr serve` to keep jobs running after a command exits"
        )
        return
    where = "" if client.remote == "local" else f" --remote {client.remote}"
    warn(
        f"stopped waiting; job {listed} keeps running on {client.remote}; "
        f"cancel it with `tsr jobs cancel {job_ids[0]}{where}`"
    )


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _model(job: JobOut) -> str:
    if job.resolved is not None:
        return job.resolved.checkpoint
    return job.model.rsplit("/", 1)[-1] if job.model else "-"


# ---- tsr jobs -----------------------------------------------------------------------------------


def _client(remote: str | None, local: bool) -> Client:
    from tsr.cli.common import client_for

    return client_for(remote, local)


@jobs_app.command("list")
def list_jobs(
    state: Annotated[
        StateChoice | None, typer.Option("--state", help="Only jobs in this state.")
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", metavar="NAME", help="Only this backend's jobs.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="The most recent this many.")] = 50,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """List the jobs queued, running and recently finished (the server keeps them in memory)."""
    with _client(remote, local) as client:
        jobs = client.generation.jobs(
            state=state.value if state else None, backend=backend, limit=limit
        )
    if as_json:
        print_json(jobs)
        return
    if not jobs:
        print("no jobs")
        return
    print_table(
        ["ID", "KIND", "STATE", "BACKEND", "MODEL", "CREATED", "IMAGES"],
        [
            (
                job.id,
                job.kind,
                describe(job) if job.state != "failed" else "failed",
                job.backend or "-",
                _model(job),
                _when(job.created),
                len(job.image_ids) or "-",
            )
            for job in jobs
        ],
    )


@jobs_app.command("show")
def show_job(
    job_id: JobIdArgument,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Show one job: state, model, request as resolved, error, images with their paths."""
    with _client(remote, local) as client:
        job = client.generation.job(job_id)
        images = client.generation.images(job.id) if job.image_ids else []
    if as_json:
        print_json({"job": job, "images": [image_json(image) for image in images]})
        return
    rows: list[tuple[str, Any]] = [
        ("job", job.id),
        ("kind", job.kind),
        ("state", describe(job)),
        ("backend", job.backend or "-"),
        ("model", job.model or "-"),
        ("created", _when(job.created)),
        ("started", _when(job.started)),
        ("finished", _when(job.finished)),
    ]
    resolved = job.resolved
    if resolved is not None:
        loras = ", ".join(f"{lora.name}:{lora.weight:g}" for lora in resolved.loras)
        rows += [
            ("family", resolved.family),
            ("prompt", resolved.prompt),
            ("negative", resolved.negative or "-"),
            ("loras", loras or "-"),
            ("size", f"{resolved.width}x{resolved.height}"),
            ("sampling", f"{resolved.steps} steps, cfg {resolved.cfg:g}, {resolved.sampler}, "
             f"{resolved.scheduler}, clip skip {resolved.clip_skip}"),
            ("seed", resolved.seed if resolved.seed != -1 else "random"),
            ("batch", resolved.batch),
        ]  # fmt: skip
    rows += [("warning", warning) for warning in job.warnings]
    for key, value in rows:
        print(f"{key + ':':<10} {value}")
    for image in images:
        print(f"{'image:':<10} {image.id}  seed {image.seed}  {image.path}")


@jobs_app.command("cancel")
def cancel_job(
    job_id: JobIdArgument,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Cancel a queued job (a generation sd-server has started cannot be interrupted)."""
    with _client(remote, local) as client:
        job = client.generation.cancel(job_id)
    if as_json:
        print_json(job)
    elif job.state == "cancelled":
        print(f"cancelled job {job.id}")
    else:
        print(f"job {job.id} is {job.state}; it will be cancelled before it reaches sd-server")


def image_json(image: JobImage) -> dict[str, Any]:
    """An image as `--json` output lists it."""
    return {
        "id": image.id,
        "path": image.path,
        "seed": image.seed,
        "width": image.width,
        "height": image.height,
    }
