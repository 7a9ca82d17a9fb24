"""`POST /api/generate`, `/api/jobs...`, job events and `tsr generate|jobs`, the same against the
embedded `local` server and a `tsr serve` process with a token."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tests.api_generate.conftest import Cli, Stack, sha256_of, wait_for_state
from tsr.cli.generate import lora_ref
from tsr.client import Client
from tsr.errors import BadRequest, Conflict
from tsr.families import get_family

TINY = {"width": 64, "height": 64, "steps": 2}


def png_parameters(data: bytes) -> str:
    """The A1111 `parameters` text a PNG carries."""
    with Image.open(io.BytesIO(data)) as image:
        return str(image.text["parameters"])


def test_a_generation_with_a_lora_saves_images_with_parameters_and_real_seeds(
    api: Client, stack: Stack
) -> None:
    request = {
        "prompt": "a lighthouse at dusk",
        "checkpoint": "sd15",
        "loras": [{"name": "sd15-detail", "weight": 0.7}],
        "batch": 2,
        **TINY,
    }
    seen: list[str] = []

    job = api.generation.generate_and_wait(request, lambda j: seen.append(j.state))

    assert job.state == "done", job.error
    assert (seen[0], seen[-1]) == ("queued", "done")
    assert len(job.image_ids) == 2 and len(set(job.seeds)) == 2
    assert all(seed >= 0 for seed in job.seeds)  # the real seeds, not -1
    lora_hash = sha256_of(stack.tree.lora("sd15-detail"))
    model_hash = sha256_of(stack.tree.checkpoint("sd15"))
    for image_id, seed in zip(job.image_ids, job.seeds, strict=True):
        image = api.images.get(image_id)
        assert (image.seed, image.checkpoint, image.job) == (seed, "sd15", job.id)
        assert [(x.name, x.weight) for x in image.loras] == [("sd15-detail", 0.7)]
        text = png_parameters(api.images.file(image_id))
        assert text == image.parameters
        assert text.startswith("a lighthouse at dusk <lora:sd15-detail:0.7>\nNegative prompt: ")
        assert f"Seed: {seed}, Size: 64x64" in text
        assert f"Model hash: {model_hash[:10]}, Model: sd15" in text
        assert f'Lora hashes: "sd15-detail: {lora_hash[:12]}"' in text
    images = api.generation.images(job.id)
    assert [(i.id, i.seed) for i in images] == list(zip(job.image_ids, job.seeds, strict=True))
    assert all(Path(i.path).is_file() and i.path.endswith(i.file) for i in images)


def test_family_defaults_fill_in_what_the_request_leaves_out(api: Client) -> None:
    job = api.generation.generate_and_wait({"prompt": "a cat", "checkpoint": "sd15"})

    assert job.state == "done", job.error
    sd15 = get_family("sd15")
    image = api.images.get(job.image_ids[0])
    assert (image.width, image.height) == sd15.sizes["square"]
    assert (image.steps, image.cfg, image.clip_skip) == (sd15.steps, sd15.cfg, sd15.clip_skip)
    assert (image.sampler, image.scheduler) == (sd15.sampler, sd15.scheduler)
    assert image.negative == sd15.negative
    assert job.resolved is not None and job.resolved.family == "sd15"


@pytest.mark.parametrize(
    ("change", "sentence"),
    [
        ({"width": 100}, "width: 100 is not a multiple of 64"),
        ({"colour": "red"}, "colour: is not a field of a generation request"),
        ({"sampler": "DPM++ 2M Karras", "scheduler": "simple"}, "sampler: sampler 'DPM++ 2M"),
        ({"prompt": "  "}, "prompt: the prompt is empty; describe the image to generate"),
    ],
)
def test_an_invalid_field_answers_400_naming_it(
    api: Client, stack: Stack, change: dict[str, object], sentence: str
) -> None:
    body = {"prompt": "x", "checkpoint": "sd15", **change}
    before = len(api.generation.jobs(limit=500))
    with stack.http() as http:
        response = http.post("/api/generate", json=body)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(sentence)
    with pytest.raises(BadRequest, match="^" + sentence.replace("+", r"\+")):
        api.generation.submit(body)
    assert len(api.generation.jobs(limit=500)) == before  # nothing was queued


def test_the_cli_says_which_field_is_wrong(cli: Cli) -> None:
    code, out, err = cli("generate", "a boat", "-m", "sd15", "-W", "100")

    assert (code, out) == (1, "")
    assert err == "tsr: width: 100 is not a multiple of 64\n"


def test_a_lora_for_another_architecture_needs_force(api: Client) -> None:
    request = {"prompt": "ink", "checkpoint": "sd15", "loras": [{"name": "xl-ink"}], **TINY}
    with pytest.raises(BadRequest) as refused:
        api.generation.submit(request)
    assert str(refused.value) == (
        "LoRA xl-ink is made for SDXL (sdxl) but checkpoint sd15 is SD 1.5 (sd1); "
        "choose a matching LoRA or set force to use it anyway"
    )

    job = api.generation.generate_and_wait({**request, "force": True})

    assert job.state == "done", job.error
    assert job.warnings == [
        "LoRA xl-ink is made for SDXL (sdxl) but checkpoint sd15 is SD 1.5 (sd1); "
        "used anyway (force)"
    ]
    assert [x.name for x in api.images.get(job.image_ids[0]).loras] == ["xl-ink"]


def test_a_queued_job_can_be_cancelled_a_generating_one_cannot(
    api: Client, cli: Cli, stack: Stack
) -> None:
    request = {"prompt": "slow", "checkpoint": "sd15", **TINY}
    stack.fake(hold=True)
    try:
        first = wait_for_state(api, api.generation.submit(request), "running")
        second = api.generation.submit(request)
        assert (second.state, second.queue_position) == ("queued", 1)

        code, out, _ = cli("jobs", "cancel", second.id)

        assert (code, out) == (0, f"cancelled job {second.id}\n")
        assert api.generation.job(second.id).state == "cancelled"
        with pytest.raises(Conflict, match="cannot interrupt a generation"):
            api.generation.cancel(first.id)
        code, _, err = cli("jobs", "cancel", first.id)
        assert code == 1
        assert err == (
            f"tsr: job {first.id} is generating on sd-server, which cannot interrupt a "
            "generation; it will finish and its images will be saved\n"
        )
        cancelled = cli.json("jobs", "list", "--state", "cancelled")
        assert second.id in [job["id"] for job in cancelled]
        code, out, _ = cli("jobs", "list")
        rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines()[1:]}
        assert rows[second.id] == ["generate", "cancelled", "gpu"]
        assert rows[first.id] == ["generate", "generating", "gpu"]
    finally:
        stack.fake(hold=False)
    assert api.generation.follow([first])[0].state == "done"
    code, _, err = cli("jobs", "cancel", first.id)
    assert (code, err) == (1, f"tsr: job {first.id} has already finished (done)\n")


def test_job_and_image_events_arrive_over_sse(api: Client) -> None:
    stream = api.events(["job", "image"])
    assert next(stream).kind == "subscribed"
    job = api.generation.submit({"prompt": "events", "checkpoint": "sd15", **TINY})
    kinds: list[str] = []
    images: list[int] = []
    try:
        for event in stream:
            if event.topic == "image" and event.data["job"] == job.id:
                images.append(event.data["image"]["id"])
            if event.topic == "job" and event.data["id"] == job.id:
                kinds.append(event.kind)
                if event.kind in ("done", "failed", "cancelled"):
                    final = event.data
                    break
    finally:
        stream.close()

    assert [k for k in kinds if k not in ("position", "progress")] == [
        "created",
        "running",
        "saving",
        "done",
    ]
    assert final["image_ids"] == images and len(images) == 1


def test_generate_json_out_prints_the_documented_json_and_writes_the_pngs(
    cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "pngs"
    document = cli.json(
        "generate", "a red cube", "-m", "sd15", "-l", "sd15-detail:0.5", "--size", "portrait",
        "--steps", "2", "--seed", "77", "--out", str(out),
    )  # fmt: skip

    assert set(document) == {"job", "images"}
    job = document["job"]
    assert (job["state"], job["kind"], job["backend"]) == ("done", "generate", "gpu")
    assert job["resolved"]["loras"][0]["weight"] == 0.5
    width, height = get_family("sd15").sizes["portrait"]
    [image] = document["images"]
    assert set(image) == {"id", "path", "seed", "width", "height", "local_path"}
    assert (image["seed"], image["width"], image["height"]) == (77, width, height)
    saved = Path(image["local_path"])
    assert saved == out / f"{image['id']}.png"
    assert saved.read_bytes() == Path(image["path"]).read_bytes()
    assert "Seed: 77" in png_parameters(saved.read_bytes())


def test_generate_count_queues_jobs_with_consecutive_seeds_and_a_table(cli: Cli) -> None:
    documents = cli.json(
        "generate", "twins", "-m", "sd15", "-W", "64", "-H", "64", "--steps", "1",
        "--seed", "5", "--count", "2",
    )  # fmt: skip

    assert [d["images"][0]["seed"] for d in documents] == [5, 6]
    assert len({d["job"]["id"] for d in documents}) == 2

    code, out, err = cli("generate", "plain", "-m", "sd15", "-W", "64", "-H", "64", "--seed", "9")
    assert (code, err) == (0, "")
    header, row = out.splitlines()
    assert header.split() == ["ID", "SEED", "SIZE", "PATH"]
    image_id, seed, size, path = row.split()
    assert (seed, size) == ("9", "64x64") and Path(path).name == f"{image_id}.png"


def test_no_wait_queues_and_jobs_show_follows_up(api: Client, cli: Cli) -> None:
    document = cli.json("generate", "later", "-m", "sd15", "-W", "64", "-H", "64", "--no-wait")

    queued = document["job"]
    assert document["images"] == []
    assert queued["state"] in ("queued", "running", "saving", "done")
    assert api.generation.follow([queued["id"]])[0].state == "done"
    shown = cli.json("jobs", "show", queued["id"])
    assert shown["job"]["id"] == queued["id"]
    assert [i["id"] for i in shown["images"]] == shown["job"]["image_ids"]
    code, out, _ = cli("jobs", "show", queued["id"])
    assert code == 0 and "state:     done\n" in out and "prompt:    later\n" in out


def test_a_generation_fails_cleanly_when_sd_server_is_down(cli: Cli, stack: Stack) -> None:
    code, out, err = cli("generate", "nothing", "-m", "flux", "--backend", "offline")

    assert (code, out) == (1, "")
    assert err == (
        f"tsr: cannot reach sd-server at {stack.offline_url}: connection refused; is it running?\n"
    )
    failed = cli.json("jobs", "list", "--state", "failed", "--backend", "offline")
    assert failed[-1]["error"] == err.removeprefix("tsr: ").rstrip("\n")


def test_size_comes_from_the_active_checkpoints_family(cli: Cli) -> None:
    document = cli.json("generate", "wide", "--size", "landscape", "--steps", "1")

    image = document["images"][0]
    assert (image["width"], image["height"]) == get_family("sd15").sizes["landscape"]
    assert document["job"]["resolved"]["checkpoint"] == "sd15"


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("detail", {"name": "detail"}),
        ("detail:0.6", {"name": "detail", "weight": 0.6}),
        ("12:-1", {"id": 12, "weight": -1.0}),
        ("styles/xl-ink.safetensors:0.8", {"path": "styles/xl-ink.safetensors", "weight": 0.8}),
        ("odd:name", {"name": "odd:name"}),
    ],
)
def test_lora_options_name_ids_names_and_paths(text: str, ref: dict[str, object]) -> None:
    assert lora_ref(text) == ref
