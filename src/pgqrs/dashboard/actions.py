"""The write routes, present only when the app was created with `write=True`: logging in and
out, replaying a dead letter, archiving one dead letter or a queue's. Every POST passes
`Guard.check_write` (same origin; a bearer token, or a session and its CSRF token) before it
touches the store."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..admin import Admin
from ..client import Store
from .auth import COOKIE, SESSION_SECONDS, Guard
from .render import page, path_for


def _guard(request: Request) -> Guard:
    guard: Guard = request.app.state.dashboard.guard
    return guard


async def _store(request: Request) -> Store:
    store: Store = await request.app.state.dashboard.store()
    return store


def _back(request: Request, name: str, **query: int) -> RedirectResponse:
    url = path_for(request, name)
    return RedirectResponse(f"{url}?{urlencode(query)}" if query else url, 303)


def _cookie_path(request: Request) -> str:
    """The mount point: the cookie goes nowhere else on the host."""
    return str(request.scope.get("root_path") or "") or "/"


async def login_form(request: Request) -> Response:
    return page(request, "login", {"failed": False})


async def login(request: Request) -> Response:
    guard = _guard(request)
    if not guard.same_origin(request):
        raise HTTPException(403, "cross-origin request refused")
    sent = (await request.form()).get("token")
    if not isinstance(sent, str) or not guard.token_matches(sent):
        return page(request, "login", {"failed": True}, status=401)
    response = _back(request, "queues")
    response.set_cookie(
        COOKIE,
        guard.new_session(),
        max_age=SESSION_SECONDS,
        path=_cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    await _guard(request).check_write(request)
    response = _back(request, "queues")
    response.delete_cookie(COOKIE, path=_cookie_path(request), httponly=True, samesite="strict")
    return response


async def replay(request: Request) -> Response:
    await _guard(request).check_write(request)
    message = await Admin(await _store(request)).replay_dlq(request.path_params["message_id"])
    return _back(request, "dead_letters", replayed=message.id)


async def archive_one(request: Request) -> Response:
    await _guard(request).check_write(request)
    done = await Admin(await _store(request)).archive_dead_letter(request.path_params["message_id"])
    return _back(request, "dead_letters", archived=int(done))


async def archive(request: Request) -> Response:
    form = await _guard(request).check_write(request)
    queue = form.get("queue")
    if not isinstance(queue, str) or not queue:
        raise HTTPException(400, "which queue's dead letters? (the form sends `queue`)")
    archived = await Admin(await _store(request)).dlq(queue)
    return _back(request, "dead_letters", archived=len(archived))


ROUTES = [
    Route("/login", login_form, name="login_form", methods=["GET"]),
    Route("/login", login, name="login", methods=["POST"]),
    Route("/logout", logout, name="logout", methods=["POST"]),
    Route("/dead-letters/{message_id:int}/replay", replay, name="replay", methods=["POST"]),
    Route(
        "/dead-letters/{message_id:int}/archive", archive_one, name="archive_one", methods=["POST"]
    ),
    Route("/dead-letters/archive", archive, name="archive", methods=["POST"]),
]
