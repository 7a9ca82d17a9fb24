"""HTTP Basic with the token as the password: accepted on /sdapi/v1/* only, as A1111's
`--api-auth` clients send it; every 401 there asks for Basic."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.api_a1111.conftest import BASIC, BEARER, TOKEN, A1111Server
from tsr.server.auth import (
    BAD_BASIC,
    MISSING_BASIC,
    NOT_BASIC_OR_BEARER,
    NOT_BEARER,
    WRONG,
    basic_password,
)

CHALLENGE = 'Basic realm="tsr"'


def test_basic_with_the_token_as_password_works_on_the_a1111_front(
    a1111: A1111Server,
) -> None:
    for user in ("webui-user", "", "anyone at all"):
        answer = httpx.get(f"{a1111.url}/sdapi/v1/sd-models", auth=(user, TOKEN))
        assert answer.status_code == 200, user
        assert [m["model_name"] for m in answer.json()] == ["pony", "sd15"]
    # the bearer token works there too
    assert httpx.get(f"{a1111.url}/sdapi/v1/samplers", headers=BEARER).status_code == 200


def test_basic_is_refused_everywhere_else(a1111: A1111Server) -> None:
    answer = httpx.get(f"{a1111.url}/api/info", auth=BASIC)

    assert answer.status_code == 401
    assert answer.json()["detail"] == NOT_BEARER
    assert answer.headers["www-authenticate"] == "Bearer"
    # a path that only looks like the front's stays Bearer-only
    assert httpx.get(f"{a1111.url}/sdapi/v1", auth=BASIC).status_code == 401
    assert httpx.get(f"{a1111.url}/sdapi/v10/options", auth=BASIC).status_code == 401


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, MISSING_BASIC),
        ({"Authorization": "Basic " + base64.b64encode(b"u:" + b"nope").decode()}, WRONG),
        (
            {"Authorization": "Basic " + base64.b64encode(b"u:" + TOKEN[:-1].encode()).decode()},
            WRONG,
        ),
        ({"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()}, BAD_BASIC),
        ({"Authorization": "Basic !!not base64!!"}, BAD_BASIC),
        ({"Authorization": f"Token {TOKEN}"}, NOT_BASIC_OR_BEARER),
        ({"Authorization": f"Bearer {TOKEN}x"}, WRONG),
    ],
)
def test_a_refusal_on_the_front_asks_for_basic(
    a1111: A1111Server, headers: dict[str, str], detail: str
) -> None:
    for method, path in (("GET", "/sdapi/v1/options"), ("POST", "/sdapi/v1/txt2img")):
        answer = httpx.request(method, f"{a1111.url}{path}", headers=headers, json={"prompt": "x"})
        assert answer.status_code == 401, path
        assert answer.json()["detail"] == detail
        assert answer.headers["www-authenticate"] == CHALLENGE


def test_basic_credentials_are_read_exactly() -> None:
    encode = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    assert basic_password(encode("user:s3cret")) == "s3cret"
    assert basic_password(encode(":s3cret")) == "s3cret"
    # the password may hold colons and spaces; only the first colon ends the user name
    assert basic_password(encode("user:a:b c ")) == "a:b c "
    assert basic_password(encode("no colon")) is None
    assert basic_password("%%%") is None
    latin = base64.b64encode("u:jeton-été".encode("latin-1")).decode()
    assert basic_password(latin) == "jeton-été"
