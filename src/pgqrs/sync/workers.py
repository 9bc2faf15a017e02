"""Producer, Consumer and WorkerHandle, blocking: each method the async one on the portal."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Generic, Self, TypeVar, Unpack, overload

from .._clock import Time
from ..queue.workers import Consumer as AsyncConsumer
from ..queue.workers import Producer as AsyncProducer
from ..queue.workers import WorkerHandle as AsyncWorkerHandle
from ..records import EnqueuedId
from ..types import QueueMessage, WorkerInfo, WorkerStatus
from . import options as passed
from .caller import in_calling_thread, producer_on
from .options import BatchEnqueueOptions, EnqueueOptions, MessageId
from .portal import Delegate, Owner

W = TypeVar("W", bound="AsyncProducer | AsyncConsumer | AsyncWorkerHandle")
IW = TypeVar("IW", bound="AsyncConsumer | AsyncWorkerHandle")
T = TypeVar("T")


class _Worker(Delegate, Generic[W]):
    __slots__ = ("_worker",)

    _worker: W

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kind = type(self).__name__
        raise RuntimeError(f"Direct {kind} creation is disabled. Use store.{kind.lower()}(queue).")

    @classmethod
    def _wrap(cls, owner: Owner, worker: W) -> Self:
        wrapper = object.__new__(cls)
        wrapper._owner = owner
        wrapper._worker = worker
        return wrapper

    @property
    def aio(self) -> W:
        """The async worker underneath (for `Store.call()` only)."""
        return self._worker

    @property
    def worker_id(self) -> int:
        return self._worker.worker_id

    @property
    def name(self) -> str:
        return self._worker.name

    @property
    def queue_id(self) -> int | None:
        return self._worker.queue_id

    def __repr__(self) -> str:
        return f"<pgqrs.sync.{type(self).__name__} id={self.worker_id} name={self.name!r}>"

    def status(self) -> WorkerStatus:
        return self._call(self._worker.status())

    def suspend(self) -> None:
        self._call(self._worker.suspend())

    def resume(self) -> None:
        self._call(self._worker.resume())

    def heartbeat(self) -> None:
        self._call(self._worker.heartbeat())

    def is_healthy(self, max_age_seconds: float) -> bool:
        return self._call(self._worker.is_healthy(max_age_seconds))


class Producer(_Worker[AsyncProducer]):
    """`pgqrs.Producer`, blocking. The overloads are the async ones (api.md §5.2)."""

    __slots__ = ()

    @overload
    def enqueue(
        self,
        payload: Any,
        *,
        priority: int = 0,
        dedup_key: None = None,
        dedup_window_seconds: None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> MessageId: ...

    @overload
    def enqueue(
        self,
        payload: Any,
        *,
        priority: int = 0,
        dedup_key: str,
        dedup_window_seconds: float | None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> EnqueuedId: ...

    def enqueue(self, payload: Any, **options: Unpack[EnqueueOptions]) -> MessageId:
        return self._enqueue(options, lambda p: passed.enqueue(p, payload, options))

    @overload
    def enqueue_delayed(
        self,
        payload: Any,
        delay_seconds: float,
        *,
        priority: int = 0,
        dedup_key: None = None,
        dedup_window_seconds: None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> MessageId: ...

    @overload
    def enqueue_delayed(
        self,
        payload: Any,
        delay_seconds: float,
        *,
        priority: int = 0,
        dedup_key: str,
        dedup_window_seconds: float | None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> EnqueuedId: ...

    def enqueue_delayed(
        self, payload: Any, delay_seconds: float, **options: Unpack[EnqueueOptions]
    ) -> MessageId:
        return self._enqueue(
            options, lambda p: passed.enqueue_delayed(p, payload, delay_seconds, options)
        )

    @overload
    def enqueue_batch(
        self,
        payloads: list[Any],
        *,
        priority: int = 0,
        dedup_keys: None = None,
        dedup_window_seconds: None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> list[MessageId]: ...

    @overload
    def enqueue_batch(
        self,
        payloads: list[Any],
        *,
        priority: int = 0,
        dedup_keys: Sequence[str | None],
        dedup_window_seconds: float | None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> list[EnqueuedId]: ...

    def enqueue_batch(
        self, payloads: list[Any], **options: Unpack[BatchEnqueueOptions]
    ) -> list[MessageId] | list[EnqueuedId]:
        return self._enqueue(options, lambda p: passed.enqueue_batch(p, payloads, options))

    def _enqueue(
        self,
        options: EnqueueOptions | BatchEnqueueOptions,
        call: Callable[[AsyncProducer], Coroutine[Any, Any, T]],
    ) -> T:
        """`call(producer)` on the portal, or with `connection=` in this thread (caller.py)."""
        connection = options.get("connection")
        if connection is None:
            return self._call(call(self._worker))
        return in_calling_thread(
            self._owner, connection, lambda view: call(producer_on(self._worker, view))
        )

    def cancel(self, message_id: int) -> bool:
        return self._call(self._worker.cancel(message_id))

    def cancel_key(self, dedup_key: str) -> bool:
        return self._call(self._worker.cancel_key(dedup_key))

    def shutdown(self) -> None:
        self._call(self._worker.shutdown())


class _Interruptible(_Worker[IW]):
    __slots__ = ()

    def interrupt(self) -> None:
        self._call(self._worker.interrupt())

    def shutdown(self, release: bool = False) -> None:
        self._call(self._worker.shutdown(release))


class Consumer(_Interruptible[AsyncConsumer]):
    """`pgqrs.Consumer`, blocking."""

    __slots__ = ()

    def dequeue(self, batch_size: int | None = None) -> list[QueueMessage]:
        return self._call(self._worker.dequeue(batch_size))

    def dequeue_many_with_delay(self, limit: int, vt: int) -> list[QueueMessage]:
        return self._call(self._worker.dequeue_many_with_delay(limit, vt))

    def dequeue_at(self, limit: int, vt: int, current_time: Time) -> list[QueueMessage]:
        return self._call(self._worker.dequeue_at(limit, vt, current_time))

    def extend_vt(self, message_id: int, seconds: float) -> bool:
        return self._call(self._worker.extend_vt(message_id, seconds))

    def archive(self, message_id: int) -> bool:
        return self._call(self._worker.archive(message_id))

    def archive_many(self, message_ids: list[int]) -> list[bool]:
        return self._call(self._worker.archive_many(message_ids))

    def delete(self, message_id: int) -> bool:
        return self._call(self._worker.delete(message_id))

    def delete_many(self, message_ids: list[int]) -> list[bool]:
        return self._call(self._worker.delete_many(message_ids))

    def release_messages(self, message_ids: list[int]) -> int:
        return self._call(self._worker.release_messages(message_ids))

    def release_with_visibility(self, message_id: int, visible_at: Time) -> bool:
        return self._call(self._worker.release_with_visibility(message_id, visible_at))


class WorkerHandle(_Interruptible[AsyncWorkerHandle]):
    """`pgqrs.WorkerHandle`, blocking: any worker, by id (`store.worker(id)`)."""

    __slots__ = ()

    def info(self) -> WorkerInfo:
        return self._call(self._worker.info())
