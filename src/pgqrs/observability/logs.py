"""Log formats for pgqrs's records: one JSON object per line, or text with the fields appended.

The library logs to the `pgqrs` logger and passes what a record is about as `extra=` fields
(`FIELDS`); these formatters put them in the output (docs/guides/observability.md, "Logs").
They format any record, so they can serve an application's other loggers too.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

# The structured fields a pgqrs log record may carry, in output order.
FIELDS = ("queue", "worker_id", "message_id", "run_id", "attempt")

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields `record` carries (absent and None ones left out)."""
    found = {}
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            found[name] = value
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `ts` (ISO 8601, UTC), `level`, `logger`, `message`, the
    fields present, and `exc` (the traceback) when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        # json.dumps escapes newlines: a traceback stays inside its line.
        return json.dumps(doc, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [queue=… worker_id=…]`, then any traceback."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        found = fields_of(record)
        if not found:
            return text
        return f"{text} [{' '.join(f'{k}={v}' for k, v in found.items())}]"


def formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter of `text` or `json`."""
    if log_format == "json":
        return JsonFormatter()
    return TextFormatter()
