"""Statements on `pgqrs_py_message_errors` (this library's table): each failed message's last
error, replaced at every failure, deleted with the message."""

from __future__ import annotations

from .columns import MESSAGE_ERROR
from .spelling import read


class FailureSql:
    MSG_ERROR_RECORD = (
        f"INSERT INTO {{s}}pgqrs_py_message_errors ({MESSAGE_ERROR.select}) VALUES (:message_id, "
        ":attempt, :error_type, :error_message, :traceback, :now) "
        "ON CONFLICT (message_id) DO UPDATE SET attempt = excluded.attempt, "
        "error_type = excluded.error_type, error_message = excluded.error_message, "
        "traceback = excluded.traceback, failed_at = excluded.failed_at"
    )
    MSG_ERRORS_OF = read(
        f"SELECT {MESSAGE_ERROR.select} FROM {{s}}pgqrs_py_message_errors "
        "WHERE message_id IN_LIST(:ids) ORDER BY message_id"
    )
