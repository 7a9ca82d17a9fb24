"""The CivitAI client against the fake over real HTTP: lookups, paging, keys, retries, faults."""

from __future__ import annotations

import hashlib
import json
import socket

import httpx
import pytest

from tests.fakes.civitai import FakeCivitai
from tsr.civitai import CivitaiClient, parse_retry_after
from tsr.config import CivitaiConfig
from tsr.errors import AuthRejected, NotFound, RateLimited, RemoteUnreachable, ServerError

SHA = hashlib.sha256(b"zkx girl v2").hexdigest()


def _catalogue(fake: FakeCivitai) -> None:
    fake.add(
        model_id=372465,
        version_id=410737,
        sha256=SHA,
        file_name="zkx_girl_v2.safetensors",
        model_name="Zkx Girl (character)",
        version_name="v2.0",
        base_model="Pony",
        trained_words=["zkx_girl", "red scarf, smile"],
        tags=["character", "anime"],
    )


def test_by_hash_finds_the_version_in_any_case(
    fake_civitai: FakeCivitai, client: CivitaiClient
) -> None:
    _catalogue(fake_civitai)
    version = client.version_by_hash(SHA.lower())
    assert version is not None
    assert (version.id, version.model_id, version.base_model) == (410737, 372465, "Pony")
    assert version.model is not None and version.model.type == "LORA"
    assert version.trained_words == ["zkx_girl", "red scarf, smile"]
    # CivitAI answers upper-case hashes; tsr keeps them lower-case
    assert version.files[0].hashes["SHA256"] == SHA.upper()
    assert version.file_with_sha256(SHA.upper()) is version.files[0]
    assert client.version_by_hash(SHA[:10]) is not None  # AutoV2 works too
    assert client.version_by_hash("0" * 64) is None


def test_bulk_lookup_sends_at_most_100_hashes_a_call(
    fake_civitai: FakeCivitai, client: CivitaiClient
) -> None:
    _catalogue(fake_civitai)
    unknown = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(149)]
    versions = client.versions_by_hashes([*unknown, SHA.upper()])
    assert [v.id for v in versions] == [410737]
    posts = fake_civitai.calls("POST", "/api/v1/model-versions/by-hash")
    assert [len(json.loads(call.body)) for call in posts] == [100, 50]


def test_fake_rejects_what_civitai_rejects(fake_civitai: FakeCivitai) -> None:
    url = f"{fake_civitai.url}/model-versions/by-hash"
    too_many = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(101)]
    assert httpx.post(url, json=too_many).status_code == 400
    assert httpx.post(url, json=["abc"]).status_code == 400
    missing = httpx.get(f"{fake_civitai.url}/models/1")
    assert (missing.status_code, missing.json()) == (404, {"error": "No model with id 1"})


def test_model_fills_the_model_id_of_nested_versions(
    fake_civitai: FakeCivitai, client: CivitaiClient
) -> None:
    _catalogue(fake_civitai)
    fake_civitai.add_version(372465, 500001, name="v3.0", trained_words=["zkx"])
    model = client.model(372465)
    assert model.tags == ["character", "anime"]
    assert [(v.id, v.model_id, v.model) for v in model.model_versions] == [
        (410737, 372465, None),
        (500001, 372465, None),
    ]
    with pytest.raises(NotFound, match="no such model 999"):
        client.model(999)


def test_search_pages_with_the_cursor(fake_civitai: FakeCivitai, client: CivitaiClient) -> None:
    for n in range(5):
        fake_civitai.add_model(n + 1, f"Style {n}", type="LORA")
        fake_civitai.add_version(n + 1, 100 + n, base_model="SDXL 1.0")
    fake_civitai.add_model(9, "Style checkpoint", type="Checkpoint")
    first = client.search_models("style", types=["LORA"], limit=3)
    assert [m.name for m in first.items] == ["Style 0", "Style 1", "Style 2"]
    assert first.next_cursor is not None
    second = client.search_models("style", types=["LORA"], limit=3, cursor=first.next_cursor)
    assert [m.name for m in second.items] == ["Style 3", "Style 4"]
    assert second.next_cursor is None


def test_key_travels_only_in_the_header(fake_civitai: FakeCivitai) -> None:
    _catalogue(fake_civitai)
    fake_civitai.api_key = "s3cret-key"
    fake_civitai.require_key = True
    with CivitaiClient(fake_civitai.url, "s3cret-key") as client:
        assert client.version_by_hash(SHA) is not None
        client.versions_by_hashes([SHA])
        client.model(372465)
    for call in fake_civitai.requests:
        assert "s3cret-key" not in call.target
        assert call.headers["Authorization"] == "Bearer s3cret-key"


