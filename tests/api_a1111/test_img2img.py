"""POST /sdapi/v1/img2img: the init image and strength reach sd-server through the job queue,
the images land in the gallery, and bad init images are refused before anything is queued."""

from __future__ import annotations

import base64
import io
import json

import httpx
import pytest
from PIL import Image

from tests.api_a1111.conftest import A1111Server, decode_png


def _png(width: int, height: int, colour: tuple[int, int, int] = (200, 40, 40)) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def test_the_init_image_and_strength_reach_sd_server(a1111: A1111Server) -> None:
    init = _png(64, 128)
    payload = {
        "prompt": "a red door",
        "init_images": [f"data:image/png;base64,{init}"],
        "denoising_strength": 0.4,
        "sampler_name": "Euler a",
        "steps": 2,
        "seed": 99,
    }

    answer = a1111.post("/sdapi/v1/img2img", payload)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    own = httpx.post(
        f"{a1111.fake_url}/sdapi/v1/img2img",
        json={
            "prompt": "a red door",
            "negative_prompt": "",
            "init_images": [init],
            "denoising_strength": 0.4,
            "sampler_name": "euler_a",
            "scheduler": "karras",  # sd15's default scheduler
            "cfg_scale": 7.0,
            "steps": 2,
            "seed": 99,
        },
        timeout=30,
    ).json()
    assert decode_png(body["images"][0]).tobytes() == decode_png(own["images"][0]).tobytes()
    assert decode_png(body["images"][0]).size == (64, 128)
    info = json.loads(body["info"])
    assert (info["denoising_strength"], info["width"], info["height"]) == (0.4, 64, 128)
    assert "Denoising strength: 0.4" in info["infotexts"][0]
    # the init image is not echoed unless asked for, as A1111 does
    assert body["parameters"]["init_images"] is None
    saved = a1111.api(f"/api/images/{info['tsr']['image_ids'][0]}/meta")
    assert saved["extra"]["Denoising strength"] == 0.4
    jobs = a1111.api("/api/jobs")
    assert "init_image" not in json.dumps(jobs)  # never in a job listing (it may be megabytes)


def test_another_size_resizes_the_init_image(a1111: A1111Server) -> None:
    payload = {
        "prompt": "x",
        "init_images": [_png(100, 50)],
        "width": 128,
        "height": 64,
        "steps": 1,
    }

    for mode in (0, 1):
        body = a1111.post("/sdapi/v1/img2img", {**payload, "resize_mode": mode}).json()
        assert decode_png(body["images"][0]).size == (128, 64)


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"init_images": None}, 400, "init_images: send one base64 image"),
        ({"init_images": ["not base64!"]}, 400, "not valid base64"),
        ({"init_images": [base64.b64encode(b"no image").decode()]}, 400, "cannot be read"),
        ({"init_images": [_png(100, 50)]}, 400, "its width is 100"),
        ({"width": 128, "resize_mode": 2}, 400, "resize_mode 2 is not supported"),
        ({"denoising_strength": 1.5}, 422, "less than or equal to 1"),
        ({"mask": _png(64, 64)}, 422, "inpainting masks are not supported"),
    ],
)
def test_bad_init_images_are_refused(
    a1111: A1111Server, change: dict[str, object], status: int, says: str
) -> None:
    before = len(a1111.api("/api/jobs"))
    payload = {"prompt": "x", "init_images": [_png(64, 64)], "steps": 1, **change}

    answer = a1111.post("/sdapi/v1/img2img", payload)

    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert says in (detail if isinstance(detail, str) else detail[0]["msg"])
    assert len(a1111.api("/api/jobs")) == before
