"""Generation requests: validation naming the field, checkpoint and LoRA references, the LoRA
guard, and family defaults."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.sd_server_fixtures import FakeSdServer
from tests.jobs.conftest import Env, external
from tsr.errors import BadRequest, NotFound, RootViolation
from tsr.schemas.jobs import GenerateRequest, LoraRef
from tsr.server.generation import (
    Checkpoint,
    InvalidRequest,
    ModelResolver,
    fill_defaults,
    lora_guard,
)

SMALL = {"width": 64, "height": 64, "steps": 1}


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"width": 100}, "width", "100 is not a multiple of 64"),
        ({"height": 8192}, "height", "less than or equal to 4096"),
        ({"steps": 0}, "steps", "greater than or equal to 1"),
        ({"cfg": -1}, "cfg", "greater than or equal to 0"),
        ({"batch": 9}, "batch", "less than or equal to 8"),
        ({"seed": -2}, "seed", "greater than or equal to -1"),
        ({"prompt": "   "}, "prompt", "the prompt is empty"),
        ({"sampler": "Bogus"}, "sampler", "unknown sampler 'Bogus'; valid samplers: Euler a"),
        ({"scheduler": "wobbly"}, "scheduler", "unknown scheduler 'wobbly'"),
        ({"sampler": "DPM++ 2M Karras", "scheduler": "Simple"}, "sampler", "implies scheduler"),
        ({"loras": [{"weight": 0.5}]}, "loras.0", "give exactly one of id, name or path"),
        ({"colour": "red"}, "colour", "is not a field of a generation request"),
    ],
)
async def test_invalid_values_are_refused_naming_the_field(
    env: Env, sd15_server: FakeSdServer, change: dict[str, Any], field: str, reason: str
) -> None:
    _, queue = await env.start([external("box", sd15_server.url)])

    with pytest.raises(InvalidRequest) as refused:
        await queue.submit({"prompt": "a cube", **change})

    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")
    assert reason in str(refused.value)
    assert queue.list() == []


async def test_a_checkpoint_is_found_by_id_name_or_hash(
    env: Env, sd15_server: FakeSdServer
) -> None:
    _, queue = await env.start([external("box", sd15_server.url)])
    sd15 = str(env.tree.checkpoint("sd15"))

    for ref in (env.file_id("sd15"), "sd15", "sd15.safetensors", env.sha256("sd15")[:10]):
        job = await queue.submit({"checkpoint": ref, "prompt": "x", **SMALL})
        assert job.model == sd15, ref

    with pytest.raises(NotFound, match="no model file is named 'nope'"):
        await queue.submit({"checkpoint": "nope", "prompt": "x"})
    with pytest.raises(BadRequest, match="is a lora file, not a checkpoint"):
        await queue.submit({"checkpoint": "pony-style", "prompt": "x"})


async def test_a_lora_for_another_architecture_is_refused_unless_forced(
    env: Env, sd15_server: FakeSdServer
) -> None:
    _, queue = await env.start([external("box", sd15_server.url)])
    request = {"prompt": "x", "loras": [{"name": "pony-style", "weight": 0.7}], **SMALL}

    with pytest.raises(BadRequest) as refused:
        await queue.submit(request)
    assert str(refused.value) == (
        "LoRA pony-style is made for Pony (sdxl) but checkpoint sd15 is SD 1.5 (sd1); "
        "choose a matching LoRA or set force to use it anyway"
    )
    assert queue.list() == []

    forced = await queue.wait((await queue.submit({**request, "force": True})).id)

    assert forced.state == "done", forced.error
    assert any("used anyway (force)" in warning for warning in forced.warnings)
    image = env.gallery.get(forced.image_ids[0])
    assert [(lora.name, lora.weight, lora.sha256) for lora in image.loras] == [
        ("pony-style", 0.7, env.sha256("pony-style"))
    ]
    assert "pony-style.safetensors" in sd15_server.state()["lora_list"]


async def test_matching_loras_by_id_name_and_path_reach_sd_server(
    env: Env, sd15_server: FakeSdServer
) -> None:
    _, queue = await env.start([external("box", sd15_server.url)])
    by_id = {"prompt": "x", "loras": [{"id": env.file_id("sd15-detail"), "weight": 0.5}]}

    done = await queue.wait((await queue.submit({**by_id, **SMALL})).id)
    by_path = await queue.submit({"prompt": "x", "loras": [{"path": "sd15-detail.safetensors"}]})
    by_name = await queue.submit({"prompt": "x", "loras": [{"name": "sd15-detail"}]})

    assert done.state == "done", done.error
    assert done.warnings == []
    assert "<lora:sd15-detail:0.5>" in env.gallery.get(done.image_ids[0]).parameters
    assert "sd15-detail.safetensors" in sd15_server.state()["lora_list"]
    for job in (done, by_path, by_name):
        assert job.resolved is not None
        assert [lora.server_path for lora in job.resolved.loras] == ["sd15-detail.safetensors"]
    twice = [{"name": "sd15-detail"}, {"path": "sd15-detail.safetensors", "weight": 0.2}]
    with pytest.raises(InvalidRequest, match="loras: LoRA sd15-detail is listed twice"):
        await queue.submit({"prompt": "x", "loras": twice})


async def test_a_lora_outside_the_lora_roots_is_refused(
    env: Env, sd15_server: FakeSdServer
) -> None:
    _, queue = await env.start([external("box", sd15_server.url)])
    outside = env.tree.outside / "rogue.safetensors"

    with pytest.raises(RootViolation, match="outside the LoRA roots"):
        await queue.submit({"prompt": "x", "loras": [{"path": str(outside)}]})
    with pytest.raises(RootViolation):
        await queue.submit({"prompt": "x", "loras": [{"path": "../outside/rogue.safetensors"}]})


async def test_a_lora_of_a_sibling_family_is_used_with_a_warning(env: Env) -> None:
    env.set_family("illus", "illustrious")
    resolver = ModelResolver(env.config([]))
    illustrious = resolver.checkpoint("illus")
    pony_lora = resolver.lora(LoraRef(name="pony-style"))
    sdxl_lora = resolver.lora(LoraRef(name="xl-ink"))

    warning = lora_guard(pony_lora, illustrious, force=False)

    assert illustrious.family == "illustrious"
    assert warning == (
        "LoRA pony-style was trained on Pony, checkpoint illus is Illustrious "
        "(same architecture; results may differ)"
    )
    assert sdxl_lora.path == env.tree.loras / "styles" / "xl-ink.safetensors"
    assert "same architecture" in (lora_guard(sdxl_lora, illustrious, force=False) or "")
    unknown = Checkpoint("odd", None, None, None)
    assert lora_guard(pony_lora, unknown, force=False) == (
        "LoRA pony-style was not checked: the family of odd is unknown"
    )


def test_family_defaults_fill_what_the_request_leaves_out() -> None:
    pony = Checkpoint("pony", None, None, "pony")

    filled, warnings = fill_defaults(GenerateRequest(prompt="a fox"), pony, [], None)
    plain, _ = fill_defaults(
        GenerateRequest(prompt="a fox", family_prompt=False, sampler="euler_a", cfg=0),
        pony,
        [],
        None,
    )
    legacy, _ = fill_defaults(
        GenerateRequest(prompt="a fox", sampler="DPM++ 2M Karras"), pony, [], None
    )

    assert warnings == []
    assert filled.prompt == "score_9, score_8_up, score_7_up, a fox"
    assert filled.negative == "score_4, score_5, score_6"
    assert (filled.width, filled.height, filled.steps, filled.cfg) == (1024, 1024, 25, 6.0)
    assert (filled.sampler, filled.scheduler, filled.clip_skip) == ("Euler a", "Simple", 2)
    assert (plain.prompt, plain.negative, plain.sampler, plain.cfg) == ("a fox", "", "Euler a", 0)
    assert (legacy.sampler, legacy.scheduler) == ("DPM++ 2M", "Karras")
    unknown, warned = fill_defaults(
        GenerateRequest(prompt="x"), Checkpoint("odd", None, None, None), [], None
    )
    assert unknown.family == "sdxl"
    assert warned == ["the family of odd is unknown; used sdxl"]
