"""Screenshots of the dashboard for the guide: `python -m tests.dashboard.screenshots`.

Seeds a SQLite file in a temporary directory, runs a producer and a worker on it for a few
seconds so the throughput chart has something to show, serves the dashboard with uvicorn and
photographs its main pages with Debian's Chromium into docs/images/dashboard-*.png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

import pgqrs
from pgqrs.dashboard import create_app

from .support import CHROMIUM, TOKEN, LoopThread, Seeded, Served, dead_letter, seed

OUT = Path(__file__).resolve().parents[2] / "docs" / "images"
TRAFFIC_SECONDS = 16.0  # eight refreshes of the queues page: eight points on each chart


async def more_runs(store: pgqrs.Store) -> None:
    admin = pgqrs.admin(store)
    for cart in range(3):
        run = await admin.create_workflow("checkout", {"cart": 100 + cart})
        await run.start()
        await run.complete_step("reserve_stock", {"reserved": cart + 1})
        await run.complete_step("charge_card", {"charged": 19.99 * (cart + 1)})
        await run.success({"order": 5000 + cart})
    await admin.create_workflow("refund", {"order": 4999})
    await dead_letter(store, "payments", {"invoice": 43})
    await admin.create_queue("thumbnails", exist_ok=True)
    await admin.create_schedule("hourly-digest", "0 * * * *", queue="emails", payload={})


async def traffic(store: pgqrs.Store, stop: asyncio.Event) -> None:
    """Enqueue bursts into two queues while two poll loops drain them, until `stop`."""

    async def handle(message: pgqrs.QueueMessage) -> None:
        await asyncio.sleep(0.01)

    loops = [
        asyncio.create_task(
            pgqrs.dequeue()
            .worker(await store.consumer(queue, f"{queue}-worker"))
            .handle(handle)
            .poll_interval(50)
            .poll(store)
        )
        for queue in ("emails", "thumbnails")
    ]
    emails, thumbs = await store.producer("emails"), await store.producer("thumbnails")
    tick = 0
    while not stop.is_set():
        tick += 1
        await emails.enqueue_batch([{"n": i} for i in range(4 + tick % 5)])
        await thumbs.enqueue_batch([{"n": i} for i in range(2 + (tick * 3) % 7)])
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await stop.wait()
    for task in loops:
        task.cancel()
    await asyncio.gather(*loops, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNG files go")
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        config = pgqrs.Config(f"sqlite://{Path(folder) / 'pgqrs.db'}")
        lib = LoopThread()
        store = lib.run(pgqrs.connect_with(config))

        async def prepare() -> Seeded:
            await pgqrs.admin(store).install()
            seeded = await seed(store)
            await more_runs(store)
            return seeded

        seeded = lib.run(prepare())
        stop = asyncio.Event()
        work = asyncio.run_coroutine_threadsafe(traffic(store, stop), lib.loop)
        served = Served(create_app(config, write=True, token=TOKEN))
        try:
            shoot(served.url, seeded, out)
        finally:
            lib.loop.call_soon_threadsafe(stop.set)
            work.result(30)
            served.stop()
            lib.run(store.close())
            lib.close()


def shoot(url: str, seeded: Seeded, out: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 640})
        page.goto(f"{url}/queues")
        for _ in range(int(TRAFFIC_SECONDS / 2)):  # each refresh is one sample
            with page.expect_response(lambda r: "partial=1" in r.url, timeout=10_000):
                pass
        page.screenshot(path=out / "dashboard-queues.png", full_page=True)
        page.goto(f"{url}/workers")
        page.screenshot(path=out / "dashboard-workers.png", full_page=True)
        page.goto(f"{url}/login")
        page.fill('input[name="token"]', TOKEN)
        page.click('button[type="submit"]')
        expect(page.locator("h1")).to_have_text("Queues")
        page.goto(f"{url}/dead-letters")
        page.screenshot(path=out / "dashboard-dead-letters.png", full_page=True)
        page.goto(f"{url}/runs")
        page.screenshot(path=out / "dashboard-runs.png", full_page=True)
        page.goto(f"{url}/runs/{seeded.run_id}")
        page.screenshot(path=out / "dashboard-run.png", full_page=True)
        browser.close()
    for name in ("queues", "workers", "dead-letters", "runs", "run"):
        print(out / f"dashboard-{name}.png")


if __name__ == "__main__":
    main()
