"""Templates and what every page shares: the Jinja environment, filters, security headers,
and the `?partial=1` fragments the pages' polling script swaps in."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from .._clock import parse_time
from ..errors import NotFoundError, PgqrsConnectionError

MAX_JSON_CHARS = 400  # a payload or error in a table cell; the run page shows more


def age(stamp: str | None, now: datetime) -> str:
    """`3s ago` for a past time, `in 5s` for a future one, `-` for none."""
    if stamp is None:
        return "-"
    delta = (parse_time(stamp) - now).total_seconds()
    return f"in {duration(delta)}" if delta > 0 else f"{duration(-delta)} ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours < 48 else f"{hours // 24}d"


def clock(stamp: str | None) -> str:
    """A stored time as `2026-12-03 18:04:05` (UTC)."""
    return "-" if stamp is None else parse_time(stamp).strftime("%Y-%m-%d %H:%M:%S")


def as_json(value: Any, limit: int = MAX_JSON_CHARS) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pgqrs.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(duration=duration, clock=clock, json=as_json)
    env.globals.update(age=age)
    return env


TEMPLATES = Jinja2Templates(env=_environment())


def path_for(request: Request, name: str, **params: Any) -> str:
    """The path of a route, under the mount point: links stay right behind a proxy that
    rewrites the host, which absolute URLs would not."""
    root = str(request.scope.get("root_path") or "")
    return root + str(request.app.url_path_for(name, **params))


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """The page `name.html`, or only its live part `_name.html` for `?partial=1`."""
    partial = request.query_params.get("partial") == "1"
    nonce = secrets.token_urlsafe(12)
    guard = request.app.state.dashboard.guard
    shared = {
        "now": request.app.state.dashboard.now(),
        "nonce": nonce,
        "write": guard.write,
        "csrf": guard.csrf(request),
        "page_name": name,
        "url": lambda route, **params: path_for(request, route, **params),
    }
    template = f"_{name}.html" if partial else f"{name}.html"
    response = TEMPLATES.TemplateResponse(request, template, {**shared, **context}, status)
    response.headers.update(
        {
            # Only our own inline script and style run; no page may frame this one (clickjacking
            # of the write buttons).
            "Content-Security-Policy": (
                f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
                "frame-ancestors 'none'; base-uri 'none'"
            ),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        }
    )
    return response


def age_seconds(stamp: str | None, now: datetime) -> float | None:
    return None if stamp is None else (now - parse_time(stamp)).total_seconds()


async def error_page(request: Request, err: Exception) -> HTMLResponse:
    """An HTTP error or a refusal of the library, as a page (or a fragment) saying why."""
    headers: dict[str, str] = {}
    if isinstance(err, HTTPException):
        status, text, headers = err.status_code, str(err.detail), dict(err.headers or {})
    elif isinstance(err, NotFoundError):
        status, text = 404, str(err)
    elif isinstance(err, PgqrsConnectionError):
        status, text = 503, f"the database did not answer: {err}"
    else:  # a PgqrsError or ValueError: the request asked for something invalid
        status, text = 400, str(err) or type(err).__name__
    response = page(request, "error", {"status": status, "message": text}, status=status)
    response.headers.update(headers)
    return response
