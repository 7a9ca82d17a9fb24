"""`/api/models...`, `/api/samplers`, `/api/schedulers`, `/api/families` and `tsr models`, the same
against the embedded `local` server and a `tsr serve` process with a token."""

from __future__ import annotations

from typing import Any

from tests.api_generate.conftest import Cli, Stack, sha256_of
from tsr.client import Client
from tsr.errors import Conflict, RootViolation
from tsr.families import all_families, get_family


def _summary(entry: dict[str, Any]) -> tuple[Any, ...]:
    civitai = entry["civitai"]
    linked = (
        (civitai["model_name"], civitai["version_name"], civitai["base_model"]) if civitai else None
    )
    return (
        entry["name"],
        entry["family"],
        entry["size"],
        entry["sha256"],
        linked,
        entry["loaded_on"],
    )


def test_models_list_shows_families_civitai_links_and_where_each_is_loaded(
    cli: Cli, stack: Stack
) -> None:
    listed = cli.json("models", "list")

    tree = stack.tree
    expected = [
        ("flux.safetensors", "flux", tree.checkpoint("flux"), None, ["offline"]),
        (
            "pony.safetensors",
            "pony",
            tree.checkpoint("pony"),
            ("Pony Diffusion V6 XL", "V6 (start with this one)", "Pony"),
            [],
        ),
        ("sd15.safetensors", "sd15", tree.checkpoint("sd15"), None, ["gpu"]),
    ]
    assert [_summary(entry) for entry in listed] == [
        (name, family, path.stat().st_size, sha256_of(path), linked, loaded)
        for name, family, path, linked, loaded in expected
    ]
    # pony's family is decided by its CivitAI base model once linked
    assert listed[1]["family_signal"] == "CivitAI baseModel 'Pony'"
    assert {entry["kind"] for entry in listed} == {"checkpoint"}


def test_models_list_filters_and_the_table(api: Client, cli: Cli) -> None:
    assert [c.name for c in api.models.all(family="pony")] == ["pony.safetensors"]
    assert [c.name for c in api.models.all(q="Diffusion V6")] == ["pony.safetensors"]
    page = api.models.list(limit=2)
    assert (len(page.items), page.total, page.next_offset) == (2, 3, 2)
    pony = api.models.all(family="pony")[0]
    api.db.update_file(pony.id, {"hidden": True})
    try:
        assert "pony.safetensors" not in [c.name for c in api.models.all()]
        assert "pony.safetensors" in [c.name for c in api.models.all(hidden=True)]
    finally:
        api.db.update_file(pony.id, {"hidden": False})

    code, out, err = cli("models", "list")

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "FAMILY", "SIZE", "CIVITAI", "LOADED", "ON"]
    sd15 = next(line for line in lines if "sd15.safetensors" in line)
    assert sd15.startswith("*") and sd15.rstrip().endswith("gpu")
    assert "Pony Diffusion V6 XL / V6 (start with this one)" in out


def test_models_active_names_each_backend_its_model_and_file(cli: Cli, stack: Stack) -> None:
    backends = {b["name"]: b for b in cli.json("models", "active")}

    gpu, offline = backends["gpu"], backends["offline"]
    assert (gpu["kind"], gpu["state"], gpu["family"]) == ("managed", "ready", "sd15")
    assert gpu["model"] == str(stack.tree.checkpoint("sd15"))
    assert gpu["file"]["name"] == "sd15.safetensors"
    assert (offline["kind"], offline["state"], offline["family"]) == (
        "external",
        "unreachable",
        "flux",
    )
    assert offline["error"].startswith(f"cannot reach sd-server at {stack.offline_url}")
    assert offline["file"]["name"] == "flux.safetensors"
    code, out, err = cli("models", "active")
    assert code == 0
    assert out.splitlines()[1].split() == [
        "gpu",
        "managed",
        "ready",
        "sd15",
        "sd15.safetensors",
        "0",
    ]
    assert err.startswith(f"offline: cannot reach sd-server at {stack.offline_url}")


def test_switching_loads_the_model_on_the_fake_sd_server(
    api: Client, cli: Cli, stack: Stack
) -> None:
    try:
        code, out, err = cli("models", "switch", "pony", "--backend", "gpu")

        assert (code, err) == (0, "")
        assert out == f"backend gpu now holds {stack.tree.checkpoint('pony')}\n"
        assert stack.reported_model() == str(stack.tree.checkpoint("pony"))
        gpu = next(b for b in api.models.active() if b.name == "gpu")
        assert (gpu.state, gpu.family) == ("ready", "pony")
        assert [c.name for c in api.models.all() if c.loaded_on == ["gpu"]] == ["pony.safetensors"]
        switches = [j for j in api.generation.jobs(state="done") if j.kind == "switch"]
        assert switches[-1].model == str(stack.tree.checkpoint("pony"))
    finally:
        assert api.models.switch_and_wait("sd15", "gpu").state == "done"
    assert stack.reported_model() == str(stack.tree.checkpoint("sd15"))


