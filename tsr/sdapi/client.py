"""`SdServerClient`: talks to one sd-server over HTTP; every failure is a one-sentence TsrError."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from tsr.errors import BadRequest, Conflict, JobFailed, ServerError, TsrError
from tsr.sdapi.failures import JobCancelled, error_for_status, unreachable
from tsr.sdapi.models import (
    Capabilities,
    GeneratedImage,
    GenerationParams,
    GenerationResult,
    LoraEntry,
    NativeJob,
    ServerOptions,
    Txt2ImgInfo,
    Txt2ImgResult,
)
from tsr.sdapi.pngtext import parse_sdcpp_infotext, png_size, png_text_chunks
from tsr.sdapi.validation import build_native_request, check_sdapi_init_images

DEFAULT_URL = "http://127.0.0.1:1234"
Model = TypeVar("Model", bound=BaseModel)
UpdateCallback = Callable[[NativeJob], Any]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


class SdServerClient:
    """Async client for one sd-server: discovery, native jobs and the A1111-style passthrough.

    Use it as `async with SdServerClient(url) as sd: ...`. It remembers whether it has asked
    for the LoRA list, because sd-server validates LoRA paths against the list as of its last
    GET /sdapi/v1/loras (empty right after it starts).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 10.0,
        generation_timeout: float | None = 3600.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        #: how long a synchronous txt2img/img2img may take (sd-server answers when it is done)
        self.generation_timeout = generation_timeout
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)
        self._loras: list[LoraEntry] | None = None
        self._capabilities: Capabilities | None = None

    async def __aenter__(self) -> SdServerClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- transport and errors ---------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        generating: bool = False,
        not_found: str | None = None,
    ) -> httpx.Response:
        what = f"{method} {path}"
        # sdapi answers only when the images are done: minutes on a CPU, so a longer limit.
        limit = self.generation_timeout if generating else self.timeout
        try:
            response = await self._http.request(method, path, json=body, timeout=limit)
        except httpx.HTTPError as error:
            raise unreachable(self.base_url, error) from None
        if response.status_code >= 400:
            raise error_for_status(self.base_url, response, what, not_found)
        return response

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            request = response.request
            raise ServerError(
                f"sd-server at {self.base_url} answered {request.method} {request.url.path} "
                "with something that is not JSON; is that address really sd-server?"
            ) from None

    def _parse(self, model: type[Model], data: Any, what: str) -> Model:
        try:
            return model.model_validate(data)
        except ValidationError:
            raise ServerError(
                f"sd-server at {self.base_url} sent an unexpected answer to {what}"
            ) from None

    async def _get(self, path: str) -> Any:
        return self._json(await self._request("GET", path))

    # -- discovery --------------------------------------------------------------------------

    async def ping(self) -> bool:
        """True when sd-server answers its readiness probe (GET / → 200); never raises."""
        try:
            response = await self._http.get("/")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def loras(self) -> list[LoraEntry]:
        """The LoRAs under sd-server's LoRA folder; asking also refreshes its LoRA list."""
        data = await self._get("/sdapi/v1/loras")
        try:
            self._loras = TypeAdapter(list[LoraEntry]).validate_python(data)
        except ValidationError:
            raise ServerError(
                f"sd-server at {self.base_url} sent an unexpected answer to GET /sdapi/v1/loras"
            ) from None
        return list(self._loras)

    async def samplers(self) -> list[str]:
        """The sd.cpp sampler names this server knows ("default" first)."""
        data = await self._get("/sdapi/v1/samplers")
        return self._names(data, "GET /sdapi/v1/samplers")

    async def schedulers(self) -> list[str]:
        """The sd.cpp scheduler names this server knows ("default" first)."""
        data = await self._get("/sdapi/v1/schedulers")
        return self._names(data, "GET /sdapi/v1/schedulers")

    def _names(self, data: Any, what: str) -> list[str]:
        if not isinstance(data, list) or not all(
            isinstance(item, dict) and isinstance(item.get("name"), str) for item in data
        ):
            raise ServerError(f"sd-server at {self.base_url} sent an unexpected answer to {what}")
        return [item["name"] for item in data]

    async def capabilities(self) -> Capabilities:
        """Model, sampler/scheduler names, limits and defaults (remembered for validation)."""
        data = await self._get("/sdcpp/v1/capabilities")
        self._capabilities = self._parse(Capabilities, data, "GET /sdcpp/v1/capabilities")
        return self._capabilities

    async def options(self) -> ServerOptions:
        """GET /sdapi/v1/options: the output format and the loaded checkpoint's stem."""
        data = await self._get("/sdapi/v1/options")
        return self._parse(ServerOptions, data, "GET /sdapi/v1/options")

    async def model_name(self) -> str:
        """The file name of the checkpoint this sd-server serves (e.g. "sd15.safetensors")."""
        data = await self._get("/sdapi/v1/sd-models")
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            raise ServerError(f"sd-server at {self.base_url} lists no model in /sdapi/v1/sd-models")
        return str(data[0].get("filename") or data[0].get("model_name") or "")

    async def _known_loras(self, wanted: list[str]) -> set[str]:
        """LoRA paths sd-server accepts now: refresh before the first use and on a miss."""
        if self._loras is None or not {entry.path for entry in self._loras} >= set(wanted):
            await self.loras()
        return {entry.path for entry in self._loras or []}

    # -- native async jobs ------------------------------------------------------------------

    async def prepare(self, params: GenerationParams) -> dict[str, Any]:
        """Validate `params` against this server and build the native request body."""
        caps = self._capabilities or await self.capabilities()
        wanted = [lora.path for lora in params.loras]
        known = await self._known_loras(wanted) if wanted else set()
        return build_native_request(params, caps, known)

    async def submit(self, params: GenerationParams) -> str:
        """Queue a generation (POST /sdcpp/v1/img_gen) and return its job id."""
        body = await self.prepare(params)
        try:
            response = await self._request("POST", "/sdcpp/v1/img_gen", body=body)
        except BadRequest:
            if not params.loras:
                raise
            # A restarted sd-server forgot its LoRA list: refresh it and try once more.
            await self.loras()
            response = await self._request("POST", "/sdcpp/v1/img_gen", body=body)
        data = self._json(response)
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ServerError(f"sd-server at {self.base_url} accepted the job but sent no job id")
        return str(data["id"])

    async def poll(self, job_id: str) -> NativeJob:
        """The job's current state (GET /sdcpp/v1/jobs/{id})."""
        path = f"/sdcpp/v1/jobs/{job_id}"
        missing = f"sd-server has no job {job_id}; it may have restarted since"
        data = self._json(await self._request("GET", path, not_found=missing))
        return self._parse(NativeJob, data, f"GET {path}")

    async def cancel(self, job_id: str) -> NativeJob:
        """Cancel a queued job; Conflict when it is already generating (not interruptible)."""
        path = f"/sdcpp/v1/jobs/{job_id}/cancel"
        missing = f"sd-server has no job {job_id}; it may have restarted since"
        try:
            response = await self._request("POST", path, not_found=missing)
        except Conflict:
            raise Conflict(
                f"job {job_id} is already generating; sd-server cannot interrupt it"
            ) from None
        return self._parse(NativeJob, self._json(response), f"POST {path}")

    async def generate(
        self,
        params: GenerationParams,
        *,
        on_update: UpdateCallback | None = None,
        poll_interval: float = 0.25,
    ) -> GenerationResult:
        """Submit, follow the job to its end (reporting each change), return decoded images.

        `on_update` gets the job whenever its status or queue position changes (it may be a
        coroutine function). If this coroutine is cancelled, the job is cancelled on sd-server
        when it is still queued.
        """
        job_id = await self.submit(params)
        seen: tuple[str, int] | None = None
        # Poll quickly at first (small images finish in milliseconds), then every poll_interval.
        delay = min(0.02, poll_interval)
        try:
            while True:
                job = await self.poll(job_id)
                if on_update is not None and (job.status, job.queue_position) != seen:
                    outcome = on_update(job)
                    if inspect.isawaitable(outcome):
                        await outcome
                seen = (job.status, job.queue_position)
                if job.finished:
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, poll_interval)
        except asyncio.CancelledError:
            with contextlib.suppress(TsrError):
                await asyncio.shield(self.cancel(job_id))
            raise
        if job.status == "failed":
            reason = job.error.message if job.error and job.error.message else "no reason given"
            raise JobFailed(f"sd-server could not generate the image: {reason}")
        if job.status == "cancelled":
            raise JobCancelled(f"job {job_id} was cancelled on sd-server before it started")
        return self._collect(job, params)

    def _collect(self, job: NativeJob, params: GenerationParams) -> GenerationResult:
        encoded = sorted(job.result.images if job.result else [], key=lambda image: image.index)
        if len(encoded) != params.batch_count:
            raise ServerError(
                f"sd-server returned {_count(len(encoded), 'image')} "
                f"for a batch of {params.batch_count}"
            )
        images = []
        for position, item in enumerate(encoded):
            png = self._decode_png(item.b64_json, position)
            text = png_text_chunks(png).get("parameters", "")
            seed = parse_sdcpp_infotext(text).seed if text else None
            if seed is None:
                if params.seed < 0:
                    raise ServerError(
                        "sd-server's image carries no parameters text, so the random seed it "
                        "chose is unknown; pass an explicit seed"
                    )
                seed = params.seed + position
            width, height = png_size(png) or (0, 0)
            images.append(
                GeneratedImage(png=png, seed=seed, width=width, height=height, infotext=text)
            )
        return GenerationResult(job_id=job.id, images=images)

    def _decode_png(self, encoded: str, position: int) -> bytes:
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            data = b""
        if png_size(data) is None:
            raise ServerError(f"sd-server sent image {position + 1} in a form that is not a PNG")
        return data

    # -- A1111-style passthrough ------------------------------------------------------------

    async def txt2img(self, payload: dict[str, Any]) -> Txt2ImgResult:
        """POST /sdapi/v1/txt2img as is (after the LoRA-list refresh it may need)."""
        return await self._sdapi("/sdapi/v1/txt2img", payload)

    async def img2img(self, payload: dict[str, Any]) -> Txt2ImgResult:
        """POST /sdapi/v1/img2img as is (after the LoRA-list refresh it may need)."""
        return await self._sdapi("/sdapi/v1/img2img", payload)

    async def _sdapi(self, path: str, payload: dict[str, Any]) -> Txt2ImgResult:
        check_sdapi_init_images(payload)
        loras = payload.get("lora")
        wanted = [
            str(item["path"]) for item in loras or [] if isinstance(item, dict) and "path" in item
        ]
        if wanted:
            await self._known_loras(wanted)
        try:
            response = await self._request("POST", path, body=payload, generating=True)
        except BadRequest as error:
            if not wanted or "invalid lora path" not in str(error):
                raise
            await self.loras()  # sd-server restarted and forgot its list: refresh, retry once
            response = await self._request("POST", path, body=payload, generating=True)
        return self._sdapi_result(self._json(response), path, payload)

    def _sdapi_result(self, data: Any, path: str, payload: dict[str, Any]) -> Txt2ImgResult:
        what = f"POST {path}"
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise ServerError(f"sd-server at {self.base_url} sent an unexpected answer to {what}")
        info_text = data.get("info")
        try:
            info = Txt2ImgInfo.model_validate_json(info_text if isinstance(info_text, str) else "")
        except ValidationError:
            raise ServerError(f"sd-server's answer to {what} has no readable info") from None
        images = [self._decode_png(str(item), i) for i, item in enumerate(data["images"])]
        batch = payload.get("batch_size", 1)
        expected = min(max(batch, 1), 8) if isinstance(batch, int) else 1
        if len(images) != expected:
            raise ServerError(
                f"sd-server returned {_count(len(images), 'image')} for a batch of {expected}"
            )
        parameters = data.get("parameters")
        return Txt2ImgResult(
            images=images,
            parameters=parameters if isinstance(parameters, dict) else {},
            info=info,
        )
