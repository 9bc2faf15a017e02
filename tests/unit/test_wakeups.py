"""In-process wake-ups (store/wakeup.py): flat memory, and never a missed notification."""

from __future__ import annotations

import asyncio

from pgqrs.store.wakeup import MAX_KEYS, Wakeups


def test_memory_is_flat_in_the_number_of_keys_notified() -> None:
    """Issue 10, defect 8: one counter per finished workflow run was kept forever (2,000 runs,
    2,000 entries). However many keys are notified, at most MAX_KEYS are remembered."""
    wakeups = Wakeups()
    for n in range(5 * MAX_KEYS):
        wakeups.notify(("run", n))
    assert wakeups.remembered() <= MAX_KEYS


async def test_a_notification_after_the_mark_ends_the_wait_even_across_forgetting() -> None:
    wakeups = Wakeups()
    key = ("queue", 1)
    mark = wakeups.mark((key,))
    for n in range(2 * MAX_KEYS):  # forgets everything at least once, the key included
        wakeups.notify(("run", n))
    wakeups.notify(key)
    # Returns at once: the key was notified after the mark (no 10 s wait).
    await asyncio.wait_for(wakeups.wait((key,), 10, since=mark), 1)


async def test_forgetting_may_end_a_wait_early_but_a_quiet_key_waits() -> None:
    wakeups = Wakeups()
    key = ("queue", 2)
    mark = wakeups.mark((key,))
    await wakeups.wait((key,), 0.01, since=mark)  # nothing happened: waits its time out
    assert wakeups.mark((key,)) == mark
    for n in range(MAX_KEYS + 1):
        wakeups.notify(("run", n))
    assert wakeups.mark((key,)) != mark  # forgotten keys count as just notified: one early look
