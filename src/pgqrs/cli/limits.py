"""`pgqrs queue limit`: a queue's (or a key's) fleet-wide concurrency and rate limits, and how
`pgqrs queue show` lists them (semantics.md §7.10)."""

from __future__ import annotations

from typing import Any

import click

from ..admin import Admin
from ..client import Store
from ..records import LimitInfo
from ..validation import check_limit_key
from .context import json_option, wants_json, with_store
from .output import console, emit_json, plain, print_table, table

# Max: max in flight; Leased: in flight now; Tokens: claims the rate's bucket allows now.
_NUMBERS = ("Max", "Leased", "Rate/s", "Burst", "Tokens")


def limits_json(found: list[LimitInfo]) -> list[dict[str, Any]]:
    return [plain(info) for info in found]


def limits_table(found: list[LimitInfo], title: str) -> None:
    out = table("Key", *_NUMBERS, title=title, right=_NUMBERS, flex=("Key",))
    for info in found:
        out.add_row(
            "(queue)" if info.key is None else info.key,
            _shown(info.max_in_flight),
            str(info.in_flight),
            _shown(info.rate_per_second),
            _shown(info.burst),
            "-" if info.tokens is None else f"{info.tokens:.1f}",
        )
    print_table(out, "No limits: claims take any number of messages.")


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


@click.command("limit")
@click.argument("name")
@click.option("--key", default=None, help="Limit the messages sent with this key (default: all).")
@click.option("--max-in-flight", type=int, default=None, help="Leases running at once, fleet-wide.")
@click.option("--rate", "rate", type=float, default=None, help="Claims per second, fleet-wide.")
@click.option("--burst", type=int, default=None, help="Claims allowed at once (default: 1 s).")
@click.option("--clear", is_flag=True, help="Remove the limits of the queue (or of --key).")
@json_option
def limit(
    name: str,
    key: str | None,
    max_in_flight: int | None,
    rate: float | None,
    burst: int | None,
    clear: bool,
) -> None:
    """Set the limits of queue NAME (or of its messages with --key): every worker of this
    library on every machine keeps them. Replaces the earlier limits of the queue (or key);
    with no limit given, shows them; --clear removes them."""
    given = (max_in_flight, rate, burst) != (None, None, None)
    if key is not None:
        check_limit_key(key)
    if clear and given:
        raise click.UsageError("--clear takes no --max-in-flight, --rate or --burst")

    async def work(store: Store) -> list[LimitInfo]:
        admin = Admin(store)
        if not (given or clear):
            return await admin.queue_limits(name)
        if key is None:
            return await admin.set_queue_limits(
                name, max_in_flight=max_in_flight, rate_per_second=rate, burst=burst
            )
        return await admin.set_key_limits(
            name, key, max_in_flight=max_in_flight, rate_per_second=rate, burst=burst
        )

    found = with_store(work)
    if wants_json():
        emit_json({"queue": name, "limits": limits_json(found)})
        return
    limits_table(found, f"Limits of queue '{name}'")
    if given or clear:
        console().print(f"Limits of {'key ' + repr(key) if key else 'the queue'} updated.")
