"""The synchronous tsr client, for the CLI and scripts."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Generator, Mapping
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
from tsr.client.civitai import CivitaiApi
from tsr.client.db_api import DbApi
from tsr.client.downloads import DownloadsApi
from tsr.client.generate_api import GenerateApi
from tsr.client.images_api import ImagesApi
from tsr.client.models_api import ModelsApi
from tsr.schemas.server import Event, Health, Info

T = TypeVar("T")
Params = Mapping[str, Any] | None


class Client:
    """A tsr server, one typed method per endpoint; failures raise tsr errors, never httpx ones.

    Domain methods build on `get`/`post`/`put`/`patch`/`delete` (or `call` for answers without a
    body), each with a timeout fitted to the call. Long work (a generation) is started by one
    request and followed through `events()` or polling, never through one long request.
    """

    def __init__(self, target: Endpoint | str, *, token: str | None = None) -> None:
        self.endpoint = target if isinstance(target, Endpoint) else url_endpoint(target, token)
        self._http = httpx.Client(
            base_url=self.endpoint.base_url,
            headers=self.endpoint.headers(),
            timeout=DEFAULT_TIMEOUT,
            # building a TLS context costs ~0.1 s; plain http and sockets never use one
            transport=httpx.HTTPTransport(uds=self.endpoint.uds, verify=needs_tls(self.endpoint)),
            # a proxy from the environment must never see the token; servers are reached directly
            trust_env=False,
            follow_redirects=False,
        )
        self._ready = self.endpoint.wait_ready is None
        self._ready_lock = threading.Lock()

    @property
    def remote(self) -> str:
        """The remote's name (`local`, a configured name, or the URL)."""
        return self.endpoint.remote

    @cached_property
    def images(self) -> ImagesApi:
        """The gallery: pages, files, thumbnails, keep/trash/restore/undo/purge, import."""
        return ImagesApi(self)

    @cached_property
    def downloads(self) -> DownloadsApi:
        """The download queue: start (CivitAI version, model, URL, hash), list, get, cancel."""
        return DownloadsApi(self)

    @cached_property
    def civitai(self) -> CivitaiApi:
        """CivitAI search, models and versions, through the server (which holds the key)."""
        return CivitaiApi(self)

    @cached_property
    def generation(self) -> GenerateApi:
        """Generations and jobs: submit, list, get, cancel, and follow them to the end."""
        return GenerateApi(self)

    @cached_property
    def models(self) -> ModelsApi:
        """Checkpoints, LoRAs by family, the backends' models and switching, sampler names."""
        return ModelsApi(self)

    @cached_property
    def db(self) -> DbApi:
        """The models database: files, triggers, search, stats, and scan/link/cache tasks."""
        return DbApi(self)

    def close(self) -> None:
        """Close the connections (an embedded server keeps running for other clients)."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if not self._ready and self.endpoint.wait_ready is not None:
                self.endpoint.wait_ready()
            self._ready = True

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> httpx.Response:
        self._ensure_ready()
        try:
            response = self._http.request(
                method, path, params=params, json=request_json(json), timeout=timeouts
            )
        except httpx.HTTPError as exc:
            raise error_for_exception(self.endpoint, exc, timeouts) from None
        if response.is_error:
            raise error_for_response(self.endpoint, response)
        return response

    @overload
    def call(
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
    def call(
        self,
        method: str,
        path: str,
        model: None = None,
        *,
        params: Params = None,
        json: Any = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None: ...

    def call(
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
        response = self._send(method, path, params=params, json=json, timeouts=timeouts)
        return None if model is None else parse_response(self.endpoint, response, model)

    def get(
        self,
        path: str,
        model: type[T],
        *,
        params: Params = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> T:
        """GET `path`, answer parsed as `model`."""
        return self.call("GET", path, model, params=params, timeouts=timeouts)

    def post(
        self,
        path: str,
        model: type[T],
        *,
        json: Any = None,
        params: Params = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> T:
        """POST `json` (a dict or a model) to `path`, answer parsed as `model`."""
        return self.call("POST", path, model, json=json, params=params, timeouts=timeouts)

    def put(
        self,
        path: str,
        model: type[T],
        *,
        json: Any = None,
        params: Params = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> T:
        """PUT `json` to `path`, answer parsed as `model`."""
        return self.call("PUT", path, model, json=json, params=params, timeouts=timeouts)

    def patch(
        self,
        path: str,
        model: type[T],
        *,
        json: Any = None,
        params: Params = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> T:
        """PATCH `path` with `json` (a model sends only the fields that were set)."""
        return self.call("PATCH", path, model, json=json, params=params, timeouts=timeouts)

    def delete(
        self,
        path: str,
        model: type[T],
        *,
        params: Params = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> T:
        """DELETE `path`, answer parsed as `model` (use `call("DELETE", path)` for no body)."""
        return self.call("DELETE", path, model, params=params, timeouts=timeouts)

    def health(self) -> Health:
        """`GET /api/health`: is the server up (no token needed)."""
        return self.get("/api/health", Health, timeouts=QUICK_TIMEOUT)

    def info(self) -> Info:
        """`GET /api/info`: version, data dir, backends, loaded models, capabilities."""
        return self.get("/api/info", Info, timeouts=QUICK_TIMEOUT)

    def events(
        self, topics: list[str] | tuple[str, ...] | None = None
    ) -> Generator[Event, None, None]:
        """Follow `GET /api/events` (all topics, or only `topics`) until the server ends it.

        The first event is a `bus` event of kind `subscribed`: from then on nothing published
        is missed. Closing the generator closes the stream.
        """
        self._ensure_ready()
        decoder = SseDecoder(self.endpoint)
        try:
            with self._http.stream(
                "GET", "/api/events", params=topic_params(topics), timeout=EVENTS_TIMEOUT
            ) as response:
                if response.is_error:
                    response.read()
                    raise error_for_response(self.endpoint, response)
                for line in response.iter_lines():
                    event = decoder.feed(line)
                    if event is not None:
                        yield event
        except httpx.HTTPError as exc:
            raise error_for_exception(self.endpoint, exc, EVENTS_TIMEOUT) from None

    def download(self, path: str, dest: Path, *, params: Params = None) -> Path:
        """Stream `path` into the file `dest`, atomically (a partial download leaves nothing)."""
        self._ensure_ready()
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            with (
                os.fdopen(fd, "wb") as handle,
                self._http.stream("GET", path, params=params, timeout=DOWNLOAD_TIMEOUT) as response,
            ):
                if response.is_error:
                    response.read()
                    raise error_for_response(self.endpoint, response)
                for chunk in response.iter_bytes():
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except httpx.HTTPError as exc:
            _discard(tmp)
            raise error_for_exception(self.endpoint, exc, DOWNLOAD_TIMEOUT) from None
        except BaseException:
            _discard(tmp)
            raise
        return dest


def _discard(tmp: str) -> None:
    """Remove a partial download."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
