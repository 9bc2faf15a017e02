"""Stateful property tests: random interleavings of queue calls against a pure-Python model.

A hypothesis `RuleBasedStateMachine` drives the real library on a real SQLite file and a real
PostgreSQL schema and, after every step, compares every message of its queue (owner, lease,
read count, archive time) and every worker (status, heartbeat) with `tests/support/queue_model.py`.
Time is injected: the store's clock is a `ManualClock` that only the `advance` rule moves.

One store per test function; every example gets a fresh queue and fresh worker names on it, so
no example pays for a new database. The machine's async calls run on an event loop the test
creates and drives (`Env.run`), since hypothesis calls rules synchronously.

The variants: `core` (no re-registration, no admin reclaim; two consumers also claim at once),
`reregister` and `reclaim` (one NEW rule of issue 10 each, without the simultaneous claims, so
that a failure names its rule and shrinks deterministically on PostgreSQL too) and `all`.

`pytest -s` prints, per variant and backend, how often each case of the rules was exercised;
`REQUIRED` fails a run that never reached the cases that matter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
from collections import Counter
from collections.abc import Coroutine, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import engine
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

import pgqrs
from pgqrs._clock import from_db, parse_time
from tests.support import queue_model as spec
from tests.support.queue_model import (
    DELETED_ID,
    STOPPED,
    SUSPENDED,
    Either,
    ManualClock,
    Message,
    QueueModel,
    Registration,
)
from tests.support.target import Target

T = TypeVar("T")

CONSUMERS = 3
LEASE = 10  # default_lock_time_seconds: what dequeue(n) leases for
MAX_READ_CT = 2  # low, so that poison messages turn up within a few claims

# Examples per variant (each runs on both backends), about 35 steps each: 2-3 ms a step on
# SQLite, 4-8 ms on PostgreSQL; the whole file takes 60-80 s when it passes.
BUDGET = {"core": 100, "reregister": 40, "reclaim": 40, "all": 50}
FEATURES = {
    "core": frozenset({"concurrent"}),
    "reregister": frozenset({"reregister"}),
    "reclaim": frozenset({"reclaim"}),
    "all": frozenset({"concurrent", "reregister", "reclaim"}),
}
STEPS = 60
SHRINK_SECONDS = 60
# Cases each variant must have exercised (substrings of the counted case names, printed at the
# end with -s), so that a change of generators or budgets cannot leave a rule untested unnoticed.
_CORE = [
    "claim: took messages",
    "claim: (enqueued_at, id) order differs from id order",
    "claim: a poison message was passed over",
    "claim: took over a lapsed lease of another consumer",
    "claim: refused while suspended",
    ": own message",
    "own message, lease lapsed",
    "own archived message",
    "stop: released messages",
]
REQUIRED = {
    "core": [*_CORE, "claim together: both took messages"],
    "reregister": [
        "claim: took messages",
        ": own message",
        "register_again: stopped name came back",
        "old object, message of a later registration",
    ],
    "reclaim": [
        "claim: took messages",
        ": own message",
        "reclaim: stale worker's valid lease",
        "reclaim: stale worker's lapsed lease",
    ],
    "all": [
        "claim: took messages",
        ": own message",
        "old object, message of a later registration",
        "reclaim: stale worker's valid lease",
        "leftover of an earlier registration",
    ],
}


def _settings(variant: str) -> settings:
    return settings(
        max_examples=BUDGET[variant],
        stateful_step_count=STEPS,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


_MESSAGES = (
    "SELECT id, enqueued_at, vt, read_ct, consumer_worker_id, archived_at, dequeued_at, payload "
    "FROM pgqrs_messages WHERE queue_id = :queue_id ORDER BY id"
)
_WORKERS = "SELECT id, status, heartbeat_at FROM pgqrs_workers WHERE queue_id = :queue_id"


def _spell(store: pgqrs.Store, sql: str) -> str:
    """The statement in the driver's parameter style (Postgres connections search the schema)."""
    return sql.replace(":queue_id", "%(queue_id)s") if store.backend == "postgres" else sql


class Env:
    """What every example of one test shares: the event loop, the store, the variant."""

    def __init__(self, loop: asyncio.AbstractEventLoop, store: pgqrs.Store, variant: str) -> None:
        self.loop = loop
        self.store = store
        self.features = FEATURES[variant]
        self.examples = itertools.count()
        self.seen: Counter[str] = Counter()  # what the run exercised (checked at the end)

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(call)


@dataclasses.dataclass(eq=False)
class Handle:
    """One `Consumer` object: slot `c<slot>`, and the registration it was returned by."""

    consumer: pgqrs.Consumer
    slot: int
    reg: Registration

    def __repr__(self) -> str:
        return f"<c{self.slot} {self.reg}>"


@dataclasses.dataclass(frozen=True)
class Held:
    """A message id chosen at run time: the `index`-th (by id, wrapping) unarchived message
    owned by the calling object's worker id, whatever its registration (with `archived`: an
    archived one); any message when there is none. Settling calls mostly aim at what a consumer
    holds this way."""

    index: int
    archived: bool = False


class Mismatch(AssertionError):
    pass


