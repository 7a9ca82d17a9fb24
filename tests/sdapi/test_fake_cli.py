"""The fake sd-server's command line behaves like sd-server's: flags, defaults, errors, log."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.fakes.sd_server import start_in_thread
from tests.fakes.sd_server_fixtures import (
    FakeSdServer,
    fake_sd_server_command,
    write_launcher,
    write_safetensors,
)
from tsr.sdapi import GenerationParams, SdServerClient, png_text_chunks

StartFake = Callable[..., FakeSdServer]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*fake_sd_server_command(), *args], capture_output=True, text=True, timeout=20, check=False
    )


def test_an_unknown_flag_is_an_error() -> None:
    result = run("-m", "model.safetensors", "--bogus-flag", "1")
    assert result.returncode == 1
    assert "error: unknown argument: --bogus-flag" in result.stderr


def test_an_unknown_sampling_method_flag_is_an_error() -> None:
    result = run("-m", "model.safetensors", "--sampling-method", "DPM++ 2M")
    assert result.returncode == 1
    assert "invalid sample method: DPM++ 2M" in result.stderr


async def test_the_fake_can_also_run_inside_the_test_process(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "inproc.safetensors")
    fake = start_in_thread(["-m", str(model), "--listen-port", "0"])
    try:
        async with SdServerClient(fake.url) as sd:
            assert await sd.model_name() == "inproc.safetensors"
            result = await sd.generate(GenerationParams(prompt="x", width=64, height=64, seed=2))
        assert result.seeds == [2]
    finally:
        fake.stop()


def test_a_model_is_required() -> None:
    result = run("--listen-port", "0")
    assert result.returncode == 1
    assert "model_path" in result.stderr


def test_the_launcher_script_runs_the_fake(tmp_path: Path) -> None:
    launcher = write_launcher(tmp_path / "bin")
    result = subprocess.run(
        [str(launcher), "--nope"], capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 1
    assert "error: unknown argument: --nope" in result.stderr


async def test_server_flags_become_the_generation_defaults(
    fake_sd_server_factory: StartFake,
) -> None:
    fake = fake_sd_server_factory(
        extra_args=[
            *("--steps", "5", "--cfg-scale", "4.5", "--clip-skip", "2", "-t", "4"),
            *("--sampling-method", "euler", "--scheduler", "simple", "-v"),
            *("--fake-latency", "0.01", "--fake-job-ttl", "30"),
        ]
    )
    async with SdServerClient(fake.url) as sd:
        caps = await sd.capabilities()
        result = await sd.txt2img({"prompt": "x", "width": 64, "height": 64})
    sample = caps.defaults["sample_params"]
    assert (sample["sample_steps"], sample["sample_method"], sample["scheduler"]) == (
        5,
        "euler",
        "simple",
    )
    assert result.info.steps == 5
    assert result.info.cfg_scale == 4.5
    assert result.info.clip_skip == 2
    assert result.info.sampler_name == "euler"
    assert result.info.extra_generation_params == {"Schedule type": "simple"}
    assert (fake.state()["latency"], fake.state()["job_ttl"]) == (0.01, 30.0)


async def test_a_flux_style_start_names_every_file(
    fake_sd_server_factory: StartFake, tmp_path: Path
) -> None:
    parts = {
        flag: write_safetensors(tmp_path / name)
        for flag, name in (
            ("--clip_l", "clip_l.safetensors"),
            ("--t5xxl", "t5xxl_fp16.safetensors"),
            ("--vae", "ae.safetensors"),
        )
    }
    fake = fake_sd_server_factory(
        model_name="flux1-dev.safetensors",
        model_flag="--diffusion-model",
        extra_args=[item for flag, path in parts.items() for item in (flag, str(path))],
    )
    async with SdServerClient(fake.url) as sd:
        assert await sd.model_name() == "flux1-dev.safetensors"
        result = await sd.txt2img({"prompt": "x", "width": 64, "height": 64, "seed": 1})
    assert result.info.sd_model_name == "flux1-dev.safetensors"
    assert result.info.model_extra is not None
    assert result.info.model_extra["sd_vae_name"] == "ae.safetensors"
    assert (
        "TE: clip_l.safetensors, TE: t5xxl_fp16.safetensors, Unet: flux1-dev.safetensors, "
        "VAE: ae.safetensors, Version: stable-diffusion.cpp" in result.info.infotexts[0]
    )


async def test_without_image_metadata_the_client_still_learns_the_seeds(
    fake_sd_server_factory: StartFake,
) -> None:
    fake = fake_sd_server_factory(extra_args=["--disable-image-metadata"])
    async with SdServerClient(fake.url) as sd:
        plain = await sd.txt2img({"prompt": "x", "width": 64, "height": 64})
        native = await sd.generate(GenerationParams(prompt="x", width=64, height=64, seed=-1))
    assert "parameters" not in png_text_chunks(plain.images[0])
    assert native.seeds[0] >= 0  # tsr asks for the metadata per request
    assert f"Seed: {native.seeds[0]}," in native.images[0].infotext


async def test_requests_and_generations_are_logged(fake_sd_server: FakeSdServer) -> None:
    async with SdServerClient(fake_sd_server.url) as sd:
        await sd.txt2img({"prompt": "x", "width": 64, "height": 64, "seed": 3})
    log = fake_sd_server.log_text()
    assert '"POST /sdapi/v1/txt2img HTTP/1.1" 200' in log
    assert "generating 1 image(s) 64x64" in log
    assert "generate_image completed in" in log
