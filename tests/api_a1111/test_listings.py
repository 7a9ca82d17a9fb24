"""What A1111 clients list at start: models with real hashes, LoRAs, samplers, schedulers; and
the refresh endpoints that rescan the model roots."""

from __future__ import annotations

from tests.api_a1111.conftest import A1111Server, sha256_of
from tests.modelfiles import write_sd15_checkpoint, write_sd15_lora


def test_sd_models_carry_a1111_titles_and_real_hashes(a1111: A1111Server) -> None:
    models = a1111.get("/sdapi/v1/sd-models").json()

    sd15 = next(m for m in models if m["model_name"] == "sd15")
    digest = sha256_of("sd15")
    assert sd15 == {
        "title": f"sd15.safetensors [{digest[:10]}]",
        "model_name": "sd15",
        "hash": digest[:10],
        "sha256": digest,
        "filename": str(a1111.tree.checkpoint("sd15")),
        "config": None,
    }
    assert {m["model_name"] for m in models} == {"sd15", "pony"}


def test_loras_list_tag_names_paths_and_training_metadata(a1111: A1111Server) -> None:
    loras = {item["name"]: item for item in a1111.get("/sdapi/v1/loras").json()}

    assert set(loras) == {"sd15-detail", "ink"}
    ink = loras["ink"]
    assert ink["path"] == str(a1111.tree.loras / "styles" / "ink.safetensors")
    assert ink["alias"] == "mychar"  # ss_output_name, as A1111 shows it
    assert ink["metadata"]["ss_base_model_version"] == "sd_v1"
    # JSON inside the metadata strings comes parsed, as A1111 serves it
    assert isinstance(ink["metadata"]["ss_tag_frequency"], dict)


def test_samplers_and_schedulers_use_webui_names(a1111: A1111Server) -> None:
    samplers = {item["name"]: item for item in a1111.get("/sdapi/v1/samplers").json()}
    schedulers = {item["name"]: item for item in a1111.get("/sdapi/v1/schedulers").json()}

    assert samplers["DPM++ 2M"] == {
        "name": "DPM++ 2M",
        "aliases": ["k_dpmpp_2m", "dpm++2m"],
        "options": {},
    }
    assert samplers["Euler a"]["options"] == {"uses_ensd": True}
    assert "ipndm" in samplers  # an sd.cpp method without a WebUI label
    assert "UniPC" not in samplers
    assert schedulers["karras"] == {
        "name": "karras",
        "label": "Karras",
        "aliases": None,
        "default_rho": 7.0,
        "need_inner_model": None,
    }
    assert schedulers["sgm_uniform"]["aliases"] == ["SGMUniform"]
    assert "align_your_steps" in schedulers and "gits" in schedulers


def test_the_names_listed_are_the_names_accepted(a1111: A1111Server) -> None:
    for sampler in ("k_dpmpp_2m_ka", "Euler a", "euler_a", "ipndm"):
        answer = a1111.post(
            "/sdapi/v1/txt2img",
            {"prompt": "x", "sampler_name": sampler, "scheduler": "align_your_steps",
             "width": 64, "height": 64, "steps": 1, "send_images": False},
        )  # fmt: skip
        if sampler == "k_dpmpp_2m_ka":
            # the old alias means DPM++ 2M *Karras*: another scheduler contradicts it
            assert answer.status_code == 400, answer.text
            continue
        assert answer.status_code == 200, (sampler, answer.text)


def test_refresh_loras_scans_new_files_before_it_answers(a1111: A1111Server) -> None:
    write_sd15_lora(a1111.tree.loras / "fresh.safetensors")
    assert "fresh" not in {item["name"] for item in a1111.get("/sdapi/v1/loras").json()}

    answer = a1111.post("/sdapi/v1/refresh-loras", None)

    assert answer.status_code == 200 and answer.json() is None
    assert "fresh" in {item["name"] for item in a1111.get("/sdapi/v1/loras").json()}
    tasks = a1111.api("/api/db/tasks")
    assert tasks[0]["kind"] == "scan" and tasks[0]["state"] == "done"
    assert tasks[0]["params"]["roots"] == [str(a1111.tree.loras)]
    # and the new LoRA works in a prompt at once
    used = a1111.post(
        "/sdapi/v1/txt2img",
        {"prompt": "x <lora:fresh:0.3>", "width": 64, "height": 64, "steps": 1},
    )
    assert used.status_code == 200, used.text


def test_refresh_checkpoints_scans_the_checkpoint_roots(a1111: A1111Server) -> None:
    write_sd15_checkpoint(a1111.tree.checkpoints / "more" / "extra.safetensors")

    assert a1111.post("/sdapi/v1/refresh-checkpoints", None).status_code == 200

    titles = [m["title"] for m in a1111.get("/sdapi/v1/sd-models").json()]
    assert f"more/extra.safetensors [{sha256_of('extra')[:10]}]" in titles


def test_server_facts_are_minimal_and_honest(a1111: A1111Server) -> None:
    memory = a1111.get("/sdapi/v1/memory").json()
    assert memory["ram"]["total"] > memory["ram"]["free"] > 0
    assert "sd-server reports no memory" in memory["cuda"]["error"]
    flags = a1111.get("/sdapi/v1/cmd-flags").json()
    assert flags["api"] is True and "api_auth" not in flags
    assert a1111.get("/sdapi/v1/sd-vae").json() == []
    assert a1111.get("/sdapi/v1/scripts").json() == {"txt2img": [], "img2img": []}
    assert a1111.get("/sdapi/v1/upscalers").json()[0]["name"] == "None"
    assert a1111.get("/sdapi/v1/nothing-here").status_code == 404