def _fail(rule_text: str, detail: str) -> Mismatch:
    return Mismatch(f"\n  rule: {rule_text}\n  {detail}")


SLOTS = st.integers(0, CONSUMERS - 1)


def held_archived(index: int) -> Held:
    return Held(index, archived=True)


HELD = st.integers(0, 3).map(Held)
HELD_ARCHIVED = st.integers(0, 3).map(held_archived)
# What settling calls aim at: mostly what the caller holds, sometimes what it archived, and any
# message that ever existed (another consumer's, nobody's, deleted).
SETTLE_CALLS = st.sampled_from(["archive", "delete", "release", "extend_vt"])
MESSAGES = Bundle[int]("messages")  # every id enqueued in the example
TARGET = st.one_of(HELD, HELD, HELD_ARCHIVED, MESSAGES)
SECONDS = st.one_of(st.sampled_from([1, 2, 5, 0.5, 0.000001]), st.integers(0, 25))


class QueueMachine(RuleBasedStateMachine):
    env: ClassVar[Env]

    consumers = Bundle[Handle]("consumers")
    messages = MESSAGES

    def __init__(self) -> None:
        super().__init__()
        env = self.env
        store = env.store
        self.queue = f"pq{next(env.examples)}"
        self.clock = ManualClock()
        store.clock = self.clock
        self.model = QueueModel(now=self.clock.now(), max_read_ct=store.settings.max_read_ct)
        self.queue_id = env.run(store.queue(self.queue)).id
        self.producer = env.run(store.producer(self.queue, name=f"{self.queue}-producer"))
        self.model.register(self.producer.worker_id, self.producer.name)
        self.producer_beat_at = self.clock.now()
        self.current: list[Handle] = []
        self.handles: list[Handle] = []  # every Consumer object, in creation order
        self.replacements = itertools.count(1)
        self.before_call: dict[int, Message | None] = {}
        self.payloads = itertools.count()

    # -- setup ------------------------------------------------------------------------------
    @initialize(target=consumers)
    def start_consumers(self) -> MultipleResults[Handle]:
        for slot in range(CONSUMERS):
            consumer = self.env.run(self.env.store.consumer(self.queue, name=self._name(slot)))
            worker = self.model.register(consumer.worker_id, consumer.name)
            self.current.append(Handle(consumer, slot, worker.registration))
            self.handles.append(self.current[-1])
        self.check(spec.RULE_LIFECYCLE)
        return multiple(*self.current)

    def _name(self, slot: int) -> str:
        return f"{self.queue}-c{slot}"

    # -- producing --------------------------------------------------------------------------
    @rule(target=messages, delay=st.one_of(st.just(0), SECONDS))
    def enqueue(self, delay: float) -> int:
        payload = next(self.payloads)
        producer = self.producer
        call = producer.enqueue(payload) if not delay else producer.enqueue_delayed(payload, delay)
        mid = self.env.run(call)
        self._producer_sent(self.model.now)
        self._check_new_ids([mid])
        self.model.enqueue([mid], [payload], self.model.now, delay)
        self.check(spec.RULE_ENQUEUE)
        return mid

    @rule(target=messages, count=st.integers(2, 3))
    def enqueue_batch(self, count: int) -> MultipleResults[int]:
        payloads = [next(self.payloads) for _ in range(count)]
        ids = self.env.run(self.producer.enqueue_batch(list(payloads)))
        self._producer_sent(self.model.now)
        self._check_new_ids(ids)
        self.model.enqueue(ids, payloads, self.model.now, 0)
        self.check(spec.RULE_ENQUEUE)
        return multiple(*ids)

    @rule(target=messages, lag=st.integers(1, 30))
    def enqueue_from_lagging_clock(self, lag: int) -> int:
        """A producer whose clock is `lag` seconds behind: a later id, an earlier enqueued_at,
        so that claim order (enqueued_at, id) differs from id order."""
        payload = next(self.payloads)
        with self.clock.skewed(-lag) as then:
            mid = self.env.run(self.producer.enqueue(payload))
        self._producer_sent(then)
        self._check_new_ids([mid])
        self.model.enqueue([mid], [payload], then, 0)
        self.check(spec.RULE_ENQUEUE)
        return mid

    def _producer_sent(self, at: datetime) -> None:
        """A producer beats as it sends once its last beat is an interval old by its clock; a
        clock that went back restarts the interval without a beat (semantics.md §9.3)."""
        if at < self.producer_beat_at:
            self.producer_beat_at = at
            return
        interval = self.env.store.settings.heartbeat_interval_seconds
        if (at - self.producer_beat_at).total_seconds() < interval:
            return
        worker = self.model.workers[self.producer.worker_id]
        worker.heartbeat_at = at
        if worker.status == STOPPED:
            worker.status = spec.READY
        self.producer_beat_at = at

    def _check_new_ids(self, ids: Sequence[int]) -> None:
        known = max(self.model.messages, default=0)
        if list(ids) != sorted(ids) or any(i in self.model.messages for i in ids):
            raise _fail(spec.RULE_ENQUEUE, f"ids {ids} not new and ascending (known up to {known})")

    # -- claiming ---------------------------------------------------------------------------
    @rule(slot=SLOTS, n=st.integers(1, 4))
    def dequeue(self, slot: int, n: int) -> None:
        handle = self._claimer(slot)
        self._claim(handle, n, LEASE, handle.consumer.dequeue(n))

    @rule(
        slot=SLOTS,
        n=st.integers(1, 4),
        lease=st.one_of(st.sampled_from([1, 2, 5]), st.integers(1, 30)),
    )
    def dequeue_many_with_delay(self, slot: int, n: int, lease: int) -> None:
        handle = self._claimer(slot)
        self._claim(handle, n, lease, handle.consumer.dequeue_many_with_delay(n, lease))

    def _claimer(self, slot: int) -> Handle:
        """The first consumer from slot `slot` on that is not suspended (else slot `slot`'s):
        claims by suspended consumers are tried once per `suspend`, not at every draw."""
        for handle in self.current[slot:] + self.current[:slot]:
            if self.model.workers[handle.reg.worker_id].status != SUSPENDED:
                return handle
        return self.current[slot]

    def _claim(
        self,
        handle: Handle,
        n: int,
        lease: float,
        call: Coroutine[Any, Any, list[pgqrs.QueueMessage]],
    ) -> None:
        model = self.model
        if model.workers[handle.reg.worker_id].status == SUSPENDED:
            with pytest.raises(pgqrs.SuspendedError):
                self.env.run(call)
            self.env.seen["claim: refused while suspended"] += 1
            self.check(spec.RULE_SUSPENDED)
            return
        before = {mid: dataclasses.replace(m) for mid, m in model.messages.items()}
        expected = model.claim(handle.reg, n, lease)
        got = self.env.run(call)
        ids = [m.id for m in got]
        if ids != expected:
            raise self._explain_claim(handle, before, expected, ids)
        seen = self.env.seen
        seen["claim: took messages" if ids else "claim: nothing visible"] += 1
        if ids != sorted(ids):
            seen["claim: (enqueued_at, id) order differs from id order"] += 1
        if any(model.poison(m) for m in before.values()):
            seen["claim: a poison message was passed over"] += 1
        if any(before[i].owner not in (None, handle.reg) for i in ids):
            seen["claim: took over a lapsed lease of another consumer"] += 1
        for message in got:
            m = model.messages[message.id]
            fields = (
                message.read_ct,
                message.consumer_worker_id,
                parse_time(message.vt or ""),
                parse_time(message.enqueued_at),
                message.payload,
            )
            wanted = (m.read_ct, handle.reg.worker_id, m.vt, m.enqueued_at, m.payload)
            if fields != wanted:
                raise _fail(
                    spec.RULE_CLAIM,
                    f"claimed message {message.id}: (read_ct, owner, vt, enqueued_at, payload) "
                    f"is {fields}, model {wanted}",
                )
        self.check(spec.RULE_CLAIM)

    @precondition(lambda self: "concurrent" in self.env.features)
    @rule(first=SLOTS, n=st.integers(1, 3), m=st.integers(1, 3))
    def dequeue_concurrently(self, first: int, n: int, m: int) -> None:
        """Two consumers claim at once (really at once on PostgreSQL: two pool connections,
        FOR UPDATE SKIP LOCKED): the first two from slot `first` on that are not suspended.
        Whoever wins each row, together they take the first n + m visible messages, each in
        claim order, and never the same message."""
        model = self.model
        able = [
            h
            for h in self.current[first:] + self.current[:first]
            if model.workers[h.reg.worker_id].status != SUSPENDED
        ]
        if len(able) < 2:
            self.env.seen["claim together: skipped, consumers suspended"] += 1
            return
        a, b = able[:2]
        order = [msg.id for msg in model.claim_order()]
        got_a, got_b = self.env.run(_gather(a.consumer.dequeue(n), b.consumer.dequeue(m)))
        ids_a, ids_b = [x.id for x in got_a], [x.id for x in got_b]
        said = f"{a} claimed {ids_a} (up to {n}) while {b} claimed {ids_b} (up to {m})"
        if set(ids_a) & set(ids_b):
            raise _fail(spec.RULE_EXCLUSIVE, said)
        together = ids_a + ids_b
        if not set(together) <= set(order) or sorted(together, key=order.index) != order[: n + m]:
            raise _fail(
                spec.RULE_CLAIM,
                f"{said} at t={model.now}; together they must take the first {n + m} of the "
                f"visible messages in claim order {order}",
            )
        for ids in (ids_a, ids_b):
            if ids != sorted(ids, key=order.index):
                raise _fail(spec.RULE_CLAIM, f"{said}: not in claim order {order}")
        if ids_a and ids_b:
            self.env.seen["claim together: both took messages"] += 1
        model.take(a.reg, ids_a, LEASE)
        model.take(b.reg, ids_b, LEASE)
        self.check(spec.RULE_CLAIM + " (two claims at once)")

    def _explain_claim(
        self, handle: Handle, before: dict[int, Message], expected: list[int], got: list[int]
    ) -> Mismatch:
        """Name the rule a wrong claim breaks."""
        model = self.model
        lines = [f"{handle} claimed {got} at t={model.now}; the model expected {expected}"]
        rule_text = spec.RULE_CLAIM
        for mid in got:
            m = before.get(mid)
            if m is None:
                lines.append(f"message {mid}: not a live message of this queue")
                continue
            if model.validly_leased(m) and m.owner != handle.reg:
                rule_text = spec.RULE_EXCLUSIVE
                lines.append(f"message {mid}: leased to {m.owner} until {m.vt}")
            elif model.poison(m):
                rule_text = spec.RULE_POISON
                lines.append(f"message {mid}: poison, read_ct {m.read_ct}")
            elif not model.visible(m):
                rule_text = spec.RULE_VISIBLE
                lines.append(f"message {mid}: not visible ({m.describe()})")
        if sorted(got) == sorted(expected):
            lines.append("same messages, different order")
        for mid in expected:
            if mid not in got:
                lines.append(f"message {mid} visible but not claimed ({before[mid].describe()})")
        lines.append("queue before the claim, in claim order:")
        for m in sorted(before.values(), key=lambda m: (m.enqueued_at, m.id)):
            lines.append(f"  {mid_line(m)}")
        return _fail(rule_text, "\n  ".join(lines))

    # -- settling ---------------------------------------------------------------------------
    @rule(handle=consumers, chosen=st.lists(TARGET, min_size=1, max_size=3))
    def archive(self, handle: Handle, chosen: list[Held | int]) -> None:
        self._archive(handle, chosen)

    def _archive(self, handle: Handle, chosen: Sequence[Held | int]) -> None:
        ids = self._pick(handle, chosen)
        self._note("archive", handle, ids)
        outcomes = {mid: self.model.archive(handle.reg, mid) for mid in dict.fromkeys(ids)}
        consumer = handle.consumer
        if len(ids) == 1:
            got = [self.env.run(consumer.archive(ids[0]))]
        else:
            got = self.env.run(consumer.archive_many(ids))
        self._per_id_results("archive", spec.RULE_ARCHIVE, handle, ids, got, outcomes)
        self.check(spec.RULE_ARCHIVE)

    @rule(handle=consumers, chosen=st.lists(TARGET, min_size=1, max_size=3))
    def delete(self, handle: Handle, chosen: list[Held | int]) -> None:
        self._delete(handle, chosen)

    def _delete(self, handle: Handle, chosen: Sequence[Held | int]) -> None:
        ids = self._pick(handle, chosen)
        self._note("delete", handle, ids)
        outcomes = {mid: self.model.delete(handle.reg, mid) for mid in dict.fromkeys(ids)}
        consumer = handle.consumer
        if len(ids) == 1:
            got = [self.env.run(consumer.delete(ids[0]))]
        else:
            got = self.env.run(consumer.delete_many(ids))
        self._per_id_results("delete", spec.RULE_DELETE, handle, ids, got, outcomes)
        self.check(spec.RULE_DELETE)

    @rule(handle=consumers, chosen=st.lists(TARGET, min_size=1, max_size=3))
    def release(self, handle: Handle, chosen: list[Held | int]) -> None:
        self._release(handle, chosen)

    def _release(self, handle: Handle, chosen: Sequence[Held | int]) -> None:
        ids = self._pick(handle, chosen)
        self._note("release", handle, ids)
        outcomes = {mid: self.model.release(handle.reg, mid) for mid in dict.fromkeys(ids)}
        got = self.env.run(handle.consumer.release_messages(ids))
        done = {mid for mid, o in outcomes.items() if o is True}
        leftovers = {mid: o for mid, o in outcomes.items() if isinstance(o, Either)}
        released = self.resolve(leftovers)
        for mid in leftovers:
            took = "changed" if mid in released else "left alone"
            self.env.seen[f"leftover of an earlier registration: {took}"] += 1
        done |= released
        if got != len(done):
            raise _fail(
                self._settle_rule(spec.RULE_RELEASE, handle, outcomes),
                f"{handle}.release_messages({ids}) at t={self.model.now} answered {got}; "
                f"the model releases {sorted(done)}\n  {self._owners(outcomes)}",
            )
        self.check(spec.RULE_RELEASE)

    @rule(handle=consumers, chosen=TARGET, seconds=SECONDS)
    def extend_vt(self, handle: Handle, chosen: Held | int, seconds: float) -> None:
        self._extend_vt(handle, chosen, seconds)

    def _extend_vt(self, handle: Handle, chosen: Held | int, seconds: float) -> None:
        [mid] = self._pick(handle, [chosen])
        self._note("extend_vt", handle, [mid])
        outcome = self.model.extend(handle.reg, mid, seconds)
        got = self.env.run(handle.consumer.extend_vt(mid, seconds))
        self._per_id_results(
            f"extend_vt(.., {seconds})", spec.RULE_EXTEND, handle, [mid], [got], {mid: outcome}
        )
        self.check(spec.RULE_EXTEND)

    def _pick(self, handle: Handle, chosen: Sequence[Held | int]) -> list[int]:
        return [self._held(handle, c) if isinstance(c, Held) else c for c in chosen]

    def _held(self, handle: Handle, held: Held) -> int:
        model = self.model
        pool = sorted(
            m.id
            for m in model.messages.values()
            if m.owner is not None
            and m.owner.worker_id == handle.reg.worker_id
            and (m.archived_at is not None) == held.archived
        )
        pool = pool or sorted(model.messages) or [0]
        return pool[held.index % len(pool)]

    def _note(self, call: str, handle: Handle, ids: list[int]) -> None:
        """Count which case of the settle rules each id exercises."""
        model = self.model
        self.before_call = {
            mid: None if mid not in model.messages else dataclasses.replace(model.messages[mid])
            for mid in ids
        }
        for mid in dict.fromkeys(ids):
            m = model.messages.get(mid)
            if m is None:
                case = "deleted message"
            elif m.owner is None:
                case = "message nobody owns"
            elif not model.is_current(handle.reg):
                same = m.owner.worker_id == handle.reg.worker_id
                case = "old object, message of a later registration" if same else "old object"
            elif m.owner == handle.reg:
                if m.archived_at is not None:
                    case = "own archived message"
                elif m.vt <= model.now:
                    case = "own message, lease lapsed"
                else:
                    case = "own message"
            elif m.owner.worker_id == handle.reg.worker_id:
                case = "leftover of an earlier registration"
            else:
                case = "another consumer's message"
            self.env.seen[f"{call}: {case}"] += 1

    def _per_id_results(
        self,
        call: str,
        rule_text: str,
        handle: Handle,
        ids: list[int],
        got: list[bool],
        outcomes: dict[int, bool | Either],
    ) -> None:
        answers: dict[int, bool] = {}
        for mid, answer in zip(ids, got, strict=True):
            if answers.setdefault(mid, answer) != answer:
                raise _fail(rule_text, f"{call} answered differently for the same id {mid}")
        for mid, outcome in outcomes.items():
            if isinstance(outcome, Either):  # the model follows the library here
                self.model.adopt(mid, outcome.after if answers[mid] else outcome.before)
                took = "changed" if answers[mid] else "left alone"
                self.env.seen[f"leftover of an earlier registration: {took}"] += 1
            elif answers[mid] != outcome:
                raise _fail(
                    self._settle_rule(rule_text, handle, outcomes),
                    f"{handle}.{call}({ids}) at t={self.model.now} answered {got}; the model "
                    f"answers {[outcomes[i] for i in ids]}\n  {self._owners(outcomes)}",
                )

    def _settle_rule(self, rule_text: str, handle: Handle, outcomes: dict[int, Any]) -> str:
        """The rule a wrong settle answer breaks: fencing of an earlier registration (NEW),
        fencing by ownership, or the call's own rule."""
        if not self.model.is_current(handle.reg):
            return spec.RULE_REREGISTER + " (old object must answer False/0)"
        return f"{spec.RULE_FENCE}; {rule_text}"

    def _owners(self, outcomes: dict[int, Any]) -> str:
        """The messages of a settling call as the model had them before the call."""
        parts = ["before the call:"]
        for mid in outcomes:
            m = self.before_call.get(mid)
            parts.append(f"  message {mid}: " + ("deleted" if m is None else m.describe()))
        return "\n  ".join(parts)

    def resolve(
        self, pending: dict[int, Either], rule_text: str = spec.RULE_REREGISTER
    ) -> set[int]:
        """Where the model allowed either outcome, follow the library's rows; the ids whose
        row took the `after` form."""
        if not pending:
            return set()
        rows = self._message_rows()
        changed = set()
        for mid, either in pending.items():
            row = rows.get(mid)
            for choice in (either.before, either.after):
                state = None if choice.id == DELETED_ID else _comparable(choice)
                if row == state:
                    self.model.adopt(mid, choice)
                    if choice is either.after:
                        changed.add(mid)
                    break
            else:
                raise _fail(
                    rule_text,
                    f"at t={self.model.now}, message {mid}: library row {_describe_row(row)}; "
                    f"the model allows {_describe_row(_comparable(either.before))} or "
                    + ("deleted" if either.after.id == DELETED_ID else mid_line(either.after)),
                )
        return changed

    # -- time and workers -------------------------------------------------------------------
    @rule(seconds=SECONDS)
    def advance_time(self, seconds: float) -> None:
        self._advance(seconds)

    @rule(slot=SLOTS, past=st.sampled_from([0, 0.000001]))
    def advance_to_lease_end(self, slot: int, past: float) -> None:
        """Time moves to the end of the earliest running lease of consumer `slot`'s worker
        (or of anyone's), exactly (`vt == t`: visible again) or a microsecond after."""
        model = self.model
        leases = [m for m in model.messages.values() if model.validly_leased(m)]
        worker_id = self.current[slot].reg.worker_id
        own = [m for m in leases if m.owner is not None and m.owner.worker_id == worker_id]
        ends = sorted(m.vt for m in own or leases)
        gap = (ends[0] - model.now).total_seconds() if ends else 1.0
        self._advance(gap + past)
        self.env.seen["time: moved to a lease's end" if ends else "time: no lease running"] += 1

    def _advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.model.now = self.clock.now()

    @rule(slot=SLOTS)
    def heartbeat(self, slot: int) -> None:
        handle = self.current[slot]
        self.env.run(handle.consumer.heartbeat())
        self.model.workers[handle.reg.worker_id].heartbeat_at = self.model.now
        self.check(spec.RULE_LIFECYCLE)

    @rule(slot=SLOTS)
    def suspend(self, slot: int) -> None:
        handle = self.current[slot]
        worker = self.model.workers[handle.reg.worker_id]
        if worker.status == spec.READY:
            self.env.run(handle.consumer.suspend())
            worker.status = SUSPENDED
            self._claim(handle, 1, LEASE, handle.consumer.dequeue(1))  # refused
        else:
            with pytest.raises(pgqrs.StateTransitionError):
                self.env.run(handle.consumer.suspend())
        self.check(spec.RULE_LIFECYCLE)

    @rule(slot=SLOTS)
    def resume(self, slot: int) -> None:
        handle = self.current[slot]
        worker = self.model.workers[handle.reg.worker_id]
        if worker.status == SUSPENDED:
            self.env.run(handle.consumer.resume())
            worker.status = spec.READY
        else:
            with pytest.raises(pgqrs.StateTransitionError):
                self.env.run(handle.consumer.resume())
        self.check(spec.RULE_LIFECYCLE)

    @rule(slot=SLOTS)
    def stop(self, slot: int) -> None:
        """suspend() then shutdown(release=True)."""
        self._stop(slot)

    def _stop(self, slot: int) -> None:
        handle = self.current[slot]
        worker = self.model.workers[handle.reg.worker_id]
        if worker.status == STOPPED:
            with pytest.raises(pgqrs.StateTransitionError):
                self.env.run(handle.consumer.shutdown(release=True))
            self.check(spec.RULE_LIFECYCLE)
            return
        if worker.status == spec.READY:
            self.env.run(handle.consumer.suspend())
        self.env.run(handle.consumer.shutdown(release=True))
        held = [
            m for m in self.model.messages.values() if m.owner == handle.reg and not m.archived_at
        ]
        self.env.seen["stop: released messages" if held else "stop: held nothing"] += 1
        leftovers = self.model.shutdown_release(handle.reg)
        changed = self.resolve(leftovers)
        for mid in leftovers:
            took = "released" if mid in changed else "left alone"
            self.env.seen[f"shutdown: leftover of an earlier registration {took}"] += 1
        self.check(spec.RULE_SHUTDOWN)

    @precondition(lambda self: "reregister" in self.env.features)
    @rule(target=consumers, slot=SLOTS)
    def register_again(self, slot: int) -> MultipleResults[Handle]:
        """`store.consumer(queue, name=...)` with a taken name: a stopped worker comes back
        under the same id as a new registration; any other status is refused."""
        return self._register_again(slot)

    def _register_again(self, slot: int) -> MultipleResults[Handle]:
        old = self.current[slot]
        worker = self.model.workers[old.reg.worker_id]
        name = old.consumer.name
        call = self.env.store.consumer(self.queue, name=name)
        if worker.status != STOPPED:
            with pytest.raises(pgqrs.ValidationError):
                self.env.run(call)
            self.check(spec.RULE_LIFECYCLE)
            return multiple()
        consumer = self.env.run(call)
        self.env.seen["register_again: stopped name came back"] += 1
        if consumer.worker_id != old.reg.worker_id:
            raise _fail(
                spec.RULE_REREGISTER,
                f"re-registering {name} gave worker id {consumer.worker_id}, "
                f"not {old.reg.worker_id}",
            )
        new = Handle(consumer, slot, self.model.reregister(worker.id))
        self.current[slot] = new
        self.handles.append(new)
        self.check(spec.RULE_REREGISTER)
        return multiple(new)

    @rule(target=consumers, slot=SLOTS)
    def replace(self, slot: int) -> MultipleResults[Handle]:
        """A stopped consumer's slot gets a new consumer under a new name (a new worker id):
        keeps consumers coming without re-registering a name."""
        if self.model.workers[self.current[slot].reg.worker_id].status != STOPPED:
            return multiple()
        name = f"{self._name(slot)}-{next(self.replacements)}"
        consumer = self.env.run(self.env.store.consumer(self.queue, name=name))
        worker = self.model.register(consumer.worker_id, consumer.name)
        new = Handle(consumer, slot, worker.registration)
        self.current[slot] = new
        self.handles.append(new)
        self.check(spec.RULE_LIFECYCLE)
        return multiple(new)

    @precondition(lambda self: "reregister" in self.env.features)
    @rule(target=consumers, slot=SLOTS, call=SETTLE_CALLS, index=st.integers(0, 2))
    def settle_from_old_object(self, slot: int, call: str, index: int) -> MultipleResults[Handle]:
        """The Consumer object of slot `slot`'s previous registration settles a message its
        worker id holds: the new registration's included. Slot `slot` first restarts under its
        name if it never did, and its new registration claims a message if it holds none."""
        model = self.model
        new: MultipleResults[Handle] = multiple()
        if all(model.is_current(h.reg) for h in self.handles if h.slot == slot):
            new = self._restart(slot)
        current = self.current[slot]
        holds = any(m.owner == current.reg and not m.archived_at for m in model.messages.values())
        if model.workers[current.reg.worker_id].status == spec.READY and not holds:
            self._claim(current, 1, LEASE, current.consumer.dequeue(1))
        old = [h for h in self.handles if h.slot == slot and not model.is_current(h.reg)]
        self._settle(call, old[-1], Held(index))
        return new

    @rule(slot=SLOTS, call=SETTLE_CALLS, index=st.integers(0, 2))
    def settle_archived(self, slot: int, call: str, index: int) -> None:
        """A consumer settles a message it archived (the first from slot `slot` on that
        archived any; else the first that holds one archives it first): only delete may act
        on it, and only under DELETE_ARCHIVED."""
        model = self.model
        rotated = self.current[slot:] + self.current[:slot]
        for handle in rotated:
            if any(m.owner == handle.reg and m.archived_at for m in model.messages.values()):
                self._settle(call, handle, Held(index, archived=True))
                return
        for handle in rotated:
            held = [m.id for m in model.messages.values() if m.owner == handle.reg]
            if held:
                self._archive(handle, held[:1])
                self._settle(call, handle, Held(index, archived=True))
                return
        self.env.seen["settle_archived: nothing held"] += 1

    def _settle(self, call: str, handle: Handle, target: Held) -> None:
        if call == "archive":
            self._archive(handle, [target])
        elif call == "delete":
            self._delete(handle, [target])
        elif call == "release":
            self._release(handle, [target])
        else:
            self._extend_vt(handle, target, 1)

    @precondition(lambda self: "reregister" in self.env.features)
    @rule(target=consumers, slot=SLOTS)
    def restart(self, slot: int) -> MultipleResults[Handle]:
        """A process restarting under its worker name: stop (unless stopped already), then
        register the name again. The old Consumer object stays in the bundle, fenced out."""
        return self._restart(slot)

    def _restart(self, slot: int) -> MultipleResults[Handle]:
        if self.model.workers[self.current[slot].reg.worker_id].status != STOPPED:
            self._stop(slot)
        return self._register_again(slot)

    @precondition(lambda self: "reclaim" in self.env.features)
    @rule(older_than=st.integers(0, 12))
    def reclaim(self, older_than: int) -> None:
        self._reclaim(older_than)

    @precondition(lambda self: "reclaim" in self.env.features)
    @rule(slot=SLOTS, lease=st.integers(2, 30), lapse=st.booleans())
    def reclaim_silent_holder(self, slot: int, lease: int, lapse: bool) -> None:
        """Consumer `slot` goes silent holding a message: unless it holds a running lease
        already (or cannot claim: suspended or stopped) it claims one for `lease` seconds; time
        moves 1 s (with `lapse`: past that lease); then reclaim_messages runs with the largest
        whole `older_than_seconds` that finds it stale. The window in which a silent consumer's
        lease may still run."""
        self._reclaim_silent_holder(slot, lease, lapse)

    def _reclaim_silent_holder(self, slot: int, lease: int, lapse: bool) -> None:
        model = self.model
        handle = self.current[slot]
        worker = model.workers[handle.reg.worker_id]
        leasing = any(
            m.owner == handle.reg and model.validly_leased(m) for m in model.messages.values()
        )
        if worker.status == spec.READY and not leasing:
            self._claim(handle, 1, lease, handle.consumer.dequeue_many_with_delay(1, lease))
        self._advance(lease + 1 if lapse else 1)
        age = (model.now - worker.heartbeat_at).total_seconds()
        self._reclaim(max(0, math.ceil(age) - 1))

    @precondition(lambda self: {"reclaim", "reregister"} <= self.env.features)
    @rule(target=consumers, slot=SLOTS, lease=st.integers(2, 30), call=SETTLE_CALLS)
    def come_back_after_reclaim(self, slot: int, lease: int, call: str) -> MultipleResults[Handle]:
        """`reclaim_silent_holder` (its lease still running), then the process comes back
        under its name, and the new registration settles what its worker id holds: the
        previous registration's leftover, whose fate the specification leaves open."""
        self._reclaim_silent_holder(slot, lease, False)
        if self.model.workers[self.current[slot].reg.worker_id].status != STOPPED:
            return multiple()
        new = self._register_again(slot)
        self._settle(call, self.current[slot], Held(0))
        return new

    def _reclaim(self, older_than: int) -> None:
        admin = pgqrs.admin(self.env.store)
        before = {mid: dataclasses.replace(m) for mid, m in self.model.messages.items()}
        stale, released = self.model.reclaim(older_than)
        expected = len(released)
        seen = self.env.seen
        seen["reclaim: stopped stale workers" if stale else "reclaim: nobody stale"] += 1
        for m in before.values():
            if m.owner is not None and m.owner.worker_id in stale and m.archived_at is None:
                lease = "valid" if m.vt > self.model.now else "lapsed"
                seen[f"reclaim: stale worker's {lease} lease"] += 1
        got = self.env.run(admin.reclaim_messages(self.queue, older_than_seconds=older_than))
        if got != expected:
            held = [
                mid_line(m)
                for m in before.values()
                if m.owner is not None and m.owner.worker_id in stale and m.archived_at is None
            ]
            raise _fail(
                spec.RULE_RECLAIM,
                f"reclaim_messages(older_than_seconds={older_than}) at t={self.model.now} "
                f"answered {got}, the model releases {expected}; stale workers {stale} held:\n"
                + "\n".join(f"    {line}" for line in held),
            )
        now = self.resolve(released, spec.RULE_RECLAIM)
        for mid in released:
            vt = "now" if mid in now else "the lease's end"
            seen[f"reclaim: released message visible from {vt}"] += 1
        self.check(spec.RULE_RECLAIM)

    # -- the invariant ----------------------------------------------------------------------
    def _message_rows(self) -> dict[int, tuple[Any, ...]]:
        store = self.env.store
        rows = self.env.run(store.db.fetch(_spell(store, _MESSAGES), {"queue_id": self.queue_id}))
        return {
            int(r[0]): (
                from_db(r[1]),
                from_db(r[2]),
                r[3],
                r[4],
                from_db(r[5]),
                from_db(r[6]),
                int(r[7]),
            )
            for r in rows
        }

    def check(self, rule_text: str) -> None:
        """Every message and worker of the queue is as the model says (after the rule named)."""
        rows = self._message_rows()
        model = self.model
        lost = sorted(set(model.messages) - set(rows))
        extra = sorted(set(rows) - set(model.messages))
        if lost or extra:
            raise _fail(
                rule_text,
                f"at t={model.now}: messages the model has but the library lost: {lost}; "
                f"messages the library has but the model deleted/never had: {extra}",
            )
        for mid, row in rows.items():
            m = model.messages[mid]
            if row != _comparable(m):
                raise _fail(
                    f"{rule_text} (the model's message last changed by: {m.changed_by})",
                    f"at t={model.now}, message {mid}:\n"
                    f"    library: {_describe_row(row)}\n    model:   {mid_line(m)}",
                )
        store = self.env.store
        workers = self.env.run(store.db.fetch(_spell(store, _WORKERS), {"queue_id": self.queue_id}))
        for wid, status, beat in workers:
            w = model.workers[int(wid)]
            if (status, from_db(beat)) != (w.status, w.heartbeat_at):
                raise _fail(
                    rule_text,
                    f"at t={model.now}, worker {wid} ({w.name}): library status {status}, "
                    f"heartbeat {from_db(beat)}; model status {w.status}, heartbeat "
                    f"{w.heartbeat_at}",
                )


