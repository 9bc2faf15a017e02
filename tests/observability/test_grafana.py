"""docs/grafana/pgqrs.json is a dashboard of metrics that exist: valid JSON, and every metric
name its queries use appears in a real scrape."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import pgqrs
from pgqrs.observability.prometheus import scrape
from tests.observability.conftest import Scraped

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "pgqrs.json"
METRIC = re.compile(r"\bpgqrs_[a-z_]+")


def queries(node: Any) -> list[str]:
    """Every `expr` of the dashboard, and the queries of its variables."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                found.append(value)
            else:
                found += queries(value)
    elif isinstance(node, list):
        for item in node:
            found += queries(item)
    return found


@pytest.mark.backends("sqlite")
async def test_every_metric_the_dashboard_uses_exists(store: pgqrs.Store) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = queries(dashboard)
    assert len([p for p in dashboard["panels"] if p["targets"]]) >= 8
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert len(used) >= 9

    await store.queue("jobs")
    await pgqrs.produce(store, "jobs", "x")
    consumer = await store.consumer("jobs")

    async def handle(message: pgqrs.QueueMessage) -> None:
        pass

    assert await pgqrs.dequeue().worker(consumer).handle(handle).execute(store) == 1
    scraped = Scraped(await scrape(store))
    assert used <= scraped.names(), used - scraped.names()
