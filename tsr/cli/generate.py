"""`tsr generate PROMPT`: queue generations on a tsr server, wait for them, list (and download)
the images they saved."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tsr.cli.common import JsonFlag, LocalFlag, RemoteOption
from tsr.cli.jobs import JobDisplay, image_json, stopped_waiting
from tsr.cli.output import print_json, print_table

if TYPE_CHECKING:
    from tsr.client import Client
    from tsr.schemas.generation_api import JobImage
    from tsr.schemas.jobs import JobOut

#: how many jobs one command may queue
MAX_COUNT = 100


class SizeChoice(StrEnum):
    """The family's default sizes."""

    square = "square"
    portrait = "portrait"
    landscape = "landscape"


def register(app: typer.Typer) -> None:
    """Add `generate` to the root app."""
    app.command("generate")(generate)


def lora_ref(text: str) -> dict[str, Any]:
    """`-l` value as a LoRA reference: `NAME[:WEIGHT]`, where NAME is a DB id, a file name or
    hash, or a path (with a `/`)."""
    ref, weight = text.strip(), None
    head, sep, tail = ref.rpartition(":")
    if sep and head:
        try:
            weight = float(tail)
        except ValueError:
            pass  # a colon that is part of the name
        else:
            ref = head
    entry: dict[str, Any]
    if ref.isascii() and ref.isdigit():
        entry = {"id": int(ref)}
    elif "/" in ref or ref.startswith((".", "~")):
        entry = {"path": ref}
    else:
        entry = {"name": ref}
    if weight is not None:
        entry["weight"] = weight
    return entry


def _family_size(
    client: Client, model: str | None, backend: str | None, size: SizeChoice
) -> tuple[int, int]:
    """The width and height of `size` in the family of the checkpoint the job will use."""
    from tsr.families import FALLBACK_FAMILY

    family: str | None = None
    if model is not None:
        family = client.db.resolve(model).family
    else:
        backends = client.models.active()
        if backend is not None:
            backends = [b for b in backends if b.name == backend]
        # the backend a request without a checkpoint goes to: the first ready one holding a model
        holding = [b for b in backends if b.model or b.model_name]
        ready = [b for b in holding if b.state == "ready"]
        chosen = (ready or holding)[:1]
        family = chosen[0].family if chosen else None
    families = {f.name: f for f in client.models.families()}
    chosen_family = families.get(family or "") or families[FALLBACK_FAMILY]
    width, height = chosen_family.sizes[size.value]
    return width, height


def _requests(base: dict[str, Any], count: int) -> list[dict[str, Any]]:
    # a fixed seed would give the same image N times: the jobs take consecutive seeds
    seed = base.get("seed")
    if seed is None or seed == -1:
        return [dict(base) for _ in range(count)]
    return [{**base, "seed": seed + index} for index in range(count)]


