"""The last error of each failed message (`pgqrs_py_message_errors`): what dead letters say.

Sizes are bounded, so a handler that fails with a huge message or a deep traceback cannot grow
the table without limit: the type and message are cut at their end, the traceback keeps its
last lines (where the error was raised).
"""

from __future__ import annotations

import traceback as tb
from collections.abc import Sequence
from datetime import datetime

from ..records import MessageError
from ..store.executor import Queryable
from ..store.sql.columns import MESSAGE_ERROR

MAX_TYPE = 200
MAX_MESSAGE = 2000
MAX_TRACEBACK = 8000


def describe(err: BaseException) -> tuple[str, str, str]:
    """(type, message, traceback) of an exception, each bounded."""
    kind = type(err)
    name = (
        f"{kind.__module__}.{kind.__qualname__}"
        if kind.__module__ != "builtins"
        else (kind.__qualname__)
    )
    trace = "".join(tb.format_exception(err))
    return name[:MAX_TYPE], str(err)[:MAX_MESSAGE], trace[-MAX_TRACEBACK:]


async def record(
    db: Queryable, message_id: int, attempt: int, err: BaseException, now: datetime | None
) -> None:
    """Remember `err` as the message's last error (replacing the one before)."""
    kind, message, trace = describe(err)
    params = {
        "message_id": message_id,
        "attempt": attempt,
        "error_type": kind,
        "error_message": message,
        "traceback": trace,
        "now": now,
    }
    await db.execute(db.sql.MSG_ERROR_RECORD, params)


async def of(db: Queryable, message_ids: Sequence[int]) -> dict[int, MessageError]:
    """The last error of each of these messages that has one."""
    if not message_ids:
        return {}
    rows = await db.fetch(db.sql.MSG_ERRORS_OF, {"ids": list(message_ids)})
    return {error.message_id: error for error in map(MESSAGE_ERROR.build, rows)}
