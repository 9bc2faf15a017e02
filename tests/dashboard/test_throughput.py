"""The throughput samples and their chart (pure code: an injected clock, no database)."""

from __future__ import annotations

from pgqrs.dashboard.charts import nice_ceiling, throughput_chart
from pgqrs.dashboard.throughput import Throughput
from pgqrs.types import QueueMetrics


def metrics(name: str, archived: int, total: int) -> QueueMetrics:
    return QueueMetrics(name, total, total - archived, 0, 0, 0, archived, None, None)


def test_rates_between_samples_bounded_and_spaced() -> None:
    now = [0.0]
    samples = Throughput(clock=lambda: now[0], max_samples=3, min_spacing=1.0)
    for archived, total in ((0, 10), (20, 40), (30, 40), (0, 5)):  # the last one: a purge
        samples.record([metrics("jobs", archived, total)])
        samples.record([metrics("jobs", 999, 999)])  # the same instant: ignored
        now[0] += 2.0
    rates = samples.rates("jobs")
    assert [(r.processed, r.enqueued) for r in rates] == [(5.0, 0.0), (0.0, 0.0)]
    assert samples.rates("other") == []


def test_chart_scales_to_a_round_maximum() -> None:
    assert [nice_ceiling(v) for v in (0.3, 1.5, 3, 7, 12, 50)] == [1, 2, 5, 10, 20, 50]
    now = [0.0]
    samples = Throughput(clock=lambda: now[0])
    assert "collecting samples" in throughput_chart(samples.rates("jobs"))
    for archived in (0, 10, 40):
        samples.record([metrics("jobs", archived, 100)])
        now[0] += 2.0
    svg = throughput_chart(samples.rates("jobs"))
    assert svg.count("<polyline") == 2
    assert ">20/s<" in svg  # 15/s at most, on a 20/s axis
    assert "15.0 processed/s, 0.0 enqueued/s now" in svg
