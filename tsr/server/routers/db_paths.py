"""Paths sent by clients: refused unless absolute and inside a configured model root."""

from __future__ import annotations

import os
from pathlib import Path

from tsr.config import Config
from tsr.errors import BadRequest, RootViolation
from tsr.paths import is_within


def model_root_paths(config: Config) -> list[str]:
    """The configured model roots, absolute and normalised."""
    return [os.path.normpath(str(root)) for root in config.all_model_roots()]


def checked_path(text: str, config: Config) -> str:
    """`text` normalised, when it is an absolute path inside a configured model root.

    The test is first made on the text alone, so a path outside the roots never reaches the
    filesystem; a path inside is then resolved, so a symlink leading out is refused too.

    Raises:
        RootViolation: a relative path, or one outside the roots (HTTP 403).
        BadRequest: a path with a NUL character.
    """
    if "\x00" in text:
        raise BadRequest("a path cannot contain a NUL character")
    roots = model_root_paths(config)
    if not os.path.isabs(text):
        raise RootViolation(
            f"{text} is not an absolute path; the server takes only absolute paths inside its "
            f"model roots ({', '.join(roots)})"
        )
    path = os.path.normpath(text)
    lexical = [r for r in roots if path == r or path.startswith(r.rstrip(os.sep) + os.sep)]
    if not any(is_within(Path(path), Path(root)) for root in lexical):
        raise RootViolation(
            f"{path} is not inside a configured model root of this server "
            f"({', '.join(roots)}); add its folder under [paths] in the server's config"
        )
    return path
