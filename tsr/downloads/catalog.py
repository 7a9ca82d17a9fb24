"""CivitAI as the server reaches it: one client, the API key kept on the server, answers cached.

The key is read from the config file again when the file changes, so `tsr config set
civitai.api_key KEY` takes effect without restarting the server.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx

from tsr.civitai import CivitaiClient, CivitaiModel, CivitaiVersion, ModelSearchPage
from tsr.config import CivitaiConfig, Config, load_config
from tsr.errors import ConfigError

T = TypeVar("T")

#: how long an answer is served from memory
CACHE_SECONDS = 300.0
#: answers kept at most (the oldest go first)
CACHE_ENTRIES = 256

#: CivitAI's model types, by their lower-case spelling and a few everyday names
_TYPES = {
    t.casefold(): t
    for t in (
        "Checkpoint", "TextualInversion", "Hypernetwork", "AestheticGradient", "LORA", "LoCon",
        "DoRA", "Controlnet", "Upscaler", "MotionModule", "VAE", "Poses", "Wildcards",
        "Workflows", "Other",
    )
}  # fmt: skip
_TYPES.update(
    {"checkpoints": "Checkpoint", "loras": "LORA", "embedding": "TextualInversion"}
    | {"embeddings": "TextualInversion", "ti": "TextualInversion", "lycoris": "LoCon"}
)
#: CivitAI's base model names, so `sdxl 1.0` or `pony` can be typed in any case
_BASE_MODELS = {
    b.casefold(): b
    for b in (
        "SD 1.4", "SD 1.5", "SD 1.5 LCM", "SD 2.0", "SD 2.1", "SDXL 1.0", "SDXL Turbo",
        "SDXL Lightning", "Pony", "Illustrious", "NoobAI", "Flux.1 D", "Flux.1 S", "SD 3",
        "SD 3.5", "SD 3.5 Large", "SD 3.5 Medium",
    )
}  # fmt: skip


def civitai_type(name: str) -> str:
    """CivitAI's spelling of a model type (`lora` -> `LORA`); unknown names pass unchanged."""
    return _TYPES.get(name.strip().casefold(), name.strip())


def civitai_base_model(name: str) -> str:
    """CivitAI's spelling of a base model (`sdxl 1.0` -> `SDXL 1.0`); others pass unchanged."""
    return _BASE_MODELS.get(name.strip().casefold(), name.strip())


class CivitaiCatalog:
    """Cached, thread-safe CivitAI lookups for the download queue and the proxy endpoints."""

    def __init__(
        self,
        config: Config,
        *,
        cache_seconds: float = CACHE_SECONDS,
        cache_entries: int = CACHE_ENTRIES,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.cache_seconds = cache_seconds
        self.cache_entries = cache_entries
        self._transport = transport
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[Any, ...], tuple[float, Any]] = OrderedDict()
        self._settings = config.civitai
        self._settings_stamp = self._config_stamp()
        self._client: CivitaiClient | None = None
        self._client_for: tuple[str, str | None] | None = None

    # -- settings ----------------------------------------------------------------------------

    def _config_stamp(self) -> tuple[int, int] | None:
        source = self.config.source
        try:
            stat = source.stat() if source is not None else None
        except OSError:
            return None
        return None if stat is None else (stat.st_mtime_ns, stat.st_size)

    def settings(self) -> CivitaiConfig:
        """The [civitai] settings, re-read when the config file changed since the last look."""
        stamp = self._config_stamp()
        if stamp is not None and stamp != self._settings_stamp and self.config.source:
            # a half-edited file keeps the settings that worked
            with contextlib.suppress(ConfigError):
                self._settings = load_config(self.config.source).civitai
            self._settings_stamp = stamp
        return self._settings

    def base_url(self) -> str:
        """CivitAI's API base URL in force."""
        return self.settings().resolved_base_url()

    def api_key(self) -> str | None:
        """The API key in force (env `CIVITAI_API_KEY`, else the config); never sent to clients."""
        return self.settings().resolved_key()

    def client(self) -> CivitaiClient:
        """The CivitAI client for the settings in force (rebuilt when the key or URL changes)."""
        with self._lock:
            wanted = (self.base_url(), self.api_key())
            if self._client is None or self._client_for != wanted:
                if self._client is not None:
                    self._client.close()
                self._client = CivitaiClient(
                    wanted[0], wanted[1], max_retries=2, max_wait=10.0, transport=self._transport
                )
                self._client_for = wanted
                self._cache.clear()  # another key may see other (gated) answers
            return self._client

    def close(self) -> None:
        """Close the connection pool."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- cached lookups ----------------------------------------------------------------------

    def _cached(self, key: tuple[Any, ...], fetch: Callable[[CivitaiClient], T]) -> T:
        client = self.client()
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(key)
                return hit[1]
        value = fetch(client)
        with self._lock:
            self._cache[key] = (now + self.cache_seconds, value)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_entries:
                self._cache.popitem(last=False)
        return value

    def search(
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
        """One page of CivitAI's model search, types and base models in CivitAI's spelling."""
        wanted_types = tuple(civitai_type(t) for t in types if t.strip())
        wanted_bases = tuple(civitai_base_model(b) for b in base_models if b.strip())
        key = ("search", query or None, wanted_types, wanted_bases, sort, nsfw, limit, cursor)
        return self._cached(
            key,
            lambda client: client.search_models(
                query or None,
                types=wanted_types,
                base_models=wanted_bases,
                sort=sort,
                nsfw=nsfw,
                limit=limit,
                cursor=cursor,
            ),
        )

    def model(self, model_id: int) -> CivitaiModel:
        """A model with all its versions (NotFound when CivitAI has none)."""
        return self._cached(("model", model_id), lambda client: client.model(model_id))

    def version(self, version_id: int) -> CivitaiVersion:
        """A version with its files and hashes (NotFound when CivitAI has none)."""
        return self._cached(("version", version_id), lambda client: client.version(version_id))

    def version_by_hash(self, file_hash: str) -> CivitaiVersion | None:
        """The version holding a file with this hash, or None when CivitAI does not know it."""
        key = ("hash", file_hash.lower())
        return self._cached(key, lambda client: client.version_by_hash(file_hash))

    def download_url(self, version_id: int) -> str:
        """Where a version's primary file downloads from."""
        return self.client().download_url(version_id)
