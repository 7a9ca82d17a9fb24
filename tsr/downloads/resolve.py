"""Turn a download request (version, model, URL or hash) into what to fetch and where it goes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from tsr.civitai import CivitaiFile, CivitaiModelSummary, CivitaiVersion
from tsr.config import Config
from tsr.db.walk import MODEL_SUFFIXES
from tsr.downloads.catalog import CivitaiCatalog
from tsr.downloads.names import filename_from_url, kind_for_model_type, safe_file_name
from tsr.errors import BadRequest, NotFound, RootViolation
from tsr.schemas.downloads import DownloadKind, DownloadRequest, DownloadSource

#: CivitAI's own hosts (the configured base URL's host counts too)
CIVITAI_HOSTS = frozenset({"civitai.com", "www.civitai.com", "civitai.red", "www.civitai.red"})


@dataclass
class DownloadPlan:
    """Everything a queued download needs: the URL, the expected hash, the root, the names."""

    source: DownloadSource
    ref: str
    url: str
    kind: DownloadKind
    root: str
    #: send the CivitAI key with the first request (only to CivitAI's own host)
    civitai: bool
    sha256: str | None = None
    fallback_name: str | None = None
    version: CivitaiVersion | None = None
    civitai_file_id: int | None = None
    bytes_total: int | None = None

    @property
    def version_id(self) -> int | None:
        """The CivitAI version, when the download is one."""
        return self.version.id if self.version is not None else None


def civitai_hosts(catalog: CivitaiCatalog) -> frozenset[str]:
    """Hosts that are CivitAI: its public ones and the configured base URL's."""
    return CIVITAI_HOSTS | {urlsplit(catalog.base_url()).netloc.lower()}


def choose_root(config: Config, kind: DownloadKind, asked: str | None) -> str:
    """The model root a file of `kind` goes to: `asked` if it is one of them, else the first."""
    roots = config.model_roots().get(kind) or []
    if not roots:
        raise RootViolation(f"no {kind} folder is configured; add one under [paths] {kind}")
    if asked is None:
        return str(roots[0])
    wanted = os.path.abspath(os.path.expanduser(asked))
    for root in roots:
        if os.path.abspath(root) == wanted:
            return str(root)
    listed = ", ".join(str(r) for r in roots)
    raise RootViolation(f"{asked} is not a configured {kind} folder; use one of: {listed}")


def primary_file(version: CivitaiVersion) -> CivitaiFile:
    """The file CivitAI downloads for a version by default (primary, else the first model)."""
    if not version.files:
        raise NotFound(f"CivitAI version {version.id} has no files to download")
    return next(
        (f for f in version.files if f.primary),
        next((f for f in version.files if f.type == "Model"), version.files[0]),
    )


def _check_model_file(entry: CivitaiFile, version: CivitaiVersion) -> None:
    name = entry.name or ""
    if name and not name.lower().endswith(MODEL_SUFFIXES):
        known = ", ".join(MODEL_SUFFIXES)
        raise BadRequest(
            f"CivitAI version {version.id}'s file {name} is not a model file tsr can use ({known})"
        )


def _with_model(
    version: CivitaiVersion, model_id: int, summary: CivitaiModelSummary
) -> CivitaiVersion:
    return version.model_copy(update={"model_id": version.model_id or model_id, "model": summary})


def _civitai_target(url: str) -> tuple[str, int] | None:
    """("version", id) or ("model", id) for CivitAI download and model page URLs."""
    parts = urlsplit(url)
    if match := re.fullmatch(r"/api/download/models/(\d+)/?", parts.path):
        return "version", int(match.group(1))
    if match := re.fullmatch(r"/models/(\d+)(?:/[^/]*)?/?", parts.path):
        version = parse_qs(parts.query).get("modelVersionId")
        if version and version[0].isascii() and version[0].isdigit():
            return "version", int(version[0])
        return "model", int(match.group(1))
    return None


def plan_download(
    request: DownloadRequest, config: Config, catalog: CivitaiCatalog
) -> DownloadPlan:
    """Look the request up on CivitAI (when it names CivitAI) and decide URL, hash and root."""
    if request.url is not None:
        host = urlsplit(request.url).netloc.lower()
        target = _civitai_target(request.url) if host in civitai_hosts(catalog) else None
        if target is None:
            return _plain_url(request, config)
        source, number = target
        if source == "model":
            return _from_model(request, config, catalog, number, "url", request.url)
        version = catalog.version(number)
        # a download URL may pick a file by its query (type, format); a page URL means primary
        download_url = request.url if "/api/download/" in request.url else None
        return _from_version(request, config, catalog, version, "url", request.url, download_url)
    if request.version_id is not None:
        version = catalog.version(request.version_id)
        return _from_version(request, config, catalog, version, "version", str(version.id))
    if request.model_id is not None:
        ref = str(request.model_id)
        return _from_model(request, config, catalog, request.model_id, "model", ref)
    assert request.hash is not None
    found = catalog.version_by_hash(request.hash)
    if found is None:
        raise NotFound(f"CivitAI knows no file with the hash {request.hash}")
    wanted = request.hash.lower()
    entry = next((f for f in found.files if wanted in {v.lower() for v in f.hashes.values()}), None)
    return _from_version(request, config, catalog, found, "hash", request.hash, file=entry)


def _from_model(
    request: DownloadRequest,
    config: Config,
    catalog: CivitaiCatalog,
    model_id: int,
    source: DownloadSource,
    ref: str,
) -> DownloadPlan:
    model = catalog.model(model_id)
    if not model.model_versions:
        raise NotFound(f"CivitAI model {model_id} has no published versions to download")
    summary = CivitaiModelSummary(name=model.name, type=model.type, nsfw=model.nsfw, poi=model.poi)
    # CivitAI lists versions newest first
    version = _with_model(model.model_versions[0], model.id, summary)
    return _from_version(request, config, catalog, version, source, ref)


def _from_version(
    request: DownloadRequest,
    config: Config,
    catalog: CivitaiCatalog,
    version: CivitaiVersion,
    source: DownloadSource,
    ref: str,
    download_url: str | None = None,
    *,
    file: CivitaiFile | None = None,
) -> DownloadPlan:
    model_type = version.model.type if version.model else None
    name = version.model.name if version.model else f"version {version.id}"
    kind = kind_for_model_type(model_type, f"{name} ({version.name or version.id})")
    if download_url is not None:
        file = next((f for f in version.files if f.download_url == download_url), file)
    entry = file or primary_file(version)
    _check_model_file(entry, version)
    url = download_url or entry.download_url or catalog.download_url(version.id)
    return DownloadPlan(
        source=source,
        ref=ref,
        url=url,
        kind=kind,
        root=choose_root(config, kind, request.root),
        civitai=urlsplit(url).netloc.lower() in civitai_hosts(catalog),
        sha256=entry.sha256,
        fallback_name=safe_file_name(entry.name),
        version=version,
        civitai_file_id=entry.id,
        bytes_total=round(entry.size_kb * 1024) if entry.size_kb else None,
    )


def _plain_url(request: DownloadRequest, config: Config) -> DownloadPlan:
    assert request.url is not None
    if request.kind is None:
        raise BadRequest(
            "cannot tell what kind of model that URL holds; say which folder it goes to: "
            "checkpoints, loras, vae or embeddings (`tsr dl URL --kind loras`)"
        )
    return DownloadPlan(
        source="url",
        ref=request.url,
        url=request.url,
        kind=request.kind,
        root=choose_root(config, request.kind, request.root),
        civitai=False,
        sha256=request.sha256,
        fallback_name=safe_file_name(filename_from_url(request.url)),
    )
