"""Handlers for `pgqrs run`, used by `make demo` (examples/demo.py).

    pgqrs run examples.tasks:handle --queue jobs --concurrency 4
    pgqrs run examples.tasks:onboarding            # a workflow: --queue defaults to its name

`handle` is a queue handler: an async function taking one message (a list with `--batch N`).
`onboarding` is a durable workflow of three steps; each step prints a line when it really runs,
so a resumed run shows which steps were skipped. `send_welcome_email` is slow on purpose (the
demo kills the worker while it runs).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import pgqrs
from pgqrs.decorators import step, workflow

# How long the welcome email takes to "send": long enough for the demo to kill the worker in it.
EMAIL_SECONDS = float(os.environ.get("PGQRS_DEMO_EMAIL_SECONDS", "3"))


async def handle(message: pgqrs.QueueMessage) -> None:
    """A job: hash the payload a few times (stand-in for real work). Raising would release the
    message with backoff; returning archives it."""
    digest = repr(message.payload).encode()
    for _ in range(int(message.payload.get("rounds", 10))):
        digest = hashlib.sha256(digest).digest()
    await asyncio.sleep(0)  # a real handler awaits I/O here


async def handle_batch(messages: list[pgqrs.QueueMessage]) -> None:
    """The same work for `pgqrs run examples.tasks:handle_batch --batch 50`."""
    for message in messages:
        await handle(message)


def say(text: str) -> None:
    print(f"[worker {os.getpid()}] {text}", flush=True)


@step
async def create_account(run: pgqrs.Run, user: dict[str, Any]) -> dict[str, Any]:
    say(f"create_account: {user['email']}")
    return {"account_id": 1000 + run.id(), "email": user["email"]}


@step
async def send_welcome_email(run: pgqrs.Run, account: dict[str, Any]) -> str:
    say(f"send_welcome_email: to {account['email']} (takes {EMAIL_SECONDS:g}s)")
    await asyncio.sleep(EMAIL_SECONDS)  # the SMTP call; the demo kills the worker here
    return f"welcome email sent to {account['email']}"


@step
async def start_trial(run: pgqrs.Run, account: dict[str, Any]) -> str:
    say(f"start_trial: account {account['account_id']}")
    return f"trial started for account {account['account_id']}"


@workflow(name="onboarding")
async def onboarding(run: pgqrs.Run, user: dict[str, Any]) -> dict[str, Any]:
    account = await create_account(run, user)
    email = await send_welcome_email(run, account)
    trial = await start_trial(run, account)
    return {"account": account["account_id"], "email": email, "trial": trial}
