"""tsr's error types: each carries one plain sentence meant for the user, never a traceback."""

from __future__ import annotations


class TsrError(Exception):
    """Base of every error tsr reports to a user; `str(error)` is the sentence to show."""

    #: process exit status the CLI uses for this error
    exit_code = 1


class ConfigError(TsrError):
    """The config file is unreadable, malformed, or holds a bad value."""


class UnknownRemote(ConfigError):
    """A remote name that the config does not define."""


class ModelFileError(TsrError):
    """A model file is missing, unreadable or corrupt (header, size, format)."""


class RootViolation(TsrError):
    """A path lies outside the configured model roots or the data dir."""


class RemoteError(TsrError):
    """Base for failures talking to another HTTP service (tsr server, sd-server, CivitAI)."""


class RemoteUnreachable(RemoteError):
    """The service could not be reached at all (refused, DNS, timeout)."""


class AuthRejected(RemoteError):
    """The service refused our credentials (401/403)."""


class NotFound(RemoteError):
    """The service answered that the thing asked for does not exist (404)."""


class BadRequest(RemoteError):
    """The service rejected the request as invalid (400/422), with its reason."""


class RateLimited(RemoteError):
    """The service kept answering 429 after our retries."""


class ServerError(RemoteError):
    """The service failed on its side (5xx or an answer we cannot parse)."""


class Conflict(RemoteError):
    """The request conflicts with the current state (409), e.g. a job already running."""


class JobFailed(TsrError):
    """A generation, switch, scan or download job ended in failure."""
