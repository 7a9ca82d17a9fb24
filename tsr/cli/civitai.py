"""`tsr search` and `tsr get`: CivitAI's models through a tsr server (which holds the key)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from tsr.cli.common import JsonFlag, LocalFlag, RemoteOption, client_for
from tsr.cli.output import human_size, print_json, print_table

if TYPE_CHECKING:
    from tsr.civitai import CivitaiModel, CivitaiVersion

Types = Annotated[
    list[str] | None,
    typer.Option("--type", "-t", help="Model type: Checkpoint, LORA, VAE, ... (repeatable)."),
]
BaseModels = Annotated[
    list[str] | None,
    typer.Option(
        "--base-model", "-b", help="Base model: SD 1.5, SDXL 1.0, Pony, ... (repeatable)."
    ),
]


def register(app: typer.Typer) -> None:
    """Add `search` and `get` to the root app (called by `tsr.cli.dl`)."""
    app.command("search")(search)
    app.command("get")(get)


def search(
    query: Annotated[str | None, typer.Argument(help="Words in the model's name.")] = None,
    types: Types = None,
    base_models: BaseModels = None,
    sort: Annotated[
        str | None, typer.Option(help="CivitAI's order, e.g. 'Most Downloaded', 'Newest'.")
    ] = None,
    nsfw: Annotated[
        bool | None, typer.Option("--nsfw/--no-nsfw", help="Include or leave out NSFW models.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Models per page.")] = 20,
    cursor: Annotated[
        str | None, typer.Option(help="Where the next page starts (printed after a page).")
    ] = None,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Search CivitAI's models (through the server, which holds the API key)."""
    with client_for(remote, local) as client:
        page = client.civitai.search(
            query,
            types=tuple(types or ()),
            base_models=tuple(base_models or ()),
            sort=sort,
            nsfw=nsfw,
            limit=limit,
            cursor=cursor,
        )
    if as_json:
        print_json(page.model_dump(mode="json", by_alias=True))
        return
    if not page.items:
        print("no models found")
        return
    print_table(
        ["MODEL", "TYPE", "NAME", "BASE MODELS", "NEWEST VERSION"],
        [
            (
                m.id,
                m.type or "-",
                m.name,
                ", ".join(dict.fromkeys(v.base_model for v in m.model_versions if v.base_model))
                or "-",
                m.model_versions[0].id if m.model_versions else "-",
            )
            for m in page.items
        ],
    )
    if page.next_cursor:
        print(f"more: add --cursor {page.next_cursor}")


def get(
    model_id: Annotated[int, typer.Argument(help="The CivitAI model id.", min=1)],
    base_models: BaseModels = None,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Show a CivitAI model: its versions, files and hashes (through the server)."""
    with client_for(remote, local) as client:
        model = client.civitai.model(model_id)
    wanted = {b.strip().casefold() for b in base_models or ()}
    versions = [
        v for v in model.model_versions if not wanted or (v.base_model or "").casefold() in wanted
    ]
    if as_json:
        shown = model.model_copy(update={"model_versions": versions})
        print_json(shown.model_dump(mode="json", by_alias=True))
        return
    _print_model(model, versions)


def _print_model(model: CivitaiModel, versions: list[CivitaiVersion]) -> None:
    creator = (model.creator or {}).get("username")
    print(f"model:      {model.id} {model.name} ({model.type or 'unknown type'})")
    if creator:
        print(f"creator:    {creator}")
    if model.tags:
        print(f"tags:       {', '.join(model.tags)}")
    if not versions:
        print("no versions match")
        return
    rows = []
    for version in versions:
        files = version.files or []
        primary = next((f for f in files if f.primary), files[0] if files else None)
        rows.append(
            (
                version.id,
                version.name,
                version.base_model or "-",
                primary.name if primary else "-",
                human_size(primary.size_kb * 1024) if primary and primary.size_kb else "-",
                primary.hashes.get("AutoV2", "-") if primary else "-",
                ", ".join(version.trained_words) or "-",
            )
        )
    print_table(["VERSION", "NAME", "BASE MODEL", "FILE", "SIZE", "AUTOV2", "TRIGGERS"], rows)
    print(f"download one: tsr dl {versions[0].id}")
