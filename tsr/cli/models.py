"""`tsr models`: the checkpoints a tsr server can generate with, what its backends hold,
switching them, and the LoRAs that suit a family."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from tsr.cli.common import JsonFlag, LocalFlag, RemoteOption
from tsr.cli.jobs import JobDisplay, stopped_waiting
from tsr.cli.output import human_size, print_json, print_table

if TYPE_CHECKING:
    from tsr.client import Client
    from tsr.schemas.models import CivitaiRef

models_app = typer.Typer(
    help="Checkpoints, the backends' loaded models, switching, LoRAs by family.",
    no_args_is_help=True,
)

#: backend log lines shown when a switch fails
LOG_TAIL = 15

FamilyOption = Annotated[
    str | None, typer.Option("--family", metavar="FAMILY", help="sd15, sdxl, pony, flux, ...")
]


def register(app: typer.Typer) -> None:
    """Add `models` to the root app."""
    app.add_typer(models_app, name="models")


def _client(remote: str | None, local: bool) -> Client:
    from tsr.cli.common import client_for

    return client_for(remote, local)


def _civitai(ref: CivitaiRef | None) -> str:
    return f"{ref.model_name} / {ref.version_name}" if ref else "-"


@models_app.command("list")
def list_models(
    family: FamilyOption = None,
    search: Annotated[
        str | None, typer.Option("--search", "-q", help="Text in the file or CivitAI name.")
    ] = None,
    hidden: Annotated[bool, typer.Option("--hidden", help="Include hidden files.")] = False,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """List the checkpoints on the server; `*` marks those a backend has loaded."""
    with _client(remote, local) as client:
        checkpoints = client.models.all(family=family, q=search, hidden=hidden)
    if as_json:
        print_json(checkpoints)
        return
    if not checkpoints:
        print("no checkpoints; put some in a checkpoint root and run `tsr db scan`")
        return
    print_table(
        ["", "ID", "NAME", "FAMILY", "SIZE", "CIVITAI", "LOADED ON"],
        [
            (
                "*" if c.loaded_on else "",
                c.id,
                c.name,
                c.family or "?",
                human_size(c.size),
                _civitai(c.civitai),
                ", ".join(c.loaded_on) or "",
            )
            for c in checkpoints
        ],
    )


@models_app.command("active")
def active_models(
    remote: RemoteOption = None, local: LocalFlag = False, as_json: JsonFlag = False
) -> None:
    """Show each backend's state and the checkpoint it holds (asking each sd-server)."""
    with _client(remote, local) as client:
        backends = client.models.active(refresh=True)
    if as_json:
        print_json(backends)
        return
    print_table(
        ["BACKEND", "KIND", "STATE", "FAMILY", "MODEL", "QUEUED"],
        [
            (
                b.name,
                b.kind,
                b.state,
                b.family or "-",
                b.file.name if b.file else (b.model or b.model_name or "-"),
                b.queued,
            )
            for b in backends
        ],
    )
    for b in backends:
        if b.error:
            print(f"{b.name}: {b.error}", file=sys.stderr)


@models_app.command("switch")
def switch_model(
    model: Annotated[str, typer.Argument(help="Checkpoint: DB id, name, hash or path.")],
    backend: Annotated[
        str | None,
        typer.Option("--backend", metavar="NAME", help="The backend to switch (default: first)."),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Queue the switch, print its job id and return.")
    ] = False,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Load a checkpoint on a backend (after the jobs queued there); waits until it is ready."""
    from tsr.errors import JobFailed

    ref: int | str = int(model) if model.isascii() and model.isdigit() else model
    tail: list[str] = []
    with _client(remote, local) as client:
        if no_wait:
            job = client.models.switch(ref, backend)
        else:
            display = JobDisplay("switch")
            try:
                with display:
                    job = client.models.switch_and_wait(ref, backend, display.update)
            except KeyboardInterrupt:
                stopped_waiting(client, list(display.jobs))
                raise SystemExit(130) from None  # told the user already
            if job.state == "failed":
                tail = _log_tail(client, job.backend)
    if as_json:
        print_json(job)
    elif no_wait:
        print(f"queued switch job {job.id} on {job.backend}")
    elif job.state == "done":
        print(f"backend {job.backend} now holds {job.model}")
    if job.state in ("failed", "cancelled") and not no_wait:
        if tail:
            print(f"last lines of backend {job.backend}'s log:", file=sys.stderr)
            for line in tail:
                print(f"  {line}", file=sys.stderr)
        raise JobFailed(job.error or f"switch job {job.id} was {job.state}")


def _log_tail(client: Client, backend: str | None) -> list[str]:
    for found in client.models.active():
        if found.name == backend:
            return found.log_tail[-LOG_TAIL:]
    return []


@models_app.command("loras")
def list_loras(
    family: Annotated[
        str | None,
        typer.Option(
            "--family", metavar="FAMILY", help="Check against this family (default: the active)."
        ),
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list LoRAs that do not fit (marked `x`).")
    ] = False,
    search: Annotated[
        str | None, typer.Option("--search", "-q", help="Text in the file or CivitAI name.")
    ] = None,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """List the LoRAs that suit a family's architecture, with their first trigger words."""
    with _client(remote, local) as client:
        page = client.models.loras(family=family, show_all=show_all, q=search, limit=1000)
        pages = [page]
        while pages[-1].next_offset is not None:
            pages.append(
                client.models.loras(
                    family=family,
                    show_all=show_all,
                    q=search,
                    limit=1000,
                    offset=pages[-1].next_offset,
                )
            )
    items = [item for each in pages for item in each.items]
    if as_json:
        print_json(
            page.model_copy(update={"items": items, "limit": len(items), "next_offset": None})
        )
        return
    if page.family:
        print(f"LoRAs for {page.family} ({page.architecture})", file=sys.stderr)
    if not items:
        print("no LoRAs" + (" fit it; --all lists every one" if page.family else ""))
        return
    print_table(
        ["", "ID", "NAME", "FAMILY", "CIVITAI", "TRIGGERS", "NOTE"],
        [
            (
                "x" if lora.compatible is False else "",
                lora.id,
                lora.name,
                lora.family or "?",
                lora.civitai.model_name if lora.civitai else "-",
                ", ".join(lora.triggers) or "-",
                lora.note or "",
            )
            for lora in items
        ],
    )
