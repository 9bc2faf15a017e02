"""`create_app`: the dashboard as a Starlette application over one store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute

from .._clock import local_now
from ..client import Store, connect_with
from ..config import Config
from ..errors import PgqrsError
from . import actions, pages
from .auth import Guard, resolve_token
from .render import error_page
from .throughput import Throughput


class Dashboard:
    """What the handlers share (`request.app.state.dashboard`): the store, the guard and the
    throughput samples."""

    def __init__(self, source: Store | Config, guard: Guard) -> None:
        self.guard = guard
        self.throughput = Throughput()
        self._source = source
        self._store = source if isinstance(source, Store) else None
        self._opening: asyncio.Lock | None = None

    async def store(self) -> Store:
        """The store; opened on first use when the app was given a DSN and its lifespan did not
        run (mounted in another app, whose lifespan does not run ours)."""
        if self._store is not None:
            return self._store
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._store is None:
                assert isinstance(self._source, Config)
                self._store = await connect_with(self._source)
        return self._store

    def now(self) -> datetime:
        """The store's clock (injected in tests), or this machine's before the store opens."""
        return self._store.clock.now() if self._store is not None else local_now()

    async def close(self) -> None:
        """Close the store if this app opened it (a store passed in belongs to the caller)."""
        if isinstance(self._source, Config) and self._store is not None:
            store, self._store = self._store, None
            await store.close()


def create_app(
    dsn_or_store: str | Config | Store,
    *,
    write: bool = False,
    token: str | None = None,
    allowed_origins: Iterable[str] = (),
    debug: bool = False,
) -> Starlette:
    """The dashboard over a store, or over the database a DSN or `Config` names.

    Given a DSN or `Config`, the app opens the store in its lifespan (or on first request when
    mounted) and closes it at shutdown; a `Store` passed in is used as it is and left open.
    Read-only unless `write=True`, which needs `token` (or $PGQRS_DASHBOARD_TOKEN).
    `allowed_origins`: origins besides the request's own Host from which forms may be posted
    (e.g. `https://ops.example.com` behind a proxy that rewrites Host).
    Raises ConfigError (write without a usable token, a token without write), TypeError."""
    if isinstance(dsn_or_store, str):
        source: Store | Config = Config(dsn_or_store)
    elif isinstance(dsn_or_store, Store | Config):
        source = dsn_or_store.copy() if isinstance(dsn_or_store, Config) else dsn_or_store
    else:
        raise TypeError(
            f"create_app needs a DSN, a Config or a Store, not {type(dsn_or_store).__name__}"
        )
    if isinstance(allowed_origins, str):
        raise TypeError("allowed_origins must be a list of origins, not one str")
    guard = Guard(resolve_token(write, token), allowed_origins=allowed_origins)
    dashboard = Dashboard(source, guard)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if isinstance(source, Config):
            await dashboard.store()
        try:
            yield
        finally:
            await dashboard.close()

    routes: list[BaseRoute] = list(pages.ROUTES)
    if guard.write:  # read-only: the write routes do not exist at all
        routes += actions.ROUTES
    handlers: dict[Any, Any] = {HTTPException: error_page, PgqrsError: error_page}
    handlers[ValueError] = error_page  # the library's refusal of a filter (a naive time, ...)
    app = Starlette(debug=debug, routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.state.dashboard = dashboard
    return app
