"""The A1111-style passthrough (txt2img/img2img): info parsed, LoRA refresh, sd-server's quirks."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.fakes.sd_server_fixtures import FakeSdServer
from tsr.errors import BadRequest, ServerError
from tsr.sdapi import SdServerClient, png_size, png_text_chunks
from tsr.sdapi.pngtext import parse_sdcpp_infotext


async def txt2img(fake: FakeSdServer, **payload: Any) -> Any:
    async with SdServerClient(fake.url) as sd:
        return await sd.txt2img({"prompt": "a red cube", "steps": 1, **payload})


async def test_result_is_typed_with_info_parsed_from_its_json_string(
    fake_sd_server: FakeSdServer,
) -> None:
    result = await txt2img(
        fake_sd_server,
        negative_prompt="blurry",
        width=64,
        height=64,
        seed=1234,
        batch_size=2,
        sampler_name="Euler a",
        scheduler="karras",
        lora=[{"path": "tiny-random-lora.safetensors", "multiplier": 0.8}],
    )
    assert result.info.seed == 1234
    assert result.seeds == [1234, 1235]
    assert result.info.sampler_name == "euler_a"
    assert result.info.extra_generation_params == {"Schedule type": "karras"}
    assert result.info.sd_model_name == "sd15-random.safetensors"
    assert result.parameters["sampler_name"] == "Euler a"
    assert [png_size(image) for image in result.images] == [(64, 64), (64, 64)]
    texts = [png_text_chunks(image)["parameters"] for image in result.images]
    assert texts == result.info.infotexts
    assert parse_sdcpp_infotext(texts[1]).seed == 1235


async def test_loras_are_refreshed_before_the_first_passthrough(
    fake_sd_server: FakeSdServer,
) -> None:
    result = await txt2img(
        fake_sd_server, width=64, height=64, lora=[{"path": "detail.gguf", "multiplier": 1}]
    )
    assert "detail.gguf" in result.info.infotexts[0]
    seen = fake_sd_server.requests_seen()
    assert seen.index(("GET", "/sdapi/v1/loras")) < seen.index(("POST", "/sdapi/v1/txt2img"))


def test_without_the_refresh_sd_server_refuses_the_lora(fake_sd_server: FakeSdServer) -> None:
    """The quirk the client works around, seen directly: the list is empty after start."""
    body = {"prompt": "x", "width": 64, "height": 64, "lora": [{"path": "detail.gguf"}]}
    answer = httpx.post(f"{fake_sd_server.url}/sdapi/v1/txt2img", json=body)
    assert (answer.status_code, answer.json()) == (400, {"error": "invalid lora path: detail.gguf"})


async def test_a_forgotten_lora_list_is_refreshed_and_the_request_retried(
    fake_sd_server: FakeSdServer,
) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        await sd.loras()
        fake_sd_server.reset()  # sd-server restarted: its list is empty again
        result = await sd.txt2img(
            {"prompt": "x", "width": 64, "height": 64, "lora": [{"path": "detail.gguf"}]}
        )
    assert len(result.images) == 1
    assert fake_sd_server.requests_seen().count(("POST", "/sdapi/v1/txt2img")) == 2


async def test_sizes_are_rounded_up_silently_while_info_keeps_the_request(
    fake_sd_server: FakeSdServer,
) -> None:
    result = await txt2img(fake_sd_server, width=100, height=72, seed=1)
    assert png_size(result.images[0]) == (128, 128)
    assert (result.info.width, result.info.height) == (100, 72)


async def test_steps_and_batch_are_clamped(fake_sd_server: FakeSdServer) -> None:
    result = await txt2img(fake_sd_server, width=64, height=64, steps=500, batch_size=20, seed=9)
    assert result.info.steps == 100
    assert result.seeds == list(range(9, 17))


async def test_unknown_sampler_is_ignored_and_lora_tags_stay_literal(
    fake_sd_server: FakeSdServer,
) -> None:
    result = await txt2img(
        fake_sd_server,
        prompt="a cat <lora:detail:0.8>",
        width=64,
        height=64,
        sampler_name="DPM++ 2M Karras",
    )
    assert result.info.sampler_name == "NONE"
    assert result.info.prompt == "a cat <lora:detail:0.8>"
    assert "loras" not in parse_sdcpp_infotext(result.info.infotexts[0]).sdcpp


async def test_a_negative_seed_is_random_and_reported(fake_sd_server: FakeSdServer) -> None:
    result = await txt2img(fake_sd_server, width=64, height=64, seed=-1)
    assert result.info.seed >= 0
    assert parse_sdcpp_infotext(result.info.infotexts[0]).seed == result.info.seed


async def test_the_same_lora_twice_adds_its_weights(fake_sd_server: FakeSdServer) -> None:
    half = {"path": "detail.gguf", "multiplier": 0.5}
    result = await txt2img(fake_sd_server, width=64, height=64, lora=[half, half])
    loras = parse_sdcpp_infotext(result.info.infotexts[0]).sdcpp["loras"]
    assert [(lora["name"], lora["multiplier"]) for lora in loras] == [("detail.gguf", 1.0)]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"prompt": ""}, "sd-server rejected the request: prompt required"),
        ({"cfg_scale": -1}, "sd-server rejected the request: invalid params"),
        ({"width": 0}, "sd-server rejected the request: width and height must be positive"),
        ({"lora": [{"multiplier": 1}]}, "sd-server rejected the request: lora.path required"),
    ],
)
async def test_sd_server_400s_become_bad_request(
    fake_sd_server: FakeSdServer, payload: dict[str, Any], expected: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        await txt2img(fake_sd_server, **payload)
    assert str(caught.value) == expected


async def test_a_wrong_json_type_is_a_server_error(fake_sd_server: FakeSdServer) -> None:
    with pytest.raises(ServerError) as caught:
        await txt2img(fake_sd_server, width="64")
    assert str(caught.value) == (
        "sd-server failed on POST /sdapi/v1/txt2img (HTTP 500): server_error: "
        "[json.exception.type_error.302] type must be number, but is string"
    )


def png_b64(width: int, height: int) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "purple").save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


async def test_img2img_takes_the_init_image_size_and_reports_strength(
    fake_sd_server: FakeSdServer,
) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        result = await sd.img2img(
            {"prompt": "x", "init_images": [png_b64(128, 64)], "denoising_strength": 0.4}
        )
    assert png_size(result.images[0]) == (128, 64)
    assert result.info.denoising_strength == pytest.approx(0.4)


def test_sd_server_turns_an_undecodable_init_image_into_a_512_txt2img(
    fake_sd_server: FakeSdServer,
) -> None:
    """The quirk the client guards against, seen directly."""
    body = {"prompt": "x", "steps": 1, "init_images": ["bm90IGFuIGltYWdl"]}
    answer = httpx.post(f"{fake_sd_server.url}/sdapi/v1/img2img", json=body, timeout=30)
    assert png_size(base64.b64decode(answer.json()["images"][0])) == (512, 512)


@pytest.mark.parametrize("encoded", ["bm90IGFuIGltYWdl", "data:image/png;base64,bm90IGFu", "@@"])
async def test_img2img_refuses_an_undecodable_init_image_before_sending(
    fake_sd_server: FakeSdServer, encoded: str
) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        with pytest.raises(BadRequest, match="the init image"):
            await sd.img2img({"prompt": "x", "init_images": [encoded]})
    assert ("POST", "/sdapi/v1/img2img") not in fake_sd_server.requests_seen()
