"""The config file: read with tomllib into pydantic models, edited in place with tomlkit."""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import tomlkit
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from tsr import paths as tsr_paths
from tsr.errors import ConfigError, UnknownRemote

LOCAL = "local"
DEFAULT_SD_SERVER_URL = "http://127.0.0.1:1234"
DEFAULT_SERVER_PORT = 8765
DEFAULT_CIVITAI_URL = "https://civitai.com/api/v1"
#: model-root kinds every install has; a config may add more under [paths]
MODEL_ROOT_KINDS = ("checkpoints", "loras", "vae", "embeddings")
ImageRenderer = Literal["auto", "tgp", "sixel", "halfcell", "unicode", "none"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RemoteConfig(_Section):
    """A tsr server reached over HTTP: its URL and where its token comes from."""

    url: str
    token: str | None = None
    token_env: str | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        return validate_url(url)

    def resolved_token(self) -> str | None:
        """The token to send: the env variable named by `token_env` wins over `token`."""
        if self.token_env and os.environ.get(self.token_env):
            return os.environ[self.token_env]
        return self.token


class CivitaiConfig(_Section):
    """CivitAI access: API key and base URL (env `CIVITAI_API_KEY`, `CIVITAI_BASE_URL` win)."""

    api_key: str | None = None
    base_url: str = DEFAULT_CIVITAI_URL

    def resolved_key(self) -> str | None:
        """The API key to use: `CIVITAI_API_KEY` from the environment, else the config's."""
        return os.environ.get("CIVITAI_API_KEY") or self.api_key

    def resolved_base_url(self) -> str:
        """The base URL to use: `CIVITAI_BASE_URL` from the environment, else the config's."""
        return (os.environ.get("CIVITAI_BASE_URL") or self.base_url).rstrip("/")


class ServerConfig(_Section):
    """`tsr serve`: where it listens, its token, and where it keeps its data."""

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_SERVER_PORT, ge=1, le=65535)
    token: str | None = None
    token_env: str | None = None
    gallery_dir: Path | None = None
    db_path: Path | None = None
    cors_origins: list[str] = Field(default_factory=list)
    trash_days: int | None = Field(None, ge=1)

    def resolved_token(self) -> str | None:
        """The token clients must send: env `TSR_TOKEN`, then env `token_env`, then `token`."""
        if os.environ.get("TSR_TOKEN"):
            return os.environ["TSR_TOKEN"]
        if self.token_env and os.environ.get(self.token_env):
            return os.environ[self.token_env]
        return self.token


