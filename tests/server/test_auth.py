"""Auth: every route but health and the docs needs the bearer token, sent only in a header."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from fastapi.routing import iter_route_contexts

from tests.server.conftest import TOKEN, make_config
from tests.server.running import RunningApp, serve_app
from tsr.server.auth import (
    BASIC_AUTH_PREFIX,
    BASIC_CHALLENGE,
    IN_QUERY,
    MISSING,
    MISSING_BASIC,
    NOT_BEARER,
    WRONG,
    token_matches,
)
from tsr.server.logging import configure_logging, log_file, reset_logging

PUBLIC = {"/api/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}


def concrete(path: str) -> str:
    """A route path with each `{param}` (or `{param:converter}`) filled in."""
    return re.sub(r"\{[^}]+\}", "1", path)


def every_route(running: RunningApp) -> list[tuple[str, str]]:
    """(method, path) for every route of the app, including routers added later."""
    pairs = []
    # iter_route_contexts flattens included routers (app.routes holds them unexpanded)
    for route in iter_route_contexts(running.app.routes):
        assert route.path, f"a route without a path: {route.original_route!r}"
        for method in sorted(route.methods or {"GET"}):
            if method != "HEAD":
                pairs.append((method, concrete(route.path)))
    return pairs


def status_of(url: str, method: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """Send one request and read only the status and headers (event streams never end)."""
    with httpx.stream(method, url, headers=headers, timeout=10) as response:
        if response.status_code == 401:
            response.read()
        return response


def test_every_route_refuses_a_request_without_the_token(token_server: RunningApp) -> None:
    routes = every_route(token_server)
    assert ("GET", "/api/info") in routes and ("GET", "/api/events") in routes
    for method, path in routes:
        response = status_of(token_server.url + path, method)
        if path in PUBLIC:
            assert response.status_code == 200, (method, path)
            continue
        assert response.status_code == 401, (method, path)
        if path.startswith(BASIC_AUTH_PREFIX):
            # the A1111 front: its clients only know HTTP Basic, so a refusal asks for it
            assert response.json() == {"detail": MISSING_BASIC}
            assert response.headers["www-authenticate"] == BASIC_CHALLENGE
            continue
        assert response.json() == {"detail": MISSING}
        assert response.headers["www-authenticate"] == "Bearer"


def test_every_route_accepts_the_right_token(token_server: RunningApp) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for method, path in every_route(token_server):
        response = status_of(token_server.url + path, method, headers)
        assert response.status_code != 401, (method, path)
    info = httpx.get(f"{token_server.url}/api/info", headers=headers).json()
    assert info["auth"] is True


def test_health_and_docs_need_no_token(token_server: RunningApp) -> None:
    health = httpx.get(f"{token_server.url}/api/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert httpx.get(f"{token_server.url}/docs").status_code == 200
    assert "/api/info" in httpx.get(f"{token_server.url}/openapi.json").json()["paths"]


def test_a_wrong_token_or_scheme_is_refused_with_a_clear_message(
    token_server: RunningApp,
) -> None:
    url = f"{token_server.url}/api/info"
    wrong = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}x"})
    assert (wrong.status_code, wrong.json()["detail"]) == (401, WRONG)
    prefix = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN[:-1]}"})
    assert prefix.status_code == 401
    basic = httpx.get(url, headers={"Authorization": f"Basic {TOKEN}"})
    assert (basic.status_code, basic.json()["detail"]) == (401, NOT_BEARER)


def test_a_token_in_the_query_string_is_never_accepted(token_server: RunningApp) -> None:
    url = f"{token_server.url}/api/info"
    for key in ("token", "access_token", "api_key"):
        alone = httpx.get(url, params={key: TOKEN})
        assert (alone.status_code, alone.json()["detail"]) == (401, IN_QUERY)
        # even beside a good header: the URL has already leaked it into logs
        both = httpx.get(url, params={key: TOKEN}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert both.status_code == 401
    # the health check refuses it too, though it needs no token
    assert httpx.get(f"{token_server.url}/api/health", params={"token": TOKEN}).status_code == 401


def test_tokens_compare_exactly() -> None:
    assert token_matches(TOKEN, TOKEN)
    assert not token_matches(TOKEN, TOKEN + "x")
    assert not token_matches(TOKEN[:-1], TOKEN)
    assert not token_matches("", TOKEN)
    assert token_matches("jeton-été-✓", "jeton-été-✓")


def test_without_a_configured_token_the_api_is_open(isolated_home: Path) -> None:
    with serve_app(make_config(isolated_home)) as running:
        info = httpx.get(f"{running.url}/api/info")
        assert info.status_code == 200
        assert info.json()["auth"] is False


def test_the_access_log_never_holds_a_token(isolated_home: Path) -> None:
    config = make_config(isolated_home, token=TOKEN)
    configure_logging(config, to_stderr=False)
    with serve_app(config, access_log=True) as running:
        httpx.get(f"{running.url}/api/info", headers={"Authorization": f"Bearer {TOKEN}"})
        httpx.get(f"{running.url}/api/info", params={"token": TOKEN})
        httpx.get(f"{running.url}/api/info", params={"access_token": "other-secret-value"})
    reset_logging()
    text = log_file(config).read_text()
    assert '"GET /api/info HTTP/1.1" 200' in text
    assert "token=***" in text and "access_token=***" in text
    assert TOKEN not in text
    assert "other-secret-value" not in text


def test_cors_is_off_unless_origins_are_configured(isolated_home: Path) -> None:
    preflight = {
        "Origin": "http://ui.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    with serve_app(make_config(isolated_home, token=TOKEN)) as running:
        response = httpx.options(f"{running.url}/api/info", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
    config = make_config(isolated_home, token=TOKEN, cors_origins=["http://ui.example"])
    with serve_app(config) as running:
        allowed = httpx.options(f"{running.url}/api/info", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://ui.example"
        assert "access-control-allow-credentials" not in allowed.headers
        other = httpx.options(
            f"{running.url}/api/info", headers={**preflight, "Origin": "http://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
