"""A1111's model switch, through options and through `override_settings`: a queued switch job
(a restart of the managed sd-server), then the new model in every answer."""

from __future__ import annotations

import json

from tests.api_a1111.conftest import A1111Server, sha256_of

SMALL = {"width": 64, "height": 64, "steps": 1}


def test_options_report_the_loaded_model_and_a_post_switches_it(own_server: A1111Server) -> None:
    sd15, pony = sha256_of("sd15"), sha256_of("pony")
    before = own_server.get("/sdapi/v1/options").json()
    assert before["sd_model_checkpoint"] == f"sd15.safetensors [{sd15[:10]}]"
    assert before["sd_checkpoint_hash"] == sd15
    assert before["CLIP_stop_at_last_layers"] == 1  # sd15's default

    answer = own_server.post(
        "/sdapi/v1/options", {"sd_model_checkpoint": f"pony.safetensors [{pony[:10]}]"}
    )

    assert answer.status_code == 200 and answer.json() is None
    after = own_server.get("/sdapi/v1/options").json()
    assert after["sd_model_checkpoint"] == f"pony.safetensors [{pony[:10]}]"
    assert after["CLIP_stop_at_last_layers"] == 2  # pony's default
    assert own_server.fake_model() == str(own_server.tree.checkpoint("pony"))
    switches = [job for job in own_server.api("/api/jobs") if job["kind"] == "switch"]
    assert [(job["state"], job["model"]) for job in switches] == [
        ("done", str(own_server.tree.checkpoint("pony")))
    ]
    # later requests without a checkpoint run on it
    info = json.loads(own_server.post("/sdapi/v1/txt2img", {"prompt": "x", **SMALL}).json()["info"])
    assert (info["sd_model_name"], info["sd_model_hash"]) == ("pony", pony[:10])


def test_override_settings_switch_the_model_for_the_request(own_server: A1111Server) -> None:
    pony = sha256_of("pony")
    payload = {
        "prompt": "a pony",
        "override_settings": {"sd_model_checkpoint": "pony", "CLIP_stop_at_last_layers": 1},
        **SMALL,
    }

    answer = own_server.post("/sdapi/v1/txt2img", payload)

    assert answer.status_code == 200, answer.text
    info = json.loads(answer.json()["info"])
    assert (info["sd_model_name"], info["sd_model_hash"], info["clip_skip"]) == (
        "pony",
        pony[:10],
        1,
    )
    assert own_server.fake_model() == str(own_server.tree.checkpoint("pony"))
    # the model stays loaded (switching back would cost another restart): options say so
    options = own_server.get("/sdapi/v1/options").json()
    assert options["sd_model_checkpoint"] == f"pony.safetensors [{pony[:10]}]"
    # names A1111 uses for the same checkpoint: title, file name, hash
    for name in (
        f"sd15.safetensors [{sha256_of('sd15')[:10]}]",
        "sd15.safetensors",
        sha256_of("sd15")[:10],
    ):
        again = own_server.post(
            "/sdapi/v1/txt2img", {**payload, "override_settings": {"sd_model_checkpoint": name}}
        )
        assert json.loads(again.json()["info"])["sd_model_name"] == "sd15", name


def test_clip_skip_set_through_options_applies_to_later_requests(own_server: A1111Server) -> None:
    assert (
        own_server.post(
            "/sdapi/v1/options", {"CLIP_stop_at_last_layers": 2, "samples_format": "jpg"}
        ).status_code
        == 200
    )

    info = json.loads(own_server.post("/sdapi/v1/txt2img", {"prompt": "x", **SMALL}).json()["info"])

    assert info["clip_skip"] == 2
    assert own_server.get("/sdapi/v1/options").json()["CLIP_stop_at_last_layers"] == 2
    assert own_server.fake_model() == str(own_server.tree.checkpoint("sd15"))


def test_an_unknown_checkpoint_is_refused_with_close_names(own_server: A1111Server) -> None:
    answer = own_server.post("/sdapi/v1/options", {"sd_model_checkpoint": "sd16"})

    assert answer.status_code == 404
    assert "there is no checkpoint named 'sd16'" in answer.json()["detail"]
    assert "close names: sd15.safetensors" in answer.json()["detail"]
    assert own_server.api("/api/jobs") == []
