"""`tsr dl` and `tsr downloads`: a tsr server's download queue (CivitAI, URLs, hashes)."""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import click
import typer

from tsr.cli.common import JsonFlag, LocalFlag, RemoteOption
from tsr.cli.output import human_size, print_json, print_table, warn

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from tsr.client import Client
    from tsr.schemas.downloads import DownloadOut

#: seconds between looks at a running download
POLL_SECONDS = 0.25

downloads_app = typer.Typer(help="The server's download queue.", no_args_is_help=True)


class ModelKind(StrEnum):
    """The model folders a plain URL's file can go to."""

    checkpoints = "checkpoints"
    loras = "loras"
    vae = "vae"
    embeddings = "embeddings"


class StateName(StrEnum):
    """Download states, for `tsr downloads list --state`."""

    queued = "queued"
    running = "running"
    verifying = "verifying"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


Kind = Annotated[
    ModelKind | None,
    typer.Option(
        "--kind",
        help="Where a plain URL's file goes (CivitAI downloads know their kind).",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Add `dl`, `downloads`, `search` and `get` to the root app."""
    from tsr.cli import civitai

    app.command("dl")(dl)
    app.add_typer(downloads_app, name="downloads")
    civitai.register(app)


def _client(remote: str | None, local: bool) -> Client:
    from tsr.cli.common import client_for

    return client_for(remote, local)


# ---- tsr dl -------------------------------------------------------------------------------------


def dl(
    target: Annotated[
        str | None,
        typer.Argument(
            help="A CivitAI version id, or a URL (CivitAI page or download, or any).",
            show_default=False,
        ),
    ] = None,
    file_hash: Annotated[
        str | None,
        typer.Option(
            "--hash",
            help="Fetch the file CivitAI knows by this hash (SHA256, AutoV2).",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        int | None,
        typer.Option(
            "--model", help="Fetch the newest version of this CivitAI model.", show_default=False
        ),
    ] = None,
    kind: Kind = None,
    root: Annotated[
        str | None,
        typer.Option(
            "--root",
            help="One of the configured folders for the kind (default: the first).",
            show_default=False,
        ),
    ] = None,
    sha256: Annotated[
        str | None,
        typer.Option(
            "--sha256", help="The SHA-256 a plain URL's file must have.", show_default=False
        ),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Queue it and return; follow with `tsr downloads`.")
    ] = False,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Download a model into the right folder, verified, scanned and linked; resumes.

    Give a CivitAI version id (`tsr dl 410737`), a URL, `--hash H` or `--model ID`. Running the
    same command again after an interruption resumes where it stopped.
    """
    from tsr.errors import JobFailed

    request = _request(target, file_hash, model, str(kind) if kind else None, root, sha256)
    with _client(remote, local) as client:
        out = client.downloads.start(request)
        if not no_wait and out.state not in ("done", "failed", "cancelled"):
            out = _follow(client, out, show_bar=not as_json)
    if as_json:
        print_json(out)
    if out.state == "failed":
        raise JobFailed(f"download #{out.id} failed: {out.error}")
    if out.state == "cancelled":
        raise JobFailed(f"download #{out.id} was cancelled")
    if as_json:
        return
    for warning in out.warnings:
        warn(warning)
    if out.state != "done":
        print(f"queued download #{out.id}: {_label(out)}")
        print(f"follow it with `tsr downloads show {out.id}`")
    elif out.already_present:
        print(f"already there: {out.path}")
    else:
        checked = ", SHA-256 verified" if out.sha256 else ""
        print(f"installed {out.path} ({human_size(out.bytes_done)}{checked})")


def _request(
    target: str | None,
    file_hash: str | None,
    model: int | None,
    kind: str | None,
    root: str | None,
    sha256: str | None,
) -> dict[str, object]:
    given = [v for v in (target, file_hash, model) if v not in (None, "")]
    if len(given) != 1:
        raise click.UsageError("give one of: a version id, a URL, --hash H or --model ID")
    request: dict[str, object] = {"kind": kind, "root": root, "sha256": sha256}
    if file_hash:
        request["hash"] = file_hash
    elif model is not None:
        request["model_id"] = model
    elif target is not None and target.isascii() and target.isdigit():
        request["version_id"] = int(target)
    elif target is not None and target.startswith(("http://", "https://")):
        request["url"] = target
    else:
        raise click.UsageError(f"{target!r} is neither a CivitAI version id nor an http(s) URL")
    return {key: value for key, value in request.items() if value is not None}


def _label(out: DownloadOut) -> str:
    name = out.file_name or (f"version {out.version_id}" if out.version_id else out.ref)
    what = ", ".join(x for x in (out.model_type, out.model_name) if x)
    return f"{name} ({what})" if what else name


def _short_label(out: DownloadOut) -> str:
    """The file name (or what is fetched), at most 32 characters, for the progress bar."""
    name = out.file_name or (f"version {out.version_id}" if out.version_id else "download")
    return name if len(name) <= 32 else name[:31] + "…"


def _follow(client: Client, out: DownloadOut, *, show_bar: bool) -> DownloadOut:
    """Poll the download until it finishes, with a progress bar on a terminal."""
    bar = _progress_bar() if show_bar else None
    try:
        if bar is None:
            return _poll(client, out, None, None)
        with bar:
            task = bar.add_task(_short_label(out), total=out.bytes_total)
            return _poll(client, out, bar, task)
    except KeyboardInterrupt:
        if client.endpoint.description == "embedded in this process":
            warn(f"download #{out.id} paused; run the same command again to resume it")
        else:
            warn(
                f"download #{out.id} goes on at {client.remote}; "
                f"`tsr downloads show {out.id}` follows it"
            )
        raise SystemExit(130) from None  # told the user already


def _poll(
    client: Client, out: DownloadOut, bar: Progress | None, task: TaskID | None
) -> DownloadOut:
    while out.state not in ("done", "failed", "cancelled"):
        time.sleep(POLL_SECONDS)
        out = client.downloads.get(out.id)
        if bar is not None and task is not None:
            bar.update(
                task,
                completed=out.bytes_done,
                total=out.bytes_total,
                description=_short_label(out) if out.state != "verifying" else "verifying",
            )
    return out


def _progress_bar() -> Progress | None:
    """A rich progress bar on stderr, or None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


# ---- tsr downloads ------------------------------------------------------------------------------


def _download_rows(rows: list[DownloadOut]) -> None:
    print_table(
        ["ID", "STATE", "DONE", "SIZE", "RATE", "FILE", "ERROR"],
        [
            (
                d.id,
                d.state,
                f"{100 * d.bytes_done // d.bytes_total}%" if d.bytes_total else "-",
                human_size(d.bytes_total) if d.bytes_total else "-",
                f"{human_size(d.rate)}/s" if d.rate else "-",
                d.path or _label(d),
                d.error or "",
            )
            for d in rows
        ],
    )


@downloads_app.command("list")
def list_downloads(
    state: Annotated[
        list[StateName] | None, typer.Option("--state", help="Only this state (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """List downloads, newest first."""
    with _client(remote, local) as client:
        rows = client.downloads.list(tuple(str(s) for s in state or ()), limit)
    if as_json:
        print_json(rows)
    elif rows:
        _download_rows(rows)
    else:
        print("no downloads")


@downloads_app.command("show")
def show_download(
    download_id: Annotated[int, typer.Argument(help="The download's id.", min=1)],
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Show one download: state, bytes, rate, ETA, file."""
    with _client(remote, local) as client:
        out = client.downloads.get(download_id)
    if as_json:
        print_json(out)
        return
    done = human_size(out.bytes_done)
    total = human_size(out.bytes_total) if out.bytes_total else "?"
    lines = [
        ("download", f"#{out.id} {out.state}"),
        ("what", _label(out)),
        ("bytes", f"{done} of {total}"),
        ("rate", f"{human_size(out.rate)}/s" if out.rate else None),
        ("eta", f"{out.eta:.0f} s" if out.eta is not None else None),
        ("root", out.root),
        ("file", out.path),
        ("sha256", out.sha256),
        ("error", out.error),
        ("quarantined", out.quarantined),
    ]
    for name, value in lines:
        if value:
            print(f"{name + ':':<12} {value}")
    for warning in out.warnings:
        print(f"{'warning:':<12} {warning}")


@downloads_app.command("cancel")
def cancel_download(
    download_id: Annotated[int, typer.Argument(help="The download's id.", min=1)],
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Cancel a queued, running or failed download and delete its partial file."""
    with _client(remote, local) as client:
        out = client.downloads.cancel(download_id)
    if as_json:
        print_json(out)
    else:
        print(f"download #{out.id} {out.state}")
