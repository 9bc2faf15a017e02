"""The dashboard in a real browser (Debian's Chromium, driven by Playwright), served by uvicorn
on a loopback port, over a SQLite file and a PostgreSQL schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

import pgqrs
from pgqrs.dashboard import create_app
from tests.support.target import PG_DSN, pg_admin

from .support import (
    CHROMIUM,
    TOKEN,
    BrowserThread,
    LoopThread,
    Seeded,
    Served,
    dead_letter,
    seed,
    with_store,
)

DEADLINE_MS = 10_000  # a poll every 2 s: five chances


@dataclass
class Site:
    url: str
    config: pgqrs.Config
    lib: LoopThread  # library calls on the test's side, on a loop of their own
    seeded: Seeded


@pytest.fixture(scope="session")
def chromium() -> Iterator[BrowserThread]:
    """One browser for the session, on its own thread (see BrowserThread)."""
    if not os.access(CHROMIUM, os.X_OK):  # a failure, never a skip: `make test` installs it
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser`", pytrace=False)
    browser = BrowserThread()
    yield browser
    browser.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    if request.param == "sqlite":
        folder: Path = tmp_path_factory.mktemp("dashboard")
        config = pgqrs.Config(f"sqlite://{folder / 'pgqrs.db'}")
    else:
        config = pgqrs.Config(PG_DSN, schema=schema)
    lib = LoopThread()

    async def install(store: pgqrs.Store) -> Seeded:
        await pgqrs.admin(store).install()
        return await seed(store)

    seeded = lib.run(with_store(config, install))
    served = Served(create_app(config, write=True, token=TOKEN))
    yield Site(served.url, config, lib, seeded)
    served.stop()
    lib.close()
    if request.param == "postgres":
        with pg_admin() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


Steps = Callable[[Page, list[str]], None]
Browse = Callable[[Steps], None]


@pytest.fixture
def browse(chromium: BrowserThread) -> Browse:
    """`browse(steps)`: run `steps(page, console_errors)` in a fresh browser context (no
    cookies) on the browser's thread; the test fails on any console error the steps leave in
    the list (they remove those they caused on purpose)."""

    def run(steps: Steps) -> None:
        def in_browser(browser: Browser) -> list[str]:
            context = browser.new_context()
            page = context.new_page()
            errors: list[str] = []

            def on_console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    errors.append(message.text)

            page.on("console", on_console)
            page.on("pageerror", lambda err: errors.append(str(err)))
            try:
                steps(page, errors)
            finally:
                context.close()
            return errors

        assert chromium.run(in_browser) == []

    return run


def test_every_page_loads_without_console_errors(site: Site, browse: Browse) -> None:
    run = site.seeded.run_id
    pages = {
        "queues": "Queues",
        "workers": "Workers",
        "dead-letters": "Dead letters",
        "runs": "Workflow runs",
        f"runs/{run}": f"Run {run} of checkout",
        "schedules": "Cron schedules",
        "limits": "Concurrency and rate limits",
        "login": "Log in to act",
    }

    def steps(page: Page, errors: list[str]) -> None:
        for path, heading in pages.items():
            answer = page.goto(f"{site.url}/{path}")
            assert answer is not None, path
            assert answer.status == 200, path
            expect(page.locator("h1")).to_have_text(heading)
        page.goto(f"{site.url}/workers")
        with page.expect_response(lambda r: "partial=1" in r.url) as polled:
            pass  # the page's script fetches its fragment within two seconds
        assert polled.value.status == 200
        expect(page.locator("#workers")).to_contain_text(site.seeded.worker_name)

    browse(steps)


def test_depth_changes_without_a_reload(site: Site, browse: Browse) -> None:
    queue = f"live-{uuid.uuid4().hex[:8]}"

    async def create(store: pgqrs.Store) -> None:
        await store.queue(queue)

    async def enqueue(store: pgqrs.Store) -> None:
        producer = await store.producer(queue)
        await producer.enqueue_batch([{"n": i} for i in range(5)])

    def steps(page: Page, errors: list[str]) -> None:
        site.lib.run(with_store(site.config, create))
        page.goto(f"{site.url}/queues")
        pending = page.locator(f'tr[data-queue="{queue}"] td.pending')
        expect(pending).to_have_text("0")
        page.evaluate("window.loadedOnce = true")
        site.lib.run(with_store(site.config, enqueue))
        expect(pending).to_have_text("5", timeout=DEADLINE_MS)
        assert page.evaluate("window.loadedOnce") is True  # the same document: no reload

    browse(steps)


def test_logged_out_has_no_write_buttons_and_posts_are_refused(site: Site, browse: Browse) -> None:
    letter = site.seeded.dead_letter_id

    def steps(page: Page, errors: list[str]) -> None:
        page.goto(f"{site.url}/dead-letters")
        expect(page.locator(f'tr[data-message="{letter}"]')).to_be_visible()
        expect(page.locator("button[data-replay]")).to_have_count(0)
        expect(page.locator("#login-link")).to_be_visible()
        refused = page.request.post(f"{site.url}/dead-letters/{letter}/replay", form={"csrf": "x"})
        assert refused.status == 401

    browse(steps)

    async def still_poison(store: pgqrs.Store) -> list[int]:
        letters = await pgqrs.admin(store).dead_letters()
        return [d.message.id for d in letters if d.message.archived_at is None]

    assert letter in site.lib.run(with_store(site.config, still_poison))


def test_replay_a_dead_letter_after_logging_in(site: Site, browse: Browse) -> None:
    async def make(store: pgqrs.Store) -> int:
        return await dead_letter(store, "refunds", {"refund": uuid.uuid4().hex})

    letter = site.lib.run(with_store(site.config, make))

    def steps(page: Page, errors: list[str]) -> None:
        page.goto(f"{site.url}/dead-letters")
        page.click("#login-link")
        page.fill('input[name="token"]', "not-the-token")
        page.click('button[type="submit"]')
        expect(page.locator("#login-error")).to_be_visible()
        assert errors == [
            "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
        ]
        errors.clear()
        page.fill('input[name="token"]', TOKEN)
        page.click('button[type="submit"]')
        expect(page.locator("h1")).to_have_text("Queues")
        page.goto(f"{site.url}/dead-letters")
        page.click(f'button[data-replay="{letter}"]')
        expect(page.locator("#notice")).to_have_text(
            f"Message {letter} is back in its queue as a fresh message."
        )
        expect(page.locator(f'tr[data-message="{letter}"]')).to_have_count(0)

    browse(steps)

    async def read(store: pgqrs.Store) -> pgqrs.QueueMessage:
        return await (await store.get_messages()).get(letter)

    message = site.lib.run(with_store(site.config, read))
    assert message.read_ct == 0
    assert message.archived_at is None
