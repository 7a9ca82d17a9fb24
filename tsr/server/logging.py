"""Server logs: stderr and a rotating file under `<data dir>/logs/`, with secrets blanked out."""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from tsr.config import Config

LOG_FILE_NAME = "server.log"
MAX_LOG_BYTES = 5_000_000
LOG_BACKUPS = 3
#: the loggers a server writes to: ours and uvicorn's (`uvicorn.error`, `uvicorn.access`)
SERVER_LOGGERS = ("tsr", "uvicorn")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: marks the handlers configure_logging installs, so they can be replaced or removed
HANDLER_NAME = "tsr-server"
REDACTED = "***"

# `?token=abc` or `&api_key=abc` in a logged URL: keep the key, blank the value
_QUERY_SECRET = re.compile(
    r"(?i)([?&](?:token|access_token|authorization|bearer|api_key|apikey|password)=)[^&\s\"']*"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


class RedactSecrets(logging.Filter):
    """Blanks known secrets, bearer tokens and credential query values in every record."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        # short values would blank innocent words; real tokens are long
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """`text` with every secret replaced by ***."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        text = _QUERY_SECRET.sub(rf"\1{REDACTED}", text)
        return _BEARER.sub(rf"\1{REDACTED}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        message = record.getMessage()
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def log_file(config: Config) -> Path:
    """Where the server of this data dir writes its log."""
    return config.home / "logs" / LOG_FILE_NAME


def config_secrets(config: Config) -> list[str | None]:
    """Every secret the config knows: the server token, the CivitAI key, remote tokens."""
    return [
        config.server.resolved_token(),
        config.civitai.resolved_key(),
        *(remote.resolved_token() for remote in config.remotes.values()),
    ]


def configure_logging(config: Config, *, to_stderr: bool, level: int = logging.INFO) -> Path:
    """Send the server's logs to the rotating file (and stderr for `tsr serve`); returns the file.

    Calling it again replaces the handlers it installed before (e.g. another data dir).
    """
    path = log_file(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    redact = RedactSecrets(config_secrets(config))
    formatter = logging.Formatter(FORMAT)
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
    ]
    if to_stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redact)
        handler.set_name(HANDLER_NAME)
    _remove_handlers()
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        for handler in handlers:
            logger.addHandler(handler)
        logger.setLevel(level)
        # the embedded server must never print into a TUI through the root logger
        logger.propagate = False
    # uvicorn turns this off for a server without an access log; a later server may want it
    logging.getLogger("uvicorn.access").propagate = True
    return path


def _remove_handlers() -> None:
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == HANDLER_NAME]:
            logger.removeHandler(old)
            old.close()


def reset_logging() -> None:
    """Undo `configure_logging` (when an embedded server stops): records propagate again."""
    _remove_handlers()
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
