"""Discovery through SdServerClient against the fake sd-server process; unreachable servers."""

from __future__ import annotations

import pytest

from tests.fakes.sd_server_fixtures import FakeSdServer, free_port
from tsr.errors import RemoteUnreachable
from tsr.sdapi import SdServerClient


async def test_ping_is_true_for_a_running_server_and_false_for_nothing(
    fake_sd_server: FakeSdServer,
) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        assert await sd.ping() is True
    async with SdServerClient(f"http://127.0.0.1:{free_port()}") as sd:
        assert await sd.ping() is False


async def test_loras_are_listed_recursively_with_extensions(fake_sd_server: FakeSdServer) -> None:
    (fake_sd_server.lora_dir / "notes.txt").write_text("not a LoRA")
    async with SdServerClient(fake_sd_server.url) as sd:
        loras = await sd.loras()
    assert {(lora.name, lora.path) for lora in loras} == {
        ("tiny-random-lora", "tiny-random-lora.safetensors"),
        ("ink-sketch", "styles/ink-sketch.safetensors"),
        ("detail", "detail.gguf"),
    }


async def test_samplers_schedulers_and_capabilities(fake_sd_server: FakeSdServer) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        samplers, schedulers = await sd.samplers(), await sd.schedulers()
        caps = await sd.capabilities()
    assert samplers[0] == "default" and "euler_a" in samplers and "dpm++2m" in samplers
    assert schedulers[0] == "default" and "karras" in schedulers
    assert caps.model.name == "sd15-random.safetensors"
    assert caps.model.path == str(fake_sd_server.model)
    assert (caps.limits.min_width, caps.limits.max_width, caps.limits.max_batch_count) == (
        64,
        4096,
        8,
    )
    assert "euler_a" in caps.samplers and "default" not in caps.samplers


async def test_options_and_model_name(fake_sd_server: FakeSdServer) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        options = await sd.options()
        assert await sd.model_name() == "sd15-random.safetensors"
    assert options.sd_model_checkpoint == "sd15-random"
    assert options.samples_format == "png"


@pytest.mark.parametrize(
    "call", ["loras", "samplers", "schedulers", "capabilities", "options", "model_name"]
)
async def test_an_unreachable_server_is_one_plain_sentence(call: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with SdServerClient(url) as sd:
        with pytest.raises(RemoteUnreachable) as caught:
            await getattr(sd, call)()
    assert str(caught.value) == (
        f"cannot reach sd-server at {url}: connection refused; is it running?"
    )


async def test_an_unknown_host_is_named() -> None:
    async with SdServerClient("http://no-such-host.invalid:1234") as sd:
        with pytest.raises(
            RemoteUnreachable,
            match=r"no-such-host\.invalid:1234: unknown host name; is it running\?",
        ):
            await sd.loras()