def _comparable(m: Message) -> tuple[Any, ...]:
    owner = None if m.owner is None else m.owner.worker_id
    return (m.enqueued_at, m.vt, m.read_ct, owner, m.archived_at, m.dequeued_at, m.payload)


def _describe_row(row: tuple[Any, ...] | None) -> str:
    if row is None:
        return "no row (deleted)"
    enqueued_at, vt, read_ct, owner, archived_at, dequeued_at, _ = row
    archived = "" if archived_at is None else f" archived_at={archived_at}"
    return (
        f"enqueued_at={enqueued_at} vt={vt} read_ct={read_ct} owner=worker {owner}{archived} "
        f"dequeued_at={dequeued_at}"
    )


def mid_line(m: Message) -> str:
    return f"message {m.id}: {m.describe()}"


async def _gather(
    first: Coroutine[Any, Any, list[pgqrs.QueueMessage]],
    second: Coroutine[Any, Any, list[pgqrs.QueueMessage]],
) -> tuple[list[pgqrs.QueueMessage], list[pgqrs.QueueMessage]]:
    return await asyncio.gather(first, second)


async def _open(target: Target) -> pgqrs.Store:
    store = await target.connect(default_lock_time_seconds=LEASE, max_read_ct=MAX_READ_CT)
    await pgqrs.admin(store).install()
    return store


