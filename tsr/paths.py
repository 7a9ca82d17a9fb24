"""Where tsr keeps its config, data and cache (platformdirs; TSR_CONFIG and TSR_HOME override)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "tsr"


def config_file() -> Path:
    """The config file: `$TSR_CONFIG`, else `<user config dir>/tsr/config.toml`."""
    override = os.environ.get("TSR_CONFIG")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def data_dir() -> Path:
    """The data root (database, gallery, default model roots): `$TSR_HOME` or the user data dir."""
    override = os.environ.get("TSR_HOME")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME))


def cache_dir() -> Path:
    """The cache root (thumbnails, lookups): `$TSR_HOME/cache` or the user cache dir."""
    override = os.environ.get("TSR_HOME")
    if override:
        return Path(override).expanduser() / "cache"
    return Path(platformdirs.user_cache_dir(APP_NAME))


def is_within(path: Path, root: Path) -> bool:
    """True when `path` (resolved, symlinks followed) lies inside `root` (resolved)."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
