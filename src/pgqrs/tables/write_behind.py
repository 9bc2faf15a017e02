"""A step's success sent with the statement after it (docs/decisions.md, "Workflow round trips").

Inside `handle_workflow`, a run's code and the loop settling its message reach the database
through one `WriteBehind`. The success of a step run by `@step` is held instead of being sent on
its own, and goes with the run's next statement: the acquisition of the next step, or the run's
own success, as one transaction (on PostgreSQL one statement, `STEP_SUCCEED_THEN_*`): one round
trip instead of two. It is never later than that:

* the statement that comes next carries it, or (any other statement, a transaction) sends it
  first; either way it is committed before that statement's result is seen, so before the next
  step's body runs, and before the loop archives or gives back the trigger message;
* if the run's code waits on anything else first (another branch of a fan-out, a sleep, a
  call elsewhere: the event loop gets a turn), it is sent on its own right then;
* a failure to send it is raised by the next statement, as a failure to save it would have
  been: the step runs again when the run resumes (semantics.md §12.6).

So what changes is only when the round trip happens, never whether a step's result is stored
before the work after it starts. A step whose body finished but whose result was not stored runs
again after a crash, as before; the window is the same (the next statement follows at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Hashable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..store.executor import Executor, Params, Queryable, Row, run_steps
from . import steps

if TYPE_CHECKING:
    from .._clock import Clock, DatabaseClock
    from ..config import Config
    from ..store.sql import Sql
    from ..store.wakeup import Wakeups
    from .context import Context
    from .messages import MessageReader


log = logging.getLogger("pgqrs")

# Successes sent on their own, by no caller: kept alive until they are done.
_alone: set[asyncio.Future[None]] = set()


class WriteBehind:
    """An executor that holds back step successes until the next statement (module docstring).

    One per delivery of a run; what it holds is always sent by the time the delivery ends.
    """

    def __init__(self, db: Executor) -> None:
        self._db = db
        self.backend = db.backend
        self.migration_kind = db.migration_kind
        self.schema = db.schema
        self.scope: Hashable | None = db.scope
        self.clock: DatabaseClock = db.clock
        self._held: list[dict[str, Any]] = []  # STEP_SUCCEED's parameters, oldest first
        self._sending: asyncio.Future[None] | None = None  # held successes sent on their own
        self._failure: Exception | None = None  # how that went wrong, for the next statement

    # -- what is held ------------------------------------------------------------------------
    def succeed_later(self, run_id: int, name: str, output: str, now: datetime) -> None:
        """Record step `name`'s success with the next statement (or sooner: see the module)."""
        self._held.append({"run_id": run_id, "name": name, "output": output, "now": now})
        if len(self._held) == 1:
            asyncio.get_running_loop().call_soon(self._send_if_still_held)

    def _send_if_still_held(self) -> None:
        """The event loop's next turn came before the run's next statement: the run's code
        waits on something else, so what is held is sent now, on its own."""
        if self._held and self._sending is None:
            sending = asyncio.ensure_future(self._send_alone(self._take()))
            self._sending = sending
            _alone.add(sending)
            sending.add_done_callback(_alone.discard)

    async def _send_alone(self, held: list[dict[str, Any]]) -> None:
        try:
            await self._send(held)
        except Exception as err:
            log.warning(
                "a step's result was not saved (it runs again when its run resumes): %s", err
            )
            self._failure = self._failure or err
        finally:
            self._sending = None
            if self._held:  # held meanwhile
                asyncio.get_running_loop().call_soon(self._send_if_still_held)

    def _take(self) -> list[dict[str, Any]]:
        held, self._held = self._held, []
        return held

    async def _send(self, held: list[dict[str, Any]]) -> None:
        if len(held) == 1:
            row = held[0]
            await steps.succeed(self._db, row["run_id"], row["name"], row["output"], row["now"])
        elif held:
            await self._db.batch([(self._db.sql.STEP_SUCCEED, row) for row in held])

    @property
    def _pending(self) -> bool:
        return bool(self._held) or self._sending is not None or self._failure is not None

    async def _sent(self) -> None:
        """Wait for a send in progress (a cancelled wait does not cut it short); a failure of
        it is raised here."""
        sending = self._sending
        if sending is not None:
            await asyncio.wait((sending,))
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    async def flush(self) -> None:
        """Everything held sent and committed (a failure raised)."""
        await self._sent()
        if self._held:
            await self._send(self._take())

    def _together(self, sql: str, params: Params | None) -> tuple[str, ...] | None:
        """The statements doing the one held success and `sql` in one transaction, if the
        backend has them for this pair (not for the same step twice: one statement cannot
        change a row twice)."""
        if params is None or len(self._held) != 1:
            return None
        held, sql_of = self._held[0], self._db.sql
        if sql is sql_of.STEP_ACQUIRE:
            same = (params.get("run_id"), params.get("name")) == (held["run_id"], held["name"])
            return None if same else sql_of.STEP_SUCCEED_THEN_ACQUIRE
        if sql is sql_of.RUN_SUCCEED:
            return sql_of.STEP_SUCCEED_THEN_RUN_SUCCEED
        return None

    async def _with_held(self, sql: str, params: Params | None) -> list[Row]:
        await self._sent()
        together = self._together(sql, params)
        if together is None:
            await self.flush()
            return await self._db.fetch(sql, params)
        assert params is not None
        done = {f"done_{key}": value for key, value in self._take()[0].items()}
        return await run_steps(self._db, together, {**params, **done})

    # -- Queryable ---------------------------------------------------------------------------
    @property
    def sql(self) -> Sql:
        return self._db.sql

    async def execute(self, sql: str, params: Params | None = None) -> int:
        await self.flush()
        return await self._db.execute(sql, params)

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        if self._pending:
            return await self._with_held(sql, params)
        return await self._db.fetch(sql, params)

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None:
        if self._pending:
            rows = await self._with_held(sql, params)
            return rows[0] if rows else None
        return await self._db.fetchone(sql, params)

    # -- Executor: the rest, after what is held ------------------------------------------------
    async def start(self) -> None:
        await self._db.start()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queryable]:
        # Not inside it: a statement there that fails (or is expected to, a unique key) must
        # not take a step's success down with it.
        await self.flush()
        async with self._db.transaction() as db:
            yield db

    async def batch(self, statements: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        await self.flush()
        return await self._db.batch(statements)

    async def install(self) -> None:
        await self.flush()
        await self._db.install()

    def watch(self, wakeups: Wakeups) -> None:
        self._db.watch(wakeups)

    async def close(self) -> None:
        await self._db.close()


class StoreWritingBehind:
    """A store as one delivery of a workflow run uses it: the same, its `db` a `WriteBehind`."""

    def __init__(self, store: Context) -> None:
        self._store = store
        self.writes = WriteBehind(store.db)
        self.db: Executor = self.writes
        self.clock: Clock = store.clock
        self.wakeups: Wakeups = store.wakeups
        self.messages: MessageReader = store.messages

    @property
    def settings(self) -> Config:
        return self._store.settings

    def sql_now(self) -> datetime | None:
        return self._store.sql_now()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
