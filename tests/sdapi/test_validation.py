"""Requests sd-server would silently change are refused before anything is sent, with the fix."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from tests.fakes.sd_server_fixtures import FakeSdServer
from tsr.errors import BadRequest
from tsr.sdapi import GenerationParams, SdServerClient

SUBMIT = ("POST", "/sdcpp/v1/img_gen")


def png(width: int, height: int, colour: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


async def refused(fake: FakeSdServer, **fields: Any) -> str:
    """Submit and expect BadRequest without any job reaching sd-server; return the message."""
    async with SdServerClient(fake.url) as sd:
        with pytest.raises(BadRequest) as caught:
            await sd.submit(GenerationParams(**{"prompt": "a red cube", **fields}))
    assert SUBMIT not in fake.requests_seen()
    return str(caught.value)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"width": 100, "height": 64}, "width 100 is not a multiple of 64"),
        ({"width": 64, "height": 1000}, "use 960 or 1024"),
        ({"width": 32, "height": 64}, "width 32 is below sd-server's minimum of 64; use 64"),
        ({"width": 64, "height": 5000}, "height 5000 is above sd-server's maximum of 4096"),
        ({"steps": 0}, "steps 0 is outside 1..100"),
        ({"steps": 150}, "steps 150 is outside 1..100"),
        ({"batch_count": 9}, "batch count 9 is outside 1..8"),
        ({"cfg_scale": -1.0}, "CFG scale -1.0 is invalid"),
        ({"seed": -5}, "seed -5 is invalid"),
        ({"prompt": "   "}, "the prompt is empty"),
        ({"sampler": "Euler b"}, "unknown sampler 'Euler b'; valid samplers: Euler a"),
        ({"scheduler": "cosine"}, "unknown scheduler 'cosine'"),
        ({"sampler": "DPM++ 2M Karras", "scheduler": "Simple"}, "implies scheduler 'Karras'"),
    ],
)
async def test_bad_values_are_refused_before_sending(
    fake_sd_server: FakeSdServer, fields: dict[str, Any], expected: str
) -> None:
    assert expected in await refused(fake_sd_server, **fields)


async def test_size_message_names_the_value_sd_server_would_use(
    fake_sd_server: FakeSdServer,
) -> None:
    message = await refused(fake_sd_server, width=100, height=64)
    assert message == (
        "width 100 is not a multiple of 64 (sd-server would silently change it); use 64 or 128"
    )


async def test_lora_without_extension_is_refused_with_the_fix(fake_sd_server: FakeSdServer) -> None:
    message = await refused(fake_sd_server, loras=[("tiny-random-lora", 0.8)])
    assert "LoRA 'tiny-random-lora' has no file extension" in message
    assert "'tiny-random-lora.safetensors'" in message


async def test_unknown_lora_is_refused_with_close_matches(fake_sd_server: FakeSdServer) -> None:
    message = await refused(fake_sd_server, loras=[("tiny-randm-lora.safetensors", 1.0)])
    assert "sd-server has no LoRA 'tiny-randm-lora.safetensors'" in message
    assert "close matches: tiny-random-lora.safetensors" in message


async def test_the_same_lora_twice_is_refused(fake_sd_server: FakeSdServer) -> None:
    message = await refused(
        fake_sd_server, loras=[("detail.gguf", 0.5), {"path": "detail.gguf", "multiplier": 0.3}]
    )
    assert "listed twice" in message


async def test_a_lora_added_after_the_first_refresh_is_found(fake_sd_server: FakeSdServer) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        await sd.loras()
        new = fake_sd_server.lora_dir / "fresh.safetensors"
        new.write_bytes((fake_sd_server.lora_dir / "detail.gguf").read_bytes())
        try:
            result = await sd.generate(
                GenerationParams(prompt="x", width=64, height=64, loras=[("fresh.safetensors", 1)])
            )
        finally:
            new.unlink()
    assert "fresh.safetensors" in result.images[0].infotext


async def test_an_unreadable_init_image_never_reaches_sd_server(
    fake_sd_server: FakeSdServer,
) -> None:
    message = await refused(fake_sd_server, init_image=b"\x89PNG\r\n\x1a\n not really")
    assert message.startswith("the init image cannot be read as an image")


async def test_init_image_size_must_match_and_be_a_multiple_of_64(
    fake_sd_server: FakeSdServer,
) -> None:
    assert "the init image is 128x64 but 64x64 was asked for" in await refused(
        fake_sd_server, init_image=png(128, 64), width=64, height=64
    )
    assert "init image width 100 is not a multiple of 64" in await refused(
        fake_sd_server, init_image=png(100, 64)
    )


async def test_img2img_uses_the_init_image_size(fake_sd_server: FakeSdServer) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        plain = await sd.generate(GenerationParams(prompt="x", width=128, height=64, seed=3))
        edited = await sd.generate(
            GenerationParams(prompt="x", init_image=png(128, 64), strength=0.5, seed=3)
        )
    assert (edited.images[0].width, edited.images[0].height) == (128, 64)
    assert edited.images[0].png != plain.images[0].png


async def test_a_webp_init_image_is_sent_as_png(fake_sd_server: FakeSdServer) -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), "orange").save(out, "WEBP")
    async with SdServerClient(fake_sd_server.url) as sd:
        body = await sd.prepare(GenerationParams(prompt="x", init_image=out.getvalue()))
        result = await sd.generate(GenerationParams(prompt="x", init_image=out.getvalue()))
    assert body["init_image"].startswith("iVBORw0KGgo")  # base64 of the PNG signature
    assert result.images[0].width == 64


async def test_legacy_combined_label_is_sent_as_sampler_plus_scheduler(
    fake_sd_server: FakeSdServer,
) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        result = await sd.generate(
            GenerationParams(prompt="x", width=64, height=64, sampler="DPM++ 2M Karras")
        )
    assert "Sampler: dpm++2m karras," in result.images[0].infotext


async def test_a_sampler_this_server_lacks_is_refused(fake_sd_server: FakeSdServer) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        caps = await sd.capabilities()
        caps.samplers.remove("lms")  # an older sd-server build without this sampler
        with pytest.raises(BadRequest, match="this sd-server has no sampler 'lms'; it offers"):
            await sd.submit(GenerationParams(prompt="x", sampler="LMS"))
