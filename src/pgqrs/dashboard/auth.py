"""Who may act: the write token, the session cookie, CSRF tokens and the Origin check.

Sessions are stateless: the cookie is `issued.nonce.mac`, an HMAC under a key derived from the
token, so any process holding the token checks it, and changing the token ends every session.
A session's CSRF token is another HMAC of its nonce, sent in a hidden field of every form.
A request with `Authorization: Bearer <token>` is authenticated by the header alone and needs
no CSRF token: browsers never attach that header on their own. `docs/guides/dashboard.md`
("Auth and CSRF") explains the model.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..errors import ConfigError

COOKIE = "pgqrs_dashboard"
TOKEN_ENV = "PGQRS_DASHBOARD_TOKEN"
SESSION_SECONDS = 12 * 3600
MIN_TOKEN_LENGTH = 16  # the login form can be tried at will: a short token is guessable


def resolve_token(write: bool, token: str | None) -> str | None:
    """The token write actions need (`token`, else $PGQRS_DASHBOARD_TOKEN), or None when read-only.

    Raises ConfigError for write actions without a usable token, and for a token given
    without write actions (it would protect nothing and suggests a mistake)."""
    if not write:
        if token is not None:
            raise ConfigError(
                "a dashboard token is only used with write actions: add write=True (--write)"
            )
        return None
    chosen = token if token is not None else os.environ.get(TOKEN_ENV)
    if chosen is not None and not isinstance(chosen, str):
        raise TypeError(f"token must be a str, not {type(chosen).__name__}")
    if chosen is None or not chosen.strip():
        raise ConfigError(
            "the dashboard's write actions need a token: pass token=... (--token) "
            f"or set {TOKEN_ENV}"
        )
    if len(chosen) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"the dashboard token is too short: use at least {MIN_TOKEN_LENGTH} characters "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe())")'
        )
    return chosen


class Guard:
    """Checks every write: same origin, then a bearer token or a session with its CSRF token."""

    def __init__(
        self,
        token: str | None,
        *,
        allowed_origins: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.write = token is not None
        self._token = (token or "").encode()
        self._key = hashlib.sha256(b"pgqrs-dashboard:" + self._token).digest()
        self._origins = frozenset(_netloc(o) for o in allowed_origins)
        self._clock = clock

    # -- sessions ---------------------------------------------------------------------------
    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def token_matches(self, candidate: str) -> bool:
        return self.write and hmac.compare_digest(candidate.encode(), self._token)

    def new_session(self) -> str:
        """A cookie value for a session that starts now."""
        issued, nonce = str(int(self._clock())), secrets.token_urlsafe(16)
        return f"{issued}.{nonce}.{self._mac(f'session.{issued}.{nonce}')}"

    def session(self, request: Request) -> str | None:
        """The nonce of the request's valid session, if it has one."""
        if not self.write:
            return None
        parts = request.cookies.get(COOKIE, "").split(".")
        if len(parts) != 3:
            return None
        issued, nonce, mac = parts
        if not hmac.compare_digest(mac, self._mac(f"session.{issued}.{nonce}")):
            return None
        if not issued.isdigit() or self._clock() - int(issued) > SESSION_SECONDS:
            return None
        return nonce

    def csrf(self, request: Request) -> str | None:
        """The CSRF token the forms of this session carry (None: not logged in)."""
        nonce = self.session(request)
        return None if nonce is None else self._mac(f"csrf.{nonce}")

    def bearer(self, request: Request) -> bool:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(credentials.strip())

    # -- checks -----------------------------------------------------------------------------
    def same_origin(self, request: Request) -> bool:
        """Whether a browser sent this request from one of our own pages.

        The Origin (else Referer) must name the Host the request came to, or an origin the app
        was told to trust (a reverse proxy that rewrites Host). Clients that send neither
        (curl, scripts) pass: a cookie session still needs its CSRF token."""
        if request.headers.get("sec-fetch-site") == "cross-site":
            return False
        source = request.headers.get("origin") or request.headers.get("referer")
        if source is None:
            return True
        found = _netloc(source)
        return bool(found) and (
            found == request.headers.get("host", "").lower() or found in self._origins
        )

    async def check_write(self, request: Request) -> FormData:
        """The form of an allowed write; HTTPException 403 (cross-origin, bad CSRF token) or
        401 (no credentials) otherwise, before anything is changed."""
        if not self.same_origin(request):
            raise HTTPException(403, "cross-origin request refused")
        form = await request.form()
        if self.bearer(request):
            return form
        if request.headers.get("authorization"):
            raise HTTPException(401, "wrong token", {"WWW-Authenticate": "Bearer"})
        expected = self.csrf(request)
        if expected is None:
            raise HTTPException(401, "log in first", {"WWW-Authenticate": "Bearer"})
        sent = form.get("csrf")
        if not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page")
        return form


def _netloc(origin: str) -> str:
    """`host:port` of an origin or URL (a bare `host:port` is accepted as it is)."""
    return urlsplit(origin if "//" in origin else f"//{origin}").netloc.lower()
