"""CivitAI REST client: by-hash lookups (single and bulk), models, versions and search."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tsr import __version__
from tsr.errors import (
    AuthRejected,
    BadRequest,
    NotFound,
    RateLimited,
    RemoteUnreachable,
    ServerError,
)

if TYPE_CHECKING:
    from tsr.config import CivitaiConfig

DEFAULT_BASE_URL = "https://civitai.com/api/v1"
#: the bulk by-hash endpoint takes at most this many hashes per call
BULK_LIMIT = 100
#: what to type to store a key (said in every auth error)
SET_KEY_HINT = "`tsr config set civitai.api_key KEY` (or CIVITAI_API_KEY)"

_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)


class _Wire(BaseModel):
    # CivitAI adds fields over time: keep what tsr uses, ignore the rest
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CivitaiFile(_Wire):
    """One file of a version, with its hashes (upper-case hex, keyed AutoV2, SHA256, ...)."""

    id: int
    name: str = ""
    size_kb: float | None = Field(None, alias="sizeKB")
    type: str | None = None
    primary: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)
    hashes: dict[str, str] = Field(default_factory=dict)
    download_url: str | None = Field(None, alias="downloadUrl")

    @field_validator("metadata", "hashes", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return {}
        return {k: v for k, v in value.items() if v is not None}

    @property
    def sha256(self) -> str | None:
        """The file's SHA256 in lower case, when CivitAI knows it."""
        value = self.hashes.get("SHA256")
        return value.lower() if value else None