def test_key_precedence_explicit_then_env_then_config(
    fake_civitai: FakeCivitai, monkeypatch: pytest.MonkeyPatch
) -> None:
    _catalogue(fake_civitai)
    config = CivitaiConfig(api_key="from-config", base_url="https://unused.example/api/v1")
    monkeypatch.setenv("CIVITAI_BASE_URL", fake_civitai.url)
    monkeypatch.setenv("CIVITAI_API_KEY", "from-env")
    for explicit in ("from-flag", None):
        with CivitaiClient.from_config(config, explicit) as client:
            client.version_by_hash(SHA)
    monkeypatch.delenv("CIVITAI_API_KEY")
    with CivitaiClient.from_config(config) as client:
        client.version_by_hash(SHA)
    sent = [call.headers["Authorization"] for call in fake_civitai.requests]
    assert sent == ["Bearer from-flag", "Bearer from-env", "Bearer from-config"]


def test_wrong_key_is_one_sentence_saying_how_to_fix_it(fake_civitai: FakeCivitai) -> None:
    fake_civitai.api_key = "right"
    with CivitaiClient(fake_civitai.url, "wrong") as client, pytest.raises(AuthRejected) as err:
        client.version_by_hash(SHA)
    assert str(err.value).startswith("CivitAI refused the API key (HTTP 401)")
    assert "tsr config set civitai.api_key KEY" in str(err.value)


def test_gated_version_without_key_is_403(fake_civitai: FakeCivitai, client: CivitaiClient) -> None:
    _catalogue(fake_civitai)
    fake_civitai.gated.add(410737)
    with pytest.raises(AuthRejected, match=r"this needs a CivitAI API key \(HTTP 403\)"):
        client.version(410737)


def test_429_waits_as_retry_after_says_then_succeeds(
    fake_civitai: FakeCivitai, client: CivitaiClient, waits: list[float]
) -> None:
    _catalogue(fake_civitai)
    fake_civitai.fail_next(429, times=2, retry_after="3")
    assert client.version_by_hash(SHA) is not None
    assert waits == [3.0, 3.0]
    assert len(fake_civitai.requests) == 3


def test_500_backs_off_exponentially_then_succeeds(
    fake_civitai: FakeCivitai, client: CivitaiClient, waits: list[float]
) -> None:
    _catalogue(fake_civitai)
    fake_civitai.fail_next(503, times=3)
    assert client.model(372465).name == "Zkx Girl (character)"
    assert waits == [0.5, 1.0, 2.0]


def test_retries_are_bounded(fake_civitai: FakeCivitai, client: CivitaiClient) -> None:
    fake_civitai.fail_next(500, times=client.max_retries + 1)
    with pytest.raises(ServerError, match=r"CivitAI failed on its side \(HTTP 500\)"):
        client.version_by_hash(SHA)
    assert len(fake_civitai.requests) == client.max_retries + 1
    fake_civitai.fail_next(429, times=1, retry_after="3600")
    with pytest.raises(RateLimited, match="asks to wait 3600 s"):
        client.version_by_hash(SHA)


def test_offline_is_one_sentence() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # the port is free again: nothing listens there
    client = CivitaiClient(f"http://127.0.0.1:{port}/api/v1")
    with client, pytest.raises(RemoteUnreachable) as err:
        client.versions_by_hashes([SHA])
    assert str(err.value) == (
        f"cannot reach CivitAI at http://127.0.0.1:{port}/api/v1: connection refused"
    )


def test_download_url_sits_beside_the_api(client: CivitaiClient, fake_civitai: FakeCivitai) -> None:
    assert client.download_url(410737) == f"{fake_civitai.root}/api/download/models/410737"


def test_fake_download_redirects_and_honours_range(fake_civitai: FakeCivitai) -> None:
    fake_civitai.add_model(1, "Tiny")
    fake_civitai.add_version(1, 11)
    fake_civitai.add_file(11, 111, "tiny.safetensors", content=b"0123456789")
    url = f"{fake_civitai.root}/api/download/models/11"
    whole = httpx.get(url, follow_redirects=True)
    assert whole.content == b"0123456789"
    assert whole.headers["Content-Disposition"] == 'attachment; filename="tiny.safetensors"'
    part = httpx.get(url, headers={"Range": "bytes=4-"}, follow_redirects=True)
    assert (part.status_code, part.content) == (206, b"456789")
    fake_civitai.ignore_range = True
    ignored = httpx.get(url, headers={"Range": "bytes=4-"}, follow_redirects=True)
    assert (ignored.status_code, ignored.content) == (200, b"0123456789")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (None, None),
        ("soon", None),
        ("³", None),  # a digit to str.isdigit(), not to float()
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_forms(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds
