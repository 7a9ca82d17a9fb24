"""The asynchronous tsr client, for the TUI: same methods as `Client`, awaited."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, overload

import httpx

from tsr.client.base import (
    DEFAULT_TIMEOUT,
    DOWNLOAD_TIMEOUT,
    EVENTS_TIMEOUT,
    QUICK_TIMEOUT,
    Endpoint,
    SseDecoder,
    error_for_exception,
    error_for_response,
    needs_tls,
    parse_response,
    request_json,
    topic_params,
    url_endpoint,
)
from tsr.client.civitai import AsyncCivitaiApi
from tsr.client.db_api import AsyncDbApi
from tsr.client.downloads import AsyncDownloadsApi
from tsr.client.generate_api import AsyncGenerateApi
from tsr.client.images_api import AsyncImagesApi
from tsr.client.models_api import AsyncModelsApi
from tsr.schemas.server import Event, Health, Info

T = TypeVar("T")
Params = Mapping[str, Any] | None


class AsyncClient:
    """A tsr server for asyncio code; never blocks the loop (the embedded start is awaited)."""

    def __init__(self, target: Endpoint | str, *, token: str | None = None) -> None:
        self.endpoint = target if isinstance(target, Endpoint) else url_endpoint(target, token)
        self._http = httpx.AsyncClient(
            base_url=self.endpoint.base_url,
            headers=self.endpoint.headers(),
            timeout=DEFAULT_TIMEOUT,
            # building a TLS context costs ~0.1 s; plain http and sockets never use one
            transport=httpx.AsyncHTTPTransport(
                uds=self.endpoint.uds, verify=needs_tls(self.endpoint)
            ),
            trust_env=False,
            follow_redirects=False,
        )
        self._ready = self.endpoint.wait_ready is None
        self._ready_lock: asyncio.Lock | None = None

    @property
    def remote(self) -> str:
        """The remote's name (`local`, a configured name, or the URL)."""
        return self.endpoint.remote

    @cached_property
    def images(self) -> AsyncImagesApi:
        """The gallery: pages, files, thumbnails, keep/trash/restore/undo/purge, import."""
        return AsyncImagesApi(self)

    @cached_property
    def downloads(self) -> AsyncDownloadsApi:
        """The download queue: start (CivitAI version, model, URL, hash), list, get, cancel."""
        return AsyncDownloadsApi(self)

    @cached_property
    def civitai(self) -> AsyncCivitaiApi:
        """CivitAI search, models and versions, through the server (which holds the key)."""
        return AsyncCivitaiApi(self)

    @cached_property
    def generation(self) -> AsyncGenerateApi:
        """Generations and jobs: submit, list, get, cancel, and follow them to the end."""
        return AsyncGenerateApi(self)

    @cached_property
    def models(self) -> AsyncModelsApi:
        """Checkpoints, LoRAs by family, the backends' models and switching, sampler names."""
        return AsyncModelsApi(self)

    @cached_property
    def db(self) -> AsyncDbApi:
        """The models database: files, triggers, search, stats, and scan/link/cache tasks."""
        return AsyncDbApi(self)

    async def aclose(self) -> None:
        """Close the connections (an embedded server keeps running for other clients)."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _ensure_ready(self) -> None:
        if self._ready:
            return
        self._ready_lock = self._ready_lock or asyncio.Lock()
        async with self._ready_lock:
            if not self._ready and self.endpoint.wait_ready is not None:
                # the wait blocks, so it runs in a thread: the UI keeps drawing meanwhile
                await asyncio.to_thread(self.endpoint.wait_ready)
            self._ready = True

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> httpx.Response:
        await self._ensure_ready()
        try:
            response = await self._http.request(
                method, path, params=params, json=request_json(json), timeout=timeouts
            )
        except httpx.HTTPError as exc:
            raise error_for_exception(self.endpoint, exc, timeouts) from None
        if response.is_error:
            raise error_for_response(self.endpoint, response)
        return response

    @overload
    async def call(
        self,
        method: str,
        path: str,
        model: type[T],
        *,
        params: Params = None,
        json: Any = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> T: ...

    @overload
    async def call(
        self,
        method: str,
        path: str,
        model: None = None,
        *,
        params: Params = None,
        json: Any = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None: ...

    async def call(
        self,
        method: str,
        path: str,
        model: type[T] | None = None,
        *,
        params: Params = None,
        json: Any = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> T | None:
        """Send one request; parse the answer as `model` (None: ignore the body)."""
        response = await self._send(method, path, params=params, json=json, timeouts=timeouts)
        return None if model is None else parse_response(self.endpoint, response, model)

    async def get(
        self,
        path: str,
        model: type[T],
        *,
        params: Params = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> T:
        """GET `path`, answer parsed as `model`."""
        return await self.call("GET", path, model, params=params, timeouts=timeouts)

    async def post(
        self,
        path: str,
        model: type[T],
        *,
        json: Any = None,
        params: Params = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> T:
        """POST `json` (a dict or a model) to `path`, answer parsed as `model`."""
        return await self.call("POST", path, model, json=json, params=params, timeouts=timeouts)

    async def put(
        self,
        path: str,
        model: type[T],
        *,
        json: Any = None,
        params: Params = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> T:
        """PUT `json` to `path`, answer parsed as `model`."""
        return await self.call("PUT", path, model, json=json, params=params, timeouts=timeouts)

    async def patch(
        self,
        path: str,
        model: type[T],
        *,
        json: Any = None,
        params: Params = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> T:
        """PATCH `path` with `json` (a model sends only the fields that were set)."""
        return await self.call("PATCH", path, model, json=json, params=params, timeouts=timeouts)

    async def delete(
        self,
        path: str,
        model: type[T],
        *,
        params: Params = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> T:
        """DELETE `path`, answer parsed as `model` (use `call("DELETE", path)` for no body)."""
        return await self.call("DELETE", path, model, params=params, timeouts=timeouts)

    async def health(self) -> Health:
        """`GET /api/health`: is the server up (no token needed)."""
        return await self.get("/api/health", Health, timeouts=QUICK_TIMEOUT)

    async def info(self) -> Info:
        """`GET /api/info`: version, data dir, backends, loaded models, capabilities."""
        return await self.get("/api/info", Info, timeouts=QUICK_TIMEOUT)

    async def events(
        self, topics: list[str] | tuple[str, ...] | None = None
    ) -> AsyncIterator[Event]:
        """Follow `GET /api/events` (all topics, or only `topics`) until the server ends it.

        The first event is a `bus` event of kind `subscribed`: from then on nothing published
        is missed.
        """
        await self._ensure_ready()
        decoder = SseDecoder(self.endpoint)
        try:
            async with self._http.stream(
                "GET", "/api/events", params=topic_params(topics), timeout=EVENTS_TIMEOUT
            ) as response:
                if response.is_error:
                    await response.aread()
                    raise error_for_response(self.endpoint, response)
                async for line in response.aiter_lines():
                    event = decoder.feed(line)
                    if event is not None:
                        yield event
        except httpx.HTTPError as exc:
            raise error_for_exception(self.endpoint, exc, EVENTS_TIMEOUT) from None

    async def download(self, path: str, dest: Path, *, params: Params = None) -> Path:
        """Stream `path` into the file `dest`, atomically (a partial download leaves nothing)."""
        await self._ensure_ready()
        dest = Path(dest)
        fd, tmp = await asyncio.to_thread(_temp_beside, dest)
        try:
            with os.fdopen(fd, "wb") as handle:
                async with self._http.stream(
                    "GET", path, params=params, timeout=DOWNLOAD_TIMEOUT
                ) as response:
                    if response.is_error:
                        await response.aread()
                        raise error_for_response(self.endpoint, response)
                    async for chunk in response.aiter_bytes():
                        handle.write(chunk)
                await asyncio.to_thread(_finish, handle, tmp, dest)
        except httpx.HTTPError as exc:
            _discard(tmp)
            raise error_for_exception(self.endpoint, exc, DOWNLOAD_TIMEOUT) from None
        except BaseException:
            _discard(tmp)
            raise
        return dest


def _temp_beside(dest: Path) -> tuple[int, str]:
    dest.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)


def _finish(handle: Any, tmp: str, dest: Path) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)


def _discard(tmp: str) -> None:
    """Remove a partial download."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
