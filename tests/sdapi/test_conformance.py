"""The fake sd-server answers the recorded real exchanges (samples/) in the same shapes."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.sd_server_fixtures import FakeSdServer, start_fake_sd_server
from tsr.sdapi import parse_sdcpp_infotext, png_size, png_text_chunks

SAMPLES = Path(__file__).with_name("samples")
SHARED_SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "docs" / "sd-server-samples"
DISCOVERY = ["root", "loras", "samplers", "schedulers", "options", "sd-models"]


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text())
    return data


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and value kinds, list items merged."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        kinds: list[Any] = []
        for item in value:
            if shape(item) not in kinds:
                kinds.append(shape(item))
        return kinds
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSdServer]:
    """A fake set up like the recording: sd15-random.safetensors and one tiny LoRA."""
    server = start_fake_sd_server(
        tmp_path_factory.mktemp("conformance"), loras=["tiny-random-lora.safetensors"]
    )
    yield server
    server.stop()


def replay(fake: FakeSdServer, name: str) -> httpx.Response:
    request = sample(name)["request"]
    body = request["body"]
    content = body.encode() if isinstance(body, str) else None
    return httpx.request(
        request["method"],
        fake.url + request["path"],
        json=body if not isinstance(body, str) and body is not None else None,
        content=content,
        timeout=10,
    )


def test_the_samples_here_are_the_recorded_ones() -> None:
    if not SHARED_SAMPLES.is_dir():
        pytest.skip("the shared docs are not beside this checkout")
    for path in SHARED_SAMPLES.iterdir():
        assert (SAMPLES / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.parametrize("name", DISCOVERY)
def test_discovery_answers_match_exactly(fake: FakeSdServer, name: str) -> None:
    response = replay(fake, name)
    expected = sample(name)
    assert response.status_code == expected["status"]
    answer = response.text if name == "root" else response.json()
    assert answer == expected["response"]


def test_capabilities_match_except_the_model_folder(fake: FakeSdServer) -> None:
    replay(fake, "loras")  # the recording was made after the LoRA list was refreshed
    response = replay(fake, "capabilities")
    answer, expected = response.json(), sample("capabilities")["response"]
    assert response.status_code == 200
    assert answer["model"]["path"] == str(fake.model)
    answer["model"]["path"] = expected["model"]["path"]
    assert answer == expected


@pytest.mark.parametrize(
    "name", ["err-no-prompt", "err-lora-no-ext", "err-bad-json", "err-bad-type", "unknown-path"]
)
def test_errors_match(fake: FakeSdServer, name: str) -> None:
    replay(fake, "loras")
    response = replay(fake, name)
    expected = sample(name)
    assert response.status_code == expected["status"]
    if name == "unknown-path":
        assert response.content == b""
        return
    assert shape(response.json()) == shape(expected["response"])
    if expected["status"] == 400:
        assert response.json() == expected["response"]


def assert_same_png_metadata(ours_b64: str, recorded_b64: str) -> None:
    ours, recorded = base64.b64decode(ours_b64), base64.b64decode(recorded_b64)
    assert png_size(ours) == png_size(recorded)
    assert ours[24:26] == recorded[24:26]  # bit depth and colour type (8-bit RGB)
    assert png_text_chunks(ours) == png_text_chunks(recorded)


@pytest.mark.parametrize("name", ["txt2img-lora", "txt2img-unknown-sampler"])
def test_txt2img_answers_match_including_info_and_png_text(fake: FakeSdServer, name: str) -> None:
    replay(fake, "loras")
    response = replay(fake, name)
    answer, expected = response.json(), sample(name)["response"]
    assert response.status_code == 200
    assert shape(answer) == shape(expected)
    assert list(answer) == ["images", "info", "parameters"]
    assert answer["parameters"] == expected["parameters"]
    assert json.loads(answer["info"]) == json.loads(expected["info"])
    assert len(answer["images"]) == len(expected["images"])
    for ours, recorded in zip(answer["images"], expected["images"], strict=True):
        assert_same_png_metadata(ours, recorded)


def wait_for(fake: FakeSdServer, job_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        job: dict[str, Any] = httpx.get(f"{fake.url}/sdcpp/v1/jobs/{job_id}").json()
        if job["status"] == status:
            return job
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} never became {status}")


def test_native_job_lifecycle_matches(fake: FakeSdServer) -> None:
    replay(fake, "loras")
    fake.set_mode(hold=True)
    submitted = replay(fake, "native-submit")
    assert submitted.status_code == 202
    assert shape(submitted.json()) == shape(sample("native-submit")["response"])
    job_id = submitted.json()["id"]
    assert submitted.json()["poll_url"] == f"/sdcpp/v1/jobs/{job_id}"

    early = wait_for(fake, job_id, "generating")
    assert shape(early) == shape(sample("native-poll-early")["response"])
    fake.set_mode(hold=False)

    done = wait_for(fake, job_id, "completed")
    recorded = sample("native-poll-done")["response"]
    assert shape(done) == shape(recorded)
    assert_same_png_metadata(
        done["result"]["images"][0]["b64_json"], recorded["result"]["images"][0]["b64_json"]
    )

    unknown = replay(fake, "native-unknown-job")
    assert unknown.status_code == 404
    assert unknown.json() == sample("native-unknown-job")["response"]


def test_recorded_infotext_parses() -> None:
    recorded = sample("txt2img-lora")["response"]["images"][1]
    text = png_text_chunks(base64.b64decode(recorded))["parameters"]
    parsed = parse_sdcpp_infotext(text)
    assert parsed.prompt == "a red cube on a table"
    assert parsed.negative_prompt == "blurry"
    assert parsed.seed == 1235
    assert parsed.fields["Sampler"] == "euler_a karras"
    assert parsed.fields["Size"] == "64x64"
    assert parsed.sdcpp["loras"][0]["name"] == "tiny-random-lora.safetensors"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/sdapi/v1/options"),
        ("POST", "/sdapi/v1/refresh-checkpoints"),
        ("POST", "/sdapi/v1/reload-checkpoint"),
        ("GET", "/sdapi/v1/txt2img"),
        ("PUT", "/sdapi/v1/loras"),
        ("DELETE", "/sdcpp/v1/jobs/job_nope"),
        ("GET", "/health"),
    ],
)
def test_no_model_switch_and_unknown_routes_are_404_with_an_empty_body(
    fake: FakeSdServer, method: str, path: str
) -> None:
    response = httpx.request(method, fake.url + path, json={} if method != "GET" else None)
    assert (response.status_code, response.content) == (404, b"")


def test_openai_endpoint_uses_a_fixed_seed_unless_told_otherwise(fake: FakeSdServer) -> None:
    def images(prompt: str) -> list[str]:
        body = {"prompt": prompt, "n": 2, "size": "64x64"}
        answer = httpx.post(f"{fake.url}/v1/images/generations", json=body, timeout=10).json()
        assert set(answer) == {"created", "data"}
        return [item["b64_json"] for item in answer["data"]]

    first, again = images("a red cube"), images("a red cube")
    told = images('a red cube<sd_cpp_extra_args>{"seed": 7}</sd_cpp_extra_args>')
    assert first == again and len(first) == 2
    assert told != first
    text = png_text_chunks(base64.b64decode(told[0]))["parameters"]
    assert text.startswith("a red cube\n") and "Seed: 7," in text