class BackendConfig(_Section):
    """One sd-server the tsr server drives: `managed` (tsr starts it) or `external` (a URL)."""

    name: str
    kind: Literal["managed", "external"] = "external"
    url: str = DEFAULT_SD_SERVER_URL
    #: managed: the sd-server binary and extra flags; the port comes from `url`
    binary: str = "sd-server"
    args: list[str] = Field(default_factory=list)
    #: external: a command run with MODEL=<path> in its environment to switch models
    switch_command: list[str] | str | None = None
    #: families this backend may serve (empty: any)
    families: list[str] = Field(default_factory=list)
    #: the checkpoint to load at start (managed) or the one it is known to hold (external)
    model: Path | None = None
    ready_timeout: float = Field(120.0, gt=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        return validate_url(url)


class TuiConfig(_Section):
    """`tsr tui`: image renderer, bandwidth, and key remapping (binding id → keys)."""

    image_renderer: ImageRenderer = "auto"
    low_bandwidth: bool = False
    keymap: dict[str, str] = Field(default_factory=dict)


class Config(BaseModel):
    """The whole config file, with defaults for everything it leaves out."""

    model_config = ConfigDict(extra="forbid")

    default_remote: str = LOCAL
    remotes: dict[str, RemoteConfig] = Field(default_factory=dict)
    civitai: CivitaiConfig = Field(default_factory=CivitaiConfig)
    paths: dict[str, list[Path]] = Field(default_factory=dict)
    server: ServerConfig = Field(default_factory=ServerConfig)
    backends: list[BackendConfig] = Field(default_factory=list)
    tui: TuiConfig = Field(default_factory=TuiConfig)
    #: the file this was read from (not a key in it)
    source: Path | None = Field(None, exclude=True)
    #: the data root (database, gallery) this config uses (not a key in it)
    home: Path = Field(default_factory=tsr_paths.data_dir, exclude=True)

    @field_validator("paths", mode="before")
    @classmethod
    def _roots_as_lists(cls, value: Any) -> Any:
        # `checkpoints = "/m"` and `checkpoints = ["/m", "/n"]` both mean a list of roots
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    def model_roots(self) -> dict[str, list[Path]]:
        """Model roots per kind, `~` expanded and absolute; defaults under the data dir."""
        roots = {kind: [self.home / "models" / kind] for kind in MODEL_ROOT_KINDS}
        for kind, configured in self.paths.items():
            roots[kind] = [p.expanduser().absolute() for p in configured]
        return roots

    def default_model_roots(self) -> list[Path]:
        """The model roots left at their defaults (under the data dir), every kind together."""
        return [self.home / "models" / kind for kind in MODEL_ROOT_KINDS if kind not in self.paths]

    def all_model_roots(self) -> list[Path]:
        """Every model root, all kinds together, without repeats."""
        seen: dict[Path, None] = {}
        for roots in self.model_roots().values():
            for root in roots:
                seen.setdefault(root, None)
        return list(seen)

    def db_path(self) -> Path:
        """The models and gallery database file."""
        return (self.server.db_path or self.home / "tsr.db").expanduser()

    def gallery_dir(self) -> Path:
        """The gallery folder (images, trash)."""
        return (self.server.gallery_dir or self.home / "gallery").expanduser()

    def effective_backends(self) -> list[BackendConfig]:
        """The configured backends, or one external sd-server at its default address."""
        return self.backends or [BackendConfig(name="default", kind="external")]

    def remote_names(self) -> list[str]:
        """`local` first, then the configured remotes in file order."""
        return [LOCAL, *(name for name in self.remotes if name != LOCAL)]

    def remote(self, name: str) -> RemoteConfig | None:
        """The named remote's settings, None for `local`; an unknown name lists the known ones."""
        if name == LOCAL:
            return None
        if name not in self.remotes:
            known = ", ".join(self.remote_names())
            raise UnknownRemote(f"there is no remote named {name!r}; known remotes: {known}")
        return self.remotes[name]


def validate_url(url: str) -> str:
    """Check that `url` is an absolute http(s) URL with a host; return it without a trailing /."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL with a host, got {url!r}")
    if parts.query or parts.fragment:
        raise ValueError("the URL must not carry a query or fragment (tokens go in the config)")
    return url.rstrip("/")


def _describe(error: ErrorDetails) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"unknown key {key!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{key!r}: {message}"


def load_config(path: Path | None = None) -> Config:
    """Read the config file (missing means all defaults); a bad file raises ConfigError."""
    path = path or tsr_paths.config_file()
    data: dict[str, Any] = {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        pass
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix or remove that line") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
    config.source = path
    return config


class ConfigFile:
    """Edits one config file in place, keeping its comments, order and formatting."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or tsr_paths.config_file()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            raise ConfigError(f"cannot read the config file {self.path}: {exc}") from None
        try:
            self.document = tomlkit.parse(text)
        except tomlkit.exceptions.ParseError as exc:
            raise ConfigError(f"{self.path} is not valid TOML ({exc}); fix that line") from None

    def set(self, dotted_key: str, value: Any) -> None:
        """Set `a.b.c = value`, creating tables as needed; the result must still validate."""
        *tables, leaf = dotted_key.split(".")
        if not leaf or any(not part for part in tables):
            raise ConfigError(f"{dotted_key!r} is not a config key (expected e.g. server.port)")
        node: Any = self.document
        for part in tables:
            if part not in node:
                node[part] = tomlkit.table()
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"{dotted_key!r}: {part!r} is a value, not a table")
        node[leaf] = value
        self._validate()

    def unset(self, dotted_key: str) -> None:
        """Remove a key; removing one that is not there is an error naming it."""
        *tables, leaf = dotted_key.split(".")
        node: Any = self.document
        for part in tables:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            raise ConfigError(f"{dotted_key!r} is not set in {self.path}")
        del node[leaf]
        self._validate()

    def add_remote(self, name: str, url: str, token: str | None, token_env: str | None) -> None:
        """Add or replace `[remotes.NAME]`; `local` is reserved."""
        if name == LOCAL:
            raise ConfigError("'local' is the built-in embedded server; choose another name")
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"remote name {name!r}: use letters, digits, '-' and '_' only")
        try:
            url = validate_url(url)
        except ValueError as exc:
            raise ConfigError(f"remote {name!r}: {exc}") from None
        remotes = self.document.get("remotes")
        if remotes is None:
            remotes = tomlkit.table(is_super_table=True)
            self.document["remotes"] = remotes
        entry = tomlkit.table()
        entry["url"] = url
        if token:
            entry["token"] = token
        if token_env:
            entry["token_env"] = token_env
        remotes[name] = entry
        self._validate()

    def remove_remote(self, name: str) -> None:
        """Remove `[remotes.NAME]` (and unset it as the default); `local` cannot be removed."""
        if name == LOCAL:
            raise ConfigError("'local' is built in and cannot be removed")
        remotes = self.document.get("remotes")
        if not remotes or name not in remotes:
            known = ", ".join([LOCAL, *(remotes or {})])
            raise UnknownRemote(f"there is no remote named {name!r}; known remotes: {known}")
        del remotes[name]
        if self.document.get("default_remote") == name:
            del self.document["default_remote"]
        self._validate()

    def _validate(self) -> Config:
        try:
            return Config.model_validate(self.document.unwrap())
        except ValidationError as exc:
            problems = "; ".join(_describe(err) for err in exc.errors())
            raise ConfigError(f"{self.path}: {problems}") from None

    def holds_secret(self) -> bool:
        """True when the file holds a token or API key (so it must be private)."""
        config = self._validate()
        return bool(
            config.server.token
            or config.civitai.api_key
            or any(remote.token for remote in config.remotes.values())
        )

    def save(self) -> None:
        """Write atomically (temp file + rename); mode 0600 when the file holds a secret."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = tomlkit.dumps(self.document)
        mode = 0o600 if self.holds_secret() else 0o644
        fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=self.path.parent)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise ConfigError(f"cannot write the config file {self.path}: {exc}") from None
