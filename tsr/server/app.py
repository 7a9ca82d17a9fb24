"""`create_app(config)`: the FastAPI app every front end talks to, and its lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from tsr import __version__
from tsr.config import Config
from tsr.schemas.server import ServerMode
from tsr.server.auth import BearerAuth
from tsr.server.errors import install_error_handlers
from tsr.server.gallery_service import gallery_service
from tsr.server.jobs import generation_service
from tsr.server.routers import ROUTERS
from tsr.server.routers.db_tasks import db_task_service
from tsr.server.routers.downloads import download_service
from tsr.server.state import SSE_KEEPALIVE, AppState

log = logging.getLogger(__name__)

#: a service: started with the app's state, stopped when the context exits (reverse order)
ServiceStarter = Callable[[AppState], AbstractAsyncContextManager[object]]

HEALTH_PATH = "/api/health"
#: timeouts of the shared outgoing client; calls that take longer pass their own
SHARED_HTTP_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


@asynccontextmanager
async def shared_http_client(state: AppState) -> AsyncIterator[None]:
    """One pooled httpx client for calls to sd-server backends, open while the app runs."""
    # trust_env off: sd-servers sit on this machine or the LAN, never behind the user's proxy
    async with httpx.AsyncClient(
        timeout=SHARED_HTTP_TIMEOUT,
        trust_env=False,
        headers={"User-Agent": f"tsr/{__version__}"},
    ) as client:
        state.http = client
        try:
            yield
        finally:
            state.http = None


@asynccontextmanager
async def database(state: AppState) -> AsyncIterator[None]:
    """Open and migrate the models and gallery database (endpoints open their own connections)."""
    from tsr.db.database import init_database

    await asyncio.to_thread(init_database, state.config.db_path())
    yield


@asynccontextmanager
async def default_model_folders(state: AppState) -> AsyncIterator[None]:
    """Create the model folders the config leaves at their defaults, so that a new user has
    somewhere to put files; configured roots are never created (an unmounted disk stays so)."""

    def create() -> None:
        for folder in state.config.default_model_roots():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning("model folder %s not created: %s", folder, exc.strerror or exc)

    await asyncio.to_thread(create)
    yield


#: started in this order at start-up, stopped in reverse at shut-down
SERVICES: tuple[ServiceStarter, ...] = (
    shared_http_client,
    default_model_folders,
    database,
    gallery_service,
    generation_service,
    download_service,
    db_task_service,
)


def create_app(
    config: Config,
    *,
    mode: ServerMode = "app",
    services: Sequence[ServiceStarter] = SERVICES,
    sse_keepalive: float = SSE_KEEPALIVE,
) -> FastAPI:
    """Build the tsr API for `config`; services start in its lifespan, not here.

    Args:
        config: the config the server runs with (data dir, token, backends, CORS).
        mode: how it is served, reported by `GET /api/info`.
        services: what to start in the lifespan (default SERVICES).
        sse_keepalive: seconds between keep-alive comments on an idle event stream.
    """
    token = config.server.resolved_token()
    state = AppState(config=config, mode=mode, token=token, sse_keepalive=sse_keepalive)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.events.start(asyncio.get_running_loop())
        async with AsyncExitStack() as stack:
            stack.callback(state.events.close)
            try:
                for start in services:
                    await stack.enter_async_context(start(state))
            except BaseException as exc:
                # kept for whoever started the server, to say why it did not come up
                state.startup_error = exc
                raise
            log.info("tsr %s app ready (data dir %s)", __version__, config.home)
            yield

    app = FastAPI(
        title="tsr",
        version=__version__,
        summary="Run Stable Diffusion (sd-server) on your own GPU box.",
        lifespan=lifespan,
    )
    app.state.tsr = state
    install_error_handlers(app)
    for router, capabilities in ROUTERS:
        app.include_router(router)
        state.capabilities.update(capabilities)
    public = {HEALTH_PATH, app.docs_url, app.redoc_url, app.openapi_url}
    public.add(app.swagger_ui_oauth2_redirect_url)
    app.add_middleware(BearerAuth, token=token, public_paths={p for p in public if p})
    if config.server.cors_origins:
        # added last, so it runs first: preflight requests carry no token
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.server.cors_origins,
            # bearer tokens travel in a header, never in cookies: credentials stay off
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def app_state(app: FastAPI) -> AppState:
    """The AppState of an app built by `create_app`."""
    state = app.state.tsr
    assert isinstance(state, AppState)
    return state
