"""`tsr images`: a tsr server's gallery: list, show, review (keep, trash, undo, purge), import."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer

from tsr.cli.common import JsonFlag, LocalFlag, RemoteOption
from tsr.cli.output import human_size, print_json, print_table, warn
from tsr.errors import TsrError

if TYPE_CHECKING:
    from tsr.client import Client
    from tsr.schemas.images import ActionResult, ImageOut

images_app = typer.Typer(
    help="The gallery: list, show, open, keep, trash, restore, undo, purge, download, import.",
    no_args_is_help=True,
)

#: prompt characters shown in a `list` row
PROMPT_EXCERPT = 40
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]


class ConfirmationNeeded(TsrError):
    """A purge without --yes and without a terminal to ask on."""

    exit_code = 2


class StateChoice(StrEnum):
    """Which images `list` shows (`active` = inbox and kept)."""

    active = "active"
    inbox = "inbox"
    kept = "kept"
    trashed = "trashed"
    all = "all"


Ids = Annotated[
    list[int], typer.Argument(metavar="ID", help="Image ids (as `tsr images list` shows).")
]


def register(app: typer.Typer) -> None:
    """Add `images` and its verbs to the root app (in the order `tsr images --help` lists)."""
    from tsr.cli.images_files import download_images, open_image

    verbs: dict[str, Callable[..., None]] = {
        "list": list_images,
        "show": show_image,
        "open": open_image,
        "keep": keep_images,
        "trash": trash_images,
        "restore": restore_images,
        "undo": undo,
        "purge": purge,
        "download": download_images,
        "import": import_images,
    }
    for name, verb in verbs.items():
        images_app.command(name)(verb)
    app.add_typer(images_app, name="images")


def _client(remote: str | None, local: bool) -> Client:
    from tsr.cli.common import client_for

    return client_for(remote, local)


def _excerpt(text: str, width: int = PROMPT_EXCERPT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "-"


def _count(number: int) -> str:
    return f"{number} image" if number == 1 else f"{number} images"


def _id_list(ids: list[int]) -> str:
    shown = ", ".join(str(image_id) for image_id in ids[:10])
    return shown + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")


# ---- list, show ---------------------------------------------------------------------------------


def list_images(
    state: Annotated[StateChoice, typer.Option(help="Which images.")] = StateChoice.active,
    favourite: Annotated[bool, typer.Option("--favourite", help="Only favourites.")] = False,
    model: Annotated[
        str | None, typer.Option(help="Checkpoint file stem, or its hash (10-64 hex).")
    ] = None,
    lora: Annotated[str | None, typer.Option(help="Made with this LoRA (file stem).")] = None,
    prompt: Annotated[str | None, typer.Option(help="Text the prompt contains.")] = None,
    since: Annotated[
        datetime | None, typer.Option(formats=DATE_FORMATS, help="Made on or after (UTC).")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(formats=DATE_FORMATS, help="Made before (UTC).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Images per page.")] = 50,
    cursor: Annotated[
        str | None, typer.Option(help="Where the next page starts (printed after a page).")
    ] = None,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """List images, newest first, a page at a time."""
    from tsr.schemas.images import ImageFilters

    filters = ImageFilters(
        state=state.value,
        favourite=True if favourite else None,
        checkpoint=model,
        lora=lora,
        prompt=prompt,
        since=since,
        until=until,
    )
    with _client(remote, local) as client:
        page = client.images.list(filters, cursor=cursor, limit=limit)
    if as_json:
        print_json(page)
        return
    if not page.items:
        print("no images")
        return
    print_table(
        ["ID", "CREATED", "STATE", "FAV", "MODEL", "SIZE", "SEED", "PROMPT"],
        [
            (
                image.id,
                _when(image.created),
                image.state,
                "*" if image.favourite else "",
                image.checkpoint or "-",
                f"{image.width}x{image.height}",
                "-" if image.seed is None else image.seed,
                _excerpt(image.prompt),
            )
            for image in page.items
        ],
    )
    if page.next_cursor:
        print(f"more: add --cursor {page.next_cursor}")


def show_image(
    image_id: Annotated[int, typer.Argument(metavar="ID", help="The image's id.")],
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Show one image's metadata and parameters."""
    with _client(remote, local) as client:
        image = client.images.get(image_id)
    if as_json:
        print_json(image)
        return
    for name, value in _fields(image):
        if value not in (None, ""):
            print(f"{name + ':':<12} {value}")
    if image.parameters:
        print()
        print("parameters:")
        print(image.parameters)


def _fields(image: ImageOut) -> list[tuple[str, object]]:
    checkpoint = image.checkpoint
    if checkpoint and image.checkpoint_hash:
        checkpoint = f"{checkpoint} [{image.checkpoint_hash}]"
    loras = ", ".join(
        f"{lora.name}:{lora.weight:g}" if lora.weight is not None else lora.name
        for lora in image.loras
    )
    return [
        ("id", image.id),
        ("file", image.file),
        ("created", _when(image.created)),
        ("state", image.state),
        ("trashed", _when(image.trashed_at) if image.trashed_at else None),
        ("favourite", "yes" if image.favourite else None),
        ("rating", image.rating or None),
        ("tags", ", ".join(image.tags)),
        ("notes", image.notes),
        ("size", f"{image.width}x{image.height}, {human_size(image.file_size)}"),
        ("sha256", image.sha256),
        ("checkpoint", checkpoint),
        ("loras", loras),
        ("prompt", image.prompt),
        ("negative", image.negative),
        ("steps", image.steps),
        ("cfg", image.cfg),
        ("sampler", image.sampler),
        ("scheduler", image.scheduler),
        ("seed", image.seed),
        ("clip skip", image.clip_skip),
        ("backend", image.backend),
        ("job", image.job),
        ("source", image.source),
    ]


