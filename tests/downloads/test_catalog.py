"""CivitAI answers are cached briefly and in bounded number; names are spelled CivitAI's way."""

from __future__ import annotations

from pathlib import Path

from tests.downloads.conftest import make_config
from tests.fakes.civitai import FakeCivitai
from tsr.downloads.catalog import CivitaiCatalog, civitai_base_model, civitai_type


def test_answers_expire_after_the_cache_time(
    isolated_home: Path, fake_civitai: FakeCivitai
) -> None:
    fake_civitai.add(model_id=1, version_id=11, sha256="a" * 64)
    now = [1000.0]
    catalog = CivitaiCatalog(
        make_config(isolated_home, fake_civitai.url), cache_seconds=300, clock=lambda: now[0]
    )

    catalog.model(1)
    now[0] += 299
    catalog.model(1)
    assert len(fake_civitai.calls("GET", "/api/v1/models/1")) == 1
    now[0] += 2
    catalog.model(1)
    assert len(fake_civitai.calls("GET", "/api/v1/models/1")) == 2
    catalog.close()


def test_the_cache_keeps_a_bounded_number_of_answers(
    isolated_home: Path, fake_civitai: FakeCivitai
) -> None:
    for n in range(1, 4):
        fake_civitai.add(model_id=n, version_id=n * 10, sha256=f"{n}" * 64)
    catalog = CivitaiCatalog(make_config(isolated_home, fake_civitai.url), cache_entries=2)

    catalog.model(1)
    catalog.model(2)
    catalog.model(3)  # model 1 is the oldest: it goes
    catalog.model(3)
    catalog.model(1)

    assert len(fake_civitai.calls("GET", "/api/v1/models/3")) == 1
    assert len(fake_civitai.calls("GET", "/api/v1/models/1")) == 2
    catalog.close()


def test_types_and_base_models_in_civitai_spelling() -> None:
    assert [civitai_type(t) for t in ("lora", "checkpoint", "embedding", "vae", "Odd")] == [
        "LORA",
        "Checkpoint",
        "TextualInversion",
        "VAE",
        "Odd",
    ]
    assert civitai_base_model("sdxl 1.0") == "SDXL 1.0"
    assert civitai_base_model("pony") == "Pony"
    assert civitai_base_model("Some Future Model") == "Some Future Model"