def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    negative: Annotated[
        str | None,
        typer.Option("--negative", "-n", help="Negative prompt (default: the family's; '' none)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            metavar="MODEL",
            help="Checkpoint: DB id, name or hash (default: the one loaded).",
        ),
    ] = None,
    loras: Annotated[
        list[str] | None,
        typer.Option(
            "--lora",
            "-l",
            metavar="LORA[:WEIGHT]",
            help="A LoRA (id, name, hash or path) and its weight (default 1); repeat for more.",
        ),
    ] = None,
    width: Annotated[
        int | None, typer.Option("--width", "-W", help="Width (multiple of 64).")
    ] = None,
    height: Annotated[
        int | None, typer.Option("--height", "-H", help="Height (multiple of 64).")
    ] = None,
    size: Annotated[
        SizeChoice | None,
        typer.Option("--size", help="The family's square, portrait or landscape size."),
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Sampling steps.")] = None,
    cfg: Annotated[float | None, typer.Option("--cfg", help="CFG scale.")] = None,
    sampler: Annotated[
        str | None, typer.Option("--sampler", help="Sampler: WebUI label or sd.cpp name.")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Scheduler: WebUI label or sd.cpp name.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed (default: random).")] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Images per job.")] = None,
    clip_skip: Annotated[int | None, typer.Option("--clip-skip", help="CLIP skip.")] = None,
    count: Annotated[
        int, typer.Option("--count", min=1, max=MAX_COUNT, help="Queue this many jobs.")
    ] = 1,
    force: Annotated[
        bool, typer.Option("--force", help="Use LoRAs made for another architecture anyway.")
    ] = False,
    no_family_prompt: Annotated[
        bool,
        typer.Option("--no-family-prompt", help="Do not add the family's prompt prefix."),
    ] = False,
    backend: Annotated[
        str | None, typer.Option("--backend", metavar="NAME", help="Run on this backend.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="Also download the PNGs into DIR."),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Queue the jobs, print their ids and return.")
    ] = False,
    remote: RemoteOption = None,
    local: LocalFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Generate images: family defaults fill in what is not given; waits and lists the images.

    With --json it prints {"job": ..., "images": [{"id", "path", "seed", "width", "height"}]}
    (a list of those with --count above 1); "path" is the file on the server, and with --out
    "local_path" the downloaded copy.
    """
    from tsr.cli.common import client_for

    request: dict[str, Any] = {
        "prompt": prompt,
        "negative": negative,
        "checkpoint": int(model) if model and model.isascii() and model.isdigit() else model,
        "loras": [lora_ref(text) for text in loras or []],
        "width": width,
        "height": height,
        "steps": steps,
        "cfg": cfg,
        "sampler": sampler,
        "scheduler": scheduler,
        "seed": seed,
        "batch": batch,
        "clip_skip": clip_skip,
        "backend": backend,
        "force": force or None,
        "family_prompt": False if no_family_prompt else None,
    }
    request = {key: value for key, value in request.items() if value not in (None, [])}
    with client_for(remote, local) as client:
        if size is not None and (width is None or height is None):
            sized = _family_size(client, model, backend, size)
            request.setdefault("width", sized[0])
            request.setdefault("height", sized[1])
        requests = _requests(request, count)
        if no_wait:
            _queue_only(client, requests, as_json)
            return
        display = JobDisplay()
        try:
            with display:
                jobs = client.generation.generate_all_and_wait(requests, display.update)
        except KeyboardInterrupt:
            stopped_waiting(client, list(display.jobs))
            raise SystemExit(130) from None  # told the user already
        results = [(job, _images(client, job, out)) for job in jobs]
    _report(results, as_json, out is not None)


def _queue_only(client: Client, requests: list[dict[str, Any]], as_json: bool) -> None:
    from tsr.cli.output import warn

    jobs = [client.generation.submit(request) for request in requests]
    for job in jobs:
        for warning in job.warnings:
            warn(warning)
    if as_json:
        # the shape of a finished run, without images yet
        documents = [{"job": job, "images": []} for job in jobs]
        print_json(documents[0] if len(documents) == 1 else documents)
        return
    for job in jobs:
        print(f"queued job {job.id} on {job.backend}")


def _images(client: Client, job: JobOut, out: Path | None) -> list[tuple[JobImage, Path | None]]:
    if job.state != "done":
        return []
    found = client.generation.images(job.id)
    saved: list[tuple[JobImage, Path | None]] = []
    for image in found:
        local = None
        if out is not None:
            # named by the id alone: nothing the server sends becomes part of a local path
            local = client.images.download(image.id, out / f"{image.id}.png")
        saved.append((image, local))
    return saved


def _report(
    results: list[tuple[JobOut, list[tuple[JobImage, Path | None]]]], as_json: bool, saved: bool
) -> None:
    from tsr.errors import JobFailed

    if as_json:
        documents = [
            {
                "job": job,
                "images": [
                    {**image_json(image), **({"local_path": str(local)} if saved else {})}
                    for image, local in images
                ],
            }
            for job, images in results
        ]
        print_json(documents[0] if len(documents) == 1 else documents)
    else:
        rows = [
            (image.id, image.seed, f"{image.width}x{image.height}", image.path)
            + ((str(local),) if saved else ())
            for _, images in results
            for image, local in images
        ]
        if rows:
            headers = ["ID", "SEED", "SIZE", "PATH"] + (["SAVED"] if saved else [])
            print_table(headers, rows)
    failed = [job for job, _ in results if job.state != "done"]
    if failed:
        job = failed[0]
        reason = job.error or f"job {job.id} was {job.state}"
        if len(results) > 1:
            reason = f"{len(failed)} of {len(results)} jobs did not finish; job {job.id}: {reason}"
        raise JobFailed(reason)