@pytest.mark.backends("sqlite", "postgres")
@pytest.mark.timeout(900)  # a failing run shrinks; a passing one takes 10-25 s
# Which rules a fixed budget reaches depends on how the real leases and the machine keep pace:
# run apart from the parallel suite, so the coverage check below stays deterministic.
@pytest.mark.serial
@pytest.mark.parametrize("variant", list(BUDGET))
def test_queue_model(target: Target, variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Hypothesis shrinks a failure for up to 5 minutes; a minute finds the same few steps here.
    monkeypatch.setattr(engine, "MAX_SHRINKING_SECONDS", SHRINK_SECONDS, raising=False)
    loop = asyncio.new_event_loop()
    try:
        store = loop.run_until_complete(_open(target))
        try:

            class Machine(QueueMachine):
                env = Env(loop, store, variant)

            Machine.__name__ = f"QueueMachine_{variant}"
            run_state_machine_as_test(Machine, settings=_settings(variant))
            seen = Machine.env.seen
            print(f"\n{target.backend}/{variant}: cases exercised")
            for case, times in sorted(seen.items()):
                print(f"  {times:6d}  {case}")
            missing = [case for case in REQUIRED[variant] if not any(case in name for name in seen)]
            assert not missing, f"the run never exercised {missing}: raise BUDGET or STEPS"
        finally:
            loop.run_until_complete(store.close())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
