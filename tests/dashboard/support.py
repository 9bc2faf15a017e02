"""Helpers for the dashboard tests and the screenshot script (no tests here): data to show,
the app served by uvicorn on a thread, and an event loop on a thread for library calls made
from synchronous (browser) tests."""

from __future__ import annotations

import asyncio
import queue
import re
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import uvicorn
from playwright.sync_api import Browser, sync_playwright
from starlette.applications import Starlette

import pgqrs

T = TypeVar("T")

TOKEN = "dashboard-test-token-0123456789"
CHROMIUM = "/usr/bin/chromium"


# -- data -------------------------------------------------------------------------------------
async def fail(message: pgqrs.QueueMessage) -> None:
    raise ValueError(f"cannot handle {message.payload!r}")


async def dead_letter(store: pgqrs.Store, queue: str, payload: Any) -> int:
    """A poison message of `queue` (a queue that dead-letters after one delivery) whose handler
    raised ValueError."""
    await pgqrs.admin(store).create_queue(queue, exist_ok=True, max_read_ct=1)
    producer = await store.producer(queue)
    message_id = int(await producer.enqueue(payload))
    try:  # `execute` records the error, then raises it again
        await pgqrs.dequeue().from_queue(queue).handle(fail).execute(store)
    except ValueError:
        return message_id
    raise AssertionError("the handler did not fail")


@dataclass
class Seeded:
    dead_letter_id: int
    run_id: int  # SUCCESS/ERROR steps, a signal and an event
    worker_name: str


async def seed(store: pgqrs.Store) -> Seeded:
    """A little of everything each page shows."""
    admin = pgqrs.admin(store)
    await admin.create_queue("emails", exist_ok=True)
    producer = await store.producer("emails")
    await producer.enqueue_batch([{"to": f"user{i}@example.com"} for i in range(3)])
    await producer.enqueue_delayed({"to": "later@example.com"}, 3600)
    consumer = await store.consumer("emails", "mailer-1")
    [held] = await consumer.dequeue()
    assert held.id > 0
    letter = await dead_letter(store, "payments", {"invoice": 42})
    run = await admin.create_workflow("checkout", {"cart": 7})
    await run.start()
    reserved = await run.acquire_step("reserve_stock")
    assert reserved.guard is not None
    await reserved.guard.success({"reserved": 3})
    await run.fail_step("charge_card", {"code": "card_declined"})
    await pgqrs.send_signal(store, run.id(), "approved", {"by": "alice"})
    await run.set_event("progress", {"percent": 50})
    other = await admin.create_workflow("checkout", {"cart": 8})
    await other.success({"shipped": True})
    await admin.create_schedule("nightly-report", "0 3 * * *", queue="emails", payload={"r": 1})
    await admin.set_queue_limits("payments", max_in_flight=4, rate_per_second=2.5, burst=5)
    return Seeded(letter, run.id(), consumer.name)


# -- reading pages ------------------------------------------------------------------------------
def row(html: str, attribute: str, value: object) -> str:
    """The `<tr>` whose `data-<attribute>` is `value`."""
    found = re.search(rf'<tr data-{attribute}="{re.escape(str(value))}">(.*?)</tr>', html, re.S)
    assert found is not None, f"no row data-{attribute}={value!r} in:\n{html}"
    return found.group(1)


def cell(html: str, queue: str, column: str) -> int:
    """A number of the queues table: `column` is pending, in-flight, delayed, dead, archived."""
    found = re.search(rf'class="num {column}">(?:<a [^>]*>)?(\d+)<', row(html, "queue", queue))
    assert found is not None, f"no {column} cell for {queue}"
    return int(found.group(1))


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "no CSRF field: not logged in?"
    return found.group(1)


# -- threads ------------------------------------------------------------------------------------
class LoopThread:
    """An event loop on a daemon thread: synchronous code runs coroutines on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(work, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class BrowserThread:
    """Chromium driven by Playwright's sync API on a thread of its own.

    Playwright's sync API marks its event loop as running on the thread that uses it, between
    calls too; on the test thread that would break every asyncio test after the first browser
    test. So the browser lives here and tests hand it functions to run (`run`)."""

    def __init__(self, executable: str = CHROMIUM) -> None:
        self._jobs: queue.Queue[tuple[Callable[[Browser], Any], Future[Any]] | None]
        self._jobs = queue.Queue()
        started: Future[None] = Future()
        self._thread = threading.Thread(target=self._main, args=(executable, started), daemon=True)
        self._thread.start()
        started.result(60)

    def _main(self, executable: str, started: Future[None]) -> None:
        try:
            playwright = sync_playwright().start()
            browser = playwright.chromium.launch(executable_path=executable, headless=True)
        except BaseException as err:
            started.set_exception(err)
            return
        started.set_result(None)
        while (job := self._jobs.get()) is not None:
            work, done = job
            try:
                done.set_result(work(browser))
            except BaseException as err:
                done.set_exception(err)
        browser.close()
        playwright.stop()

    def run(self, work: Callable[[Browser], T], timeout: float = 50.0) -> T:
        done: Future[T] = Future()
        self._jobs.put((work, done))
        return done.result(timeout)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(30)


class Served:
    """`app` served by uvicorn on a free loopback port, on a thread, until `stop()`."""

    def __init__(self, app: Starlette) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self.thread.start()
        ready = threading.Event()
        for _ in range(500):
            if self.server.started or not self.thread.is_alive():
                break
            ready.wait(0.01)
        assert self.server.started, "the dashboard did not start"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()


async def with_store(config: pgqrs.Config, work: Callable[[pgqrs.Store], Awaitable[T]]) -> T:
    store = await pgqrs.connect_with(config)
    try:
        return await work(store)
    finally:
        await store.close()


async def log_in(client: httpx.AsyncClient) -> str:
    """Log `client` in through the form; the CSRF token of its session."""
    answer = await client.post("/login", data={"token": TOKEN})
    assert answer.status_code == 303, answer.text
    return csrf_of((await client.get("/dead-letters")).text)
