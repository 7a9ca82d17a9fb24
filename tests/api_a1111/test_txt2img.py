"""POST /sdapi/v1/txt2img as A1111 scripts send it: LoRA tags, WebUI sampler labels, A1111's
answer with real seeds, and every image filed into the gallery."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.api_a1111.conftest import A1111_INFO_KEYS, A1111Server, decode_png, sha256_of

SMALL = {"width": 64, "height": 64, "steps": 3}


def _fake_pixels(server: A1111Server, payload: dict[str, Any]) -> list[bytes]:
    """The pixels the fake sd-server itself paints for a request in sd.cpp's own terms."""
    # listing the LoRAs makes sd-server accept them (its quirk)
    httpx.get(f"{server.fake_url}/sdapi/v1/loras", timeout=5).raise_for_status()
    answer = httpx.post(f"{server.fake_url}/sdapi/v1/txt2img", json=payload, timeout=30)
    answer.raise_for_status()
    return [decode_png(image).tobytes() for image in answer.json()["images"]]


def test_a_lora_tag_and_a_legacy_sampler_label_reach_sd_server_structured(
    a1111: A1111Server,
) -> None:
    payload = {
        "prompt": "a red cube <lora:sd15-detail:0.8>",
        "negative_prompt": "blurry",
        "sampler_name": "DPM++ 2M Karras",
        "cfg_scale": 6.5,
        "seed": 1234,
        "batch_size": 2,
        "styles": ["my style"],
        "restore_faces": False,
        "alwayson_scripts": {},
        **SMALL,
    }

    answer = a1111.post("/sdapi/v1/txt2img", payload)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"images", "parameters", "info"}
    assert body["parameters"]["prompt"] == payload["prompt"]
    assert body["parameters"]["sampler_name"] == "DPM++ 2M Karras"
    # what sd-server got: the LoRA as a structured entry (not prompt text), dpm++2m + karras
    expected = _fake_pixels(
        a1111,
        {
            "prompt": "a red cube",
            "negative_prompt": "blurry",
            "sampler_name": "dpm++2m",
            "scheduler": "karras",
            "lora": [{"path": "sd15-detail.safetensors", "multiplier": 0.8}],
            "cfg_scale": 6.5,
            "seed": 1234,
            "batch_size": 2,
            **SMALL,
        },
    )
    assert [decode_png(image).tobytes() for image in body["images"]] == expected
    info = json.loads(body["info"])
    assert set(info) >= A1111_INFO_KEYS
    assert info["all_seeds"] == [1234, 1235] and info["seed"] == 1234
    assert (info["sampler_name"], info["extra_generation_params"]["Schedule type"]) == (
        "DPM++ 2M",
        "Karras",
    )
    assert (info["steps"], info["cfg_scale"], info["width"], info["batch_size"]) == (3, 6.5, 64, 2)
    assert info["sd_model_name"] == "sd15"
    assert info["sd_model_hash"] == sha256_of("sd15")[:10]
    assert info["prompt"] == payload["prompt"] and info["all_prompts"] == [payload["prompt"]] * 2
    assert info["negative_prompt"] == "blurry"
    assert info["styles"] == []
    assert (
        "sd15-detail: " + sha256_of("sd15-detail")[:12]
        in info["extra_generation_params"]["Lora hashes"]
    )
    # each PNG carries its A1111 parameters, as A1111's answers do
    for image, text in zip(body["images"], info["infotexts"], strict=True):
        assert decode_png(image).text["parameters"] == text
    assert info["infotexts"][0].startswith(
        "a red cube <lora:sd15-detail:0.8>\nNegative prompt: blurry\n"
    )
    assert (
        "Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234"
        in (info["infotexts"][0])
    )


def test_the_images_are_filed_into_the_gallery_with_a1111_parameters(a1111: A1111Server) -> None:
    payload = {"prompt": "a lighthouse <lora:ink:0.5>", "seed": 77, **SMALL}

    info = json.loads(a1111.post("/sdapi/v1/txt2img", payload).json()["info"])

    image_ids = info["tsr"]["image_ids"]
    assert len(image_ids) == 1
    listed = {item["id"]: item for item in a1111.api("/api/images", limit=100)["items"]}
    saved = listed[image_ids[0]]
    assert saved["seed"] == 77 and saved["checkpoint"] == "sd15"
    assert saved["loras"] == [{"name": "ink", "weight": 0.5, "sha256": sha256_of("ink")}]
    assert saved["parameters"] == info["infotexts"][0]
    assert saved["parameters"].startswith("a lighthouse <lora:ink:0.5>\n")
    assert "Seed: 77, Size: 64x64" in saved["parameters"]


def test_n_iter_queues_one_job_per_batch_with_consecutive_seeds(a1111: A1111Server) -> None:
    payload = {"prompt": "a tree", "seed": 500, "n_iter": 2, "batch_size": 2, **SMALL}

    body = a1111.post("/sdapi/v1/txt2img", payload).json()

    info = json.loads(body["info"])
    assert len(body["images"]) == 4
    assert info["all_seeds"] == [500, 501, 502, 503]
    assert len(info["tsr"]["jobs"]) == 2
    jobs = {job["id"]: job for job in a1111.api("/api/jobs")}
    assert [jobs[job_id]["seeds"] for job_id in info["tsr"]["jobs"]] == [[500, 501], [502, 503]]


def test_a_random_seed_comes_back_real_and_send_images_false_sends_none(
    a1111: A1111Server,
) -> None:
    body = a1111.post("/sdapi/v1/txt2img", {"prompt": "fog", "send_images": False, **SMALL}).json()

    info = json.loads(body["info"])
    assert body["images"] == []
    assert info["seed"] >= 0 and info["all_seeds"] == [info["seed"]]
    assert len(info["tsr"]["image_ids"]) == 1  # in the gallery all the same


def test_fields_left_out_take_the_family_defaults(a1111: A1111Server) -> None:
    body = a1111.post("/sdapi/v1/txt2img", {"prompt": "a hill", "width": 64, "height": 64})

    info = json.loads(body.json()["info"])
    # sd15's defaults (model-defaults.toml), not A1111's fixed 50 steps and Euler
    assert (info["steps"], info["cfg_scale"], info["sampler_name"]) == (25, 7.0, "DPM++ 2M")
    assert info["extra_generation_params"]["Schedule type"] == "Karras"
    assert info["negative_prompt"] == ""  # A1111's default: no negative prompt
    assert info["clip_skip"] == 1
