"""What the A1111 front refuses, with one clear sentence, before anything is queued."""

from __future__ import annotations

import pytest

from tests.api_a1111.conftest import A1111Server

SMALL = {"width": 64, "height": 64, "steps": 1}


def _job_count(server: A1111Server) -> int:
    return len(server.api("/api/jobs"))


def test_an_unknown_lora_is_refused_with_close_names(a1111: A1111Server) -> None:
    before = _job_count(a1111)

    answer = a1111.post("/sdapi/v1/txt2img", {"prompt": "a cat <lora:sd15-detial:1>", **SMALL})

    assert answer.status_code == 404
    detail = answer.json()["detail"]
    assert "there is no LoRA named 'sd15-detial'" in detail
    assert "close names: sd15-detail" in detail
    assert "GET /sdapi/v1/loras" in detail
    assert _job_count(a1111) == before


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"sampler_name": "UniPC"}, 400, "sampler_name: unknown sampler 'UniPC'; valid samplers"),
        ({"sampler_name": "DPM++ 2M Karras", "scheduler": "simple"}, 400, "implies scheduler"),
        ({"scheduler": "wobbly"}, 400, "scheduler: unknown scheduler 'wobbly'"),
        (
            {"override_settings": {"sd_model_checkpoint": "sd-15"}},
            404,
            "there is no checkpoint named 'sd-15'",
        ),
        ({"prompt": "<lora:ink:0.5>"}, 400, "only LoRA tags"),
        ({"prompt": "x <lora:ink:abc>"}, 400, "the weight in <lora:ink:abc> is not a number"),
        ({"prompt": "x <lora:ink:1:0.5>"}, 400, "one weight per LoRA"),
        ({"override_settings": {"CLIP_stop_at_last_layers": 40}}, 400, "from 1 to 12"),
    ],
)
def test_unknown_names_are_refused_naming_the_field(
    a1111: A1111Server, change: dict[str, object], status: int, says: str
) -> None:
    before = _job_count(a1111)

    answer = a1111.post("/sdapi/v1/txt2img", {"prompt": "a cat", **SMALL, **change})

    assert answer.status_code == status, answer.text
    assert says in answer.json()["detail"]
    assert _job_count(a1111) == before


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"width": 100}, "width", "100 is not a multiple of 64"),
        ({"steps": 0}, "steps", "greater than or equal to 1"),
        ({"batch_size": 9}, "batch_size", "less than or equal to 8"),
        ({"prompt": "  "}, "prompt", "the prompt is empty"),
        ({"enable_hr": True}, "enable_hr", "the hires fix is not supported"),
        ({"script_name": "X/Y/Z plot"}, "script_name", "Script 'X/Y/Z plot' not found"),
        ({"width": "wide"}, "width", "valid integer"),
    ],
)
def test_bad_values_answer_a1111s_422(
    a1111: A1111Server, change: dict[str, object], field: str, says: str
) -> None:
    answer = a1111.post("/sdapi/v1/txt2img", {"prompt": "a cat", **SMALL, **change})

    assert answer.status_code == 422
    errors = answer.json()["detail"]
    assert errors[0]["loc"] == ["body", field]
    assert says in errors[0]["msg"]


def test_a_request_without_a_prompt_is_refused(a1111: A1111Server) -> None:
    answer = a1111.post("/sdapi/v1/txt2img", SMALL)

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "prompt"]
    assert "the prompt is empty" in answer.json()["detail"][0]["msg"]
