"""Log formats (one JSON object per line, or text with the fields), and the structured fields
the library's log records carry."""

from __future__ import annotations

import json
import logging
import sys

import pytest

import pgqrs
from pgqrs.observability.logs import JsonFormatter, TextFormatter, formatter


def record(**extra: object) -> logging.LogRecord:
    return logging.getLogger("pgqrs").makeRecord(
        "pgqrs", logging.WARNING, __file__, 1, "message %s failed", (7,), None, extra=extra
    )


def test_json_is_one_object_per_line_with_the_fields() -> None:
    try:
        raise ValueError("two\nlines")
    except ValueError:
        failing = logging.getLogger("pgqrs").makeRecord(
            "pgqrs",
            logging.ERROR,
            __file__,
            1,
            "boom",
            (),
            sys.exc_info(),
            extra={"queue": "jobs", "message_id": 7, "attempt": 2, "run_id": None},
        )
    line = JsonFormatter().format(failing)
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["level"] == "ERROR"
    assert doc["logger"] == "pgqrs"
    assert doc["message"] == "boom"
    assert (doc["queue"], doc["message_id"], doc["attempt"]) == ("jobs", 7, 2)
    assert "run_id" not in doc  # None is left out
    assert "ValueError: two\nlines" in doc["exc"]
    assert doc["ts"].endswith("+00:00")
    plain = json.loads(JsonFormatter().format(record()))
    assert set(plain) == {"ts", "level", "logger", "message"}
    assert plain["message"] == "message 7 failed"


def test_text_appends_the_fields() -> None:
    line = TextFormatter().format(record(queue="jobs", worker_id=3))
    assert line.endswith("WARNING pgqrs: message 7 failed [queue=jobs worker_id=3]")
    assert TextFormatter().format(record()).endswith("pgqrs: message 7 failed")
    assert isinstance(formatter("json"), JsonFormatter)
    assert isinstance(formatter("text"), TextFormatter)


async def test_workflow_failures_carry_the_run(
    store: pgqrs.Store, caplog: pytest.LogCaptureFixture
) -> None:
    async def flow(run: pgqrs.Run) -> None:
        raise ValueError("no")

    run = await pgqrs.admin(store).create_workflow("wf", {"x": 1})
    consumer = await store.consumer("wf")
    with pytest.raises(ValueError, match="no"):
        await pgqrs.dequeue().worker(consumer).handle_workflow(flow).execute(store)
    (failed,) = [r for r in caplog.records if r.getMessage().startswith("workflow handler failed")]
    assert failed.__dict__["run_id"] == run.id()
    assert failed.__dict__["queue"] == "wf"
    assert failed.__dict__["worker_id"] == consumer.worker_id
    assert failed.__dict__["attempt"] == 1
    assert failed.__dict__["message_id"] == run.message_id