def test_a_switch_outside_the_checkpoint_roots_is_refused(
    api: Client, cli: Cli, stack: Stack
) -> None:
    rogue = stack.tree.outside / "rogue.safetensors"
    with stack.http() as http:
        response = http.post("/api/models/switch", json={"model": str(rogue)})

    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"{rogue} is outside the checkpoint roots ({stack.tree.checkpoints}); not loading it"
    )
    code, _, err = cli("models", "switch", str(rogue))
    assert code == 1
    assert err.startswith(f"tsr: {rogue} is outside the checkpoint roots")
    assert stack.reported_model() == str(stack.tree.checkpoint("sd15"))
    try:
        api.models.switch("pony", "offline")
    except Conflict as exc:
        assert str(exc) == "backend offline serves only flux; pony is pony"
    else:
        raise AssertionError("a backend that serves only flux accepted pony")
    try:
        api.models.switch(str(rogue))
    except RootViolation:
        pass
    else:
        raise AssertionError("the client did not raise RootViolation")


def test_loras_are_listed_for_a_family_architecture(api: Client, cli: Cli) -> None:
    sd15 = api.models.loras(family="sd15")
    assert (sd15.family, sd15.architecture) == ("sd15", "sd1")
    assert [(x.name, x.compatible, x.note) for x in sd15.items] == [
        ("sd15-detail.safetensors", True, None)
    ]

    everything = api.models.loras(family="sd15", show_all=True)
    marks = {x.name: (x.compatible, x.note) for x in everything.items}
    assert marks == {
        "pony-style.safetensors": (False, "made for Pony (sdxl); SD 1.5 checkpoints are sd1"),
        "sd15-detail.safetensors": (True, None),
        "xl-ink.safetensors": (False, "made for SDXL (sdxl); SD 1.5 checkpoints are sd1"),
    }

    sdxl = {x.name: x for x in api.models.loras(family="sdxl").items}
    assert set(sdxl) == {"pony-style.safetensors", "xl-ink.safetensors"}
    pony_style = sdxl["pony-style.safetensors"]
    assert pony_style.note == "trained on Pony; same architecture as SDXL, results may differ"
    assert pony_style.civitai is not None and pony_style.civitai.model_name == "Flat Pony Style"
    # whole CivitAI entries, in CivitAI's order
    assert pony_style.triggers[:2] == ["flatstyle, bold lines", "ink wash"]
    # without a family: the active checkpoint's (gpu holds sd15)
    assert api.models.loras().family == "sd15"

    code, out, _ = cli("models", "loras", "--family", "pony", "--all")
    assert code == 0
    row = next(line for line in out.splitlines() if "sd15-detail" in line)
    assert row.startswith("x")
    assert "Flat Pony Style" in out and "flatstyle, bold lines" in out


def test_sampler_scheduler_and_family_choices(api: Client) -> None:
    samplers = api.models.samplers()
    assert (samplers[0].name, samplers[0].label) == ("euler_a", "Euler a")
    assert ("dpm++2m", "DPM++ 2M") in [(s.name, s.label) for s in samplers]
    assert ("ipndm", None) in [(s.name, s.label) for s in samplers]
    schedulers = {s.name: s.label for s in api.models.schedulers()}
    assert (schedulers["karras"], schedulers["sgm_uniform"]) == ("Karras", "SGM Uniform")
    assert schedulers["gits"] is None

    families = api.models.families()
    assert [f.name for f in families] == list(all_families())
    assert next(f for f in families if f.name == "pony") == get_family("pony")


def test_a_failed_switch_shows_the_reason_and_the_backend_log(cli: Cli, stack: Stack) -> None:
    # flux needs its text encoders and VAE, which this backend is not given
    code, out, err = cli("models", "switch", "flux", "--backend", "gpu")

    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0] == "last lines of backend gpu's log:"
    assert any(line.startswith("  ") and "starting:" in line for line in lines[1:-1])
    assert lines[-1] == (
        "tsr: this model family needs --clip_l: set CLIP_L in tsr's environment "
        "or add --clip_l PATH to the backend's args"
    )
    # the model it held goes on serving
    assert stack.reported_model() == str(stack.tree.checkpoint("sd15"))
