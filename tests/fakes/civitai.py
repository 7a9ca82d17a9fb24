"""A fake CivitAI: a real HTTP server on 127.0.0.1 that follows shared/docs/civitai-api.md."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

BULK_LIMIT = 100
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
BULK_ERROR = (
    "Request must include an array of SHA256 Hashes. Each hash must be a valid SHA256 hash."
)


@dataclass
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    #: path with its query string, exactly as sent
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        """The path without the query string."""
        return urlsplit(self.target).path


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: str | None


@dataclass
class FakeCivitai:
    """An in-memory CivitAI catalogue served over HTTP, with switches for every failure mode."""

    host: str = "127.0.0.1"
    port: int = 0
    #: model id -> model object without `modelVersions`
    models: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: version id -> version object without `model`
    versions: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: version id -> (file name, bytes) served by the download endpoint
    contents: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    #: the one key CivitAI accepts (any other Bearer value answers 401); None accepts any
    api_key: str | None = None
    #: answer 401 to API requests that carry no key
    require_key: bool = False
    #: versions whose details and downloads answer 403 without the valid key
    gated: set[int] = field(default_factory=set)
    #: answer 200 with the whole file to Range requests (a server that ignores Range)
    ignore_range: bool = False
    _faults: list[_Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def root(self) -> str:
        """Scheme, host and port."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL, as configured in tsr (`.../api/v1`)."""
        return f"{self.root}/api/v1"

    # -- catalogue ---------------------------------------------------------------------------

    def add_model(
        self,
        model_id: int,
        name: str,
        *,
        type: str = "LORA",
        tags: Sequence[str] = (),
        nsfw: bool = False,
        creator: str = "maker",
    ) -> dict[str, Any]:
        """Add (or replace) a model; versions are added with `add_version`."""
        self.models[model_id] = {
            "id": model_id,
            "name": name,
            "description": f"<p>{name}</p>",
            "type": type,
            "nsfw": nsfw,
            "poi": False,
            "tags": list(tags),
            "mode": None,
            "creator": {"username": creator, "image": None},
            "stats": {"downloadCount": 10, "favoriteCount": 1, "thumbsUpCount": 3},
        }
        return self.models[model_id]

    def add_version(
        self,
        model_id: int,
        version_id: int,
        *,
        name: str = "v1.0",
        base_model: str = "SDXL 1.0",
        trained_words: Sequence[str] = (),
        images: int = 1,
    ) -> dict[str, Any]:
        """Add (or replace) a version of an existing model, with no files yet."""
        model_type = self.models[model_id]["type"]
        self.versions[version_id] = {
            "id": version_id,
            "modelId": model_id,
            "name": name,
            "createdAt": "2024-04-11T09:14:02.118Z",
            "updatedAt": "2024-04-12T16:40:51.903Z",
            "status": "Published",
            "publishedAt": "2024-04-11T09:30:00.000Z",
            "trainedWords": list(trained_words),
            "trainingStatus": None,
            "trainingDetails": None,
            "baseModel": base_model,
            "baseModelType": "Standard",
            "earlyAccessEndsAt": None,
            "earlyAccessConfig": None,
            "description": "<p>Works best at weight 0.7-0.9.</p>",
            "uploadType": "Created",
            "usageControl": "Download",
            "air": f"urn:air:sdxl:{model_type.lower()}:civitai:{model_id}@{version_id}",
            "stats": {"downloadCount": 15342, "thumbsUpCount": 1288},
            "files": [],
            "images": [_image(version_id, n) for n in range(images)],
            "downloadUrl": f"{self.root}/api/download/models/{version_id}",
        }
        return self.versions[version_id]

    def add_file(
        self,
        version_id: int,
        file_id: int,
        name: str,
        *,
        sha256: str | None = None,
        content: bytes | None = None,
        primary: bool = True,
        type: str = "Model",
    ) -> dict[str, Any]:
        """Add a file to a version; its hashes come from `content` or the given SHA256."""
        if sha256 is None:
            sha256 = hashlib.sha256(content or name.encode()).hexdigest()
        if content is not None:
            self.contents[version_id] = (name, content)
        entry = {
            "id": file_id,
            "sizeKB": round(len(content or b"") / 1024, 5),
            "name": name,
            "type": type,
            "pickleScanResult": "Success",
            "pickleScanMessage": "No Pickle imports",
            "virusScanResult": "Success",
            "virusScanMessage": None,
            "scannedAt": "2024-04-11T09:20:17.441Z",
            "metadata": {"format": "SafeTensor", "size": None, "fp": None},
            "hashes": _hashes(sha256),
            "primary": primary,
            "downloadUrl": f"{self.root}/api/download/models/{version_id}",
        }
        self.versions[version_id]["files"].append(entry)
        return entry

    def add(
        self,
        *,
        model_id: int,
        version_id: int,
        sha256: str,
        file_name: str = "model.safetensors",
        model_name: str = "Some Model",
        version_name: str = "v1.0",
        type: str = "LORA",
        base_model: str = "SDXL 1.0",
        trained_words: Sequence[str] = (),
        tags: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Add a model (if new), one version and one file with this SHA256, in one call."""
        if model_id not in self.models:
            self.add_model(model_id, model_name, type=type, tags=tags)
        self.add_version(
            model_id, version_id, name=version_name, base_model=base_model,
            trained_words=trained_words,
        )  # fmt: skip
        self.add_file(version_id, version_id * 10, file_name, sha256=sha256)
        return self.version_object(version_id)

    def version_object(self, version_id: int) -> dict[str, Any]:
        """A version as `model-versions/{id}` and by-hash answer it (with its `model`)."""
        version = dict(self.versions[version_id])
        model = self.models[version["modelId"]]
        version["model"] = {k: model[k] for k in ("name", "type", "nsfw", "poi")}
        return version

    def model_object(self, model_id: int) -> dict[str, Any]:
        """A model as `models/{id}` answers it: versions nested, without their `model`."""
        model = dict(self.models[model_id])
        model["modelVersions"] = [v for v in self.versions.values() if v["modelId"] == model_id]
        return model

    # -- fault switches ----------------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1, *, retry_after: str | None = None) -> None:
        """Answer the next `times` API requests with `status` (and Retry-After if given)."""
        with self._lock:
            self._faults.append(_Fault(status, times, retry_after))

    def calls(self, method: str | None = None, path_prefix: str = "") -> list[RecordedRequest]:
        """Recorded requests, optionally only one method and under one path."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and r.path.startswith(path_prefix)
        ]

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            while self._faults and self._faults[0].remaining <= 0:
                self._faults.pop(0)
            if not self._faults:
                return None
            self._faults[0].remaining -= 1
            return self._faults[0]

    # -- serving -----------------------------------------------------------------------------

    def start(self) -> FakeCivitai:
        """Serve on a free loopback port from a daemon thread."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _hashes(sha256: str) -> dict[str, str]:
    upper = sha256.upper()
    derived = hashlib.blake2b(upper.encode(), digest_size=32).hexdigest().upper()
    return {
        "AutoV1": derived[:8],
        "AutoV2": upper[:10],
        "SHA256": upper,
        "CRC32": derived[8:16],
        "BLAKE3": derived,
        "AutoV3": derived[16:28],
    }


def _image(version_id: int, n: int) -> dict[str, Any]:
    return {
        "url": f"https://image.civitai.com/x/{version_id}-{n}/original=true/{version_id}{n}.jpeg",
        "nsfwLevel": 1,
        "width": 832,
        "height": 1216,
        "hash": "UJI4@y~q9Fxu-;WBIUj[00IU%Mof?bxuWBj[",
        "type": "image",
        "hasMeta": True,
        "onSite": False,
        "meta": {"prompt": "a photo", "seed": 1864223911 + n, "steps": 25, "cfgScale": 6},
    }


class _Handler(BaseHTTPRequestHandler):
    fake: FakeCivitai
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without this, delayed ACKs add 40 ms a request
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read `fake.requests` instead."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake = self.fake
        fake.requests.append(RecordedRequest(method, self.path, dict(self.headers), body))
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        if path.startswith("/storage/"):
            self._storage(path)
            return
        fault = fake._take_fault()
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._json(fault.status, {"error": f"fake failure {fault.status}"}, headers)
            return
        auth = self.headers.get("Authorization")
        valid = fake.api_key is not None and auth == f"Bearer {fake.api_key}"
        # with no key configured the fake accepts any key; with one, only that one
        if (auth and fake.api_key is not None and not valid) or (fake.require_key and not valid):
            self._json(401, {"error": "Unauthorized"})
            return
        try:
            self._route(method, path, query, body, valid)
        except _Answer as answer:
            self._json(answer.status, answer.payload)

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, authed: bool
    ) -> None:
        fake = self.fake
        if method == "POST" and path == "/api/v1/model-versions/by-hash":
            self._json(200, self._bulk(body))
        elif method == "GET" and (m := re.fullmatch(r"/api/v1/model-versions/by-hash/(\w+)", path)):
            version_id = _find_hash(fake, m.group(1).upper())
            if version_id is None:
                raise _Answer(404, {"error": "Model not found"})
            self._json(200, fake.version_object(version_id))
        elif method == "GET" and (m := re.fullmatch(r"/api/v1/model-versions/(\d+)", path)):
            version_id = int(m.group(1))
            if version_id not in fake.versions:
                raise _Answer(404, {"error": f"No version with id {version_id}"})
            if version_id in fake.gated and not authed:
                raise _Answer(403, {"error": "Forbidden"})
            self._json(200, fake.version_object(version_id))
        elif method == "GET" and (m := re.fullmatch(r"/api/v1/models/(\d+)", path)):
            model_id = int(m.group(1))
            if model_id not in fake.models:
                raise _Answer(404, {"error": f"No model with id {model_id}"})
            self._json(200, fake.model_object(model_id))
        elif method == "GET" and path == "/api/v1/models":
            self._json(200, self._search(query))
        elif method == "GET" and (m := re.fullmatch(r"/api/download/models/(\d+)", path)):
            self._download(int(m.group(1)), authed)
        else:
            raise _Answer(404, {"error": "Not found"})

    def _bulk(self, body: bytes) -> list[dict[str, Any]]:
        try:
            hashes = json.loads(body or b"null")
        except ValueError:
            hashes = None
        if (
            not isinstance(hashes, list)
            or not hashes
            or len(hashes) > BULK_LIMIT
            or not all(isinstance(h, str) and _HEX64.match(h) for h in hashes)
        ):
            raise _Answer(400, {"error": BULK_ERROR})
        # one index per request: tests may edit the catalogue between calls
        index: dict[str, int] = {}
        for version_id, version in self.fake.versions.items():
            for entry in version["files"]:
                index.setdefault(entry["hashes"]["SHA256"], version_id)
        found: dict[int, None] = {}
        for value in hashes:
            if value.upper() in index:
                found.setdefault(index[value.upper()], None)
        return [self.fake.version_object(v) for v in found]

    def _search(self, query: dict[str, list[str]]) -> dict[str, Any]:
        fake = self.fake
        limit = int((query.get("limit") or ["100"])[0])
        if not 0 < limit <= 100:
            raise _Answer(400, {"error": "limit: Number must be less than or equal to 100"})
        text = (query.get("query") or [""])[0].casefold()
        types = {t for value in query.get("types", []) for t in value.split(",")}
        bases = {b for value in query.get("baseModels", []) for b in value.split(",")}
        items = []
        for model_id, model in fake.models.items():
            versions = [v for v in fake.versions.values() if v["modelId"] == model_id]
            if text and text not in model["name"].casefold():
                continue
            if types and model["type"] not in types:
                continue
            if bases and not any(v["baseModel"] in bases for v in versions):
                continue
            items.append(fake.model_object(model_id))
        start = int((query.get("cursor") or ["0"])[0] or 0)
        page = items[start : start + limit]
        metadata: dict[str, Any] = {}
        if start + limit < len(items):
            metadata["nextCursor"] = str(start + limit)
            metadata["nextPage"] = f"{fake.url}/models?limit={limit}&cursor={start + limit}"
        return {"items": page, "metadata": metadata}

    def _download(self, version_id: int, authed: bool) -> None:
        fake = self.fake
        if version_id not in fake.contents:
            raise _Answer(404, {"error": "File not found"})
        if version_id in fake.gated and not authed:
            raise _Answer(403, {"error": "This file requires an account or early access"})
        name, _ = fake.contents[version_id]
        location = f"{fake.root}/storage/{version_id}/{quote(name)}?sig=signed"
        self._send(307, b"", {"Location": location, "Content-Type": "text/plain"})

    def _storage(self, path: str) -> None:
        m = re.fullmatch(r"/storage/(\d+)/.+", path)
        if not m or int(m.group(1)) not in self.fake.contents:
            self._send(404, b"no such object", {"Content-Type": "text/plain"})
            return
        name, content = self.fake.contents[int(m.group(1))]
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{name}"',
            "Accept-Ranges": "bytes",
        }
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if wanted and not self.fake.ignore_range:
            start = int(wanted.group(1))
            end = int(wanted.group(2)) if wanted.group(2) else len(content) - 1
            if start >= len(content):
                headers["Content-Range"] = f"bytes */{len(content)}"
                self._send(416, b"", headers)
                return
            end = min(end, len(content) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            self._send(206, content[start : end + 1], headers)
            return
        self._send(200, content, headers)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Answer(Exception):
    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload


def _find_hash(fake: FakeCivitai, wanted: str) -> int | None:
    # CivitAI upper-cases the hash it is given and matches any hash kind it stores
    for version_id, version in fake.versions.items():
        for entry in version["files"]:
            if wanted in entry["hashes"].values():
                return version_id
    return None


@pytest.fixture
def fake_civitai() -> Iterator[FakeCivitai]:
    """A running fake CivitAI with an empty catalogue; `.url` is its API base URL."""
    fake = FakeCivitai().start()
    try:
        yield fake
    finally:
        fake.stop()
