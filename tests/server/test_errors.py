"""Errors: each TsrError kind answers its HTTP status and one sentence; services plug in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import make_config
from tests.server.extra_routes import RAISED, Thumbnailer, extra_router
from tests.server.running import RunningApp
from tsr.server.app import SERVICES, create_app
from tsr.server.state import AppState

started: list[Thumbnailer] = []


@asynccontextmanager
async def thumbnailer_service(state: AppState) -> AsyncIterator[None]:
    """How a domain service plugs into the lifespan."""
    thumbnailer = Thumbnailer()
    state.provide(thumbnailer)
    started.append(thumbnailer)
    try:
        yield
    finally:
        thumbnailer.running = False
        state.withdraw(Thumbnailer)


@pytest.fixture
def server(isolated_home: Path) -> RunningApp:
    app = create_app(make_config(isolated_home), services=(*SERVICES, thumbnailer_service))
    app.include_router(extra_router())
    return RunningApp(app)


def test_each_error_kind_has_its_status_and_sentence(server: RunningApp) -> None:
    with server:
        for name, (error, status) in RAISED.items():
            response = httpx.get(f"{server.url}/api/test/raise/{name}")
            assert response.status_code == status, name
            assert response.json() == {"detail": str(error), "error": type(error).__name__}


def test_an_unexpected_exception_is_a_plain_500(server: RunningApp) -> None:
    with server:
        response = httpx.get(f"{server.url}/api/test/crash")
    assert response.status_code == 500
    detail = response.json()["detail"]
    assert "GET /api/test/crash" in detail and "KeyError" in detail
    assert "Traceback" not in response.text and "/secret/path" not in response.text


def test_services_start_with_the_app_and_stop_with_it(server: RunningApp) -> None:
    with server:
        assert httpx.get(f"{server.url}/api/test/thumbnailer").json() == {"running": True}
        missing = httpx.get(f"{server.url}/api/test/unstarted")
        assert missing.status_code == 503
        assert missing.json()["detail"] == "this tsr server is running without its unstarted"
    assert started[-1].running is False
    assert server.state.find(Thumbnailer) is None
