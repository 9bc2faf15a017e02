"""Fixtures of the dashboard tests: an HTTP client on the app (httpx's ASGITransport, no
server), over the `store` of the root conftest (every backend)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

import pgqrs
from pgqrs.dashboard import create_app

from .support import TOKEN

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
BASE = "http://dash.test"


@pytest.fixture
async def client_for() -> AsyncIterator[ClientFactory]:
    """`await client_for(store, write=True, token=TOKEN)`: a client of a new app on `store`."""
    opened: list[httpx.AsyncClient] = []

    async def factory(store: pgqrs.Store, **options: Any) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(store, **options)), base_url=BASE
        )
        opened.append(client)
        return client

    yield factory
    for client in opened:
        await client.aclose()


@pytest.fixture
async def reader(client_for: ClientFactory, store: pgqrs.Store) -> httpx.AsyncClient:
    """A read-only dashboard on `store`."""
    return await client_for(store)


@pytest.fixture
async def writer(client_for: ClientFactory, store: pgqrs.Store) -> httpx.AsyncClient:
    """A dashboard with write actions on `store`, not logged in."""
    return await client_for(store, write=True, token=TOKEN)
