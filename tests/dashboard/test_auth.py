"""Write actions: refused without credentials, a CSRF token or the same origin, and nothing
changes then; with them, replay and archive change the database (every backend)."""

from __future__ import annotations

import httpx
import pytest

import pgqrs
from pgqrs.dashboard.auth import COOKIE

from .conftest import BASE, ClientFactory
from .support import TOKEN, dead_letter, log_in

# The checks are the app's own; two backends show the writes reach the database.
pytestmark = pytest.mark.backends("sqlite", "postgres")


async def poison_ids(store: pgqrs.Store) -> list[int]:
    return [
        d.message.id for d in await pgqrs.admin(store).dead_letters() if not d.message.archived_at
    ]


async def test_no_credentials_is_401_and_changes_nothing(
    writer: httpx.AsyncClient, store: pgqrs.Store
) -> None:
    letter = await dead_letter(store, "payments", {"n": 1})
    page = (await writer.get("/dead-letters")).text
    assert "Log in to act" in page
    assert "data-replay" not in page
    replay = await writer.post(f"/dead-letters/{letter}/replay", data={"csrf": "x"})
    assert replay.status_code == 401
    archive = await writer.post("/dead-letters/archive", data={"queue": "payments"})
    assert archive.status_code == 401
    wrong = await writer.post(
        f"/dead-letters/{letter}/replay", headers={"Authorization": "Bearer not-the-token"}
    )
    assert wrong.status_code == 401
    assert await poison_ids(store) == [letter]


async def test_login_sets_a_strict_http_only_cookie(writer: httpx.AsyncClient) -> None:
    failed = await writer.post("/login", data={"token": "not-the-token"})
    assert failed.status_code == 401
    assert "not the dashboard" in failed.text
    assert COOKIE not in writer.cookies
    answer = await writer.post("/login", data={"token": TOKEN})
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/" in cookie
    page = (await writer.get("/queues")).text
    assert "Log out" in page


async def test_bad_csrf_or_origin_is_403_and_changes_nothing(
    writer: httpx.AsyncClient, store: pgqrs.Store
) -> None:
    letter = await dead_letter(store, "payments", {"n": 1})
    csrf = await log_in(writer)
    url = f"/dead-letters/{letter}/replay"
    assert (await writer.post(url)).status_code == 403
    assert (await writer.post(url, data={"csrf": csrf[:-2] + "xx"})).status_code == 403
    elsewhere = {"Origin": "https://evil.example"}
    assert (await writer.post(url, data={"csrf": csrf}, headers=elsewhere)).status_code == 403
    cross = {"Sec-Fetch-Site": "cross-site"}
    assert (await writer.post(url, data={"csrf": csrf}, headers=cross)).status_code == 403
    login_elsewhere = await writer.post("/login", data={"token": TOKEN}, headers=elsewhere)
    assert login_elsewhere.status_code == 403
    assert await poison_ids(store) == [letter]


async def test_replay_with_a_session_puts_the_message_back(
    writer: httpx.AsyncClient, store: pgqrs.Store
) -> None:
    letter = await dead_letter(store, "payments", {"n": 1})
    csrf = await log_in(writer)
    page = (await writer.get("/dead-letters")).text
    assert f'data-replay="{letter}"' in page
    answer = await writer.post(
        f"/dead-letters/{letter}/replay", data={"csrf": csrf}, headers={"Origin": BASE}
    )
    assert answer.status_code == 303
    assert "replayed=" in answer.headers["location"]
    assert await poison_ids(store) == []
    message = await (await store.get_messages()).get(letter)
    assert message.read_ct == 0
    assert message.archived_at is None
    notice = (await writer.get(answer.headers["location"])).text
    assert f"Message {letter} is back in its queue" in notice


async def test_archive_one_with_a_session(writer: httpx.AsyncClient, store: pgqrs.Store) -> None:
    first = await dead_letter(store, "payments", {"n": 1})
    second = await dead_letter(store, "payments", {"n": 2})
    refused = await writer.post(f"/dead-letters/{first}/archive", data={"csrf": "x"})
    assert refused.status_code == 401
    csrf = await log_in(writer)
    page = (await writer.get("/dead-letters")).text
    assert f'data-archive-one="{first}"' in page
    answer = await writer.post(
        f"/dead-letters/{first}/archive", data={"csrf": csrf}, headers={"Origin": BASE}
    )
    assert answer.status_code == 303
    assert "archived=1" in answer.headers["location"]
    assert await poison_ids(store) == [second]
    notice = (await writer.get(answer.headers["location"])).text
    assert "Archived 1 dead letter(s)" in notice
    assert f'data-archive-one="{first}"' not in notice  # archived: no button any more
    assert f'data-archive-one="{second}"' in notice


async def test_archive_with_a_bearer_token(writer: httpx.AsyncClient, store: pgqrs.Store) -> None:
    first = await dead_letter(store, "payments", {"n": 1})
    second = await dead_letter(store, "payments", {"n": 2})
    answer = await writer.post(
        "/dead-letters/archive",
        data={"queue": "payments"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 303
    assert "archived=2" in answer.headers["location"]
    assert await poison_ids(store) == []
    archived = await pgqrs.admin(store).dlq_list("payments")
    assert [m.id for m in archived] == [first, second]
    assert all(m.archived_at is not None for m in archived)


async def test_logout_ends_the_session(writer: httpx.AsyncClient, store: pgqrs.Store) -> None:
    letter = await dead_letter(store, "payments", {"n": 1})
    csrf = await log_in(writer)
    assert (await writer.post("/logout", data={"csrf": csrf})).status_code == 303
    assert COOKIE not in writer.cookies
    refused = await writer.post(f"/dead-letters/{letter}/replay", data={"csrf": csrf})
    assert refused.status_code == 401
    assert await poison_ids(store) == [letter]


async def test_a_session_of_another_token_is_refused(
    client_for: ClientFactory, store: pgqrs.Store
) -> None:
    letter = await dead_letter(store, "payments", {"n": 1})
    first = await client_for(store, write=True, token=TOKEN)
    csrf = await log_in(first)
    other = await client_for(store, write=True, token="another-token-0123456789")
    other.cookies.set(COOKIE, first.cookies[COOKIE])
    refused = await other.post(f"/dead-letters/{letter}/replay", data={"csrf": csrf})
    assert refused.status_code == 401
    assert await poison_ids(store) == [letter]
