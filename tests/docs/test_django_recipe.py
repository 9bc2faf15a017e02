"""README "Enqueue in your transaction": the Django recipe works as written, on Django's own
connection to SQLite and to PostgreSQL (tests/support/django_child.py)."""

from __future__ import annotations

import pytest

import pgqrs
from tests.support.process import spawn
from tests.support.target import Target

pytestmark = pytest.mark.backends("sqlite", "postgres")


async def test_transactional_django_recipe_commits_the_email_with_the_user(
    store: pgqrs.Store, target: Target
) -> None:
    await pgqrs.admin(store).create_queue("emails")
    child = spawn("django_child", target.env())
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.split() == ["1", "3"]
    consumer = await store.consumer("emails")
    got = await consumer.dequeue(batch_size=10)
    assert [m.payload for m in got] == [{"welcome": 1}, {"welcome": 3}]
    assert all(m.producer_worker_id is not None for m in got)