class CivitaiImage(_Wire):
    """A sample image of a version, with its generation parameters when published."""

    url: str
    nsfw_level: int | None = Field(None, alias="nsfwLevel")
    width: int | None = None
    height: int | None = None
    hash: str | None = None
    type: str | None = None
    meta: dict[str, Any] | None = None

    @field_validator("meta", mode="before")
    @classmethod
    def _only_dicts(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else None


class CivitaiModelSummary(_Wire):
    """The `model` object inside a version (by-hash, model-versions/{id})."""

    name: str = ""
    type: str | None = None
    nsfw: bool = False
    poi: bool = False


class CivitaiVersion(_Wire):
    """A model version: base model, trained words, files and sample images."""

    id: int
    model_id: int | None = Field(None, alias="modelId")
    name: str = ""
    base_model: str | None = Field(None, alias="baseModel")
    base_model_type: str | None = Field(None, alias="baseModelType")
    trained_words: list[str] = Field(default_factory=list, alias="trainedWords")
    description: str | None = None
    air: str | None = None
    status: str | None = None
    published_at: str | None = Field(None, alias="publishedAt")
    model: CivitaiModelSummary | None = None
    files: list[CivitaiFile] = Field(default_factory=list)
    images: list[CivitaiImage] = Field(default_factory=list)
    download_url: str | None = Field(None, alias="downloadUrl")

    @field_validator("trained_words", "files", "images", mode="before")
    @classmethod
    def _none_is_empty_list(cls, value: Any) -> Any:
        return value if isinstance(value, list) else []

    @field_validator("trained_words", mode="after")
    @classmethod
    def _only_words(cls, value: list[str]) -> list[str]:
        return [word for word in value if word and word.strip()]

    def file_with_sha256(self, sha256: str) -> CivitaiFile | None:
        """This version's file whose SHA256 is `sha256` (any case), if any."""
        wanted = sha256.lower()
        return next((f for f in self.files if f.sha256 == wanted), None)


class CivitaiModel(_Wire):
    """A model with all its versions (nested versions carry no `model` object)."""

    id: int
    name: str = ""
    description: str | None = None
    type: str | None = None
    nsfw: bool = False
    poi: bool = False
    tags: list[str] = Field(default_factory=list)
    creator: dict[str, Any] | None = None
    model_versions: list[CivitaiVersion] = Field(default_factory=list, alias="modelVersions")

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_names(cls, value: Any) -> Any:
        # tags are strings in v1 answers; older ones used {"name": ...}
        if not isinstance(value, list):
            return []
        return [t["name"] if isinstance(t, dict) else t for t in value if t]


class ModelSearchPage(_Wire):
    """One page of a model search and how to ask for the next one."""

    items: list[CivitaiModel]
    next_cursor: str | None = None
    next_page: str | None = None
    total_items: int | None = None


def _reason(exc: httpx.TransportError) -> str:
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return text


class CivitaiClient:
    """A synchronous CivitAI client; the key travels only in the Authorization header."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_base: float = 1.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.has_key = bool(api_key)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_wait = max_wait
        #: HTTP requests sent so far, retries included
        self.requests = 0
        self._sleep = sleep
        headers = {"User-Agent": f"tsr/{__version__}", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            headers=headers, timeout=timeout, follow_redirects=True, transport=transport
        )

    @classmethod
    def from_config(
        cls, config: CivitaiConfig, api_key: str | None = None, **options: Any
    ) -> CivitaiClient:
        """A client for the configured CivitAI; the key is `api_key`, else env, else config."""
        return cls(config.resolved_base_url(), api_key or config.resolved_key(), **options)

    def __enter__(self) -> CivitaiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- endpoints ---------------------------------------------------------------------------

    def version_by_hash(self, file_hash: str) -> CivitaiVersion | None:
        """The version holding a file with this hash (SHA256, AutoV2, ...), or None if unknown."""
        try:
            data = self._request("GET", f"/model-versions/by-hash/{file_hash}", what="version")
        except NotFound:
            return None
        return self._parse(CivitaiVersion, data)

    def versions_by_hashes(self, sha256s: Sequence[str]) -> list[CivitaiVersion]:
        """The versions for the SHA256s CivitAI knows (bulk, 100 per call); unknown ones absent."""
        found: list[CivitaiVersion] = []
        for chunk in chunked(list(dict.fromkeys(h.lower() for h in sha256s)), BULK_LIMIT):
            data = self._request("POST", "/model-versions/by-hash", what="hashes", json=chunk)
            if not isinstance(data, list):
                raise ServerError("CivitAI answered the bulk hash lookup with something unexpected")
            found.extend(self._parse(CivitaiVersion, item) for item in data)
        return found

    def version(self, version_id: int) -> CivitaiVersion:
        """One version by id (NotFound if CivitAI has none)."""
        data = self._request("GET", f"/model-versions/{version_id}", what=f"version {version_id}")
        return self._parse(CivitaiVersion, data)

    def model(self, model_id: int) -> CivitaiModel:
        """One model with all its versions (NotFound if CivitAI has none)."""
        data = self._request("GET", f"/models/{model_id}", what=f"model {model_id}")
        model = self._parse(CivitaiModel, data)
        for version in model.model_versions:
            version.model_id = version.model_id or model.id
        return model

    def search_models(
        self,
        query: str | None = None,
        *,
        types: Sequence[str] = (),
        base_models: Sequence[str] = (),
        sort: str | None = None,
        nsfw: bool | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> ModelSearchPage:
        """One page of models matching the query and filters (`limit` at most 100)."""
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("limit", max(1, min(limit, 100)))
        ]
        if query:
            params.append(("query", query))
        params += [("types", t) for t in types] + [("baseModels", b) for b in base_models]
        if sort:
            params.append(("sort", sort))
        if nsfw is not None:
            params.append(("nsfw", "true" if nsfw else "false"))
        if cursor:
            params.append(("cursor", cursor))
        data = self._request("GET", "/models", what="search", params=params)
        if not isinstance(data, dict):
            raise ServerError("CivitAI answered the model search with something unexpected")
        meta = data.get("metadata") or {}
        return ModelSearchPage(
            items=[self._parse(CivitaiModel, item) for item in data.get("items") or []],
            next_cursor=_text_or_none(meta.get("nextCursor")),
            next_page=_text_or_none(meta.get("nextPage")),
            total_items=meta.get("totalItems"),
        )

    def download_url(self, version_id: int) -> str:
        """Where a version's file downloads from (`/api/download`, beside `/api/v1`)."""
        root = self.base_url.removesuffix("/v1").removesuffix("/api")
        return f"{root}/api/download/models/{version_id}"

    # -- plumbing ----------------------------------------------------------------------------

    def _parse(self, model: type[_M], data: Any) -> _M:
        try:
            return model.model_validate(data)
        except ValidationError:
            raise ServerError(
                f"CivitAI at {self.base_url} answered with a {model.__name__} tsr cannot read"
            ) from None

    def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: list[tuple[str, str | int | float | bool | None]] | None = None,
        json: Any = None,
    ) -> Any:
        url = self.base_url + path
        for attempt in range(self.max_retries + 1):
            self.requests += 1
            try:
                response = self._http.request(method, url, params=params, json=json)
            except httpx.TransportError as exc:
                raise RemoteUnreachable(
                    f"cannot reach CivitAI at {self.base_url}: {_reason(exc)}"
                ) from None
            status = response.status_code
            if status == 429 or status >= 500:
                wait = self._retry_wait(response, attempt)
                if wait is not None:
                    self._sleep(wait)
                    continue
                if status == 429:
                    raise RateLimited(
                        "CivitAI keeps answering 'too many requests'; wait a few minutes and retry"
                    )
                raise ServerError(f"CivitAI failed on its side (HTTP {status}); try again later")
            if status < 400:
                try:
                    return response.json()
                except ValueError:
                    raise ServerError(
                        f"CivitAI at {self.base_url} answered with something that is not JSON"
                    ) from None
            self._raise_for(status, response, what)
        raise AssertionError("unreachable: the loop returns or raises")

    def _retry_wait(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when retries are used up."""
        if attempt >= self.max_retries:
            return None
        asked = parse_retry_after(response.headers.get("Retry-After"))
        if asked is None:
            return min(self.backoff_base * 2**attempt, self.max_wait)
        if asked > self.max_wait:
            raise RateLimited(
                f"CivitAI is rate limiting and asks to wait {asked:.0f} s; try again later"
            )
        return asked

    def _raise_for(self, status: int, response: httpx.Response, what: str) -> None:
        if status == 401:
            if self.has_key:
                raise AuthRejected(
                    "CivitAI refused the API key (HTTP 401); check it, "
                    f"or set a new one with {SET_KEY_HINT}"
                )
            raise AuthRejected(
                f"CivitAI wants an API key for this (HTTP 401); set it with {SET_KEY_HINT}"
            )
        if status == 403:
            if self.has_key:
                raise AuthRejected(
                    "CivitAI refused the API key for this (HTTP 403): it may be gated or early "
                    f"access; check the key, or set another with {SET_KEY_HINT}"
                )
            raise AuthRejected(
                f"this needs a CivitAI API key (HTTP 403); set it with {SET_KEY_HINT}"
            )
        if status == 404:
            raise NotFound(f"CivitAI has no such {what}")
        message = _error_text(response)
        if status in (400, 422):
            raise BadRequest(f"CivitAI rejected the {what} request: {message}")
        raise ServerError(f"CivitAI answered HTTP {status} to the {what} request: {message}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delay seconds or an HTTP date), None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def chunked(items: Sequence[_T], size: int) -> Iterator[list[_T]]:
    """`items` in consecutive lists of at most `size`."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _text_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])[:300]
    return response.reason_phrase