# ---- keep, trash, restore, undo -----------------------------------------------------------------


def _report_action(result: ActionResult, asked: int, verb: str, already: str) -> None:
    if result.ids:
        print(f"{verb} {_count(len(result.ids))}: {_id_list(result.ids)}")
    if asked > len(result.ids):
        print(f"{_count(asked - len(result.ids))} already {already}")


def keep_images(
    ids: Ids, remote: RemoteOption = None, local: LocalFlag = False, as_json: JsonFlag = False
) -> None:
    """Mark images as kept (out of the trash too)."""
    with _client(remote, local) as client:
        result = client.images.keep(ids)
    if as_json:
        print_json(result)
    else:
        _report_action(result, len(set(ids)), "kept", "kept")


def trash_images(
    ids: Ids, remote: RemoteOption = None, local: LocalFlag = False, as_json: JsonFlag = False
) -> None:
    """Move images to the trash (undo or restore brings them back)."""
    with _client(remote, local) as client:
        result = client.images.trash(ids)
    if as_json:
        print_json(result)
    else:
        _report_action(result, len(set(ids)), "trashed", "in the trash")


def restore_images(
    ids: Ids, remote: RemoteOption = None, local: LocalFlag = False, as_json: JsonFlag = False
) -> None:
    """Take images out of the trash, back to the state they had."""
    with _client(remote, local) as client:
        result = client.images.restore(ids)
    if as_json:
        print_json(result)
    else:
        _report_action(result, len(set(ids)), "restored", "out of the trash")


def undo(
    times: Annotated[int, typer.Option(min=1, max=100, help="How many actions to undo.")] = 1,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Undo the last keep, trash, restore or edit.

    Each undo goes one action further back (`--times N` for several).
    """
    results = []
    with _client(remote, local) as client:
        for _ in range(times):
            result = client.images.undo()
            if result.action is None:
                break
            results.append(result)
            if not result.remaining:
                break
    if as_json:
        print_json(results)
        return
    if not results:
        print("nothing to undo")
    for result in results:
        print(f"undid {result.action} of {_count(len(result.ids))}: {_id_list(result.ids)}")
    if results:
        print(f"{results[-1].remaining} more can be undone")


# ---- purge, import ------------------------------------------------------------------------------


def purge(
    ids: Annotated[
        list[int] | None,
        typer.Argument(metavar="ID", help="Trashed images to delete (others are left)."),
    ] = None,
    older_than: Annotated[
        float | None,
        typer.Option("--older-than", min=0, metavar="DAYS", help="Those trashed DAYS ago or more."),
    ] = None,
    all_trash: Annotated[bool, typer.Option("--all", help="Everything in the trash.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete trashed images for good.

    This cannot be undone: it asks once unless --yes, and refuses without a terminal to ask
    on. Images outside the trash are never deleted, even when named.
    """
    if not ids and older_than is None and not all_trash:
        raise click.UsageError("say what to purge: image ids, --older-than DAYS, or --all")
    if ids and all_trash:
        raise click.UsageError("give image ids or --all, not both")
    with _client(remote, local) as client:
        if not yes:
            _confirm(client, ids, older_than)
        result = client.images.purge(ids or None, older_than_days=older_than, all_trash=all_trash)
    if as_json:
        print_json(result)
    elif result.ids:
        print(f"purged {_count(len(result.ids))}, freed {human_size(result.bytes_freed)}")
    else:
        print("nothing to purge")


def _confirm(client: Client, ids: list[int] | None, older_than: float | None) -> None:
    """Ask once on the terminal; refuse without one."""
    if not sys.stdin.isatty():
        raise ConfirmationNeeded(
            "purge deletes images for good and there is no terminal to ask on; "
            "add --yes to purge anyway"
        )
    if ids:
        unique = list(dict.fromkeys(ids))
        named = f"image {unique[0]}" if len(unique) == 1 else f"images {_id_list(unique)}"
        question = f"Delete {named} for good (only if in the trash)?"
    else:
        stats = client.images.stats()
        trash = f"{_count(stats.trashed)}, {human_size(stats.trash_bytes)}"
        if older_than is None:
            question = f"Delete everything in the trash ({trash}) for good?"
        else:
            question = (
                f"Delete the images trashed {older_than:g} or more days ago for good "
                f"(the trash holds {trash})?"
            )
    if not typer.confirm(question, default=False):
        print("nothing purged", file=sys.stderr)
        raise typer.Exit(1)


def import_images(
    folder: Annotated[
        str,
        typer.Argument(
            metavar="FOLDER",
            help="A folder ON THE SERVER's machine, inside its data dir or a model root "
            "(for `local`, a relative path is taken from here).",
        ),
    ],
    move: Annotated[
        bool, typer.Option("--move", help="Delete each file once it is in the gallery.")
    ] = False,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Import PNGs from a folder on the server.

    The folder is read by the server, not uploaded from here: with a remote, give a path on
    that machine. Files the gallery already holds are skipped.
    """
    with _client(remote, local) as client:
        where = folder
        if client.remote == "local" and not Path(folder).expanduser().is_absolute():
            where = str(Path(folder).absolute())
        report = client.images.import_folder(where, move=move)
    if as_json:
        print_json(report)
        return
    print(f"imported {_count(len(report.imported))}")
    if report.duplicates:
        print(f"skipped {len(report.duplicates)} already in the gallery")
    if report.ignored:
        print(f"ignored {report.ignored} files that are not PNGs")
    for problem in report.failed:
        warn(f"{problem.file}: {problem.reason}")
    if report.failed:
        raise typer.Exit(1)
