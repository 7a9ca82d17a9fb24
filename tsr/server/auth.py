"""Token auth for every route but health and the docs, compared in constant time.

Clients send `Authorization: Bearer <token>`. The A1111-compatible front (`/sdapi/v1/...`) also
takes HTTP Basic with the token as the password (any user name), because A1111 clients only know
Basic auth (A1111's `--api-auth`); everywhere else Basic is refused.
"""

from __future__ import annotations

import binascii
import hmac
from base64 import b64decode
from collections.abc import Iterable
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

#: query keys that look like credentials; a request carrying one is refused outright
SECRET_QUERY_KEYS = frozenset(
    {"token", "access_token", "authorization", "bearer", "api_key", "apikey", "password"}
)

MISSING = (
    "this tsr server requires a token: send `Authorization: Bearer <token>` "
    "(for a remote: `tsr remote add NAME URL --token ...`)"
)
WRONG = "the token was rejected: it does not match this tsr server's token"
NOT_BEARER = "unsupported Authorization scheme: send `Authorization: Bearer <token>`"
IN_QUERY = (
    "tokens are never accepted in the URL (URLs end up in logs): "
    "send `Authorization: Bearer <token>` instead"
)

#: paths where HTTP Basic (any user, the token as password) is accepted besides Bearer
BASIC_AUTH_PREFIX = "/sdapi/v1/"
#: what a 401 on those paths asks for, so that A1111 clients prompt for a password
BASIC_CHALLENGE = 'Basic realm="tsr"'
MISSING_BASIC = (
    "this tsr server requires a token: A1111 clients send it as the password of HTTP Basic "
    "auth (any user name), others send `Authorization: Bearer <token>`"
)
NOT_BASIC_OR_BEARER = (
    "unsupported Authorization scheme: send HTTP Basic with the token as the password, "
    "or `Authorization: Bearer <token>`"
)
BAD_BASIC = (
    "malformed HTTP Basic credentials: send base64 of `user:token` (any user name, the tsr "
    "token as the password)"
)


def token_matches(given: str, expected: str) -> bool:
    """Compare two tokens in constant time (no early exit on the first differing byte)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def basic_password(credentials: str) -> str | None:
    """The password of HTTP Basic credentials (base64 of `user:password`), or None if malformed."""
    try:
        raw = b64decode(credentials.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # what older clients send for non-ASCII passwords
    _user, colon, password = text.partition(":")
    return password if colon else None


def _has_secret_query(query_string: bytes) -> bool:
    if not query_string:
        return False
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return any(key.lower() in SECRET_QUERY_KEYS for key, _ in pairs)


class BearerAuth:
    """ASGI middleware: refuses (401) any request without the right token (Bearer; on
    `/sdapi/v1/...` also HTTP Basic with the token as the password).

    It wraps the whole app, so every route added later is protected without opting in; only
    `public_paths` (health and the docs) are open. With no token configured it lets all through.
    """

    def __init__(self, app: ASGIApp, token: str | None, public_paths: Iterable[str]) -> None:
        self.app = app
        self.token = token
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": problem})
            return
        challenge = BASIC_CHALLENGE if _takes_basic(scope["path"]) else "Bearer"
        response = JSONResponse(
            {"detail": problem}, status_code=401, headers={"WWW-Authenticate": challenge}
        )
        await response(scope, receive, send)

    def _problem(self, scope: Scope) -> str | None:
        """Why the request is refused, or None when it may pass."""
        if _has_secret_query(scope.get("query_string", b"")):
            return IN_QUERY
        if self.token is None or scope["path"] in self.public_paths:
            return None
        basic_allowed = _takes_basic(scope["path"])
        header = Headers(scope=scope).get("authorization")
        if not header:
            return MISSING_BASIC if basic_allowed else MISSING
        scheme, _, given = header.partition(" ")
        scheme = scheme.lower()
        if basic_allowed and scheme == "basic":
            # the password is compared as sent: Basic carries it exactly, spaces included
            secret = basic_password(given)
            if secret is None:
                return BAD_BASIC
        elif scheme != "bearer" or not given.strip():
            return NOT_BASIC_OR_BEARER if basic_allowed else NOT_BEARER
        else:
            secret = given.strip()
        if not token_matches(secret, self.token):
            return WRONG
        return None


def _takes_basic(path: str) -> bool:
    return path.startswith(BASIC_AUTH_PREFIX)
